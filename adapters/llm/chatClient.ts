import { AsyncLocalStorage } from 'node:async_hooks';
import { Portkey } from 'portkey-ai';
import type { TokenUsage } from '../../training/trajectory';
import { costOf, type ModelPrice, reportedCost, resolveModelPrice } from './pricing';
import { traceChatCall } from '../telemetry/tracing';
import { localModelParallelFromEnv } from './localModelSettings';
import { CALL_KEY_METADATA, storedCallsFromEnv, type StoredCallsSettings } from './storedCalls';

/**
 * Where LLM calls go. Every call goes through `portkey-ai`: to Portkey's hosted gateway when
 * PORTKEY_API_KEY is set, or to FLOW_LLM_BASE_URL (a local Portkey gateway, or the built-in
 * simulated model server, which speaks the OpenAI chat-completions protocol).
 */
export interface LlmSettings {
  baseURL?: string;
  apiKey?: string;
  provider?: string;
  virtualKey?: string;
  /** The provider's base URL when a Portkey gateway should call a self-hosted OpenAI-compatible server. */
  customHost?: string;
  /**
   * Where `local:*` models are served (issue 13): resolves the local llama.cpp server's `/v1` URL,
   * starting it on first use (workers/localModelServer.ts). Without it, `local:*` calls go to
   * `baseURL` like any other (FLOW_LLM=local points `baseURL` at the local server itself).
   */
  local?: () => Promise<string>;
  /** Calls to the local server at once (its slots; default FLOW_LOCAL_MODEL_PARALLEL or 1). */
  localSlots?: number;
  /** Where the provider lists stored completions (adapters/llm/storedCalls.ts): calls are then stored with their ledger key. */
  storedCalls?: StoredCallsSettings;
}

export function llmSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): LlmSettings {
  return {
    baseURL: env.FLOW_LLM_BASE_URL || undefined,
    apiKey: env.PORTKEY_API_KEY || undefined,
    provider: env.PORTKEY_PROVIDER || undefined,
    virtualKey: env.PORTKEY_VIRTUAL_KEY || undefined,
    customHost: env.FLOW_LLM_CUSTOM_HOST || undefined,
    storedCalls: storedCallsFromEnv(env),
  };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

export interface ChatTool {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

/** A JSON schema the answer must follow (OpenAI's structured outputs; llama.cpp turns it into a grammar). */
export interface JsonSchemaFormat {
  type: 'json_schema';
  json_schema: { name: string; strict?: boolean; schema: Record<string, unknown> };
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ChatTool[];
  max_tokens: number;
  seed?: number;
  temperature?: number;
  logprobs?: boolean;
  response_format?: { type: 'json_object' } | JsonSchemaFormat;
}

/** True for models Flow serves itself from a local GGUF (`local:qwen2.5-coder-1.5b`). */
export function isLocalModel(model: string): boolean {
  return model.startsWith('local:');
}

export interface ChatResult {
  message: ChatMessage;
  usage: TokenUsage;
  costUsd: number;
  /** Sum of the returned token log-probs, or null when the model returned none. */
  logprob: number | null;
  /** Why generation stopped (`stop`, `length` when max_tokens was reached, `tool_calls`), when the provider said. */
  finishReason: string | null;
}

export interface CompleteOptions {
  /** The job's own price for the model (`config.prices`); else Flow's entry or the price table. */
  price?: ModelPrice;
  /** The call's spend-ledger key: with stored calls on, the provider keeps the completion under it. */
  callKey?: string;
}

interface RawCompletion {
  choices?: { message?: ChatMessage; finish_reason?: string | null; logprobs?: { content?: { logprob: number }[] | null } | null }[];
  /** Some gateways (OpenRouter, LiteLLM) add what the call cost in USD, as `cost` or `cost_usd`. */
  usage?: { prompt_tokens?: number; completion_tokens?: number; cost?: unknown; cost_usd?: unknown };
}

/**
 * Each client's Portkey connection, kept off the instance so that ChatClient's type is only
 * its `complete` method: the budget guard's client (activities/budgetGuard.ts) is one too.
 */
const connections = new WeakMap<ChatClient, { main: Portkey | null; local: (() => Promise<Portkey>) | null; slots: Slots; storeCalls: boolean }>();

/**
 * Local calls wait here, not in the server's queue: the server answers a queued request only when
 * it is done, and fetch gives up on headers after 300 s, which eight queued calls on two busy
 * cores exceed. One call at a time per slot also lets each call reuse the prefix the previous one
 * left in the slot's cache.
 */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      signal?.throwIfAborted();
      return await fn();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

export class ChatClient {
  constructor(settings: LlmSettings) {
    if (!settings.baseURL && !settings.apiKey && !settings.local) {
      throw new Error('no LLM endpoint: set FLOW_LLM_BASE_URL (a local gateway or simulated model server) or PORTKEY_API_KEY, or FLOW_LLM=local');
    }
    const main =
      settings.baseURL || settings.apiKey
        ? withCallContext(
            new Portkey({
              baseURL: settings.baseURL,
              apiKey: settings.apiKey ?? 'local',
              provider: settings.provider ?? 'openai',
              virtualKey: settings.virtualKey,
              customHost: settings.customHost,
            }),
          )
        : null;
    const resolveLocal = settings.local;
    // The same portkey-ai client, pointed at the local llama.cpp server; asked for its URL on every
    // call, since a server that died is started again, on another port.
    let cached: { baseURL: string; client: Portkey } | null = null;
    const localClient = (baseURL: string) => {
      if (cached?.baseURL !== baseURL) cached = { baseURL, client: withCallContext(new Portkey({ baseURL, apiKey: 'local', provider: 'openai' })) };
      return cached.client;
    };
    connections.set(this, {
      main,
      local: resolveLocal ? () => resolveLocal().then(localClient) : null,
      slots: new Slots(Math.max(1, settings.localSlots ?? localModelParallelFromEnv(process.env))),
      storeCalls: settings.storedCalls !== undefined,
    });
  }

  /**
   * One chat completion; `signal` aborts it (activity cancellation, trajectory timeout). A
   * model with no known price is refused before the call (UnknownModelPriceError): its cost
   * could not be counted.
   */
  async complete(request: ChatRequest, signal?: AbortSignal, options: CompleteOptions = {}): Promise<ChatResult> {
    if (!options.price) resolveModelPrice(request.model);
    const endpoints = connections.get(this)!;
    const local = isLocalModel(request.model) && endpoints.local !== null;
    const main = endpoints.main;
    if (!local && !main) throw new Error(`no endpoint for ${request.model}: only local:* models are served here (set FLOW_LLM_BASE_URL or PORTKEY_API_KEY)`);
    // Stored under its ledger key, so a retry can ask what a call it never heard back from cost.
    const body = !local && endpoints.storeCalls && options.callKey ? { ...request, store: true, metadata: { [CALL_KEY_METADATA]: options.callKey } } : request;
    const context: CallContext = { signal };
    // The local server's client is taken once the call has its slot: a server that died while the
    // call waited has been started again, on another port.
    const create = async () => {
      const portkey = local ? await localClientFor(endpoints.local!, request.model) : main!;
      return callContext.run(context, () => traceChatCall(request.model, () => portkey.chat.completions.create(body as never, undefined, { signal } as never) as unknown as Promise<RawCompletion>));
    };
    const call = local ? endpoints.slots.run(create, signal) : create();
    // Stop waiting as soon as the signal aborts, whatever the SDK does with the aborted fetch (or a model still loading).
    let raw: RawCompletion;
    try {
      raw = signal ? await untilAborted(call, signal) : await call;
    } catch (error) {
      throw signal?.aborted || error instanceof ProviderUnavailableError ? error : describeProviderError(request.model, error, context);
    }
    const choice = raw.choices?.[0];
    const usage: TokenUsage = {
      prompt_tokens: raw.usage?.prompt_tokens ?? 0,
      completion_tokens: raw.usage?.completion_tokens ?? 0,
    };
    if (!choice?.message) {
      const costUsd = costOf(request.model, usage, { price: options.price, reportedCostUsd: reportedCost(raw.usage) });
      throw new ProviderUnavailableError(`${request.model}: the answer has no message`, raw.usage ? { usage, costUsd } : 'unknown');
    }
    const tokens = choice.logprobs?.content;
    return {
      message: choice.message,
      usage,
      costUsd: costOf(request.model, usage, { price: options.price, reportedCostUsd: reportedCost(raw.usage) }),
      logprob: tokens && tokens.length > 0 ? tokens.reduce((sum, t) => sum + t.logprob, 0) : null,
      finishReason: choice.finish_reason ?? null,
    };
  }
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // The call may still settle (a local call waiting for its slot rejects then): nobody waits for it.
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * The provider could not answer (down, overloaded, rate limiting, the connection or the answer
 * broken off): not the agent's doing, so the activity is retried until the provider is back
 * instead of the trajectory being recorded as failed. `retryAfterMs` is the provider's
 * Retry-After, when it sent one.
 */
export class ProviderUnavailableError extends Error {
  constructor(
    message: string,
    /**
     * What the provider billed for the call: nothing (it refused it, or the request never reached
     * it), what its usage says (an answer with usage and no message), or unknown (an answer broken
     * off or not JSON, a connection lost after the request went out, a gateway that gave up waiting).
     */
    readonly billing: 'none' | 'unknown' | { usage: TokenUsage; costUsd: number },
    readonly retryAfterMs?: number,
    /**
     * Worth sending once more straight away (the budget guard does, as a call of its own): the
     * connection refused, or closed under the request at once (a keep-alive connection the server
     * had just closed, most often), or a 5xx from the provider itself. Not a timeout waiting for
     * the answer (nor a 504), not a status that asks for patience (429, 408, a Retry-After), nor
     * one from a Portkey gateway, which has retried already.
     */
    readonly sendAgain = false,
  ) {
    super(message);
    this.name = 'ProviderUnavailableError';
  }
}

/** Statuses that say "not now" rather than "not this request": timeout, conflict, too early, rate limit, server errors. */
const UNAVAILABLE_STATUSES = new Set([408, 409, 425, 429]);
/**
 * Of those, the answers of something that gave up waiting, a gateway (gateway timeout,
 * Cloudflare's "a timeout occurred") or the server itself (request timeout), while the provider
 * behind it may have gone on generating, and billing: what the call cost is unknown, so the ledger
 * holds its worst case until the provider's record of it settles it. Not 502: a bad gateway is
 * mostly one that could not reach the provider, and a gateway down for an hour would otherwise
 * hold every retried call's worst case and end jobs over a budget nothing was spent from.
 */
const GAVE_UP_STATUSES = new Set([408, 504, 524]);
/** Connection errors before the request was sent (refused, no such host, unreachable, connect timeout): nothing can have been billed. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
/**
 * The connection closed under the request (reset, broken pipe, "other side closed") within
 * SEND_AGAIN_WITHIN_MS of sending: most often a keep-alive connection the server closed as the
 * request went out, worth sending again at once. Not later (a proxy's idle timeout cutting a long
 * generation looks the same), nor a timeout waiting for the answer (UND_ERR_HEADERS_TIMEOUT,
 * UND_ERR_BODY_TIMEOUT, a 504): by then the provider has likely generated, and billed, the whole
 * answer, and would again.
 */
const CLOSED_UNDER_IT_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const SEND_AGAIN_WITHIN_MS = 2_000;

/**
 * The first error code (`ECONNRESET`, …) in an error's cause chain, and the message that carries
 * it. Duck-typed: undici's errors may come from another realm than this module's `Error`.
 */
function errorCode(error: unknown): { code?: string; message?: string } {
  let first: string | undefined;
  for (let cause = error, depth = 0; typeof cause === 'object' && cause !== null && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    const { code, message } = cause as { code?: unknown; message?: unknown };
    first ??= typeof message === 'string' ? message : undefined;
    if (typeof code === 'string') return { code, message: typeof message === 'string' ? message : first };
  }
  return { message: first };
}

/**
 * "flow-sim-1: HTTP 500: simulated provider error", whatever shape the SDK's error has; a
 * ProviderUnavailableError when the provider, not the request, is at fault: an answer with a
 * status above, a 5xx, or none at all (refused or broken connection, a body that is cut off or
 * not JSON).
 */
function describeProviderError(model: string, error: unknown, call: CallContext): Error {
  const status = (error as { status?: unknown }).status;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof status !== 'number') {
    // portkey-ai wraps a fetch that failed before any answer (refused, reset) as APIConnectionError
    // (not exported), whose own message is advice about Portkey's hosted service: give the cause.
    // A connection that failed before the request went out billed nothing; one reset or timed out
    // after it went out may have been billed.
    if (error instanceof Error && error.constructor.name.startsWith('APIConnection')) {
      const { code, message: said = 'the connection failed' } = call.connectionError ?? errorCode((error as { cause?: unknown }).cause);
      const notSent = code !== undefined && NOT_SENT_CODES.has(code);
      const closedAtOnce = code !== undefined && CLOSED_UNDER_IT_CODES.has(code) && (call.connectionError?.afterMs ?? Infinity) < SEND_AGAIN_WITHIN_MS;
      return new ProviderUnavailableError(`${model}: no answer: ${said}${code && !said.includes(code) ? ` (${code})` : ''}`, notSent ? 'none' : 'unknown', undefined, notSent || closedAtOnce);
    }
    return new ProviderUnavailableError(`${model}: ${message}`, 'unknown');
  }
  const described = `${model}: HTTP ${status}: ${message}`;
  if (status >= 500 || UNAVAILABLE_STATUSES.has(status)) {
    const retryAfter = retryAfterMs(call.retryAfter);
    const gaveUp = GAVE_UP_STATUSES.has(status);
    return new ProviderUnavailableError(described, gaveUp ? 'unknown' : 'none', retryAfter, status >= 500 && !gaveUp && !call.fromGateway && retryAfter === undefined);
  }
  return new Error(described);
}

/** Retry-After in seconds or as an HTTP date. */
function retryAfterMs(raw: string | null | undefined): number | undefined {
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(raw) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

/** A Retry-After beyond this is taken as this: the activity's own retry bound still applies. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * The local model server's client. A server that cannot be started (again) is the provider being
 * unavailable: the call's activity is retried, rather than its trajectory recorded as an agent error.
 */
async function localClientFor(local: () => Promise<Portkey>, model: string): Promise<Portkey> {
  try {
    return await local();
  } catch (error) {
    throw new ProviderUnavailableError(`${model}: the local model server is not available: ${error instanceof Error ? error.message : String(error)}`, 'none');
  }
}

/**
 * What the SDK client's fetch needs from, and tells, the call being made. portkey-ai 3.1 drops the
 * per-call signal before fetch, so a provider that never answers would hold its socket after the
 * trajectory gave up (and keep a stopping worker alive): fetch takes the signal from here. And it
 * keeps a failed answer's headers on the client object shared by every concurrent call, reading
 * them only after the body has arrived, by when another call's answer may have replaced them: the
 * Retry-After is taken here, per call, from the last answer.
 */
interface CallContext {
  signal?: AbortSignal;
  retryAfter?: string | null;
  /**
   * Why the last fetch failed without an answer, read from the error fetch threw: portkey-ai
   * rebuilds an error it does not recognise as one (another realm's, as under jest) from its text,
   * dropping the cause that says whether the request went out.
   */
  connectionError?: { code?: string; message?: string; afterMs?: number };
  /** The last answer came from a Portkey gateway (its request or trace id, or its exception header): it has retried already. */
  fromGateway?: boolean;
}
const callContext = new AsyncLocalStorage<CallContext>();

/** Headers only a Portkey gateway's answers carry (the ones portkey-ai's own retry looks for). */
const GATEWAY_HEADERS = ['x-portkey-request-id', 'x-portkey-trace-id', 'x-portkey-gateway-exception'];

function withCallContext(portkey: Portkey): Portkey {
  // `fetch` and `maxRetries` are the SDK client's (private) instance fields, set in its
  // constructor; portkey-ai is pinned. Its own retry (once, at once, on a connection error or a
  // 5xx) is off: its second request was invisible to the spend ledger, which then recorded a call
  // whose first request may have been billed (a 504) as only its second. The budget guard sends
  // such a call once more itself, as a call of its own (ProviderUnavailableError.sendAgain).
  const client = portkey as unknown as { fetch: typeof fetch; maxRetries: number };
  client.maxRetries = 0;
  const inner = client.fetch;
  client.fetch = async (url, init) => {
    const context = callContext.getStore();
    let response: Response;
    const sentAt = Date.now();
    try {
      response = await inner(url, context?.signal ? { ...init, signal: context.signal } : init);
    } catch (error) {
      if (context) context.connectionError = { ...errorCode(error), afterMs: Date.now() - sentAt };
      throw error;
    }
    if (context) {
      context.retryAfter = response.headers.get('retry-after');
      context.connectionError = undefined;
      context.fromGateway = GATEWAY_HEADERS.some((name) => response.headers.has(name));
    }
    return response;
  };
  return portkey;
}
