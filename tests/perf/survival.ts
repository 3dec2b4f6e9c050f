/**
 * The log-rank (Mantel–Cox) test of two survival curves, for "iterations until a target" where
 * some runs never reach it (right-censored). At every distinct event time the expected events
 * of group A under H0 are d·nA/n, with the hypergeometric variance d·(nA/n)(nB/n)(n−d)/(n−1);
 * χ² = (O_A − E_A)² / V on 1 degree of freedom (@stdlib's chi-square CDF for p). A run censored
 * at time t is still at risk at t. Checked against SciPy's `scipy.stats.logrank` in
 * tests/unit/survival.test.ts.
 */
import chisquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';

export interface SurvivalSample {
  /** When the event happened, or when observation stopped (censored). */
  time: number;
  /** true: the event (the target was reached); false: censored. */
  event: boolean;
}

export interface LogRankResult {
  statistic: number;
  /** Two-sided p (χ², 1 df). */
  p: number;
  observedA: number;
  expectedA: number;
  observedB: number;
  expectedB: number;
}

export function logRankTest(a: readonly SurvivalSample[], b: readonly SurvivalSample[]): LogRankResult {
  if (a.length === 0 || b.length === 0) throw new Error(`logRankTest: both groups need samples, got ${a.length} and ${b.length}`);
  const times = [...new Set([...a, ...b].filter((s) => s.event).map((s) => s.time))].sort((x, y) => x - y);
  let observedA = 0;
  let expectedA = 0;
  let variance = 0;
  for (const t of times) {
    const atRiskA = a.filter((s) => s.time >= t).length;
    const atRiskB = b.filter((s) => s.time >= t).length;
    const eventsA = a.filter((s) => s.event && s.time === t).length;
    const eventsB = b.filter((s) => s.event && s.time === t).length;
    const n = atRiskA + atRiskB;
    const d = eventsA + eventsB;
    observedA += eventsA;
    expectedA += (d * atRiskA) / n;
    if (n > 1) variance += (d * (atRiskA / n) * (atRiskB / n) * (n - d)) / (n - 1);
  }
  const observedB = a.concat(b).filter((s) => s.event).length - observedA;
  const expectedB = observedA + observedB - expectedA;
  const statistic = variance > 0 ? (observedA - expectedA) ** 2 / variance : 0;
  return { statistic, p: variance > 0 ? 1 - chisquareCdf(statistic, 1) : 1, observedA, expectedA, observedB, expectedB };
}
