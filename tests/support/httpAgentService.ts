/**
 * An external agent service for tests, run as its own process:
 *   node --import tsx tests/support/httpAgentService.ts     (prints `listening <url>`)
 * It speaks the flow-agent/2 contract (activities/agents/httpAgentContract.ts) and plays the
 * simulated environment's agent with Flow's own simulated model, which follows the lessons it
 * is sent, so a job against it can learn. It grades itself from the task's answer key, so jobs
 * against it set `agent.expose_expected: true`. It also misbehaves on demand:
 *   FLOW_AGENT_FAULT=<kind>        every request
 *   `{fault:<kind>}` in task text  every request for that task
 *   `{fault:<kind>:odd}`           requests of odd sample indexes only
 * kinds: slow (answers after FLOW_AGENT_SLOW_MS, default 30 s), 500, invalid_json,
 * wrong_schema, flaky (HTTP 503 on a trajectory's first attempt, then a normal answer).
 * GET /stats answers how many requests it saw, by fault kind and by attempt number, and the
 * most lessons a request carried.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpAgentRequestSchema, type HttpAgentRequest, type HttpAgentResponseInput } from '../../activities/agents/httpAgentContract';
import { SimulatedEnvironment } from '../../training/simulation/environment';
import { simulatedAgentTurn, type AgentMessage } from '../../training/simulation/simulatedModel';

export const FAULT_KINDS = ['slow', '500', 'invalid_json', 'wrong_schema', 'flaky'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const FAULT_MARKER = /\{fault:([a-z_0-9]+)(:odd)?\}/;
/** USD per token the service reports for its model calls (so the job's spend counts them). */
const USD_PER_TOKEN = 0.000_001;
const approxTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

export interface HttpAgentServiceStats {
  requests: number;
  faults: Record<string, number>;
  attempts: Record<string, number>;
  /** The most lessons any request's policy carried (a learning job sends more over time). */
  max_lessons: number;
}

export function faultFor(request: HttpAgentRequest, envFault: string | undefined): FaultKind | null {
  const marker = FAULT_MARKER.exec(request.task.prompt);
  const kind = marker && (!marker[2] || request.trajectory.sample_index % 2 === 1) ? marker[1] : envFault || null;
  if (kind === null) return null;
  if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw new Error(`unknown fault kind "${kind}"; kinds: ${FAULT_KINDS.join(', ')}`);
  return kind as FaultKind;
}

/** One run of the simulated agent in the simulated environment, as the contract's response. */
export function playSimulatedAgent(request: HttpAgentRequest): HttpAgentResponseInput {
  // The simulated environment computes tool results and grades from the expected answer.
  if (request.task.expected_answer === undefined) {
    return { steps: [], final_answer: null, error: 'this service grades itself and needs the answer key: start the job with agent.expose_expected: true' };
  }
  const environment = new SimulatedEnvironment();
  const task = { ...request.task, prompt: request.task.prompt.replace(FAULT_MARKER, '').trim() };
  // The task's own tools (the ledger families have theirs), with their parameters for enum arguments.
  const tools = environment.tools(task);
  const toolNames = tools.map((tool) => tool.name);
  const system = request.policy.system_prompt;
  const messages: AgentMessage[] = [{ role: 'system', content: system }, { role: 'user', content: task.prompt }];
  const steps: NonNullable<HttpAgentResponseInput['steps']> = [];
  const toolCalls: { name: string; arguments: Record<string, unknown> }[] = [];
  for (let index = 0; index < request.max_steps; index++) {
    const startedAt = new Date().toISOString();
    const state = messages[messages.length - 1].content ?? '';
    const action = simulatedAgentTurn({ system, messages, toolNames, tools, seed: request.seed });
    const promptTokens = approxTokens(messages.map((m) => m.content ?? '').join('\n'));
    const completionTokens = approxTokens(JSON.stringify(action));
    const cost = { usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens }, cost_usd: (promptTokens + completionTokens) * USD_PER_TOKEN, logprob: Math.log(action.probability) };
    if (action.type === 'final_answer') {
      steps.push({ state, action: { type: 'final_answer', content: action.content }, ...cost, started_at: startedAt, ended_at: new Date().toISOString() });
      const verdict = environment.judge(task, { toolCalls, finalAnswer: action.content });
      return { steps, final_answer: action.content, success: verdict.success, verified: verdict.verified, error: null };
    }
    const outcome = environment.executeTool(task, action.tool, action.arguments);
    toolCalls.push({ name: action.tool, arguments: action.arguments });
    messages.push({ role: 'assistant', content: null, tool_calls: [{ name: action.tool }] });
    messages.push({ role: 'tool', content: outcome.error ? `error: ${outcome.error}` : outcome.output });
    steps.push({
      state,
      action: { type: 'tool_call', content: null },
      tool_calls: [{ id: `call_${index}`, name: action.tool, arguments: action.arguments }],
      result: outcome.output,
      error: outcome.error,
      ...cost,
      started_at: startedAt,
      ended_at: new Date().toISOString(),
    });
  }
  return { steps, final_answer: null, success: false, error: `ran out of steps (max_steps=${request.max_steps})` };
}

export async function startHttpAgentService(options: { port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const env = options.env ?? process.env;
  const slowMs = Number(env.FLOW_AGENT_SLOW_MS ?? 30_000);
  const stats: HttpAgentServiceStats = { requests: 0, faults: {}, attempts: {}, max_lessons: 0 };
  const pending = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/stats') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      stats.requests++;
      let request: HttpAgentRequest;
      try {
        request = HttpAgentRequestSchema.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (error) {
        return void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error) }));
      }
      const attempt = String(request.trajectory.attempt);
      stats.attempts[attempt] = (stats.attempts[attempt] ?? 0) + 1;
      stats.max_lessons = Math.max(stats.max_lessons, request.policy.lessons.length);
      let fault: FaultKind | null;
      try {
        fault = faultFor(request, env.FLOW_AGENT_FAULT);
      } catch (error) {
        return void res.writeHead(400).end(String(error));
      }
      if (fault === 'flaky' && request.trajectory.attempt > 1) fault = null;
      if (fault) stats.faults[fault] = (stats.faults[fault] ?? 0) + 1;
      const json = (status: number, body: string) => res.writeHead(status, { 'content-type': 'application/json' }).end(body);
      if (request.environment !== 'simulated') {
        return void json(200, JSON.stringify({ steps: [], final_answer: null, error: `this service plays the simulated environment only, not "${request.environment}"` }));
      }
      switch (fault) {
        case '500':
          return void json(500, JSON.stringify({ error: 'internal error (injected)' }));
        case 'flaky':
          return void json(503, JSON.stringify({ error: 'temporarily unavailable (injected)' }));
        case 'invalid_json':
          return void json(200, '{"steps": [ this is not JSON');
        case 'wrong_schema':
          return void json(200, JSON.stringify({ answer: 'forty-two', trajectory: 'none' }));
        case 'slow': {
          const timer = setTimeout(() => {
            pending.delete(timer);
            json(200, JSON.stringify(playSimulatedAgent(request)));
          }, slowMs);
          pending.add(timer);
          return;
        }
        default:
          return void json(200, JSON.stringify(playSimulatedAgent(request)));
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/agent`,
    close: async () => {
      for (const timer of pending) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (require.main === module) {
  startHttpAgentService({ port: Number(process.env.PORT ?? 0) }).then(
    ({ url, close }) => {
      process.stdout.write(`listening ${url}\n`);
      const stop = () => void close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (error: unknown) => {
      process.stderr.write(`http agent service failed to start: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
