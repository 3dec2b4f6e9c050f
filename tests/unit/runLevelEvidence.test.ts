/**
 * The run-level (cluster-aware) evidence of an evaluation: queries, not episodes, are the unit.
 * Reference values are SciPy 1.17.1's (python3, scipy.stats), computed for these inputs:
 *
 *   cur  = [0.75, 1.0, 0.5, 0.25, 1.0, 0.75, 0.5, 1.0]; base = [0.25, 0.5, 0.5, 0.0, 0.75, 0.25, 0.5, 0.5]
 *   stats.ttest_rel(cur, base)          -> t = 3.9886201760873283, p = 0.005265691029161741, df = 7
 *   stats.bootstrap((cur - base,), np.mean, n_resamples=400000, method='percentile',
 *                   random_state=np.random.default_rng(0)).confidence_interval -> (0.15625, 0.4375)
 *   rewards: cr = [0.62, 0.91, 0.40, 0.33, 0.88, 0.71, 0.52, 0.95], br = [0.30, 0.55, 0.47, 0.12, 0.80, 0.28, 0.49, 0.51]
 *   stats.ttest_rel(cr, br)             -> t = 3.290725908572088, p = 0.013289245646460831
 *   stats.ttest_rel([0.5, 1, 0.25], [0.25, 0.25, 0.5]) -> t = 0.8660254037844387, p = 0.47776703213290644
 *
 * The bootstrap is Monte Carlo: ours (10,000 resamples, seeded) cannot equal SciPy's draw for
 * draw, so it must land within one lattice step (1/32: the differences are multiples of 1/4 over
 * 8 queries) of SciPy's 400,000-resample interval, and be identical on every call.
 */
import {
  BOOTSTRAP_RESAMPLES,
  BOOTSTRAP_SEED,
  bootstrapMeanInterval,
  familyBreakdown,
  isSignificantQueryImprovement,
  pairedQueryTest,
  perQueryMeans,
  runLevelEvidence,
} from '../../training/evaluationStatistics';
import { EVALUATION_SPLITS, EvaluationSummarySchema, FamilyBreakdownSchema, QueryPairedTestSchema, taskFamily, type EvaluationEpisode } from '../../training/evaluation';

const cur = [0.75, 1.0, 0.5, 0.25, 1.0, 0.75, 0.5, 1.0];
const base = [0.25, 0.5, 0.5, 0.0, 0.75, 0.25, 0.5, 0.5];

describe('paired t-test on per-query means (SciPy ttest_rel)', () => {
  test('success rates per query', () => {
    const test = pairedQueryTest('success', cur, base);
    expect(test.t).toBeCloseTo(3.9886201760873283, 10);
    expect(test.p).toBeCloseTo(0.005265691029161741, 12);
    expect(test.df).toBe(7);
    expect(test.queries).toBe(8);
    expect(test.mean_difference).toBeCloseTo(0.3125, 12);
    expect(QueryPairedTestSchema.parse(test)).toEqual(test);
  });

  test('rewards per query, and a small non-significant case', () => {
    const reward = pairedQueryTest('reward', [0.62, 0.91, 0.4, 0.33, 0.88, 0.71, 0.52, 0.95], [0.3, 0.55, 0.47, 0.12, 0.8, 0.28, 0.49, 0.51]);
    expect(reward.t).toBeCloseTo(3.290725908572088, 10);
    expect(reward.p).toBeCloseTo(0.013289245646460831, 12);
    const small = pairedQueryTest('success', [0.5, 1, 0.25], [0.25, 0.25, 0.5]);
    expect(small.t).toBeCloseTo(0.8660254037844387, 10);
    expect(small.p).toBeCloseTo(0.47776703213290644, 12);
    expect(isSignificantQueryImprovement(small)).toBe(false);
  });

  test('equal differences: all zero is no evidence, all equal and non-zero is certain; under two queries there is no test', () => {
    expect(pairedQueryTest('success', [0.5, 0.25], [0.5, 0.25])).toMatchObject({ t: 0, df: 1, p: 1, mean_difference: 0 });
    expect(pairedQueryTest('success', [0.75, 0.5], [0.5, 0.25])).toMatchObject({ t: null, df: 1, p: 0, mean_difference: 0.25 });
    expect(pairedQueryTest('success', [1], [0])).toEqual({ metric: 'success', queries: 1, mean_difference: 1, t: null, df: null, p: null, bootstrap: null });
    expect(pairedQueryTest('reward', [], [])).toMatchObject({ queries: 0, mean_difference: 0, p: null });
    expect(() => pairedQueryTest('success', [1, 0], [1])).toThrow('2 trained and 1 baseline query means');
  });
});

describe('bootstrap over queries (percentile, fixed seed)', () => {
  test('agrees with SciPy within one lattice step and is deterministic', () => {
    const differences = cur.map((c, i) => c - base[i]);
    const interval = bootstrapMeanInterval(differences);
    expect(Math.abs(interval.ci_low - 0.15625)).toBeLessThanOrEqual(1 / 32);
    expect(Math.abs(interval.ci_high - 0.4375)).toBeLessThanOrEqual(1 / 32);
    expect(bootstrapMeanInterval(differences)).toEqual(interval);
    expect(pairedQueryTest('success', cur, base).bootstrap).toEqual({ ...interval, resamples: BOOTSTRAP_RESAMPLES, seed: BOOTSTRAP_SEED });
    // Another seed is another Monte Carlo draw: near, not necessarily equal.
    const other = bootstrapMeanInterval(differences, BOOTSTRAP_RESAMPLES, 99);
    expect(Math.abs(other.ci_low - interval.ci_low)).toBeLessThanOrEqual(1 / 32);
  });

  test('one value, and refused inputs', () => {
    expect(bootstrapMeanInterval([0.3], 5)).toEqual({ ci_low: 0.3, ci_high: 0.3 });
    expect(bootstrapMeanInterval([0.3, 0.3], 1)).toEqual({ ci_low: 0.3, ci_high: 0.3 });
    expect(() => bootstrapMeanInterval([])).toThrow('expected at least one value');
    expect(() => bootstrapMeanInterval([1], 0)).toThrow('resamples must be a positive integer, got 0');
  });
});

describe('the verdict', () => {
  const significant = pairedQueryTest('success', cur, base);
  test('needs a positive difference, p < 0.05 and the interval above 0', () => {
    expect(isSignificantQueryImprovement(significant)).toBe(true);
    expect(isSignificantQueryImprovement(pairedQueryTest('success', base, cur))).toBe(false);
    expect(isSignificantQueryImprovement({ ...significant, bootstrap: { ...significant.bootstrap!, ci_low: 0 } })).toBe(false);
    expect(isSignificantQueryImprovement({ ...significant, bootstrap: null })).toBe(false);
    expect(isSignificantQueryImprovement({ ...significant, p: null })).toBe(false);
    expect(isSignificantQueryImprovement({ ...significant, p: 0.05 })).toBe(false);
  });
});

/** Episodes of `queries` queries, `samples` each; `succeeds(query, sample)` and `reward(query, sample)` decide them. */
function episodes(queries: number, samples: number, succeeds: (q: number, s: number) => boolean, reward: (q: number, s: number) => number, families: string[] = []): EvaluationEpisode[] {
  return Array.from({ length: queries * samples }, (_, i) => {
    const q = Math.floor(i / samples);
    const s = i % samples;
    return {
      reward: reward(q, s),
      success: succeeds(q, s),
      steps: 2,
      scored_tool_calls: 0,
      correct_tool_calls: 0,
      error: null,
      query_index: q,
      ...(families[q] ? { family: families[q] } : {}),
    };
  });
}

describe('run-level evidence of an evaluation', () => {
  test('verdict false when success does not improve while the shaped reward does (and status warns)', () => {
    // Both policies fail every query; the trained one ends early, which a per-step penalty rewards.
    const baseline = episodes(6, 4, () => false, (q, s) => 0.1 + 0.01 * ((q + s) % 3));
    const trained = episodes(6, 4, () => false, (q, s) => 0.19 + 0.01 * ((q + s) % 3));
    const evidence = runLevelEvidence(trained, baseline, 4);
    expect(evidence.reward_test.mean_difference).toBeCloseTo(0.09, 10);
    expect(isSignificantQueryImprovement(evidence.reward_test)).toBe(true);
    expect(evidence.success_test).toMatchObject({ mean_difference: 0, p: 1 });
    expect(evidence.significant_improvement).toBe(false);
    expect(evidence.warnings).toEqual([expect.stringMatching(/^the reward improved significantly \(\+0\.090 over 6 queries, p = .*\) but task success did not \(\+0\.000 over 6 queries, p = 1\.0\)/)]);
  });

  test('a reward that rises while success falls is named with the fall', () => {
    const baseline = episodes(6, 4, (q, s) => s === 0 && q % 2 === 0, (q, s) => 0.1 + 0.01 * ((q + s) % 3));
    const trained = episodes(6, 4, () => false, (q, s) => 0.9 + 0.01 * ((q + s) % 3));
    const evidence = runLevelEvidence(trained, baseline, 4);
    expect(evidence.significant_improvement).toBe(false);
    expect(evidence.warnings).toEqual([expect.stringContaining('but task success did not (-0.125 over 6 queries, p = ')]);
  });

  test('success improves on most queries: significant; per-family breakdown; a reward that does not follow is named', () => {
    const families = ['billing', 'billing', 'shipping', 'shipping', 'shipping', 'refund'];
    const baseline = episodes(6, 4, (q, s) => s === 0 && q % 2 === 0, () => 0.5, families);
    const trained = episodes(6, 4, (q, s) => s < 3 || q === 5, () => 0.5, families);
    const evidence = runLevelEvidence(trained, baseline, 4);
    expect(evidence.significant_improvement).toBe(true);
    expect(evidence.reward_test).toMatchObject({ mean_difference: 0, p: 1 });
    expect(evidence.warnings).toEqual([expect.stringMatching(/^task success improved significantly .* but the reward did not/)]);
    expect(evidence.families.map((f) => f.family)).toEqual(['billing', 'refund', 'shipping']);
    expect(evidence.families[0]).toEqual({ family: 'billing', queries: 2, episodes: 8, current_success_rate: 0.75, baseline_success_rate: 0.125, difference: 0.625 });
    expect(evidence.families[1]).toMatchObject({ family: 'refund', queries: 1, current_success_rate: 1, baseline_success_rate: 0 });
    for (const family of evidence.families) expect(FamilyBreakdownSchema.parse(family)).toEqual(family);
  });

  test('episodes without a recorded query or family (older baselines) are placed by their order; queries only one policy ran are left out', () => {
    const strip = (list: EvaluationEpisode[]) => list.map(({ query_index: _q, family: _f, ...rest }) => rest);
    const baseline = strip(episodes(3, 2, () => false, () => 0));
    const trained = episodes(4, 2, (q) => q !== 1, () => 1, ['a', 'a', 'b', 'c']);
    const queries = perQueryMeans(trained, baseline, 2);
    expect(queries.map((q) => q.query)).toEqual([0, 1, 2]);
    expect(queries.map((q) => q.family)).toEqual(['a', 'a', 'b']);
    expect(familyBreakdown(perQueryMeans(baseline, baseline, 2))).toEqual([
      { family: 'untagged', queries: 3, episodes: 6, current_success_rate: 0, baseline_success_rate: 0, difference: 0 },
    ]);
    // A family known only from the baseline's episodes still names the query.
    expect(perQueryMeans(strip(trained), episodes(1, 2, () => true, () => 1, ['z']), 2)[0].family).toBe('z');
  });

  test('the summary schema carries the evidence; older summaries without it still parse', () => {
    const metrics = { success_rate: { value: 0, ci_low: null, ci_high: null, n: 0 }, avg_reward: { value: 0, ci_low: null, ci_high: null, n: 0 }, avg_steps: { value: 0, ci_low: null, ci_high: null, n: 0 }, tool_accuracy: null, episodes: 0, failed_episodes: 0 };
    const old = { job_id: 'j', run: 1, iteration: 1, kind: 'scheduled', held_out_queries: 2, samples_per_query: 2, current: metrics, baseline: metrics, welch: { t: 0, df: 2, p: 1, mean_difference: 0 }, alpha: 0.05, significant_improvement: false, cost_usd: 0 };
    expect(EvaluationSummarySchema.parse(old)).toEqual(old);
    const evidence = runLevelEvidence(episodes(2, 2, () => true, () => 1), episodes(2, 2, () => false, () => 0), 2);
    expect(EVALUATION_SPLITS).toEqual(['validation', 'test']);
    const full = { ...old, kind: 'test', split: 'test', success_test: evidence.success_test, reward_test: evidence.reward_test, families: evidence.families, warnings: evidence.warnings };
    expect(EvaluationSummarySchema.parse(full)).toEqual(full);
  });
});

test('taskFamily: the family field, else the [tag], else untagged', () => {
  expect(taskFamily({ family: 'billing', prompt: '[shipping] x' })).toBe('billing');
  expect(taskFamily({ prompt: '  [shipping] How long?' })).toBe('shipping');
  expect(taskFamily({ prompt: 'How long? [shipping]' })).toBe('untagged');
});
