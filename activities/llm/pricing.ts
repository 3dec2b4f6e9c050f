import type { TokenUsage } from '../../training/config';

/** USD per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
}

/**
 * Prices of the models Flow knows. `flow-sim-1` is the built-in simulated model: it is priced
 * like a small hosted model so that spend and budgets behave in demos and tests as they would
 * with a real provider.
 */
const PRICES: Record<string, ModelPrice> = {
  'flow-sim-1': { input: 0.5, output: 1.5 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
};

export function priceOf(model: string): ModelPrice | null {
  return PRICES[model] ?? null;
}

/** Cost of one call; a model with no known price costs nothing here (the budget issue rejects those at start). */
export function costOf(model: string, usage: TokenUsage): number {
  const price = priceOf(model);
  if (!price) return 0;
  return (usage.prompt_tokens * price.input + usage.completion_tokens * price.output) / 1_000_000;
}
