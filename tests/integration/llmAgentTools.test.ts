/**
 * The tool-using LLM agent with real tools, calling a real local OpenAI-compatible server
 * (workers/dev/simulatedModelServer.ts) through portkey-ai: directly, and through a local Portkey
 * gateway (@portkey-ai/gateway, started here as its own process and pointed at the server as a
 * custom OpenAI-compatible host). The calculator answers, the HTTP fetch tool reaches a local
 * server on the allow-list and is refused one off it (which never sees a request). Each step
 * records tokens, cost and the model's log-probs. Last, a training job in the `tools`
 * environment runs end to end on Temporal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { LlmAgent } from '../../activities/agents/llmAgent';
import { ChatClient, type LlmSettings } from '../../adapters/llm/chatClient';
import { ToolsEnvironment } from '../../activities/tools/toolsEnvironment';
import { LlmJudge } from '../../activities/llm/judge';
import { RewardFailure } from '../../training/rewards';
import { startTrainingJob } from '../../api/trainingJobs';
import type { Task } from '../../training/task';
import { TrajectoryStepSchema, type TrajectoryStep } from '../../training/trajectory';
import { startSimulatedModelServer, type SimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { jobRequest, startHarness } from '../support/harness';
import { stopProcess } from '../support/workerProcess';

const ROOT = path.resolve(__dirname, '../..');
const GATEWAY_ENTRY = path.join(ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js');
/** Tasks whose text holds this marker get a scripted answer with known log-probs. */
const LOGPROB_MARKER = '#logprobs';

let model: SimulatedModelServer;
let allowed: http.Server;
let blocked: http.Server;
let allowedHost: string;
let blockedHost: string;
let blockedRequests = 0;

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  model = await startSimulatedModelServer({
    respond: (body) => {
      const user = body.messages.find((m) => m.role === 'user')?.content ?? '';
      if (!user.includes(LOGPROB_MARKER)) return undefined;
      const answered = body.messages.some((m) => m.role === 'tool');
      return answered
        ? { kind: 'content', content: '4', logprobs: [-0.5, -0.25] }
        : { kind: 'tool_call', name: 'calculator', arguments: { expression: '2 + 2' }, logprobs: [-0.125, -0.125, -0.25] };
    },
  });
  allowed = http.createServer((req, res) => {
    if (req.url === '/answer') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('forty-two');
    res.writeHead(404).end('no such page');
  });
  blocked = http.createServer((_req, res) => {
    blockedRequests++;
    res.end('the secret');
  });
  allowedHost = await listen(allowed);
  blockedHost = await listen(blocked);
});
afterAll(async () => {
  allowed.closeAllConnections();
  blocked.closeAllConnections();
  await new Promise((resolve) => allowed.close(resolve));
  await new Promise((resolve) => blocked.close(resolve));
  await model.close();
});

const tasks = (): Record<'calc' | 'fetch' | 'offList' | 'logprobs', Task> => ({
  calc: { id: 'calc', prompt: 'What is `(12 + 7) * 3 / 4`?', expected_answer: '14.25', expected_tool: 'calculator' },
  fetch: { id: 'fetch', prompt: `Fetch http://${allowedHost}/answer and report what it says.`, expected_answer: 'Forty-Two', expected_tool: 'http_fetch' },
  offList: { id: 'off', prompt: `Fetch http://${blockedHost}/secret and report what it says.`, expected_answer: 'the secret', expected_tool: 'http_fetch' },
  logprobs: { id: 'lp', prompt: `What is two plus two? ${LOGPROB_MARKER}`, expected_answer: '4', expected_tool: 'calculator' },
});

async function runAgent(settings: LlmSettings, task: Task) {
  const agent = new LlmAgent(new ChatClient(settings), new ToolsEnvironment({ allow: [allowedHost] }));
  const steps: TrajectoryStep[] = [];
  const result = await agent.run({
    task,
    systemPrompt: 'You solve tasks with tools.',
    model: 'flow-sim-1',
    maxSteps: 4,
    maxTokens: 256,
    seed: 1,
    signal: AbortSignal.timeout(30_000),
    onStep: (step) => steps.push(step),
  });
  return { result, steps: TrajectoryStepSchema.array().parse(steps) };
}

/** The same assertions whichever way the calls travel. */
function describeAgentWithTools(name: string, settings: () => LlmSettings) {
  describe(name, () => {
    test('calculator: the model calls it, the answer is judged against expected_answer; tokens, cost and log-probs per step', async () => {
      const { result, steps } = await runAgent(settings(), tasks().calc);
      expect(result).toEqual({ finalAnswer: '14.25', success: true, verified: false, error: null });
      expect(steps.map((s) => s.action.type)).toEqual(['tool_call', 'final_answer']);
      expect(steps[0].tool_calls).toEqual([{ id: expect.any(String), name: 'calculator', arguments: { expression: '(12 + 7) * 3 / 4' } }]);
      expect(steps[0].result).toBe('14.25');
      for (const step of steps) {
        expect(step.usage.prompt_tokens).toBeGreaterThan(0);
        expect(step.usage.completion_tokens).toBeGreaterThan(0);
        expect(step.cost_usd).toBeGreaterThan(0);
        expect(step.logprob).not.toBeNull();
      }
    });

    test('log-probs: the sum of the token log-probs the model returned, per step', async () => {
      const { result, steps } = await runAgent(settings(), tasks().logprobs);
      expect(result.success).toBe(true);
      expect(steps.map((s) => s.logprob)).toEqual([-0.5, -0.75]);
    });

    test('http_fetch: an allow-listed local server answers; the answer matches case-insensitively', async () => {
      const { result, steps } = await runAgent(settings(), tasks().fetch);
      expect(result).toMatchObject({ finalAnswer: 'forty-two', success: true });
      expect(steps[0].tool_calls[0]).toMatchObject({ name: 'http_fetch', arguments: { url: `http://${allowedHost}/answer` } });
      expect(steps[0]).toMatchObject({ result: 'HTTP 200\nforty-two', error: null });
    });

    test('http_fetch: a server off the allow-list is refused with a tool error and never reached', async () => {
      const before = blockedRequests;
      const { result, steps } = await runAgent(settings(), tasks().offList);
      expect(result.success).toBe(false);
      expect(steps[0].error).toBe(`http_fetch: host ${blockedHost} is not on the fetch allow-list (${allowedHost}; set FLOW_HTTP_FETCH_ALLOW)`);
      expect(blockedRequests).toBe(before);
    });
  });
}

describeAgentWithTools('through portkey-ai to the local OpenAI-compatible server', () => ({ baseURL: model.url }));

describe('through a local Portkey gateway', () => {
  let gateway: ChildProcess | null = null;
  let gatewayUrl = '';

  beforeAll(async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = http.createServer().listen(0, '127.0.0.1', () => {
        const free = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(free));
      });
    });
    gateway = spawn(process.execPath, [GATEWAY_ENTRY, `--port=${port}`, '--headless'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    gateway.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    gateway.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    gatewayUrl = `http://127.0.0.1:${port}/v1`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (gateway.exitCode !== null) throw new Error(`the Portkey gateway exited with ${gateway.exitCode}:\n${output}`);
      const up = await fetch(`http://127.0.0.1:${port}/`).then(
        (response) => response.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline) throw new Error(`the Portkey gateway did not answer within 30 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
  afterAll(async () => {
    if (gateway) await stopProcess(gateway);
  });

  test('calls go through the gateway process to the local server', async () => {
    const before = model.calls();
    const { result } = await runAgent({ baseURL: gatewayUrl, customHost: model.url }, tasks().calc);
    expect(result.success).toBe(true);
    expect(model.calls()).toBe(before + 2);
  });

  describeAgentWithTools('the tool-using agent', () => ({ baseURL: gatewayUrl, customHost: model.url }));

  test('the LLM judge and the group judge (RULER) go through the gateway too', async () => {
    const judge = new LlmJudge(new ChatClient({ baseURL: gatewayUrl, customHost: model.url }), { model: 'flow-sim-1', max_tokens: 256, seed: 1 });
    const task = { prompt: 'What is 6 * 7?', expected_answer: '42' };
    const answered = (finalAnswer: string) => ({
      success: finalAnswer === '42',
      verified: false,
      error: null,
      final_answer: finalAnswer,
      task,
      steps: [] as TrajectoryStep[],
    });
    const before = model.calls();
    const right = await judge.one(answered('42'));
    const wrong = await judge.one(answered('41'));
    expect(right).not.toBeInstanceOf(RewardFailure);
    expect(wrong).not.toBeInstanceOf(RewardFailure);
    expect((right as { score: number }).score).toBeGreaterThan((wrong as { score: number }).score);
    const group = await judge.group([answered('41'), answered('42')]);
    expect(group.map((verdict) => (verdict as { score: number }).score)).toEqual([expect.any(Number), expect.any(Number)]);
    expect((group[1] as { score: number }).score).toBeGreaterThan((group[0] as { score: number }).score);
    // Three judge calls reached the local server, all through the gateway process.
    expect(model.calls()).toBe(before + 3);
  });
});

test('a training job in the tools environment runs the LLM agent with the real tools on Temporal', async () => {
  process.env.FLOW_HTTP_FETCH_ALLOW = allowedHost;
  const h = await startHarness();
  try {
    const { calc, fetch: fetchTask, offList } = tasks();
    const more: Task[] = [
      { id: 'calc-2', prompt: 'Compute 2^10 - 24 for me.', expected_answer: '1000', expected_tool: 'calculator' },
      { id: 'calc-3', prompt: 'What is `sqrt(81) + 1`?', expected_answer: '10', expected_tool: 'calculator' },
    ];
    const request = jobRequest({
      environment: 'tools',
      training_queries: [calc, fetchTask, offList, ...more],
      evaluation_queries: more,
      config: { iterations: 1, batch_size: 5, group_size: 2, checkpoint_interval: 10, eval_interval: 100, eval_samples: 2 },
    });
    const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
    const result = await h.run(h.client.workflow.getHandle(jobId).result());
    expect(result.status).toBe('completed');
    const rows = (await h.repos.trajectories.listForJob(jobId)).filter((row) => row.iteration === 1);
    const byQuery = (id: string) => rows.filter((row) => row.queryId === id);
    // A group of 2 per query (else the loops below could check nothing).
    for (const id of ['calc', 'fetch', 'off', 'calc-2', 'calc-3']) expect({ id, rows: byQuery(id).length }).toEqual({ id, rows: 2 });
    for (const row of [...byQuery('calc'), ...byQuery('fetch'), ...byQuery('calc-2'), ...byQuery('calc-3')]) {
      expect(row).toMatchObject({ success: true, error: null });
      expect(row.costUsd).toBeGreaterThan(0);
    }
    for (const row of byQuery('off')) {
      expect(row.success).toBe(false);
      const steps = TrajectoryStepSchema.array().parse(row.steps);
      expect(steps[0].error).toContain('is not on the fetch allow-list');
    }
  } finally {
    delete process.env.FLOW_HTTP_FETCH_ALLOW;
    await h.close();
  }
});
