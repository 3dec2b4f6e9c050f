import { Portkey } from 'portkey-ai';
import type { TokenUsage } from '../../training/config';
import { costOf, type ModelPrice, resolveModelPrice } from './pricing';
import { traceChatCall } from '../telemetry/tracing';

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
}

export function llmSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): LlmSettings {
  return {
    baseURL: env.FLOW_LLM_BASE_URL || undefined,
    apiKey: env.PORTKEY_API_KEY || undefined,
    provider: env.PORTKEY_PROVIDER || undefined,
    virtualKey: env.PORTKEY_VIRTUAL_KEY || undefined,
    customHost: env.FLOW_LLM_CUSTOM_HOST || undefined,
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

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  tools?: ChatTool[];
  max_tokens: number;
  seed?: number;
  logprobs?: boolean;
  response_format?: { type: 'json_object' };
}

export interface ChatResult {
  message: ChatMessage;
  usage: TokenUsage;
  costUsd: number;
  /** Sum of the returned token log-probs, or null when the model returned none. */
  logprob: number | null;
}

export interface CompleteOptions {
  /** The job's own price for the model (`config.prices`); else Flow's entry or the price table. */
  price?: ModelPrice;
}

interface RawCompletion {
  choices?: { message?: ChatMessage; logprobs?: { content?: { logprob: number }[] | null } | null }[];
  /** Some gateways (OpenRouter, LiteLLM) add what the call cost in USD, as `cost` or `cost_usd`. */
  usage?: { prompt_tokens?: number; completion_tokens?: number; cost?: unknown; cost_usd?: unknown };
}

/**
 * Each client's Portkey connection, kept off the instance so that ChatClient's type is only
 * its `complete` method: the budget guard's client (activities/budgetGuard.ts) is one too.
 */
const connections = new WeakMap<ChatClient, Portkey>();

export class ChatClient {
  constructor(settings: LlmSettings) {
    if (!settings.baseURL && !settings.apiKey) {
      throw new Error('no LLM endpoint: set FLOW_LLM_BASE_URL (a local gateway or simulated model server) or PORTKEY_API_KEY');
    }
    connections.set(
      this,
      new Portkey({
        baseURL: settings.baseURL,
        apiKey: settings.apiKey ?? 'local',
        provider: settings.provider ?? 'openai',
        virtualKey: settings.virtualKey,
        customHost: settings.customHost,
      }),
    );
  }

  /**
   * One chat completion; `signal` aborts it (activity cancellation, trajectory timeout). A
   * model with no known price is refused before the call (UnknownModelPriceError): its cost
   * could not be counted.
   */
  async complete(request: ChatRequest, signal?: AbortSignal, options: CompleteOptions = {}): Promise<ChatResult> {
    if (!options.price) resolveModelPrice(request.model);
    const portkey = connections.get(this)!;
    const call = traceChatCall(request.model, () => portkey.chat.completions.create(request as never, undefined, { signal } as never) as unknown as Promise<RawCompletion>);
    // portkey-ai 3.1 does not hand the signal to fetch, so a hung provider would hold the
    // trajectory forever: stop waiting as soon as the signal aborts.
    let raw: RawCompletion;
    try {
      raw = signal ? await untilAborted(call, signal) : await call;
    } catch (error) {
      throw signal?.aborted ? error : describeProviderError(request.model, error);
    }
    const choice = raw.choices?.[0];
    if (!choice?.message) throw new Error(`the model ${request.model} returned no message`);
    const usage: TokenUsage = {
      prompt_tokens: raw.usage?.prompt_tokens ?? 0,
      completion_tokens: raw.usage?.completion_tokens ?? 0,
    };
    const tokens = choice.logprobs?.content;
    return {
      message: choice.message,
      usage,
      costUsd: costOf(request.model, usage, { price: options.price, reportedCostUsd: reportedCost(raw.usage) }),
      logprob: tokens && tokens.length > 0 ? tokens.reduce((sum, t) => sum + t.logprob, 0) : null,
    };
  }
}

/** The provider's own figure of the call's cost in USD, when it gave a valid one. */
export function reportedCost(usage: RawCompletion['usage']): number | null {
  for (const value of [usage?.cost, usage?.cost_usd]) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  }
  return null;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
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

/** "flow-sim-1: HTTP 500: simulated provider error", whatever shape the SDK's error has. */
function describeProviderError(model: string, error: unknown): Error {
  const status = (error as { status?: unknown }).status;
  const message = error instanceof Error ? error.message : String(error);
  return new Error(typeof status === 'number' ? `${model}: HTTP ${status}: ${message}` : `${model}: ${message}`);
}
