/**
 * Prices from the maintained table (@pydantic/genai-prices, its bundled data: nothing is
 * fetched), Flow's entry for the simulated model, a job's config.prices, and the provider's own
 * figure of a call's cost when it gives one.
 */
import { costOf, priceOf, reportedCost, resolveModelPrice, UnknownModelPriceError } from '../../adapters/llm/pricing';

const fetchSpy = jest.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('no network in unit tests'));
afterAll(() => fetchSpy.mockRestore());
afterEach(() => expect(fetchSpy).not.toHaveBeenCalled());

const usage = (prompt_tokens: number, completion_tokens: number) => ({ prompt_tokens, completion_tokens });

describe('the price table', () => {
  it.each([
    ['gpt-4o-mini', 0.15, 0.6],
    ['gpt-4o', 2.5, 10],
    ['claude-3-5-haiku-latest', 0.8, 4],
  ])('knows %s: $%p in, $%p out per million tokens', (model, input, output) => {
    expect(resolveModelPrice(model)).toEqual({ input_usd_per_mtok: input, output_usd_per_mtok: output });
  });

  it('takes a provider given with the name, as openai/… or Portkey’s @openai/…', () => {
    expect(priceOf('openai/gpt-4o-mini')).toEqual(priceOf('gpt-4o-mini'));
    expect(priceOf('@anthropic/claude-3-5-haiku-latest')).toEqual(priceOf('claude-3-5-haiku-latest'));
    // Not a provider of the table (a Portkey integration slug): the whole name is matched.
    expect(priceOf('@openai-prod/gpt-4o-mini')).toEqual(priceOf('gpt-4o-mini'));
    expect(priceOf('@acme/acme-ft-1')).toBeNull();
  });

  it('prices a tiered model at its highest tier for worst cases, and each call at its own tier', () => {
    // gemini-2.5-pro: $1.25/$10 per M up to 200k prompt tokens, $2.5/$15 beyond.
    expect(resolveModelPrice('gemini-2.5-pro')).toEqual({ input_usd_per_mtok: 2.5, output_usd_per_mtok: 15 });
    expect(costOf('gemini-2.5-pro', usage(1_000, 100))).toBeCloseTo((1_000 * 1.25 + 100 * 10) / 1e6, 12);
  });

  it('costs a call from the table by its usage', () => {
    expect(costOf('gpt-4o-mini', usage(1_000_000, 1_000_000))).toBeCloseTo(0.75, 12);
    expect(costOf('openai/gpt-4o', usage(2_000, 500))).toBeCloseTo((2_000 * 2.5 + 500 * 10) / 1e6, 12);
  });
});

describe('flow-sim-1, the simulated model', () => {
  it('is priced like a small hosted model', () => {
    expect(resolveModelPrice('flow-sim-1')).toEqual({ input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 });
    expect(costOf('flow-sim-1', usage(1_000, 200))).toBeCloseTo((1_000 * 0.5 + 200 * 1.5) / 1e6, 12);
  });
});

describe('config.prices', () => {
  const prices = { 'gpt-4o-mini': { input_usd_per_mtok: 1, output_usd_per_mtok: 2 }, 'acme-ft-1': { input_usd_per_mtok: 3, output_usd_per_mtok: 4 } };

  it('overrides the table, and prices models the table does not list', () => {
    expect(resolveModelPrice('gpt-4o-mini', prices)).toEqual({ input_usd_per_mtok: 1, output_usd_per_mtok: 2 });
    expect(resolveModelPrice('acme-ft-1', prices)).toEqual({ input_usd_per_mtok: 3, output_usd_per_mtok: 4 });
    expect(resolveModelPrice('gpt-4o', prices)).toEqual({ input_usd_per_mtok: 2.5, output_usd_per_mtok: 10 });
    expect(resolveModelPrice('flow-sim-1', null)).toEqual({ input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 });
    expect(costOf('acme-ft-1', usage(1_000_000, 1_000_000), { price: prices['acme-ft-1'] })).toBeCloseTo(7, 12);
  });

  it('is looked up by own keys only', () => {
    expect(() => resolveModelPrice('toString', {})).toThrow(UnknownModelPriceError);
  });
});

describe('a model with no price', () => {
  it('is a clear error that says how to give one', () => {
    expect(priceOf('acme-ft-1')).toBeNull();
    expect(() => resolveModelPrice('acme-ft-1')).toThrow(new UnknownModelPriceError('acme-ft-1'));
    expect(() => resolveModelPrice('acme-ft-1', { other: { input_usd_per_mtok: 1, output_usd_per_mtok: 1 } })).toThrow(
      'no known price for model acme-ft-1; give config.prices["acme-ft-1"]',
    );
    expect(() => costOf('acme-ft-1', usage(10, 10))).toThrow(UnknownModelPriceError);
    const error = new UnknownModelPriceError('x');
    expect([error.name, error.model]).toEqual(['UnknownModelPriceError', 'x']);
  });
});

describe('the provider’s own cost', () => {
  it('is preferred to the price table when valid', () => {
    expect(costOf('gpt-4o', usage(1_000_000, 0), { reportedCostUsd: 0.0123 })).toBe(0.0123);
    expect(costOf('acme-ft-1', usage(1, 1), { reportedCostUsd: 0 })).toBe(0);
    expect(costOf('flow-sim-1', usage(1_000, 0), { reportedCostUsd: 1, price: { input_usd_per_mtok: 9, output_usd_per_mtok: 9 } })).toBe(1);
  });

  it('is ignored when missing or invalid', () => {
    for (const reportedCostUsd of [null, undefined, Number.NaN, -1, Infinity]) {
      expect(costOf('flow-sim-1', usage(1_000_000, 0), { reportedCostUsd })).toBeCloseTo(0.5, 12);
    }
  });

  it('is read from a completion’s usage.cost or usage.cost_usd', () => {
    expect(reportedCost({ prompt_tokens: 1, completion_tokens: 1, cost: 0.002 })).toBe(0.002);
    expect(reportedCost({ cost_usd: 0.003 })).toBe(0.003);
    expect(reportedCost({ cost: '0.002', cost_usd: -1 })).toBeNull();
    expect(reportedCost({ prompt_tokens: 1 })).toBeNull();
    expect(reportedCost(undefined)).toBeNull();
  });
});
