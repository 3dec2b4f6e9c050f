/**
 * What a provider billed for a call whose answer never reached Flow (issue 15): a worker killed
 * mid-call leaves the call in the spend ledger at its worst case, though the provider billed it
 * at its real size. Providers that keep completions (OpenAI's stored completions: `store: true`
 * with `metadata`, listed by `GET /chat/completions?metadata[k]=v`) can say: each call carries its
 * ledger key as metadata, and a retry of the killed activity asks for the calls it left open.
 *
 * A call the provider has no record of may never have reached it (a kill between the ledger's
 * row and the request) or may still be running there. Once it is older than the longest a call
 * can run at that provider (FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S, default 600 s: the OpenAI
 * client's request timeout), it never will be recorded: it was not billed, and settles at $0.
 *
 * Off unless FLOW_LLM_STORED_CALLS_URL names the provider's OpenAI-compatible base URL (with
 * FLOW_LLM_STORED_CALLS_KEY as its bearer key when it needs one): storing completions keeps
 * prompts at the provider, which is the user's decision. The list goes straight to the provider
 * by HTTP: portkey-ai 3.1's `chat.completions.list` drops its query parameters.
 */
import type { TokenUsage } from '../../training/trajectory';
import { reportedCost } from './pricing';

/** The metadata key that carries a call's ledger key. */
export const CALL_KEY_METADATA = 'flow_call_key';
const LOOKUP_TIMEOUT_MS = 5_000;
export const DEFAULT_UNBILLED_AFTER_S = 600;

export interface StoredCallsSettings {
  url: string;
  apiKey?: string;
  /** A call the provider has not recorded this long after it was opened was never billed. */
  unbilledAfterMs: number;
}

export function storedCallsFromEnv(env: NodeJS.ProcessEnv = process.env): StoredCallsSettings | undefined {
  const url = env.FLOW_LLM_STORED_CALLS_URL;
  if (!url) return undefined;
  if (!/^https?:\/\//.test(url)) throw new Error(`FLOW_LLM_STORED_CALLS_URL must be an http(s) URL, not "${url}"`);
  const after = env.FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S;
  const seconds = after === undefined || after === '' ? DEFAULT_UNBILLED_AFTER_S : Number(after);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S must be a number of seconds above 0, not "${after}"`);
  return { url, apiKey: env.FLOW_LLM_STORED_CALLS_KEY || undefined, unbilledAfterMs: seconds * 1000 };
}

/** What the provider recorded for a call: its usage, and its own cost figure when it gives one. */
export interface StoredCallUsage {
  usage: TokenUsage;
  reportedCostUsd: number | null;
}

export class StoredCallLookup {
  constructor(private readonly settings: StoredCallsSettings) {}

  /** True when a call opened `ageMs` ago and unknown to the provider can no longer be billed. */
  neverBilled(ageMs: number): boolean {
    return ageMs >= this.settings.unbilledAfterMs;
  }

  /** The call's recorded usage; null when the provider has no such call (it never got, or never finished, it). */
  async usageOf(callKey: string): Promise<StoredCallUsage | null> {
    const query = new URLSearchParams({ [`metadata[${CALL_KEY_METADATA}]`]: callKey, limit: '1' });
    const response = await fetch(`${this.settings.url.replace(/\/+$/, '')}/chat/completions?${query}`, {
      headers: { accept: 'application/json', ...(this.settings.apiKey ? { authorization: `Bearer ${this.settings.apiKey}` } : {}) },
      signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`stored completions at ${this.settings.url}: HTTP ${response.status}`);
    const body = (await response.json()) as { data?: { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown; cost?: unknown; cost_usd?: unknown } }[] };
    const usage = body.data?.[0]?.usage;
    if (!usage) return null;
    const tokens = (value: unknown) => (typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0);
    return { usage: { prompt_tokens: tokens(usage.prompt_tokens), completion_tokens: tokens(usage.completion_tokens) }, reportedCostUsd: reportedCost(usage) };
  }
}
