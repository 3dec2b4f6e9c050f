/**
 * The HTTP agent adapter in a full training job: the agent is an external service, started as
 * its own OS process (tests/support/httpAgentService.ts), which plays the simulated
 * environment's agent under the lessons Flow sends. One job runs clean; one runs with faults
 * injected per task (HTTP 500s, invalid JSON, a response off the contract, a slow service, a
 * flaky one that recovers on retry): those trajectories fail with their reasons and the job
 * completes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startTrainingJob } from '../../api/trainingJobs';
import type { Task } from '../../training/task';
import { TrajectoryStepSchema } from '../../training/trajectory';
import { PolicySchema } from '../../training/policy';
import { simulatedTaskSet } from '../../training/simulation/environment';
import type { HttpAgentServiceStats } from '../support/httpAgentService';
import { jobRequest, startHarness, type Harness } from '../support/harness';
import { stopProcess } from '../support/workerProcess';

const ROOT = path.resolve(__dirname, '../..');
// The agent services here listen on loopback, which workers refuse unless the allow-list names it
// (adapters/net/agentUrlPolicy.ts); `localhost` stays unlisted for the SSRF test below.
process.env.FLOW_HTTP_AGENT_ALLOW = '127.0.0.1:*';

async function spawnAgentService(env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string; stats(): Promise<HttpAgentServiceStats> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tests/support/httpAgentService.ts')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening (\S+)/.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`agent service exited with ${code}:\n${output}`)));
  });
  const statsUrl = url.replace(/\/agent$/, '/stats');
  return { child, url, stats: async () => (await (await fetch(statsUrl)).json()) as HttpAgentServiceStats };
}

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

test('a 3-iteration job trains an agent behind an HTTP service (own process): steps, costs and lessons flow both ways', async () => {
  const service = await spawnAgentService();
  try {
    const request = jobRequest({
      agent: { type: 'http', url: service.url, timeout_seconds: 10, max_attempts: 3, expose_expected: true },
      evaluation_queries: simulatedTaskSet({ queriesPerFamily: 1, seed: 99, families: ['shipping'] }),
      config: { iterations: 3, batch_size: 4, group_size: 6, checkpoint_interval: 10, eval_interval: 100, eval_samples: 2 },
    });
    const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
    const result = await h.run(h.client.workflow.getHandle(jobId).result());
    expect(result.status).toBe('completed');
    expect(result.iterations).toBe(3);

    const rows = await h.repos.trajectories.listForJob(jobId);
    const training = rows.filter((row) => row.iteration >= 1 && row.queryId.startsWith('sim-11-'));
    expect(training).toHaveLength(3 * 4 * 6);
    for (const row of training) {
      expect(row.error).toBeNull();
      const steps = TrajectoryStepSchema.array().min(1).parse(row.steps);
      expect(steps[steps.length - 1].action.type).toBe('final_answer');
      // What the service reported is what Flow recorded and counted.
      expect(row.costUsd).toBeCloseTo(steps.reduce((sum, step) => sum + step.cost_usd, 0), 12);
      expect(row.costUsd).toBeGreaterThan(0);
      expect(row.logProb).not.toBeNull();
      expect(row.reward).not.toBeNull();
    }
    expect(training.some((row) => row.success)).toBe(true);
    expect(training.some((row) => !row.success)).toBe(true);
    // The job learned lessons from the service's trajectories, and sent them back to it.
    expect(PolicySchema.parse(result.policy).lessons.length).toBeGreaterThan(0);
    const stats = await service.stats();
    expect(stats.max_lessons).toBeGreaterThan(0);
    expect(stats.requests).toBeGreaterThanOrEqual(3 * 4 * 6);
    expect(stats.faults).toEqual({});
  } finally {
    await stopProcess(service.child);
  }
});

test('a misbehaving service: 500s, invalid JSON, wrong schema and a slow answer fail their trajectories with the reason; a flaky one recovers on retry; the job completes', async () => {
  // The slow answer comes well after the agent's 5 s timeout: at 5 s, the two raced on a loaded machine.
  const service = await spawnAgentService({ FLOW_AGENT_SLOW_MS: '15000' });
  try {
    const base = simulatedTaskSet({ queriesPerFamily: 1, seed: 21 });
    const faults = ['{fault:500}', '{fault:invalid_json}', '{fault:wrong_schema:odd}', '{fault:slow:odd}', '{fault:flaky}', ''];
    const tasks: Task[] = base.slice(0, faults.length).map((task, i) => ({ ...task, prompt: `${task.prompt} ${faults[i]}`.trim() }));
    const request = jobRequest({
      training_queries: tasks,
      evaluation_queries: simulatedTaskSet({ queriesPerFamily: 1, seed: 98, families: ['shipping'] }),
      agent: { type: 'http', url: service.url, timeout_seconds: 5, max_attempts: 2, expose_expected: true },
      config: { iterations: 1, batch_size: tasks.length, group_size: 4, checkpoint_interval: 10, eval_interval: 100, eval_samples: 2 },
    });
    const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
    const result = await h.run(h.client.workflow.getHandle(jobId).result());
    expect(result.status).toBe('completed');
    expect((await h.repos.jobs.get(jobId))?.status).toBe('completed');

    const rows = (await h.repos.trajectories.listForJob(jobId)).filter((row) => row.iteration === 1 && row.queryId.startsWith('sim-21-'));
    expect(rows).toHaveLength(tasks.length * 4);
    const byTask = (i: number) => rows.filter((row) => row.queryId === tasks[i].id);
    const errors = (i: number) => byTask(i).map((row) => row.error);
    // A group of 4 per task (else the loops below could check nothing).
    expect(tasks.map((_, i) => byTask(i).length)).toEqual(tasks.map(() => 4));

    for (const error of errors(0)) expect(error).toMatch(/^agent error: http agent .* gave up after 2 attempts: attempt 1: HTTP 500: .*injected.*; attempt 2: HTTP 500/);
    for (const error of errors(1)) expect(error).toMatch(/not retried: attempt 1: the response is not valid JSON/);
    for (const row of byTask(2)) {
      if (row.sampleIndex % 2 === 1) expect(row.error).toMatch(/not retried: attempt 1: the response does not match the flow-agent\/2 contract: steps: .*; final_answer: /);
      else expect(row.error).toBeNull();
    }
    for (const row of byTask(3)) {
      if (row.sampleIndex % 2 === 1) expect(row.error).toMatch(/gave up after 2 attempts: attempt 1: no complete answer within timeout_seconds=5; attempt 2: no complete answer/);
      else expect(row.error).toBeNull();
    }
    for (const error of [...errors(4), ...errors(5)]) expect(error).toBeNull();
    // Failed trajectories are recorded as failures with no steps, and scored like any other.
    for (const row of rows.filter((r) => r.error !== null)) {
      expect(row.success).toBe(false);
      expect(row.steps).toEqual([]);
      expect(row.reward).not.toBeNull();
    }
    const stats = await service.stats();
    expect(stats.faults).toMatchObject({ '500': 8, invalid_json: 4, wrong_schema: 2, slow: 4, flaky: 4 });
    // Second attempts: every 500 (4 samples), every slow answer (2 odd samples), every flaky first try (4).
    expect(stats.attempts['2']).toBe(4 + 2 + 4);
  } finally {
    await stopProcess(service.child);
  }
});

test('SSRF: a job whose agent URL resolves into a denied range (localhost, not on the allow-list) fails every trajectory unsent; the job completes', async () => {
  const service = await spawnAgentService();
  try {
    const url = service.url.replace('127.0.0.1', 'localhost').replace(/\/agent$/, '/internal/admin');
    const request = jobRequest({
      agent: { type: 'http', url, timeout_seconds: 5, max_attempts: 3 },
      config: { iterations: 1, batch_size: 2, group_size: 2, checkpoint_interval: 10, evaluate: false },
    });
    const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
    // A worker with no allow-list: any host at a public address, checked on what it resolves to.
    delete process.env.FLOW_HTTP_AGENT_ALLOW;
    const result = await h.run(h.client.workflow.getHandle(jobId).result()).finally(() => (process.env.FLOW_HTTP_AGENT_ALLOW = '127.0.0.1:*'));
    expect(result.status).toBe('completed');
    const rows = await h.repos.trajectories.listForJob(jobId);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) {
      expect(row.success).toBe(false);
      expect(row.steps).toEqual([]);
      expect(row.error).toMatch(/not retried: attempt 1: http:\/\/localhost:\d+\/internal\/admin refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address; agent services there are refused unless FLOW_HTTP_AGENT_ALLOW names the host/);
    }
    expect((await service.stats()).requests).toBe(0);
  } finally {
    await stopProcess(service.child);
  }
});
