import type { EvaluationSummary } from './evaluation';

/**
 * When a checkpoint may become an agent's active policy (issue 16), as pure functions. The
 * evidence is the checkpoint's test-split evaluation: the trained policy against the policy the
 * job started from, on queries it never trained on or was selected by. That comparison speaks for
 * the active version only when the job started from the active version's content (base:
 * "active"); with no active version, the job's untrained start is what there is to beat.
 */

/** The policy a job started from, when it started from a registry version (base: "active"). */
export interface JobBase {
  version: number;
  content_hash: string;
}

export interface PromotionCase {
  job_id: string;
  checkpoint: { run: number; iteration: number };
  /** The checkpoint's latest test-split evaluation, or null. */
  evaluation: EvaluationSummary | null;
  /** The agent's active version now, or null when it has none. */
  active: { version: number; content_hash: string } | null;
  /** What the job started from: a registry version, or null for its untrained base prompt. */
  job_base: JobBase | null;
  /**
   * The job's test split: `evaluated` (its test evaluation ran, so training.evaluate uses the test
   * split), `pending` (the job has not ended; it runs after the last iteration), `missed` (the job
   * ended before it ran: training.evaluate then uses the validation split, which chose the
   * checkpoints and cannot justify a promotion), `none` (test_fraction 0). Absent: `evaluated`.
   */
  test_split?: { state: 'evaluated' | 'pending' | 'missed' | 'none'; job_status: string };
}

/** Why the checkpoint may not be promoted, or null when the evidence allows it. */
export function promotionRefusal(c: PromotionCase): string | null {
  const where = `job "${c.job_id}" run ${c.checkpoint.run}, iteration ${c.checkpoint.iteration}`;
  if (!c.evaluation && c.test_split && c.test_split.state !== 'evaluated') {
    const { state, job_status: status } = c.test_split;
    const force = 'an admin may force the promotion with a reason';
    if (state === 'none') return `${where} has no test-split evaluation: the job held out no test split (test_fraction 0), so nothing can show an improvement; ${force}`;
    if (state === 'pending') return `${where} has no test-split evaluation yet: job "${c.job_id}" is ${status}, and its test evaluation runs after its last iteration; promote once it has completed`;
    return (
      `${where} has no test-split evaluation: job "${c.job_id}" ended ${status} before its test evaluation (after the last iteration) ran, and training.evaluate evaluates such a job on its validation split, ` +
      `which chose its checkpoints and so cannot justify a promotion; resume it to the end (training.resume), or ${force}`
    );
  }
  if (!c.evaluation) {
    return (
      `${where} has no test-split evaluation; run training.evaluate {job_id: "${c.job_id}", checkpoint: {run: ${c.checkpoint.run}, iteration: ${c.checkpoint.iteration}}} ` +
      '(a job that ran its test evaluation is evaluated on its test split; a job with test_fraction 0 has none) and promote once it shows a significant improvement'
    );
  }
  const baseline = c.job_base ? `v${c.job_base.version} (the job started from it)` : "the job's untrained base prompt";
  if (c.active && c.job_base?.content_hash !== c.active.content_hash) {
    return (
      `the evaluation of ${where} compares against ${baseline}, not against the active v${c.active.version}; ` +
      'start a job with base: "active" and promote its checkpoint once its test-split evaluation beats the active version'
    );
  }
  if (!c.evaluation.significant_improvement) {
    const test = c.evaluation.success_test;
    const detail = test
      ? `success per query ${signed(test.mean_difference)} over ${test.queries} queries, paired p=${test.p === null ? 'n/a' : test.p.toPrecision(3)}` +
        (test.bootstrap ? `, bootstrap 95% [${signed(test.bootstrap.ci_low)}, ${signed(test.bootstrap.ci_high)}]` : '')
      : `reward ${signed(c.evaluation.welch.mean_difference)}, Welch p=${c.evaluation.welch.p.toPrecision(3)}`;
    return `the test-split evaluation of ${where} shows no significant improvement over ${baseline} at alpha ${c.evaluation.alpha}: ${detail}`;
  }
  return null;
}

const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
