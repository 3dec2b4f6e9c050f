/** The number formats the `flow` commands share, and the one-line summary of an evaluation. */
import type { EvaluationSummary } from '../../training/evaluation';
import type { JobStatusResult } from '../schemas';

export const percent = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;
export const usd = (amount: number) => `$${amount.toFixed(amount !== 0 && Math.abs(amount) < 1 ? 4 : 2)}`;
export const spendOf = (s: Pick<JobStatusResult, 'spend_usd' | 'budget_usd' | 'budget_used_ratio'>) =>
  `${usd(s.spend_usd)} of ${usd(s.budget_usd)} (${percent(s.budget_used_ratio)})`;

export function checkpointOf(s: JobStatusResult): string {
  const best = s.best_checkpoint;
  if (!best) return 'none yet';
  return `run ${best.run}, iteration ${best.iteration}${best.score === null ? '' : `, score ${best.score.toFixed(3)}`}`;
}

/**
 * One line: trained against baseline, the verdict's test (success per query: mean difference,
 * bootstrap interval, paired p) and, beside it, Welch's per-episode t-test of the reward.
 */
export function describeEvaluation(e: EvaluationSummary): string {
  const rate = (m: EvaluationSummary['current']) => `success ${percent(m.success_rate.value)}, reward ${m.avg_reward.value.toFixed(3)}`;
  const t = e.welch.t === null ? 'n/a' : e.welch.t.toFixed(2);
  const df = e.welch.df === null ? 'n/a' : e.welch.df.toFixed(1);
  const verdict = e.significant_improvement ? 'significant improvement' : 'no significant improvement';
  const s = e.success_test;
  const perQuery = s
    ? `success per query ${s.mean_difference >= 0 ? '+' : ''}${s.mean_difference.toFixed(3)}${s.bootstrap ? ` [${s.bootstrap.ci_low.toFixed(3)}, ${s.bootstrap.ci_high.toFixed(3)}]` : ''} over ${s.queries} queries, paired p=${s.p === null ? 'n/a' : formatP(s.p)}; per episode `
    : '';
  const warnings = (e.warnings ?? []).map((w) => `; warning: ${w}`).join('');
  return `iteration ${e.iteration} (run ${e.run}${e.split ? `, ${e.split}` : ''}): ${rate(e.current)} vs baseline ${rate(e.baseline)}; ${perQuery}Welch t=${t}, df=${df}, p=${formatP(e.welch.p)}: ${verdict} at ${e.alpha}${warnings}`;
}

function formatP(p: number): string {
  return p !== 0 && p < 0.0001 ? p.toExponential(2) : p.toFixed(4);
}
