import { MAX_OPTIMIZER_ATTEMPTS } from '../../training/lessonOperations';
import {
  admissionRefusal,
  budgetRanOutReason,
  iterationEvaluationQueries,
  judgeAllowanceUsd,
  policyUpdateAllowanceUsd,
  iterationReserve,
  OPTIMIZER_PROMPT_TOKENS,
  reserveRefusal,
  alertsToRaise,
  BUDGET_ALERT_THRESHOLDS,
  callWorstCaseUsd,
  DEFAULT_PROMPT_TOKEN_BOUND,
  formatUsd,
  iterationWorstCaseUsd,
  MAX_BUDGET_USD,
  type ModelPrice,
  ModelPriceSchema,
  policyUpdateWorstCaseUsd,
  preflight,
  PROMPT_TOKEN_MARGIN,
  promptTokenBound,
  roundUsdCents,
  trajectoryWorstCaseUsd,
  validateBudgetRaise,
} from '../../training/budget';
import { GRPOConfigSchema } from '../../training/grpoConfig';

const sim: ModelPrice = { input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 };
const big: ModelPrice = { input_usd_per_mtok: 2.5, output_usd_per_mtok: 10 };

describe('ModelPrice', () => {
  it('accepts non-negative prices per million tokens and nothing else', () => {
    expect(ModelPriceSchema.parse(sim)).toEqual(sim);
    expect(ModelPriceSchema.safeParse({ input_usd_per_mtok: 0, output_usd_per_mtok: 0 }).success).toBe(true);
    expect(ModelPriceSchema.safeParse({ input_usd_per_mtok: -1, output_usd_per_mtok: 1 }).success).toBe(false);
    expect(ModelPriceSchema.safeParse({ input_usd_per_mtok: 1, output_usd_per_mtok: Infinity }).success).toBe(false);
    expect(ModelPriceSchema.safeParse({ input_usd_per_mtok: 1 }).success).toBe(false);
    expect(ModelPriceSchema.safeParse({ ...sim, currency: 'EUR' }).success).toBe(false);
  });

  it('is the type of config.prices, which is optional and holds at most 20 models', () => {
    expect(GRPOConfigSchema.parse({}).prices).toBeUndefined();
    expect(GRPOConfigSchema.parse({ prices: { 'acme-ft-1': big } }).prices).toEqual({ 'acme-ft-1': big });
    expect(GRPOConfigSchema.safeParse({ prices: { 'acme-ft-1': { input_usd_per_mtok: 1 } } }).success).toBe(false);
    expect(GRPOConfigSchema.safeParse({ prices: { '': sim } }).success).toBe(false);
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`m${i}`, sim]));
    expect(GRPOConfigSchema.safeParse({ prices: many }).success).toBe(false);
  });

  it('MAX_BUDGET_USD is the config maximum', () => {
    expect(GRPOConfigSchema.safeParse({ budget_usd: MAX_BUDGET_USD }).success).toBe(true);
    expect(GRPOConfigSchema.safeParse({ budget_usd: MAX_BUDGET_USD + 0.01 }).success).toBe(false);
  });
});

describe('worst cases', () => {
  it('a call: the whole prompt bound in, max_tokens out', () => {
    // 1,000 prompt tokens at $0.5/M + 512 completion tokens at $1.5/M
    expect(callWorstCaseUsd(sim, 512, 1000)).toBeCloseTo(0.0005 + 0.000768, 12);
    expect(callWorstCaseUsd(big, 0, 0)).toBe(0);
  });

  it('the prompt bound is the largest prompt seen with a margin, or the default before any call', () => {
    expect(promptTokenBound(null)).toBe(DEFAULT_PROMPT_TOKEN_BOUND);
    expect(promptTokenBound(null, 32_000)).toBe(32_000);
    expect(promptTokenBound(1001)).toBe(Math.ceil(1001 * PROMPT_TOKEN_MARGIN));
    expect(promptTokenBound(0)).toBe(0);
    expect(promptTokenBound(Number.NaN)).toBe(DEFAULT_PROMPT_TOKEN_BOUND);
    expect(promptTokenBound(-5)).toBe(DEFAULT_PROMPT_TOKEN_BOUND);
  });

  it('a trajectory is max_steps calls, a policy update every attempt', () => {
    expect(trajectoryWorstCaseUsd({ max_steps: 6, max_tokens: 512, price: sim, promptTokens: 1000 })).toBeCloseTo(6 * callWorstCaseUsd(sim, 512, 1000), 12);
    expect(policyUpdateWorstCaseUsd({ optimizer_attempts: 3, max_tokens: 512, price: big, promptTokens: 4000 })).toBeCloseTo(
      3 * callWorstCaseUsd(big, 512, 4000),
      12,
    );
  });

  it('an iteration is every agent call of the batch plus every policy-update attempt', () => {
    const input = {
      batch_size: 4,
      group_size: 8,
      max_steps: 6,
      max_tokens: 512,
      optimizer_attempts: 3,
      agent: { price: sim, promptTokens: 1000 },
      optimizer: { price: big, promptTokens: 4000 },
    };
    const agentCalls = 4 * 8 * 6;
    const expected = agentCalls * callWorstCaseUsd(sim, 512, 1000) + 3 * callWorstCaseUsd(big, 512, 4000);
    expect(iterationWorstCaseUsd(input)).toBeCloseTo(expected, 12);
    // By hand: 192 × (1000×0.5 + 512×1.5)/1e6 + 3 × (4000×2.5 + 512×10)/1e6
    expect(iterationWorstCaseUsd(input)).toBeCloseTo(192 * 0.001268 + 3 * 0.01512, 12);
  });
});

describe('preflight', () => {
  it('starts a batch whose worst case stays within the budget, reaching it exactly included', () => {
    expect(preflight(2, 3, 10)).toEqual({ ok: true, shortfall_usd: 0 });
    expect(preflight(7, 3, 10)).toEqual({ ok: true, shortfall_usd: 0 });
    // 0.1 + 0.2 is 0.30000000000000004 in floating point: still within a $0.30 budget.
    expect(preflight(0.1, 0.2, 0.3)).toEqual({ ok: true, shortfall_usd: 0 });
  });

  it('refuses one whose worst case could cross it, and says by how much', () => {
    expect(preflight(7.5, 3, 10)).toEqual({ ok: false, shortfall_usd: 0.5 });
    expect(preflight(10, 0.000001, 10)).toEqual({ ok: false, shortfall_usd: 0.000001 });
    expect(preflight(12, 0, 10)).toEqual({ ok: false, shortfall_usd: 2 });
  });
});

describe('alerts', () => {
  it('are raised at 75% and 90% of the budget', () => {
    expect(BUDGET_ALERT_THRESHOLDS).toEqual([0.75, 0.9]);
  });

  it('each threshold newly crossed, once', () => {
    expect(alertsToRaise(7.49, 10, [])).toEqual([]);
    expect(alertsToRaise(7.5, 10, [])).toEqual([0.75]);
    expect(alertsToRaise(8, 10, [0.75])).toEqual([]);
    expect(alertsToRaise(9, 10, [0.75])).toEqual([0.9]);
    expect(alertsToRaise(9.5, 10, [])).toEqual([0.75, 0.9]);
    expect(alertsToRaise(12, 10, [0.75, 0.9])).toEqual([]);
  });

  it('compares in micro-dollars, not raw floating point', () => {
    // 0.9 × 0.3 is 0.27000000000000002; a spend of 0.27 has reached it.
    expect(alertsToRaise(0.1 + 0.17, 0.3, [0.75])).toEqual([0.9]);
  });
});

describe('validateBudgetRaise', () => {
  it('accepts a finite number above the current budget, up to the maximum', () => {
    expect(validateBudgetRaise(10, 10.01)).toBeNull();
    expect(validateBudgetRaise(10, MAX_BUDGET_USD)).toBeNull();
  });

  it.each([
    [Number.NaN, 'finite number (got NaN)'],
    [Infinity, 'finite number (got Infinity)'],
    ['20', 'finite number (got 20)'],
    [null, 'finite number (got null)'],
    [0, 'must be positive (got 0)'],
    [-5, 'must be positive (got -5)'],
    [10, 'greater than the current budget of $10.00 (got 10)'],
    [9.5, 'greater than the current budget of $10.00 (got 9.5)'],
    [MAX_BUDGET_USD + 1, 'at most $1,000,000.00 (got 1000001)'],
  ])('refuses %p', (proposed, message) => {
    expect(validateBudgetRaise(10, proposed)).toContain(message);
  });
});

describe('money to the cent', () => {
  it('rounds half away from zero, without floating-point surprises', () => {
    expect(roundUsdCents(1.005)).toBe(1.01);
    expect(roundUsdCents(0.004999)).toBe(0);
    expect(roundUsdCents(1234.5678)).toBe(1234.57);
    expect(roundUsdCents(-0.125)).toBe(-0.13);
    expect(Object.is(roundUsdCents(-0.001), 0)).toBe(true);
  });

  it('formats with a dollar sign and thousands separators', () => {
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(0.0042)).toBe('$0.00');
    expect(formatUsd(7.5)).toBe('$7.50');
    expect(formatUsd(1234.5)).toBe('$1,234.50');
    expect(formatUsd(1_000_000)).toBe('$1,000,000.00');
    expect(formatUsd(-0.25)).toBe('-$0.25');
  });
});

test('the policy-update reserve covers every attempt the updater may make', () => {
  const price = { input_usd_per_mtok: 1, output_usd_per_mtok: 2 };
  const reserve = policyUpdateWorstCaseUsd({ optimizer_attempts: MAX_OPTIMIZER_ATTEMPTS, max_tokens: 100, price, promptTokens: 1000 });
  expect(MAX_OPTIMIZER_ATTEMPTS).toBeGreaterThanOrEqual(1);
  expect(reserve).toBeCloseTo(MAX_OPTIMIZER_ATTEMPTS * callWorstCaseUsd(price, 100, 1000), 12);
});

describe('the worst-case reserve of jobs started before call admission', () => {
  const prices = { agent: { input_usd_per_mtok: 1, output_usd_per_mtok: 2 }, optimizer: { input_usd_per_mtok: 3, output_usd_per_mtok: 4 } };
  const base = { batch_size: 2, group_size: 4, max_steps: 3, max_tokens: 100, eval_samples: 2, optimizer_attempts: 3, prices, spend_usd: 1, budget_usd: 10 };
  const agentCall = callWorstCaseUsd(prices.agent, 100, DEFAULT_PROMPT_TOKEN_BOUND);
  const optimizerCall = callWorstCaseUsd(prices.optimizer, 100, OPTIMIZER_PROMPT_TOKENS);

  it('reserves every agent call and every optimizer attempt at their worst case, and splits what is left over the trajectories', () => {
    const reserve = iterationReserve({ ...base, evaluation_queries: 0 });
    expect(reserve.policyUpdate).toBeCloseTo(3 * optimizerCall, 12);
    expect(reserve.perEvaluationQuery).toBe(0);
    expect(reserve.total).toBeCloseTo(2 * 4 * 3 * agentCall + 3 * optimizerCall, 12);
    expect(reserve.perTrajectory).toBeCloseTo((10 - 1 - 3 * optimizerCall) / 8, 12);
  });

  it('adds the evaluation due: each query evaluation is eval_samples episodes at a trajectory’s worst case', () => {
    const reserve = iterationReserve({ ...base, evaluation_queries: 5 });
    expect(reserve.perEvaluationQuery).toBeCloseTo(2 * 3 * agentCall, 12);
    expect(reserve.total).toBeCloseTo(2 * 4 * 3 * agentCall + 3 * optimizerCall + 5 * 2 * 3 * agentCall, 12);
  });

  it('leaves the trajectories nothing when the budget is already spent', () => {
    expect(iterationReserve({ ...base, evaluation_queries: 0, spend_usd: 20 }).perTrajectory).toBe(0);
  });

  it('refuses an iteration whose worst case would cross the budget, saying by how much it could cost', () => {
    const reserve = iterationReserve({ ...base, evaluation_queries: 0 });
    expect(reserveRefusal(1, 10, 3, reserve)).toBeNull();
    expect(reserveRefusal(9.99, 10, 3, reserve)).toBe(`spent $9.99 of a $10.00 budget; iteration 3 could cost up to ${formatUsd(reserve.total)}, so it was not started`);
  });

  it('without a reserve (histories from before the pre-flight) stops only a spent budget, with the message of then', () => {
    expect(reserveRefusal(9.99, 10, 3, null)).toBeNull();
    expect(reserveRefusal(10, 10, 3, null, 10)).toBe('spent $10.0000 of a $10 budget before iteration 3');
  });
});

describe('the budget of one iteration, as the workflow asks for it', () => {
  const agentPrice = { input_usd_per_mtok: 1, output_usd_per_mtok: 2 };
  const oneCall = callWorstCaseUsd(agentPrice, 100, 0);
  const check = { spentUsd: 1, budgetUsd: 10, iteration: 4, evaluationEpisodes: 0, costliestTrajectoryUsd: 0.5, agentPrice, maxTokens: 100 };

  it('counts the query evaluations due: held-out with the baseline the first time, the test split for both policies', () => {
    const due = { heldOut: 5, test: 3, baselineDone: false, validation: false, testing: false };
    expect(iterationEvaluationQueries(due)).toBe(0);
    expect(iterationEvaluationQueries({ ...due, validation: true })).toBe(10);
    expect(iterationEvaluationQueries({ ...due, validation: true, baselineDone: true })).toBe(5);
    expect(iterationEvaluationQueries({ ...due, testing: true })).toBe(6);
    expect(iterationEvaluationQueries({ ...due, validation: true, baselineDone: true, testing: true })).toBe(11);
  });

  it('under call admission starts an iteration while one more call and the evaluation due fit, and says why not otherwise', () => {
    expect(admissionRefusal(check)).toBeNull();
    expect(admissionRefusal({ ...check, spentUsd: 10 - oneCall })).toBeNull();
    expect(admissionRefusal({ ...check, spentUsd: 10 - oneCall / 2 })).toBe(`spent ${formatUsd(10 - oneCall / 2)} of a $10.00 budget: not enough for one more model call before iteration 4`);
    // 16 episodes at the costliest trajectory so far: $8 with $9 left fits, with $7 left it does not.
    expect(admissionRefusal({ ...check, evaluationEpisodes: 16 })).toBeNull();
    expect(admissionRefusal({ ...check, spentUsd: 3, evaluationEpisodes: 16 })).toBe(
      'spent $3.00 of a $10.00 budget; the evaluation due with iteration 4 would cost about $8.00, so the iteration was not started',
    );
  });

  it('says why a job stopped when its calls were refused mid-iteration', () => {
    expect(budgetRanOutReason(10, 9.996, 3)).toBe('the $10.00 budget ran out during iteration 3 (spent $10.00): its model calls were refused, so the policy was not updated');
  });

  it('under a reserve, gives a judge what its group left of the allowances and the update what the groups left, never below 0', () => {
    const reserve = { total: 5, perEvaluationQuery: 0, perTrajectory: 0.25, policyUpdate: 1 };
    expect(judgeAllowanceUsd(reserve, [0.1, 0.2, 0.05, 0.15])).toBeCloseTo(0.5, 12);
    expect(judgeAllowanceUsd(reserve, [0.5, 0.5])).toBe(0);
    expect(policyUpdateAllowanceUsd(reserve, 2, 10)).toBe(1);
    expect(policyUpdateAllowanceUsd(reserve, 9.5, 10)).toBe(0.5);
    expect(policyUpdateAllowanceUsd(reserve, 11, 10)).toBe(0);
  });
});
