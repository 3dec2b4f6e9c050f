/**
 * What LLM calls cost. Prices come from `@pydantic/genai-prices`, a maintained price table that
 * ships its data inside the package (it is never updated at run time here: `updatePrices` is not
 * called, so nothing is fetched), plus Flow's own entry for the simulated model. A job's
 * `config.prices` overrides both; a model with none of the three has no price, and a job that
 * uses it is refused at start.
 */
import { calcPrice, findProvider, type ModelPrice as TablePrice, type PriceCalculation } from '@pydantic/genai-prices';
import type { TokenUsage } from '../../training/trajectory';
import type { ModelPrice } from '../../training/budget';

export type { ModelPrice };

/** Prices by model name, as in `config.prices`. */
export type ModelPrices = Readonly<Record<string, ModelPrice>>;

/**
 * Models the table does not list. `flow-sim-1` is the built-in simulated model: it is priced
 * like a small hosted model so that spend and budgets behave in demos and tests as they would
 * with a real provider.
 */
const LOCAL_PRICES: ModelPrices = {
  'flow-sim-1': { input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 },
  // Models Flow serves itself on this machine (issue 13): no provider bills them, so they cost
  // zero USD, but their tokens are still counted. `local:<name>` for any other GGUF
  // (FLOW_LOCAL_MODEL) is priced the same way, by localPrice below.
  'local:qwen2.5-coder-1.5b': { input_usd_per_mtok: 0, output_usd_per_mtok: 0 },
  'local:qwen2.5-coder-0.5b': { input_usd_per_mtok: 0, output_usd_per_mtok: 0 },
};

/** The zero price of a model served locally (`local:*`), explicit for the known ones and the same for any other. */
function localPrice(model: string): ModelPrice | null {
  if (Object.hasOwn(LOCAL_PRICES, model)) return LOCAL_PRICES[model];
  return model.startsWith('local:') ? { input_usd_per_mtok: 0, output_usd_per_mtok: 0 } : null;
}

export class UnknownModelPriceError extends Error {
  constructor(readonly model: string) {
    super(`no known price for model ${model}; give config.prices[${JSON.stringify(model)}]`);
    this.name = 'UnknownModelPriceError';
  }
}

/**
 * The price table's answer for a model and usage, or null. A name may carry the table's id of
 * its provider, as `openai/gpt-4o` or Portkey's `@openai/gpt-4o`; any other name is matched
 * as a whole (the table finds the provider from the model name).
 */
function tableEntry(model: string, usage: TokenUsage = { prompt_tokens: 0, completion_tokens: 0 }): PriceCalculation | null {
  const tokens = { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens };
  const prefixed = /^@?([A-Za-z0-9_.-]+)\/(.+)$/.exec(model.trim());
  const providerId = prefixed?.[1].toLowerCase();
  if (prefixed && providerId && findProvider({ providerId })) return calcPrice(tokens, prefixed[2], { providerId });
  return calcPrice(tokens, model);
}

/** A flat price from the table's: for tiered prices the highest tier, so worst cases stay bounds. */
function flatPrice(price: TablePrice): ModelPrice | null {
  const input = highest(price.input_mtok);
  const output = highest(price.output_mtok);
  return input === null || output === null ? null : { input_usd_per_mtok: input, output_usd_per_mtok: output };
}

function highest(value: TablePrice[string]): number | null {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && typeof value.base === 'number') return Math.max(value.base, ...value.tiers.map((tier) => tier.price));
  return null;
}

/** The price of a model from Flow's own entries or the price table (no config), or null. */
export function priceOf(model: string): ModelPrice | null {
  const local = localPrice(model);
  if (local) return local;
  const entry = tableEntry(model);
  return entry ? flatPrice(entry.model_price) : null;
}

/** The price a job pays for `model`: its config's price, else Flow's entry or the table's. */
export function resolveModelPrice(model: string, configPrices?: ModelPrices | null): ModelPrice {
  if (configPrices && Object.hasOwn(configPrices, model)) return configPrices[model];
  const price = priceOf(model);
  if (!price) throw new UnknownModelPriceError(model);
  return price;
}

/** The provider's own figure of the call's cost in USD (`usage.cost` or `usage.cost_usd`, as some gateways add it), when it gave a valid one. */
export function reportedCost(usage: { cost?: unknown; cost_usd?: unknown; [field: string]: unknown } | undefined): number | null {
  for (const value of [usage?.cost, usage?.cost_usd]) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  }
  return null;
}

export interface CostOptions {
  /** What the provider said the call cost (e.g. a gateway's `usage.cost`); preferred when valid. */
  reportedCostUsd?: number | null;
  /** The job's own price for this model (from `config.prices`); else Flow's entry or the table's. */
  price?: ModelPrice | null;
}

/**
 * The cost of one call: the provider's own figure when it gave one, else the usage at the
 * job's price, Flow's entry or the table's (tiered prices exactly, by the call's size).
 * Throws UnknownModelPriceError for a model with no price.
 */
export function costOf(model: string, usage: TokenUsage, options: CostOptions = {}): number {
  const reported = options.reportedCostUsd;
  if (typeof reported === 'number' && Number.isFinite(reported) && reported >= 0) return reported;
  const linear = (price: ModelPrice) => (usage.prompt_tokens * price.input_usd_per_mtok + usage.completion_tokens * price.output_usd_per_mtok) / 1_000_000;
  if (options.price) return linear(options.price);
  const local = localPrice(model);
  if (local) return linear(local);
  // The table's own calculation, which applies tiered and dated prices by the call's size and date.
  const entry = tableEntry(model, usage);
  if (!entry || !flatPrice(entry.model_price)) throw new UnknownModelPriceError(model);
  return entry.total_price;
}
