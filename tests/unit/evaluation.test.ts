import {
  EVALUATION_KINDS,
  EstimateSchema,
  EvaluationEpisodeSchema,
  EvaluationMetricsSchema,
  EvaluationSummarySchema,
  WelchResultSchema,
  evaluationDue,
  evaluationSplit,
  heldOutIndices,
  splitIndices,
  type EvaluationEpisode,
} from '../../training/evaluation';
import {
  isSignificantImprovement,
  meanEstimate,
  proportionEstimate,
  SIGNIFICANCE_LEVEL,
  summarizeEpisodes,
  welchTTest,
} from '../../training/evaluationStatistics';
import { GRPOConfigSchema } from '../../training/grpoConfig';
import type { Task } from '../../training/task';

const tasks = (n: number): Task[] => Array.from({ length: n }, (_, i) => ({ id: `q${i}`, prompt: `question ${i}` }));
const config = (overrides: Record<string, unknown> = {}) => GRPOConfigSchema.parse(overrides);

describe('held-out split', () => {
  it('holds out 20% for validation and 20% for test by default, the same queries for the same seed, the three splits disjoint', () => {
    const input = { training_queries: tasks(30), evaluation_queries: [], config: config({ seed: 11 }) };
    const split = evaluationSplit(input);
    expect(split.heldOut).toHaveLength(6);
    expect(split.test).toHaveLength(6);
    expect(split.trainingIndices).toHaveLength(18);
    const heldIds = new Set(split.heldOut.map((t) => t.id));
    const testIds = new Set(split.test.map((t) => t.id));
    expect(split.trainingIndices.some((i) => heldIds.has(input.training_queries[i].id) || testIds.has(input.training_queries[i].id))).toBe(false);
    expect([...testIds].some((id) => heldIds.has(id))).toBe(false);
    expect(heldIds.size + testIds.size + split.trainingIndices.length).toBe(30);
    // The validation split is what the two-way split held out, so old jobs keep their held-out queries.
    const twoWay = evaluationSplit(input, { withTest: false });
    expect(twoWay).toEqual({ trainingIndices: expect.any(Array), heldOut: split.heldOut, test: [] });
    expect(twoWay.trainingIndices).toHaveLength(24);
    expect(evaluationSplit({ ...input, config: config({ seed: 11, test_fraction: 0 }) })).toEqual(twoWay);
    expect(evaluationSplit(input)).toEqual(split);
    const other = evaluationSplit({ ...input, config: config({ seed: 12 }) });
    expect(other.heldOut.map((t) => t.id)).not.toEqual(split.heldOut.map((t) => t.id));
  });

  it('keeps at least one query on each side, and holds none out of a single query', () => {
    expect(heldOutIndices(2, 0.2, 0)).toHaveLength(1);
    expect(heldOutIndices(3, 0.9, 0)).toHaveLength(2);
    expect(heldOutIndices(1, 0.5, 0)).toEqual([]);
    expect(heldOutIndices(0, 0.5, 0)).toEqual([]);
    // The test split gives way first: someone must be left to train on.
    expect(splitIndices(2, 0.2, 0.2, 0)).toMatchObject({ test: [] });
    expect(splitIndices(3, 0.2, 0.2, 0).test).toHaveLength(1);
    expect(splitIndices(10, 0.5, 0.5, 0)).toMatchObject({ validation: expect.any(Array), test: expect.any(Array) });
    expect(splitIndices(10, 0.5, 0.5, 0).test).toHaveLength(4);
    expect(splitIndices(1, 0.2, 0.2, 0)).toEqual({ validation: [], test: [] });
    const indices = heldOutIndices(50, 0.3, 4);
    expect(indices).toHaveLength(15);
    expect([...indices].sort((a, b) => a - b)).toEqual(indices);
  });

  it('uses explicit evaluation queries, divided between validation and test, and trains on every training query', () => {
    const evaluation = tasks(4).map((t) => ({ ...t, id: `e-${t.id}` }));
    const split = evaluationSplit({ training_queries: tasks(5), evaluation_queries: evaluation, config: config() });
    expect(split.trainingIndices).toEqual([0, 1, 2, 3, 4]);
    expect(split.heldOut).toHaveLength(2);
    expect(split.test).toHaveLength(2);
    expect([...split.heldOut, ...split.test].map((t) => t.id).sort()).toEqual(evaluation.map((t) => t.id).sort());
    // One evaluation query, no test split, or the two-way split: all of them validate.
    expect(evaluationSplit({ training_queries: tasks(5), evaluation_queries: evaluation.slice(0, 1), config: config() })).toEqual({ trainingIndices: [0, 1, 2, 3, 4], heldOut: evaluation.slice(0, 1), test: [] });
    expect(evaluationSplit({ training_queries: tasks(5), evaluation_queries: evaluation, config: config({ test_fraction: 0 }) }).test).toEqual([]);
    expect(evaluationSplit({ training_queries: tasks(5), evaluation_queries: evaluation, config: config() }, { withTest: false }).heldOut).toEqual(evaluation);
  });

  it('refuses a bad count or fraction with a message naming it', () => {
    expect(() => heldOutIndices(-1, 0.2, 0)).toThrow('count must be a non-negative integer, got -1');
    expect(() => heldOutIndices(2.5, 0.2, 0)).toThrow('count must be');
    expect(() => heldOutIndices(10, 0, 0)).toThrow('fraction must be in (0, 1), got 0');
    expect(() => heldOutIndices(10, 1, 0)).toThrow('fraction must be in (0, 1), got 1');
    expect(() => splitIndices(10, 0.2, 1, 0)).toThrow('test fraction must be in [0, 1), got 1');
    expect(() => splitIndices(10, 0.2, -0.1, 0)).toThrow('test fraction must be in [0, 1), got -0.1');
  });

  it('is due every eval_interval iterations and at the last one', () => {
    const due = Array.from({ length: 12 }, (_, i) => i + 1).filter((i) => evaluationDue(i, { eval_interval: 5, iterations: 12 }));
    expect(due).toEqual([5, 10, 12]);
  });
});

describe('confidence intervals', () => {
  it('gives a t interval for a mean (reference: mean 5, sd sqrt(2.5), t(0.975, 4) = 2.7764451)', () => {
    const estimate = meanEstimate([3, 4, 5, 6, 7]);
    const half = 2.7764451051977987 * (Math.sqrt(2.5) / Math.sqrt(5));
    expect(estimate.value).toBe(5);
    expect(estimate.ci_low).toBeCloseTo(5 - half, 10);
    expect(estimate.ci_high).toBeCloseTo(5 + half, 10);
    expect(estimate.n).toBe(5);
  });

  it('has no interval below two observations', () => {
    expect(meanEstimate([])).toEqual({ value: 0, ci_low: null, ci_high: null, n: 0 });
    expect(meanEstimate([0.4])).toEqual({ value: 0.4, ci_low: null, ci_high: null, n: 1 });
  });

  it('gives the Wilson interval for a proportion (reference: 8/10 -> [0.4902, 0.9433], Wilson 1927)', () => {
    const estimate = proportionEstimate(8, 10);
    expect(estimate.value).toBe(0.8);
    expect(estimate.ci_low).toBeCloseTo(0.4902, 4);
    expect(estimate.ci_high).toBeCloseTo(0.9433, 4);
    expect(proportionEstimate(0, 0)).toEqual({ value: 0, ci_low: null, ci_high: null, n: 0 });
    const none = proportionEstimate(0, 20);
    expect(none.ci_low).toBe(0);
    expect(none.ci_high).toBeGreaterThan(0);
  });
});

describe("Welch's t-test", () => {
  it('matches an independent reference (Wikipedia "Welch\'s t-test", example 1)', () => {
    // Source: https://en.wikipedia.org/wiki/Welch%27s_t-test#Examples (t = -2.46, df = 25.0,
    // p = 0.021); computed independently with SciPy 1.17.1:
    // scipy.stats.ttest_ind(a1, a2, equal_var=False) -> t = -2.455356398286006,
    // p = 0.021378001462866992, df = 24.988529290231416.
    const a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4];
    const a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4];
    const result = welchTTest(a1, a2);
    expect(result.t).toBeCloseTo(-2.455356398286006, 9);
    expect(result.df).toBeCloseTo(24.988529290231416, 9);
    expect(result.p).toBeCloseTo(0.021378001462866992, 9);
    expect(result.mean_difference).toBeCloseTo(-2.1666666666666714, 9);
  });

  it('decides constant samples directly instead of answering NaN', () => {
    expect(welchTTest([1, 1, 1], [1, 1])).toEqual({ t: 0, df: 3, p: 1, mean_difference: 0 });
    expect(welchTTest([1, 1], [0, 0])).toEqual({ t: null, df: null, p: 0, mean_difference: 1 });
  });

  it('needs two values on each side', () => {
    expect(() => welchTTest([1], [1, 2])).toThrow('each sample needs at least two values, got 1 and 2');
  });

  it('calls an improvement significant only when the trained mean is higher and p < alpha', () => {
    expect(isSignificantImprovement({ t: 5, df: 10, p: SIGNIFICANCE_LEVEL / 10, mean_difference: 0.3 })).toBe(true);
    expect(isSignificantImprovement({ t: -5, df: 10, p: SIGNIFICANCE_LEVEL / 10, mean_difference: -0.3 })).toBe(false);
    expect(isSignificantImprovement({ t: 1, df: 10, p: SIGNIFICANCE_LEVEL, mean_difference: 0.1 })).toBe(false);
  });
});

describe('episode summaries', () => {
  const episode = (overrides: Partial<EvaluationEpisode>): EvaluationEpisode => ({
    reward: 0,
    success: false,
    steps: 1,
    scored_tool_calls: 0,
    correct_tool_calls: 0,
    error: null,
    ...overrides,
  });

  it('computes success rate, reward, steps and tool accuracy with their intervals', () => {
    const metrics = summarizeEpisodes([
      episode({ reward: 1, success: true, steps: 3, scored_tool_calls: 1, correct_tool_calls: 1 }),
      episode({ reward: 0.2, steps: 2, scored_tool_calls: 2, correct_tool_calls: 0 }),
      episode({ reward: 0, steps: 0, error: 'timed out after 5s' }),
      episode({ reward: 0.9, success: true, steps: 4, scored_tool_calls: 1, correct_tool_calls: 1 }),
    ]);
    expect(metrics.success_rate.value).toBe(0.5);
    expect(metrics.avg_reward.value).toBeCloseTo(0.525, 10);
    expect(metrics.avg_steps.value).toBe(2.25);
    expect(metrics.tool_accuracy?.value).toBe(0.5);
    expect(metrics.tool_accuracy?.n).toBe(4);
    expect(metrics.episodes).toBe(4);
    expect(metrics.failed_episodes).toBe(1);
    expect(metrics.avg_reward.ci_low).toBeLessThan(0.525);
  });

  it('has no tool accuracy when no task names its correct tool', () => {
    expect(summarizeEpisodes([episode({}), episode({})]).tool_accuracy).toBeNull();
  });
});

describe('evaluation schemas', () => {
  const episode: EvaluationEpisode = { reward: 0.5, success: true, steps: 2, scored_tool_calls: 1, correct_tool_calls: 1, error: null };

  it('accept what the statistics produce and refuse a reward outside [0, 1]', () => {
    expect(EvaluationEpisodeSchema.parse(episode)).toEqual(episode);
    expect(EvaluationEpisodeSchema.safeParse({ ...episode, reward: 1.5 }).success).toBe(false);
    const metrics = summarizeEpisodes([episode, { ...episode, reward: 0.1, success: false }]);
    expect(EvaluationMetricsSchema.parse(metrics)).toEqual(metrics);
    expect(EstimateSchema.parse(metrics.avg_reward)).toEqual(metrics.avg_reward);
    const welch = welchTTest([0.5, 0.6, 0.9], [0.1, 0.2, 0.1]);
    expect(WelchResultSchema.parse(welch)).toEqual(welch);
    const summary = {
      job_id: 'j',
      run: 1,
      iteration: 10,
      kind: EVALUATION_KINDS[0],
      held_out_queries: 1,
      samples_per_query: 2,
      current: metrics,
      baseline: metrics,
      welch,
      alpha: SIGNIFICANCE_LEVEL,
      significant_improvement: isSignificantImprovement(welch),
      cost_usd: 0,
    };
    expect(EvaluationSummarySchema.parse(summary)).toEqual(summary);
    expect(EvaluationSummarySchema.safeParse({ ...summary, kind: 'weekly' }).success).toBe(false);
  });
});
