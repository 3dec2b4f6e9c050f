/**
 * The HTTP agent adapter against real local HTTP servers: the contract both ways, retries with
 * backoff for 5xx, timeouts and refused connections, and an immediate failure (with the reason)
 * for invalid JSON, a response off the contract, 4xx and oversized answers. Also the runtime
 * choice per trajectory (AgentFactory).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentFactory } from '../../activities/agents/agentFactory';
import type { AgentRunRequest } from '../../activities/agents/agentRuntime';
import { HttpAgent, lessonsOf, type HttpAgentSpec } from '../../activities/agents/httpAgent';
import { HttpAgentRequestSchema, type HttpAgentRequest } from '../../activities/agents/httpAgentContract';
import { LlmAgent } from '../../activities/agents/llmAgent';
import { ChatClient } from '../../adapters/llm/chatClient';
import { AgentSpecSchema } from '../../training/task';
import type { TrajectoryStep } from '../../training/trajectory';
import { initialPolicy, renderSystemPrompt } from '../../training/policy';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { faultFor, playSimulatedAgent, startHttpAgentService } from '../support/httpAgentService';

type Handler = (request: HttpAgentRequest, res: http.ServerResponse, raw: string) => void;

let server: http.Server;
let url: string;
let handler: Handler;
const seen: HttpAgentRequest[] = [];
const headers: http.IncomingHttpHeaders[] = [];
const hanging = new Set<http.ServerResponse>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const request = HttpAgentRequestSchema.parse(JSON.parse(raw));
      seen.push(request);
      headers.push(req.headers);
      handler(request, res, raw);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/run`;
});
afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  seen.length = 0;
  headers.length = 0;
});

const task = simulatedTaskSet({ queriesPerFamily: 1, seed: 5, families: ['arithmetic'] })[0];
const policy = { ...initialPolicy('Be careful.'), lessons: [{ id: 'l1', text: 'For arithmetic tasks, call calculator first.', weight: 0.8 }, { id: 'l2', text: 'Say please.', weight: 0.25 }] };
const trajectory = { job_id: 'job-1', run: 1, iteration: 2, query_index: 3, sample_index: 4 };
/** The agent services here listen on loopback, which the agent URL policy refuses unless listed. */
const LOCAL_SERVICES = ['127.0.0.1:*'];
const spec = (overrides: Partial<HttpAgentSpec> = {}): HttpAgentSpec => ({ type: 'http', url, timeout_seconds: 2, max_attempts: 3, expose_expected: false, ...overrides });
const agent = (overrides: Partial<HttpAgentSpec> = {}) => new HttpAgent(spec(overrides), { environment: 'simulated', allow: LOCAL_SERVICES, trajectory, baseBackoffMs: 10 });

function runRequest(signal: AbortSignal = new AbortController().signal) {
  const steps: TrajectoryStep[] = [];
  const request: AgentRunRequest = {
    task,
    systemPrompt: renderSystemPrompt(policy),
    model: 'flow-sim-1',
    maxSteps: 6,
    maxTokens: 256,
    seed: 7,
    signal,
    onStep: (step) => steps.push(step),
  };
  return { request, steps };
}
const reply = (status: number, body: unknown) => (_req: HttpAgentRequest, res: http.ServerResponse) =>
  void res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));

test('posts the task, the policy (prompt and lessons) and the trajectory ids; records the returned steps', async () => {
  handler = reply(200, {
    steps: [
      { state: task.prompt, action: { type: 'tool_call', content: null }, tool_calls: [{ name: 'calculator', arguments: { query: 'x' } }], result: '42', usage: { prompt_tokens: 10, completion_tokens: 2 }, cost_usd: 0.001, logprob: -0.5, started_at: '2026-01-01T00:00:00.000Z', ended_at: '2026-01-01T00:00:01.000Z' },
      { state: '42', action: { type: 'final_answer', content: '42' } },
    ],
    final_answer: '42',
    success: true,
    verified: true,
  });
  const { request, steps } = runRequest();
  expect(await agent().run(request)).toEqual({ finalAnswer: '42', success: true, verified: true, error: null });
  expect(seen).toHaveLength(1);
  expect(seen[0]).toMatchObject({
    protocol: 'flow-agent/2',
    trajectory: { ...trajectory, attempt: 1 },
    task: { id: task.id, prompt: task.prompt, family: task.family },
    policy: { system_prompt: renderSystemPrompt(policy), lessons: [{ weight: 0.8, text: 'For arithmetic tasks, call calculator first.' }, { weight: 0.25, text: 'Say please.' }] },
    environment: 'simulated',
    model: 'flow-sim-1',
    max_steps: 6,
    max_tokens: 256,
    seed: 7,
    timeout_ms: 2000,
  });
  expect(headers[0]['idempotency-key']).toBe('job-1/1/2/3/4');
  expect(steps).toHaveLength(2);
  expect(steps[0]).toEqual({
    index: 0,
    state: task.prompt,
    action: { type: 'tool_call', content: null },
    tool_calls: [{ id: 'call_0_0', name: 'calculator', arguments: { query: 'x' } }],
    result: '42',
    started_at: '2026-01-01T00:00:00.000Z',
    ended_at: '2026-01-01T00:00:01.000Z',
    usage: { prompt_tokens: 10, completion_tokens: 2 },
    cost_usd: 0.001,
    logprob: -0.5,
    error: null,
  });
  // Defaults for what a service left out.
  expect(steps[1]).toMatchObject({ index: 1, tool_calls: [], result: null, usage: { prompt_tokens: 0, completion_tokens: 0 }, cost_usd: 0, logprob: null, error: null });
});

test('no answer key by default: the request carries neither expected_answer nor expected_tool; expose_expected: true sends both', async () => {
  // A task that has both, so their absence is the adapter's doing and not the task's.
  const keyed = { ...task, expected_tool: 'calculator' };
  expect(keyed.expected_answer).toBeTruthy();
  handler = reply(200, { steps: [], final_answer: 'x', success: false });
  const { request } = runRequest();
  await agent().run({ ...request, task: keyed });
  const raw = JSON.stringify(seen[0]);
  expect(raw).not.toContain('expected_answer');
  expect(raw).not.toContain('expected_tool');
  expect(raw).not.toContain(JSON.stringify(keyed.expected_answer));
  expect(seen[0].task).toEqual({ id: keyed.id, prompt: keyed.prompt, family: keyed.family });
  await agent({ expose_expected: true }).run({ ...request, task: keyed });
  expect(seen[1].task).toEqual(keyed);
  // The job's schema defaults to no answer key.
  expect(AgentSpecSchema.parse({ type: 'http', url })).toMatchObject({ expose_expected: false });
});

test('without a verdict from the service, Flow compares the answer with expected_answer; a reported error fails the run', async () => {
  handler = reply(200, { steps: [], final_answer: ` ${task.expected_answer}. ` });
  expect((await agent().run(runRequest().request)).success).toBe(true);
  handler = reply(200, { steps: [], final_answer: 'nope' });
  expect((await agent().run(runRequest().request)).success).toBe(false);
  handler = reply(200, { steps: [], final_answer: task.expected_answer, success: true, error: 'tool crashed' });
  expect(await agent().run(runRequest().request)).toEqual({ finalAnswer: task.expected_answer, success: false, verified: false, error: 'tool crashed' });
});

test('5xx answers are retried with backoff; a later success counts', async () => {
  let calls = 0;
  handler = (request, res) => {
    calls++;
    if (calls <= 2) return void res.writeHead(503).end('busy');
    res.writeHead(200).end(JSON.stringify({ steps: [], final_answer: 'ok', success: true }));
  };
  expect(await agent().run(runRequest().request)).toMatchObject({ finalAnswer: 'ok', success: true });
  expect(seen.map((r) => r.trajectory.attempt)).toEqual([1, 2, 3]);
});

test('a service that keeps failing ends the run with every attempt and its reason', async () => {
  handler = reply(500, { error: 'internal' });
  await expect(agent().run(runRequest().request)).rejects.toThrow(
    `http agent ${url} gave up after 3 attempts: attempt 1: HTTP 500: {"error":"internal"}; attempt 2: HTTP 500: {"error":"internal"}; attempt 3: HTTP 500: {"error":"internal"}`,
  );
  expect(seen).toHaveLength(3);
});

test('a slow service times out per attempt (timeout_seconds) and is retried', async () => {
  handler = (_request, res) => void hanging.add(res);
  const started = Date.now();
  await expect(agent({ timeout_seconds: 0.2, max_attempts: 2 }).run(runRequest().request)).rejects.toThrow(
    'gave up after 2 attempts: attempt 1: no complete answer within timeout_seconds=0.2; attempt 2: no complete answer within timeout_seconds=0.2',
  );
  // Two 0.2 s attempts, not the trajectory's minute (loose: the machine may be busy).
  expect(Date.now() - started).toBeLessThan(10_000);
  expect(seen).toHaveLength(2);
});

test.each([
  ['invalid JSON', 200, '{"steps": [', /not retried: attempt 1: the response is not valid JSON \(.+\): \{"steps": \[/],
  ['a response off the contract', 200, { answer: 42 }, /not retried: attempt 1: the response does not match the flow-agent\/2 contract: steps: .+; final_answer: /],
  ['a bad step', 200, { steps: [{ state: 's', action: { type: 'jump', content: null } }], final_answer: null }, /steps\.0\.action\.type: /],
  ['a 4xx', 400, 'bad request', /not retried: attempt 1: HTTP 400: bad request/],
  ['an empty 404', 404, '', /HTTP 404: \(empty body\)/],
  ['too many steps', 200, { steps: Array.from({ length: 7 }, () => ({ state: 's', action: { type: 'tool_call', content: null } })), final_answer: null }, /the response has 7 steps, more than max_steps=6/],
])('%s fails the run at once, with the reason', async (_name, status, body, reason) => {
  handler = reply(status, body);
  await expect(agent().run(runRequest().request)).rejects.toThrow(reason);
  expect(seen).toHaveLength(1);
});

test('a long error body is cut in the reason; an oversized response is refused', async () => {
  handler = reply(400, 'e'.repeat(1000));
  await expect(agent().run(runRequest().request)).rejects.toThrow(new RegExp(`HTTP 400: e{200}…$`));
  handler = reply(200, { steps: [], final_answer: 'x'.repeat(5000) });
  const small = new HttpAgent(spec(), { environment: 'simulated', allow: LOCAL_SERVICES, trajectory, maxResponseBytes: 1000 });
  await expect(small.run(runRequest().request)).rejects.toThrow('not retried: attempt 1: response larger than 1000 bytes');
});

test('a refused connection is retried, then reported', async () => {
  const closed = await new Promise<number>((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  await expect(agent({ url: `http://127.0.0.1:${closed}/run`, max_attempts: 2 }).run(runRequest().request)).rejects.toThrow(
    'gave up after 2 attempts: attempt 1: connection failed: ECONNREFUSED; attempt 2: connection failed: ECONNREFUSED',
  );
});

test('the trajectory signal stops the run at once (cancellation or the trajectory timeout), also between retries', async () => {
  handler = (_request, res) => void hanging.add(res);
  const controller = new AbortController();
  const pending = agent({ timeout_seconds: 60 }).run(runRequest(controller.signal).request);
  setTimeout(() => controller.abort(new Error('job cancelled')), 100);
  await expect(pending).rejects.toThrow('job cancelled');

  handler = reply(500, 'down');
  const backingOff = new AbortController();
  const slowBackoff = new HttpAgent(spec(), { environment: 'simulated', allow: LOCAL_SERVICES, trajectory, baseBackoffMs: 60_000 });
  const waiting = slowBackoff.run(runRequest(backingOff.signal).request);
  setTimeout(() => backingOff.abort(new Error('trajectory timed out')), 100);
  await expect(waiting).rejects.toThrow('trajectory timed out');
});

test('heartbeats while waiting on a slow service', async () => {
  handler = (request, res) => void setTimeout(() => reply(200, { steps: [], final_answer: 'x', success: false })(request, res), 300);
  let beats = 0;
  const { request } = runRequest();
  await new HttpAgent(spec(), { environment: 'simulated', allow: LOCAL_SERVICES, trajectory, heartbeatIntervalMs: 20 }).run({ ...request, heartbeat: () => beats++ });
  expect(beats).toBeGreaterThanOrEqual(2);
});

test('lessonsOf reads the lessons of a rendered policy, and none from a bare prompt', () => {
  expect(lessonsOf(renderSystemPrompt(policy))).toEqual([
    { weight: 0.8, text: 'For arithmetic tasks, call calculator first.' },
    { weight: 0.25, text: 'Say please.' },
  ]);
  expect(lessonsOf('Just a prompt\n- [0.50] not a lesson without the header')).toEqual([]);
});

describe('the test agent service (tests/support/httpAgentService.ts) in process', () => {
  test('plays the simulated agent: lessons steer its first tool, the verdict is the environment judge', async () => {
    const service = await startHttpAgentService({ env: {} });
    try {
      const { request, steps } = runRequest();
      const result = await new HttpAgent(spec({ url: service.url, expose_expected: true }), { environment: 'simulated', allow: LOCAL_SERVICES, trajectory }).run(request);
      expect(steps.length).toBeGreaterThanOrEqual(2);
      expect(steps[steps.length - 1].action.type).toBe('final_answer');
      expect(result.finalAnswer).toBe(steps[steps.length - 1].action.content);
      for (const step of steps) {
        expect(step.cost_usd).toBeGreaterThan(0);
        expect(step.logprob).not.toBeNull();
      }
      const stats = (await (await fetch(service.url.replace('/agent', '/stats'))).json()) as { requests: number };
      expect(stats.requests).toBe(1);
      const tools = await new HttpAgent(spec({ url: service.url }), { environment: 'tools', allow: LOCAL_SERVICES, trajectory }).run(runRequest().request);
      expect(tools).toMatchObject({ success: false, error: 'this service plays the simulated environment only, not "tools"' });
    } finally {
      await service.close();
    }
  });

  test('fault markers: all samples or odd ones; the environment variable; unknown kinds are named', () => {
    const base = { ...seenShape(), task: { ...task, prompt: `${task.prompt} {fault:500:odd}` } };
    expect(faultFor({ ...base, trajectory: { ...base.trajectory, sample_index: 1 } }, undefined)).toBe('500');
    expect(faultFor({ ...base, trajectory: { ...base.trajectory, sample_index: 2 } }, undefined)).toBeNull();
    expect(faultFor({ ...base, task }, 'slow')).toBe('slow');
    expect(() => faultFor({ ...base, task }, 'explode')).toThrow('unknown fault kind "explode"');
    // The marker is not part of what the agent reads.
    const played = playSimulatedAgent({ ...base, max_steps: 1 });
    expect(JSON.stringify(played)).not.toContain('{fault:');
    expect(played).toMatchObject({ final_answer: null, error: 'ran out of steps (max_steps=1)' });
    // It grades itself from the answer key, so it refuses a request without one.
    const { expected_answer: _dropped, ...keyless } = task;
    expect(playSimulatedAgent({ ...base, task: keyless })).toMatchObject({ steps: [], final_answer: null, error: expect.stringContaining('agent.expose_expected: true') });
  });
});

function seenShape(): HttpAgentRequest {
  return {
    protocol: 'flow-agent/2',
    trajectory: { ...trajectory, attempt: 1 },
    task,
    policy: { system_prompt: renderSystemPrompt(policy), lessons: lessonsOf(renderSystemPrompt(policy)) },
    environment: 'simulated',
    model: 'm',
    max_steps: 6,
    max_tokens: 100,
    seed: 1,
    timeout_ms: 1000,
  };
}

test('AgentFactory: the LLM agent by default and for {type: llm}, the HTTP adapter for {type: http}', () => {
  const factory = new AgentFactory({}, { FLOW_HTTP_FETCH_ALLOW: 'example.com' });
  const chat = new ChatClient({ baseURL: 'http://127.0.0.1:9/v1' });
  expect(factory.runtimeFor(chat, trajectory)).toBeInstanceOf(LlmAgent);
  expect(factory.runtimeFor(chat, { ...trajectory, environment: 'tools', agent: { type: 'llm' } })).toBeInstanceOf(LlmAgent);
  expect(factory.runtimeFor(chat, { ...trajectory, agent: spec() })).toBeInstanceOf(HttpAgent);
  expect(() => new AgentFactory({}, { FLOW_HTTP_FETCH_ALLOW: 'http://x' })).toThrow('FLOW_HTTP_FETCH_ALLOW');
});

test('FLOW_HTTP_AGENT_ALLOW: a worker calls agent services only on listed hosts; a job naming another fails its trajectories, unsent', async () => {
  handler = reply(200, { steps: [], final_answer: 'x', success: true });
  const host = new URL(url).host;
  const listed = new AgentFactory({}, { FLOW_HTTP_AGENT_ALLOW: host }).runtimeFor(new ChatClient({ baseURL: 'http://127.0.0.1:9/v1' }), { ...trajectory, agent: spec() });
  expect((await listed.run(runRequest().request)).success).toBe(true);
  const elsewhere = new AgentFactory({}, { FLOW_HTTP_AGENT_ALLOW: 'agents.internal:9000' }).runtimeFor(new ChatClient({ baseURL: 'http://127.0.0.1:9/v1' }), { ...trajectory, agent: spec() });
  const sent = seen.length;
  await expect(elsewhere.run(runRequest().request)).rejects.toThrow(`http agent ${url} refused: host ${host} is not on the agent allow-list (agents.internal:9000; set FLOW_HTTP_AGENT_ALLOW)`);
  expect(seen.length).toBe(sent);
  expect(() => new AgentFactory({}, { FLOW_HTTP_AGENT_ALLOW: 'http://bad' })).toThrow('FLOW_HTTP_AGENT_ALLOW: "http://bad" is not a host or host:port');
});
