/**
 * Worker pools as processes on the real dev server: the three pools in three processes train a
 * job together; SIGTERM drains a worker under load (in-flight activities finish, exit 0, no
 * retried or duplicate work); a SIGKILLed worker under compose-style supervision is replaced
 * and the job completes; health and readiness endpoints; bad settings are refused by name.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { startTrainingJob } from '../../api/trainingJobs';
import { main as flowCli } from '../../api/cli/flow';
import { freePort } from '../../workers/dev/devStack';
import { DEFAULT_WORKER_NICE } from '../../workers/cpuPriority';
import { startWorker } from '../../workers/main';
import { readiness } from '../../workers/health';
import { parsePoolSelection, poolSettingsFromEnv, DEFAULT_POOL_SETTINGS, WorkerGroup } from '../../workers/pools';
import { createTrainingWorker } from '../../workers/trainingWorker';
import { poolTaskQueue, type WorkerPoolName } from '../../workflows/taskQueues';
import { waitFor } from '../support/apiHarness';
import { startSimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';
import { superviseWorker, type Supervisor } from '../support/supervisor';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';

jest.setTimeout(240_000);

const EventType = temporal.api.enums.v1.EventType;
const FLOW = path.resolve(__dirname, '../../scripts/flow');

let h: Harness;
const children: { kill(signal: NodeJS.Signals): unknown; exitCode: number | null; signalCode: NodeJS.Signals | null }[] = [];
const supervisors: Supervisor[] = [];

beforeAll(async () => {
  // Model calls take a while, so a job has trajectories in flight when a worker is stopped.
  h = await startHarness({ model: { latencyMs: 150 } });
});

afterAll(async () => {
  for (const s of supervisors) await s.stop('SIGKILL');
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await h?.close();
});

/** A worker started inside jest's own process leaves its priority alone: later test files run in it too. */
const IN_JEST = { FLOW_WORKER_NICE: '0' };

const processOptions = (taskQueue: string, extra: { pool?: string; healthPort?: number } = {}) => ({
  taskQueue,
  temporalAddress: requireEnv('TEMPORAL_ADDRESS'),
  databaseUrl: requireEnv('DATABASE_URL'),
  llmBaseUrl: h.model.url,
  ...extra,
});

async function spawnTracked(...args: Parameters<typeof spawnWorkerProcess>) {
  const child = await spawnWorkerProcess(...args);
  children.push(child);
  return child;
}

const getJson = async (url: string) => {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

/** Every trajectory of the job exactly once: (run, iteration, query, sample) unique, the count expected. */
async function expectEveryTrajectoryOnce(jobId: string, expected: number) {
  const rows = await h.repos.trajectories.listForJob(jobId);
  const keys = rows.map((r) => `${r.run}:${r.iteration}:${r.queryIndex}:${r.sampleIndex}`);
  expect(new Set(keys).size).toBe(keys.length);
  expect(rows).toHaveLength(expected);
}

interface ActivityRecord {
  type: string;
  runId: string;
  activityId: string;
  identity: string;
  attempt: number;
  startedAt: number;
  closedAt: number | null;
  outcome: 'completed' | 'failed' | 'timed_out' | 'canceled' | null;
  /** Why the attempt before this one failed (a retried activity's), so a failing assertion shows it. */
  lastFailure: string | null;
  /** That failure was a timeout (heartbeat, start-to-close...). */
  lastFailureTimedOut: boolean;
}

const toMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

/** Each activity of the job's history: who ran its last attempt, which attempt, how it ended. */
async function activityRecords(jobId: string): Promise<ActivityRecord[]> {
  const { runId } = await h.client.workflow.getHandle(jobId).describe();
  const events = (await h.client.workflow.getHandle(jobId, runId).fetchHistory()).events ?? [];
  const scheduled = new Map<number, Pick<ActivityRecord, 'type' | 'activityId'>>();
  const records = new Map<number, ActivityRecord>();
  for (const e of events) {
    const id = Number(e.eventId);
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      const a = e.activityTaskScheduledEventAttributes!;
      scheduled.set(id, { type: a.activityType!.name!, activityId: a.activityId! });
    }
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      const a = e.activityTaskStartedEventAttributes!;
      records.set(Number(a.scheduledEventId), {
        ...scheduled.get(Number(a.scheduledEventId))!,
        runId,
        identity: a.identity ?? '',
        attempt: a.attempt ?? 0,
        startedAt: toMs(e.eventTime),
        closedAt: null,
        outcome: null,
        lastFailure: a.lastFailure ? `${a.lastFailure.applicationFailureInfo?.type ?? a.lastFailure.timeoutFailureInfo?.timeoutType ?? ''}: ${a.lastFailure.message ?? ''}` : null,
        lastFailureTimedOut: Boolean(a.lastFailure?.timeoutFailureInfo),
      });
    }
    const close = (scheduledEventId: unknown, outcome: ActivityRecord['outcome']) => {
      const record = records.get(Number(scheduledEventId));
      if (record) Object.assign(record, { closedAt: toMs(e.eventTime), outcome });
    };
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) close(e.activityTaskCompletedEventAttributes!.scheduledEventId, 'completed');
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED) close(e.activityTaskFailedEventAttributes!.scheduledEventId, 'failed');
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT) close(e.activityTaskTimedOutEventAttributes!.scheduledEventId, 'timed_out');
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED) close(e.activityTaskCanceledEventAttributes!.scheduledEventId, 'canceled');
  }
  return [...records.values()];
}

const trajectoryJob = (overrides: Parameters<typeof jobRequest>[0] = {}) =>
  jobRequest({ ...overrides, config: { iterations: 2, batch_size: 2, group_size: 8, seed: 9, ...overrides.config } });

describe('pools in separate processes', () => {
  test('a workflow process, a trajectory process and a CPU process train a job together; each answers /healthz and /readyz for its own pool', async () => {
    const taskQueue = `pools-${randomUUID()}`;
    const ports = { workflow: await freePort(), trajectory: await freePort(), cpu: await freePort() };
    const workflow = await spawnTracked(processOptions(taskQueue, { pool: 'workflow', healthPort: ports.workflow }));
    const trajectory = await spawnTracked(processOptions(taskQueue, { pool: 'trajectory', healthPort: ports.trajectory }));
    const cpu = await spawnTracked(processOptions(taskQueue, { pool: 'cpu', healthPort: ports.cpu }));
    expect(trajectory.output()).toContain(`polling task queue ${taskQueue}-trajectories (pool trajectory) at nice ${DEFAULT_WORKER_NICE}`);
    // Batch work gives way to the API on shared cores: every thread of a worker process (Temporal
    // core's, libuv's, V8's, not only the main one) runs at the default nice value.
    for (const child of [workflow, trajectory, cpu]) {
      // A thread may end between the listing and the read (tokio's idle blocking threads do): skipped.
      const stats = readdirSync(`/proc/${child.pid}/task`).map((tid) => {
        try {
          return readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8');
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH') return null;
          throw error;
        }
      });
      const nices = stats.filter((stat) => stat !== null).map((stat) => Number(stat.split(') ')[1].split(' ')[16]));
      expect(nices.length).toBeGreaterThan(5);
      expect(new Set(nices)).toEqual(new Set([DEFAULT_WORKER_NICE]));
    }

    for (const [pool, port] of Object.entries(ports)) {
      expect(await getJson(`http://127.0.0.1:${port}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
      // Each process names the queue it polls, so an operator sees which install it serves.
      expect(await getJson(`http://127.0.0.1:${port}/readyz`)).toEqual({
        status: 200,
        body: {
          status: 'ready',
          workers: { [pool]: 'RUNNING' },
          temporal: 'ok',
          postgres: 'ok',
          namespace: 'ok',
          temporal_namespace: process.env.TEMPORAL_NAMESPACE || 'default',
          task_queues: { [pool]: poolTaskQueue(pool as WorkerPoolName, taskQueue) },
        },
      });
    }

    const { jobId } = await startTrainingJob(h.client, h.repos, trajectoryJob({ config: { iterations: 1 } }), { taskQueue });
    const result = await h.client.workflow.getHandle(jobId).result();
    expect(result.status).toBe('completed');
    await expectEveryTrajectoryOnce(jobId, 1 * 2 * 8);

    const records = await activityRecords(jobId);
    const ranOn = (type: string) => new Set(records.filter((r) => r.type === type).map((r) => r.identity));
    expect(ranOn('runTrajectory')).toEqual(new Set([`flow-worker-${trajectory.pid}-trajectory`]));
    expect(ranOn('updatePolicy')).toEqual(new Set([`flow-worker-${trajectory.pid}-trajectory`]));
    for (const type of ['startJobRun', 'rewardGroup', 'computeGroupAdvantages', 'finishJob']) expect(ranOn(type)).toEqual(new Set([`flow-worker-${cpu.pid}-cpu`]));

    const exits = await Promise.all([workflow, trajectory, cpu].map((child) => stopProcess(child, 'SIGTERM')));
    expect(exits).toEqual([0, 0, 0]);
  });

  test('`flow worker --pool cpu` starts that pool and drains on SIGTERM; a pool that does not exist is a usage error', async () => {
    const taskQueue = `cli-${randomUUID()}`;
    const port = await freePort();
    const child = spawn(FLOW, ['worker', '--pool', 'cpu', '--health-port', String(port)], {
      env: { ...process.env, FLOW_TASK_QUEUE: taskQueue, FLOW_LLM_BASE_URL: h.model.url, FLOW_DB_POOL_SIZE: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(async () => output, (text) => text.includes('/readyz') || child.exitCode !== null, 60_000);
    expect(output).toContain(`polling task queue ${taskQueue}-cpu (pool cpu)`);
    expect(output).toContain(`ready: http://127.0.0.1:${port}/readyz`);
    expect((await getJson(`http://127.0.0.1:${port}/readyz`)).body).toMatchObject({ status: 'ready', workers: { cpu: 'RUNNING' } });
    expect(await stopProcess(child, 'SIGTERM')).toBe(0);

    let stderr = '';
    const code = await flowCli(['worker', '--pool', 'gpu'], { stderr: { write: (s: string) => ((stderr += s), true) } as never, stdout: { write: () => true } as never });
    expect(code).toBe(2);
    expect(stderr).toMatch(/--pool.*gpu.*Allowed choices are all, workflow, trajectory, cpu/);
  });
});

describe('stopping and killing workers', () => {
  test('SIGTERM while every model call hangs: the calls are given up, their connections closed, and the worker exits', async () => {
    const hung = await startSimulatedModelServer({ respond: () => ({ kind: 'hang' }) });
    try {
      const taskQueue = `hung-${randomUUID()}`;
      const child = await spawnTracked({ ...processOptions(taskQueue), llmBaseUrl: hung.url, env: IN_JEST });
      const { jobId } = await startTrainingJob(h.client, h.repos, jobRequest({ config: { iterations: 1, batch_size: 1, group_size: 4 } }), { taskQueue });
      await waitFor(async () => hung.hanging(), (open) => open >= 4, 60_000, 50);
      const stopped = Date.now();
      // Before: the worker stopped its pools and stayed alive, held by the hung calls' sockets.
      await stopProcess(child, 'SIGTERM');
      expect(Date.now() - stopped).toBeLessThan(40_000);
      expect(hung.hanging()).toBe(0);
      await h.client.workflow.getHandle(jobId).terminate('test over');
    } finally {
      await hung.close();
    }
  }, 120_000);

  test('SIGTERM under load: the worker stops taking work, finishes what is in flight, exits 0; another worker completes the jobs with every trajectory once and no activity that ran retried', async () => {
    // The server answers a draining worker's polls (the SDK relies on it only when advertised).
    const { namespaceInfo } = await h.client.connection.workflowService.describeNamespace({ namespace: h.client.options.namespace });
    expect(namespaceInfo?.capabilities?.workerPollCompleteOnShutdown).toBe(true);
    const taskQueue = `drain-${randomUUID()}`;
    const first = await spawnTracked({ ...processOptions(taskQueue), env: { FLOW_WORKER_LOG_LEVEL: 'DEBUG' } });
    const callsBefore = h.model.calls();
    const jobs = await Promise.all([1, 2, 3].map(() => startTrainingJob(h.client, h.repos, trajectoryJob(), { taskQueue })));
    // Under load: trajectories of the jobs are being generated.
    await waitFor(async () => h.model.calls() - callsBefore, (calls) => calls >= 30, 60_000);
    const sigtermAt = Date.now();
    const exitCode = await stopProcess(first, 'SIGTERM');
    const drainedInMs = Date.now() - sigtermAt;
    expect(exitCode).toBe(0);
    expect(drainedInMs).toBeLessThan(25_000); // the 20 s shutdown grace time, and then some
    expect(first.output()).not.toMatch(/flow worker: /);

    const second = await spawnTracked(processOptions(taskQueue));
    const results = await Promise.all(jobs.map(({ jobId }) => h.client.workflow.getHandle(jobId).result()));
    expect(results.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    for (const { jobId } of jobs) await expectEveryTrajectoryOnce(jobId, 2 * 2 * 8);

    const records = (await Promise.all(jobs.map(({ jobId }) => activityRecords(jobId)))).flat();
    // Nothing was abandoned or run twice: every activity ended completed on its first attempt...
    expect(records.filter((r) => r.outcome !== 'completed')).toEqual([]);
    // ...except a task the server handed to the draining worker just as it stopped polling: Temporal
    // delivers activity tasks at least once, and such a task, never run, is sent again after its
    // heartbeat or start-to-close timeout (made rare by the server's
    // frontend.enableCancelWorkerPollsOnShutdown). The draining worker logged every attempt it
    // started (FLOW_WORKER_LOG_LEVEL=DEBUG): a retried activity's earlier attempt is not among them.
    const startedOnFirst = new Set(
      first
        .stderr()
        .split('\n')
        .filter((line) => line.startsWith('{') && line.includes('"Activity started"'))
        .map((line) => JSON.parse(line) as { workflowRunId: string; activityId: string; attempt: number })
        .map((started) => `${started.workflowRunId}/${started.activityId}/${started.attempt}`),
    );
    expect(startedOnFirst.size).toBeGreaterThan(0);
    const retried = records.filter((r) => r.attempt !== 1);
    const ranBefore = retried.filter((r) => Array.from({ length: r.attempt - 1 }, (_, i) => `${r.runId}/${r.activityId}/${i + 1}`).some((key) => startedOnFirst.has(key)));
    expect({ ranBefore, retried: retried.filter((r) => r.attempt !== 2 || !r.lastFailureTimedOut) }).toEqual({ ranBefore: [], retried: [] });
    // ...including those in flight at SIGTERM, which the first worker finished while draining.
    const inFlight = records.filter((r) => r.identity.startsWith(`flow-worker-${first.pid}-`) && r.startedAt < sigtermAt && r.closedAt! > sigtermAt);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(records.some((r) => r.identity.startsWith(`flow-worker-${second.pid}-`))).toBe(true);
    expect(await stopProcess(second, 'SIGTERM')).toBe(0);
  });

  test('a SIGKILLed worker under restart-unless-stopped supervision is replaced, and the job completes with every trajectory once', async () => {
    const taskQueue = `kill-${randomUUID()}`;
    const supervisor = await superviseWorker(processOptions(taskQueue));
    supervisors.push(supervisor);
    const killed = supervisor.current();
    const { jobId } = await startTrainingJob(h.client, h.repos, trajectoryJob(), { taskQueue });
    const callsBefore = h.model.calls();
    await waitFor(async () => h.model.calls() - callsBefore, (calls) => calls >= 10, 60_000);
    killed.kill('SIGKILL');
    await supervisor.waitForRestarts(1);
    expect(supervisor.current().pid).not.toBe(killed.pid);
    expect(supervisor.exits()).toEqual([{ code: null, signal: 'SIGKILL' }]);

    const result = await h.client.workflow.getHandle(jobId).result();
    expect(result.status).toBe('completed');
    await expectEveryTrajectoryOnce(jobId, 2 * 2 * 8);
    const records = await activityRecords(jobId);
    // The replacement picked the work up (the killed worker's trajectories were retried on it).
    expect(records.some((r) => r.identity.startsWith(`flow-worker-${supervisor.current().pid}-`))).toBe(true);
    expect(supervisor.restarts()).toBe(1);
    expect(await supervisor.stop('SIGTERM')).toBe(0);
  });
});

describe('health, readiness and settings', () => {
  test('in process: /healthz answers, /readyz is ready while every pool runs and turns 503 as soon as the worker drains; the server is gone after', async () => {
    const taskQueue = `health-${randomUUID()}`;
    const worker = await startWorker(
      { ...process.env, ...IN_JEST, FLOW_TASK_QUEUE: taskQueue, FLOW_LLM_BASE_URL: h.model.url, FLOW_WORKER_HEALTH_PORT: '0', FLOW_WORKER_HEALTH_HOST: '127.0.0.1', FLOW_DB_POOL_SIZE: '2' },
      () => undefined,
    );
    const url = worker.health.url;
    expect(worker.pools).toEqual(['workflow', 'trajectory', 'cpu']);
    expect(await getJson(`${url}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await getJson(`${url}/readyz`)).toEqual({
      status: 200,
      body: {
        status: 'ready',
        workers: { workflow: 'RUNNING', trajectory: 'RUNNING', cpu: 'RUNNING' },
        temporal: 'ok',
        postgres: 'ok',
        namespace: 'ok',
        temporal_namespace: process.env.TEMPORAL_NAMESPACE || 'default',
        task_queues: { workflow: taskQueue, trajectory: `${taskQueue}-trajectories`, cpu: `${taskQueue}-cpu` },
      },
    });
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/readyz`, { method: 'POST' })).status).toBe(405);

    // Work in flight with slow model calls, so the drain lasts while /readyz is asked.
    const { jobId } = await startTrainingJob(h.client, h.repos, trajectoryJob({ config: { iterations: 1 } }), { taskQueue });
    const callsBefore = h.model.calls();
    await waitFor(async () => h.model.calls() - callsBefore, (calls) => calls >= 4, 60_000);
    h.model.setLatency(1500);
    try {
      worker.worker.shutdown();
      const draining = await getJson(`${url}/readyz`);
      expect(draining.status).toBe(503);
      expect(draining.body).toMatchObject({ status: 'not_ready', temporal: 'ok', postgres: 'ok' });
      expect(Object.values(draining.body.workers as object)).not.toContain('RUNNING');
      expect(await getJson(`${url}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
      await worker.finished;
    } finally {
      h.model.setLatency(150);
    }
    await h.client.workflow.getHandle(jobId).terminate('the worker under test is gone');
    expect(worker.worker.getState()).toBe('STOPPED');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  test('readiness names a dependency that is down or does not answer in time', async () => {
    const result = await readiness(
      {
        workerStates: () => ({ workflow: 'RUNNING' }),
        dependencies: { temporal: async () => undefined, postgres: () => Promise.reject(new Error('connection refused')), slow: () => new Promise(() => undefined) },
      },
      50,
    );
    expect(result).toEqual({
      ready: false,
      body: { status: 'not_ready', workers: { workflow: 'RUNNING' }, temporal: 'ok', postgres: 'down: connection refused', slow: 'down: no answer within 50 ms' },
    });
  });

  test('`npm run worker` with a bad pool setting exits 1 with one readable line', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '../../workers/main.ts')], {
      env: { ...process.env, DATABASE_URL: requireEnv('DATABASE_URL'), TEMPORAL_ADDRESS: '127.0.0.1:1', FLOW_WORKER_POOL: 'gpu' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stdout, stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: 'flow worker: FLOW_WORKER_POOL: unknown pool "gpu"; use all, workflow, trajectory, cpu or a comma-separated list of them\n',
    });
  });

  test('bad pool settings are refused naming the variable, before anything connects', async () => {
    const env = { DATABASE_URL: requireEnv('DATABASE_URL'), TEMPORAL_ADDRESS: '127.0.0.1:1' };
    await expect(startWorker({ ...env, FLOW_WORKER_POOL: 'gpu' })).rejects.toThrow('FLOW_WORKER_POOL: unknown pool "gpu"; use all, workflow, trajectory, cpu or a comma-separated list of them');
    await expect(startWorker({ ...env, FLOW_CPU_MAX_CONCURRENT_ACTIVITIES: '0' })).rejects.toThrow('FLOW_CPU_MAX_CONCURRENT_ACTIVITIES must be an integer from 1 to 100000, got "0"');
    await expect(startWorker({ ...env, FLOW_WORKFLOW_MAX_CACHED: '-1' })).rejects.toThrow('FLOW_WORKFLOW_MAX_CACHED must be an integer from 0 to 1000000 (0: no sticky cache), got "-1"');
    await expect(startWorker({ ...env, FLOW_WORKER_HEALTH_PORT: '70000' })).rejects.toThrow('FLOW_WORKER_HEALTH_PORT must be an integer from 0 to 65535 (a port; 0: any free port), got "70000"');
    await expect(startWorker({ ...env, FLOW_WORKER_NICE: '20' })).rejects.toThrow('FLOW_WORKER_NICE must be an integer from 0 to 19 (a nice value), got "20"');
    await expect(startWorker({ ...env, FLOW_WORKER_NICE: 'low' })).rejects.toThrow('FLOW_WORKER_NICE must be an integer from 0 to 19 (a nice value), got "low"');

    expect(parsePoolSelection(undefined)).toEqual(['workflow', 'trajectory', 'cpu']);
    expect(parsePoolSelection(' cpu , workflow ')).toEqual(['workflow', 'cpu']);
    expect(parsePoolSelection('trajectory,all')).toEqual(['workflow', 'trajectory', 'cpu']);
    expect(poolSettingsFromEnv({ FLOW_TRAJECTORY_MAX_CONCURRENT_ACTIVITIES: '500', FLOW_WORKFLOW_MAX_CACHED: '0', FLOW_CPU_MAX_CONCURRENT_ACTIVITIES: ' ' })).toEqual({
      workflow: { ...DEFAULT_POOL_SETTINGS.workflow, maxCachedWorkflows: 0 },
      trajectory: { maxConcurrentActivityTaskExecutions: 500 },
      cpu: DEFAULT_POOL_SETTINGS.cpu,
    });
  });

  test('Temporal out of reach: startWorker fails with the reason and closes its health server again', async () => {
    const port = await freePort();
    await expect(
      startWorker({ ...process.env, ...IN_JEST, TEMPORAL_ADDRESS: '127.0.0.1:1', FLOW_LLM_BASE_URL: h.model.url, FLOW_WORKER_HEALTH_PORT: String(port), FLOW_DB_POOL_SIZE: '1' }, () => undefined),
    ).rejects.toThrow(/127\.0\.0\.1:1|connect|transport/i);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  test('worker groups: a namespace that does not exist is refused naming it; a group runs once; work left unfinished when the group is shut down is reported', async () => {
    const connection = await NativeConnection.connect({ address: requireEnv('TEMPORAL_ADDRESS') });
    try {
      const options = {
        connection,
        taskQueue: `groups-${randomUUID()}`,
        prisma: h.prisma,
        llm: { baseURL: h.model.url },
        workflowBundle: { codePath: requireEnv('FLOW_TEST_WORKFLOW_BUNDLE') },
      };
      const namespace = `no-such-namespace-${randomUUID()}`;
      await expect(createTrainingWorker({ ...options, namespace })).rejects.toThrow(`namespace "${namespace}" cannot be used:`);
      expect(() => new WorkerGroup([])).toThrow('a worker group needs at least one pool');

      const group = await createTrainingWorker({ ...options, pools: ['cpu', 'trajectory'] });
      expect(group.getState()).toBe('INITIALIZED');
      expect(group.taskQueues).toEqual([`${options.taskQueue}-trajectories`, `${options.taskQueue}-cpu`]);
      const unfinished = group.runUntil(() => new Promise(() => undefined));
      await waitFor(async () => group.getState(), (state) => state === 'RUNNING', 10_000);
      expect(() => group.run()).toThrow('this worker group is already running (a group runs once)');
      group.shutdown();
      await expect(unfinished).rejects.toThrow('the worker group stopped before the work it was running for finished');
      expect(group.getState()).toBe('STOPPED');
    } finally {
      await connection.close();
    }
  });

  test('a health port in use is refused naming FLOW_WORKER_HEALTH_PORT, and nothing is left running', async () => {
    const port = await freePort();
    const taskQueue = `port-${randomUUID()}`;
    const holder = await startWorker({ ...process.env, ...IN_JEST, FLOW_TASK_QUEUE: taskQueue, FLOW_LLM_BASE_URL: h.model.url, FLOW_WORKER_HEALTH_PORT: String(port), FLOW_DB_POOL_SIZE: '2' }, () => undefined);
    try {
      await expect(
        startWorker({ ...process.env, ...IN_JEST, FLOW_TASK_QUEUE: taskQueue, FLOW_LLM_BASE_URL: h.model.url, FLOW_WORKER_HEALTH_PORT: String(port), FLOW_DB_POOL_SIZE: '2' }, () => undefined),
      ).rejects.toThrow(`FLOW_WORKER_HEALTH_PORT ${port} is in use`);
    } finally {
      await holder.stop();
    }
  });
});
