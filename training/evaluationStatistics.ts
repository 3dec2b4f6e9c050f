import ttest2 from '@stdlib/stats-ttest2';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import { mean, sampleStandardDeviation, variance } from 'simple-statistics';
import type { Estimate, EvaluationEpisode, EvaluationMetrics, WelchResult } from './evaluation';

/**
 * FLOW-010, the statistics of an evaluation: 95% confidence intervals and Welch's t-test from
 * @stdlib (not hand-written). Imported by activities only; the workflow never runs these.
 */

/** Two-sided significance level of the trained-versus-baseline verdict. */
export const SIGNIFICANCE_LEVEL = 0.05;
const CONFIDENCE = 0.95;
/** The standard normal's 97.5% quantile, for the Wilson interval of a proportion. */
const Z_975 = 1.959963984540054;

/** Mean with a t-based 95% interval (Student's t with n - 1 degrees of freedom). */
export function meanEstimate(xs: number[]): Estimate {
  if (xs.length === 0) return { value: 0, ci_low: null, ci_high: null, n: 0 };
  const value = mean(xs);
  if (xs.length < 2) return { value, ci_low: null, ci_high: null, n: xs.length };
  const half = tQuantile(1 - (1 - CONFIDENCE) / 2, xs.length - 1) * (sampleStandardDeviation(xs) / Math.sqrt(xs.length));
  return { value, ci_low: value - half, ci_high: value + half, n: xs.length };
}

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
    avg_reward: meanEstimate(episodes.map((e) => e.reward)),
    avg_steps: meanEstimate(episodes.map((e) => e.steps)),
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
