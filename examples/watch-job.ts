/**
 * Follow a job until it ends: one line per finished iteration, then the held-out evaluation.
 * Exits 0 when the job completed, 3 when it ended otherwise (as `flow status --watch`).
 *
 *   npx tsx examples/watch-job.ts "$JOB"
 */
import { flowClientFromEnv, run } from './flowEnv';

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'budget_exceeded']);

run(async () => {
  const jobId = process.argv[2];
  if (!jobId) {
    console.error('usage: watch-job.ts <job id>');
    return 2;
  }
  const flow = flowClientFromEnv();
  let shown = 0;
  for (;;) {
    const status = await flow.getStatus(jobId);
    // get_history has every iteration's metrics; print the ones not shown yet.
    const { iterations } = await flow.call('training.get_history', { job_id: jobId });
    for (const entry of iterations.slice(shown)) {
      const metrics = entry.metrics;
      console.log(
        `run ${entry.run} iteration ${entry.iteration}: success ${metrics ? (metrics.success_rate * 100).toFixed(0) : '?'}%, ` +
          `reward ${metrics?.mean_reward.toFixed(3) ?? '?'}, spend $${entry.spend_usd.toFixed(4)}`,
      );
    }
    shown = iterations.length;
    if (TERMINAL.has(status.status)) {
      console.log(`job ${jobId} ${status.status}${status.reason ? ` (${status.reason})` : ''}; spent $${status.spend_usd.toFixed(4)} of $${status.budget_usd}`);
      const evaluation = status.evaluation;
      if (evaluation) {
        console.log(
          `held-out evaluation: success ${(evaluation.baseline.success_rate.value * 100).toFixed(0)}% untrained -> ` +
            `${(evaluation.current.success_rate.value * 100).toFixed(0)}% trained, Welch p = ${evaluation.welch.p.toFixed(4)}` +
            `${evaluation.significant_improvement ? ' (significant)' : ''}`,
        );
      }
      return status.status === 'completed' ? 0 : 3;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
});
