/**
 * Counts tokens as the configured model family's tokenizer does (issue 16 item 5: the policy's
 * token budget is measured in real tokens, not characters ÷ 4). gpt-tokenizer is pure JS and
 * ships its encodings, so nothing is downloaded at run time. It lives here, beside the LLM
 * client, not in training/: training/ is bundled into the deterministic workflow sandbox, which
 * must not carry a 2 MB BPE table, so the pure budget code (training/tokenBudget.ts) takes a
 * counting function instead.
 */
// The cjs paths: the package's `exports` map is not read under this project's moduleResolution "node".
import { countTokens as countO200k } from 'gpt-tokenizer/cjs/encoding/o200k_base';
import { countTokens as countCl100k } from 'gpt-tokenizer/cjs/encoding/cl100k_base';

export type TokenEncoding = 'o200k_base' | 'cl100k_base';

export interface TokenCounter {
  encoding: TokenEncoding;
  /**
   * false when the model is not one of OpenAI's families: its own tokenizer differs (the local
   * Qwen model, Claude, Llama…) and o200k_base stands in for it, with INEXACT_MARGIN added
   * (docs/guides/policy-hygiene.md: how far off it was measured).
   */
  exact: boolean;
  count: (text: string) => number;
}

/** The last path segment of a model name, lower case: "openai/gpt-4o-mini" → "gpt-4o-mini". */
function bareModelName(model: string): string {
  const segments = model.trim().toLowerCase().split('/');
  return segments[segments.length - 1];
}

/** gpt-4 (not 4o/4.1/4.5), gpt-3.5 and the text-embedding-3 / ada-002 models use cl100k_base. */
const CL100K = /^(gpt-4(?![o.\d])|gpt-4-|gpt-3\.5|text-embedding-(3|ada-002))/;
/** gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series (o1, o3, o4-mini…), chatgpt-4o and gpt-oss use o200k_base. */
const O200K = /^(gpt-4o|gpt-4\.\d|gpt-5|gpt-oss|chatgpt-|o\d)/;

export function tokenEncodingFor(model: string): { encoding: TokenEncoding; exact: boolean } {
  const name = bareModelName(model);
  if (CL100K.test(name)) return { encoding: 'cl100k_base', exact: true };
  return { encoding: 'o200k_base', exact: O200K.test(name) };
}

/**
 * Added to an inexact count so a budget still holds: on rendered policies o200k_base counted
 * 4.1% fewer tokens than the local Qwen2.5 model's own tokenizer (4.8% at worst, 5 samples).
 */
export const INEXACT_MARGIN = 0.1;

/** The token counter for a model (the agent's: the policy is its system prompt). */
export function tokenCounterFor(model: string): TokenCounter {
  const { encoding, exact } = tokenEncodingFor(model);
  const count = encoding === 'cl100k_base' ? countCl100k : countO200k;
  return { encoding, exact, count: exact ? (text: string) => count(text) : (text: string) => Math.ceil(count(text) * (1 + INEXACT_MARGIN)) };
}
