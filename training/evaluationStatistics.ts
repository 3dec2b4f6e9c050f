import ttest from '@stdlib/stats-ttest';
import ttest2 from '@stdlib/stats-ttest2';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import { mean, sampleStandardDeviation, variance } from 'simple-statistics';
import type { Estimate, EvaluationEpisode, EvaluationMetrics, FamilyBreakdown, QueryPairedTest, WelchResult } from './evaluation';
import { seededRandom } from './statistics';

/**
 * FLOW-010, the statistics of an evaluation: 95% confidence intervals, Welch's t-test per
 * episode and, for the verdict, a paired t-test and a bootstrap over queries (the t-tests from
 * @stdlib, not hand-written). Imported by activities and benchmarks; the workflow never runs these.
 */

/** Two-sided significance level of the trained-versus-baseline verdict. */
export const SIGNIFICANCE_LEVEL = 0.05;
const CONFIDENCE = 0.95;
/** The standard normal's 97.5% quantile, for the Wilson interval of a proportion. */
const Z_975 = 1.959963984540054;

/**
 * Mean with a t-based 95% interval (Student's t with n - 1 degrees of freedom), clamped to the
 * metric's `range` when it has one (rewards are in [0, 1]: an interval reaching 1.05 says nothing more).
 */
export function meanEstimate(xs: number[], range: { min: number; max: number } = { min: -Infinity, max: Infinity }): Estimate {
  if (xs.length === 0) return { value: 0, ci_low: null, ci_high: null, n: 0 };
  const value = mean(xs);
  if (xs.length < 2) return { value, ci_low: null, ci_high: null, n: xs.length };
  const half = tQuantile(1 - (1 - CONFIDENCE) / 2, xs.length - 1) * (sampleStandardDeviation(xs) / Math.sqrt(xs.length));
  return { value, ci_low: Math.max(range.min, value - half), ci_high: Math.min(range.max, value + half), n: xs.length };
}

/** The range of a reward (training/rewards.ts validates every one to it). */
export const REWARD_RANGE = { min: 0, max: 1 };

/** A proportion with its Wilson score 95% interval (sound near 0 and 1, unlike the normal one). */
export function proportionEstimate(successes: number, n: number): Estimate {
  if (n === 0) return { value: 0, ci_low: null, ci_high: null, n: 0 };
  const p = successes / n;
  const z2 = Z_975 * Z_975;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (Z_975 * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { value: p, ci_low: Math.max(0, centre - half), ci_high: Math.min(1, centre + half), n };
}

export function summarizeEpisodes(episodes: EvaluationEpisode[]): EvaluationMetrics {
  const scoredCalls = episodes.reduce((sum, e) => sum + e.scored_tool_calls, 0);
  const correctCalls = episodes.reduce((sum, e) => sum + e.correct_tool_calls, 0);
  return {
    success_rate: proportionEstimate(episodes.filter((e) => e.success).length, episodes.length),
    avg_reward: meanEstimate(episodes.map((e) => e.reward), REWARD_RANGE),
    avg_steps: meanEstimate(episodes.map((e) => e.steps), { min: 0, max: Infinity }),
    tool_accuracy: scoredCalls === 0 ? null : proportionEstimate(correctCalls, scoredCalls),
    episodes: episodes.length,
    failed_episodes: episodes.filter((e) => e.error !== null).length,
  };
}

/**
 * Welch's unequal-variance t-test (two-sided) of `current` against `baseline`. Two constant
 * samples make the statistic 0/0 or x/0, which the library reports as NaN; they are decided
 * directly: equal means, no evidence (p = 1); different means, certain (p = 0, t unknown).
 */
export function welchTTest(current: number[], baseline: number[]): WelchResult {
  if (current.length < 2 || baseline.length < 2) {
    throw new Error(`welchTTest: each sample needs at least two values, got ${current.length} and ${baseline.length}`);
  }
  const meanDifference = mean(current) - mean(baseline);
  if (variance(current) === 0 && variance(baseline) === 0) {
    return meanDifference === 0
      ? { t: 0, df: current.length + baseline.length - 2, p: 1, mean_difference: 0 }
      : { t: null, df: null, p: 0, mean_difference: meanDifference };
  }
  const result = ttest2(current, baseline, { variance: 'unequal', alternative: 'two-sided' });
  return { t: result.statistic, df: result.df, p: result.pValue, mean_difference: meanDifference };
}

/** The verdict: a higher mean reward, significant at SIGNIFICANCE_LEVEL. */
export function isSignificantImprovement(welch: WelchResult): boolean {
  return welch.mean_difference > 0 && welch.p < SIGNIFICANCE_LEVEL;
}

/** Resamples of the bootstrap over queries, and its fixed seed: the same episodes give the same interval. */
export const BOOTSTRAP_RESAMPLES = 10_000;
export const BOOTSTRAP_SEED = 14;

/**
 * Percentile bootstrap 95% interval of the mean of `xs`: `resamples` samples of xs.length values
 * drawn with replacement by a seeded generator; the 2.5% and 97.5% quantiles of their means
 * (linear interpolation between order statistics, numpy's default).
 */
export function bootstrapMeanInterval(xs: readonly number[], resamples: number = BOOTSTRAP_RESAMPLES, seed: number = BOOTSTRAP_SEED): { ci_low: number; ci_high: number } {
  if (xs.length === 0) throw new Error('bootstrapMeanInterval: expected at least one value, got none');
  if (!(Number.isInteger(resamples) && resamples >= 1)) throw new Error(`bootstrapMeanInterval: resamples must be a positive integer, got ${resamples}`);
  const random = seededRandom(`bootstrap:${seed}`);
  const means = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let sum = 0;
    for (let i = 0; i < xs.length; i++) sum += xs[Math.floor(random() * xs.length)];
    means[b] = sum / xs.length;
  }
  means.sort();
  return { ci_low: sortedQuantile(means, 0.025), ci_high: sortedQuantile(means, 0.975) };
}

function sortedQuantile(sorted: Float64Array, q: number): number {
  const h = (sorted.length - 1) * q;
  const low = Math.floor(h);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low] + (h - low) * (sorted[high] - sorted[low]);
}

/**
 * The paired comparison with queries as the unit: `current[i]` and `baseline[i]` are query i's
 * per-query means under each policy. A paired t-test of the differences (two-sided, @stdlib's
 * one-sample test of the differences against 0, which is what a paired test is) and the
 * bootstrap interval of their mean. Equal differences make t 0/0 or x/0: all zero is no
 * evidence (p = 1); all equal and non-zero is certain (p = 0, t undefined).
 */
export function pairedQueryTest(
  metric: QueryPairedTest['metric'],
  current: readonly number[],
  baseline: readonly number[],
  options: { resamples?: number; seed?: number } = {},
): QueryPairedTest {
  if (current.length !== baseline.length) throw new Error(`pairedQueryTest: ${current.length} trained and ${baseline.length} baseline query means; they must pair up`);
  const differences = current.map((value, i) => value - baseline[i]);
  const queries = differences.length;
  const meanDifference = queries === 0 ? 0 : mean(differences);
  if (queries < 2) return { metric, queries, mean_difference: meanDifference, t: null, df: null, p: null, bootstrap: null };
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const seed = options.seed ?? BOOTSTRAP_SEED;
  const bootstrap = { ...bootstrapMeanInterval(differences, resamples, seed), resamples, seed };
  const df = queries - 1;
  if (variance(differences) === 0) {
    return meanDifference === 0
      ? { metric, queries, mean_difference: 0, t: 0, df, p: 1, bootstrap }
      : { metric, queries, mean_difference: meanDifference, t: null, df, p: 0, bootstrap };
  }
  const result = ttest(differences, { alternative: 'two-sided' });
  return { metric, queries, mean_difference: meanDifference, t: result.statistic, df: result.df, p: result.pValue, bootstrap };
}

/**
 * A significant improvement on the run level: the mean per-query difference is positive, the
 * paired test's p is below SIGNIFICANCE_LEVEL and the bootstrap interval lies above 0.
 */
export function isSignificantQueryImprovement(test: QueryPairedTest): boolean {
  return test.mean_difference > 0 && test.p !== null && test.p < SIGNIFICANCE_LEVEL && test.bootstrap !== null && test.bootstrap.ci_low > 0;
}

/** An episode's query: its recorded index, else its position (episodes come query by query). */
function queryOf(episode: EvaluationEpisode, position: number, samplesPerQuery: number): number {
  return episode.query_index ?? Math.floor(position / samplesPerQuery);
}

interface QueryMeans {
  query: number;
  family: string;
  current: { success: number; reward: number; episodes: number };
  baseline: { success: number; reward: number; episodes: number };
}

/** Per-query means of both policies, for the queries both ran, in query order. */
export function perQueryMeans(current: readonly EvaluationEpisode[], baseline: readonly EvaluationEpisode[], samplesPerQuery: number): QueryMeans[] {
  const group = (episodes: readonly EvaluationEpisode[]) => {
    const byQuery = new Map<number, EvaluationEpisode[]>();
    episodes.forEach((episode, position) => {
      const query = queryOf(episode, position, samplesPerQuery);
      byQuery.set(query, [...(byQuery.get(query) ?? []), episode]);
    });
    return byQuery;
  };
  const means = (episodes: EvaluationEpisode[]) => ({
    success: episodes.filter((e) => e.success).length / episodes.length,
    reward: mean(episodes.map((e) => e.reward)),
    episodes: episodes.length,
  });
  const trained = group(current);
  const untrained = group(baseline);
  return [...trained.keys()]
    .filter((query) => untrained.has(query))
    .sort((a, b) => a - b)
    .map((query) => {
      const ours = trained.get(query)!;
      const theirs = untrained.get(query)!;
      return { query, family: ours[0].family ?? theirs[0].family ?? 'untagged', current: means(ours), baseline: means(theirs) };
    });
}

/** Success by family, families in name order; each family's rates are means over its queries. */
export function familyBreakdown(queries: readonly QueryMeans[]): FamilyBreakdown[] {
  const families = [...new Set(queries.map((q) => q.family))].sort();
  return families.map((family) => {
    const mine = queries.filter((q) => q.family === family);
    const current = mean(mine.map((q) => q.current.success));
    const baseline = mean(mine.map((q) => q.baseline.success));
    return {
      family,
      queries: mine.length,
      episodes: mine.reduce((sum, q) => sum + q.current.episodes, 0),
      current_success_rate: current,
      baseline_success_rate: baseline,
      difference: mean(mine.map((q) => q.current.success - q.baseline.success)),
    };
  });
}

export interface RunLevelEvidence {
  success_test: QueryPairedTest;
  reward_test: QueryPairedTest;
  families: FamilyBreakdown[];
  significant_improvement: boolean;
  warnings: string[];
}

/** For warnings, which only arise when one of the two tests is significant: both then have p. */
const describeTest = (test: QueryPairedTest) =>
  `${test.mean_difference >= 0 ? '+' : ''}${test.mean_difference.toFixed(3)} over ${test.queries} queries, p = ${test.p!.toPrecision(2)}`;

/**
 * The run-level evidence of an evaluation: the success test (the verdict), the reward test
 * beside it, success per family, and a warning when the two tests disagree (a reward that
 * improves while success does not is teaching something other than the task).
 */
export function runLevelEvidence(current: readonly EvaluationEpisode[], baseline: readonly EvaluationEpisode[], samplesPerQuery: number): RunLevelEvidence {
  const queries = perQueryMeans(current, baseline, samplesPerQuery);
  const success_test = pairedQueryTest('success', queries.map((q) => q.current.success), queries.map((q) => q.baseline.success));
  const reward_test = pairedQueryTest('reward', queries.map((q) => q.current.reward), queries.map((q) => q.baseline.reward));
  const significant_improvement = isSignificantQueryImprovement(success_test);
  const rewardImproved = isSignificantQueryImprovement(reward_test);
  const warnings: string[] = [];
  if (rewardImproved && !significant_improvement) {
    warnings.push(`the reward improved significantly (${describeTest(reward_test)}) but task success did not (${describeTest(success_test)}): the verdict is on success; the reward may be rewarding something other than solving the task`);
  }
  if (significant_improvement && !rewardImproved) {
    warnings.push(`task success improved significantly (${describeTest(success_test)}) but the reward did not (${describeTest(reward_test)}): the reward does not follow success`);
  }
  return { success_test, reward_test, families: familyBreakdown(queries), significant_improvement, warnings };
}
