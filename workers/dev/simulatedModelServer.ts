/**
 * The built-in simulated model: an OpenAI-compatible chat-completions server on localhost, so
 * demos, tests and benchmarks run Flow's real LLM code path (portkey-ai → HTTP) with no
 * internet. Its decisions come from training/simulation/simulatedModel.ts, which never sees
 * the environment's hidden rules: it follows only the lessons written in the system prompt.
 *
 * Tests can replace the answer of any request with `respond` (a programmable real HTTP
 * server, not a mocked function): malformed JSON, HTTP 500s, a hang or a scripted tool call.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { simulatedAgentTurn, simulatedOptimizerTurn } from '../../training/simulation/simulatedModel';
import { hashString as hash } from '../../training/statistics';
import { simulatedToolUserTurn } from './simulatedToolUser';
import { simulatedJudgeAnswer } from './simulatedJudge';

export interface ChatCompletionRequestBody {
  model: string;
  messages: { role: 'system' | 'user' | 'assistant' | 'tool'; content: string | null; tool_calls?: { function: { name: string } }[] }[];
  tools?: { function: { name: string; parameters?: Record<string, unknown> } }[];
  seed?: number;
  logprobs?: boolean;
  max_tokens?: number;
  /** OpenAI's stored completions: with `store`, the completion (and its `metadata`) can be listed later. */
  store?: boolean;
  metadata?: Record<string, string>;
}

/** Usage a scripted answer reports instead of the approximate one; `cost` as some gateways add it. */
export interface ScriptedUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  cost?: unknown;
}

/** What a test's `respond` hook may return instead of the simulated answer. */
export type ScriptedResponse =
  | { kind: 'content'; content: string; logprobs?: number[]; usage?: ScriptedUsage }
  /** A single function call (finish_reason `tool_calls`), e.g. to script an agent's turns. */
  | { kind: 'tool_call'; name: string; arguments: Record<string, unknown>; logprobs?: number[]; usage?: ScriptedUsage }
  | { kind: 'http_error'; status: number; body?: string; headers?: Record<string, string> }
  /** A 200 answer with this body as it is (not JSON, no choices…); `cut` closes the connection halfway through it. */
  | { kind: 'raw'; body: string; cut?: boolean }
  | { kind: 'hang' }
  /** The connection closed under the request, with no answer, `afterMs` after it arrived (at once by default). */
  | { kind: 'reset'; afterMs?: number }
  | undefined;

/** A scripted response that is answered with a completion (or none: the simulated model answers). */
type ScriptedAnswer = Exclude<ScriptedResponse, { kind: 'http_error' } | { kind: 'raw' } | { kind: 'hang' } | { kind: 'reset' }>;

export interface SimulatedModelServerOptions {
  port?: number;
  /** Fixed latency of every call, as a real provider would have. */
  latencyMs?: number;
  respond?: (body: ChatCompletionRequestBody, callIndex: number) => ScriptedResponse;
  /** Token usage to report for any answer, scripted or simulated (budget tests fix it). */
  usage?: (body: ChatCompletionRequestBody) => ScriptedUsage | undefined;
}

export interface SimulatedModelServer {
  /** Base URL for portkey-ai / OpenAI clients, ending in /v1. */
  url: string;
  calls(): number;
  /** Calls received and not answered yet (a test that kills a worker mid-call waits for one). */
  inFlight(): number;
  /** Calls answered `hang` whose client has not closed the connection yet. */
  hanging(): number;
  /** What the server billed: answered calls and their tokens, per model (as a provider's invoice would). */
  billed(): Map<string, { calls: number; prompt_tokens: number; completion_tokens: number }>;
  setLatency(ms: number): void;
  close(): Promise<void>;
}

const approxTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

export async function startSimulatedModelServer(options: SimulatedModelServerOptions = {}): Promise<SimulatedModelServer> {
  let latencyMs = options.latencyMs ?? 0;
  let callCount = 0;
  let inFlight = 0;
  const billed = new Map<string, { calls: number; prompt_tokens: number; completion_tokens: number }>();
  const hanging = new Set<http.ServerResponse>();
  const stored: { id: string; object: 'chat.completion'; model: string; created: number; usage: unknown; metadata: Record<string, string> }[] = [];

  const server = http.createServer((req, res) => {
    // OpenAI's list of stored completions, filtered by metadata: how a client that never got an
    // answer (its process was killed) learns what the call was billed.
    const listing = req.method === 'GET' ? new URL(req.url ?? '/', 'http://localhost') : null;
    if (listing?.pathname.endsWith('/chat/completions')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(listStored(stored, listing.searchParams)));
      return;
    }
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const callIndex = callCount++;
      let body: ChatCompletionRequestBody;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatCompletionRequestBody;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'request body is not JSON' } }));
        return;
      }
      const scripted = options.respond?.(body, callIndex);
      if (scripted?.kind === 'reset') {
        const timer = setTimeout(() => req.socket.destroy(), scripted.afterMs ?? 0);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      if (scripted?.kind === 'hang') {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      inFlight++;
      setTimeout(() => {
        inFlight--;
        if (scripted?.kind === 'http_error') {
          res.writeHead(scripted.status, { 'content-type': 'application/json', ...scripted.headers }).end(scripted.body ?? JSON.stringify({ error: { message: 'simulated provider error' } }));
          return;
        }
        if (scripted?.kind === 'raw') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(scripted.body) });
          if (!scripted.cut) return void res.end(scripted.body);
          res.write(scripted.body.slice(0, Math.floor(scripted.body.length / 2)), () => res.destroy());
          return;
        }
        const completion = completionFor(body, scripted, options.usage);
        const invoice = billed.get(body.model) ?? { calls: 0, prompt_tokens: 0, completion_tokens: 0 };
        invoice.calls++;
        invoice.prompt_tokens += completion.usage.prompt_tokens;
        invoice.completion_tokens += completion.usage.completion_tokens;
        billed.set(body.model, invoice);
        if (body.store === true) stored.push({ id: completion.id, object: 'chat.completion', model: body.model, created: completion.created, usage: completion.usage, metadata: body.metadata ?? {} });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion));
      }, latencyMs);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    calls: () => callCount,
    inFlight: () => inFlight,
    hanging: () => hanging.size,
    billed: () => new Map([...billed].map(([model, invoice]) => [model, { ...invoice }])),
    setLatency: (ms) => {
      latencyMs = ms;
    },
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** GET /chat/completions: `metadata[key]=value` filters (all must match), `limit` (default 20, at most 100). */
function listStored(stored: { metadata: Record<string, string> }[], query: URLSearchParams) {
  const filters = [...query].flatMap(([name, value]) => {
    const key = /^metadata\[(.+)\]$/.exec(name)?.[1];
    return key === undefined ? [] : [[key, value] as const];
  });
  const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20) || 20));
  const matching = stored.filter((completion) => filters.every(([key, value]) => completion.metadata[key] === value));
  return { object: 'list', data: matching.slice(0, limit), has_more: matching.length > limit };
}

/** The answer to a request: the scripted one, else the simulated model's; with the scripted or fixed token usage. */
function completionFor(body: ChatCompletionRequestBody, scripted: ScriptedAnswer, usageOf: SimulatedModelServerOptions['usage']) {
  const completion =
    scripted?.kind === 'tool_call'
      ? scriptedToolCall(body, scripted.name, scripted.arguments, scripted.logprobs)
      : scripted
        ? scriptedCompletion(body, scripted.content, scripted.logprobs)
        : simulatedCompletion(body);
  const usage = scripted?.usage ?? usageOf?.(body);
  if (usage) Object.assign(completion.usage, usage);
  return completion;
}

function simulatedCompletion(body: ChatCompletionRequestBody) {
  const system = body.messages.find((m) => m.role === 'system')?.content ?? '';
  // The reward judges (activities/llm/judge.ts) mark their system prompts; they get verdicts.
  const verdict = simulatedJudgeAnswer(body.messages);
  if (verdict !== null) return completion(body, { role: 'assistant', content: verdict }, 'stop', [0], verdict);
  // Offered Flow's real tools (the `tools` environment): fetch or calculate, then answer.
  const toolUse = body.tools ? simulatedToolUserTurn(body.messages, body.tools.map((tool) => tool.function.name)) : null;
  if (toolUse?.type === 'tool_call') {
    const args = JSON.stringify(toolUse.arguments);
    const id = `call_${hash(JSON.stringify(body.messages)).toString(36)}`;
    return completion(body, { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: toolUse.tool, arguments: args } }] }, 'tool_calls', [0], args);
  }
  if (toolUse) return completion(body, { role: 'assistant', content: toolUse.content }, 'stop', [0], toolUse.content);
  if (body.tools && body.tools.length > 0) {
    const action = simulatedAgentTurn({
      system,
      messages: body.messages.map((m) => ({
        role: m.role,
        content: m.content,
        tool_calls: m.tool_calls?.map((call) => ({ name: call.function.name })),
      })),
      toolNames: body.tools.map((tool) => tool.function.name),
      tools: body.tools.map((tool) => ({ name: tool.function.name, parameters: tool.function.parameters })),
      seed: body.seed ?? 0,
    });
    const logprob = Math.log(action.probability);
    if (action.type === 'tool_call') {
      const args = JSON.stringify(action.arguments);
      const id = `call_${hash(JSON.stringify(body.messages)).toString(36)}`;
      return completion(body, { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: action.tool, arguments: args } }] }, 'tool_calls', [logprob], args);
    }
    return completion(body, { role: 'assistant', content: action.content }, 'stop', [logprob], action.content);
  }
  // Without tools the request is the policy updater's: answer with lesson operations as JSON.
  const user = [...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  const content = JSON.stringify(simulatedOptimizerTurn(user));
  return completion(body, { role: 'assistant', content }, 'stop', [0], content);
}

function scriptedCompletion(body: ChatCompletionRequestBody, content: string, logprobs?: number[]) {
  return completion(body, { role: 'assistant', content }, 'stop', logprobs ?? null, content);
}

function scriptedToolCall(body: ChatCompletionRequestBody, name: string, args: Record<string, unknown>, logprobs?: number[]) {
  const json = JSON.stringify(args);
  const id = `call_${hash(JSON.stringify(body.messages) + name).toString(36)}`;
  return completion(body, { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: json } }] }, 'tool_calls', logprobs ?? null, json);
}

function completion(body: ChatCompletionRequestBody, message: object, finishReason: string, logprobs: number[] | null, output: string) {
  const promptText = body.messages.map((m) => m.content ?? '').join('\n');
  return {
    id: `chatcmpl-sim-${hash(promptText + output).toString(36)}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model,
    choices: [
      {
        index: 0,
        message,
        finish_reason: finishReason,
        logprobs: body.logprobs && logprobs ? { content: logprobs.map((logprob, i) => ({ token: `t${i}`, logprob, bytes: null, top_logprobs: [] })) } : null,
      },
    ],
    usage: { prompt_tokens: approxTokens(promptText), completion_tokens: approxTokens(output), total_tokens: approxTokens(promptText) + approxTokens(output) },
  };
}
