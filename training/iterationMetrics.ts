import { z } from 'zod';
import { surrogateLoss } from './advantages';
import type { LessonChurn } from './policy';

/** What one training iteration reports (status, checkpoints, the metrics table). */
export const IterationMetricsSchema = z.object({
  trajectories: z.number().int().min(0),
  mean_reward: z.number().min(0).max(1),
  success_rate: z.number().min(0).max(1),
  /** Mean surrogate loss; null when no trajectory had log-probs. */
  loss: z.number().nullable(),
  /** Mean over groups of (max - min) advantage: 0 means no group taught anything. */
  advantage_spread: z.number().min(0),
  /** Lessons added + edited + reweighted + dropped by this iteration's update. */
  lesson_churn: z.number().int().min(0),
});
export type IterationMetrics = z.infer<typeof IterationMetricsSchema>;

export interface GroupOutcome {
  rewards: number[];
  successes: boolean[];
  advantages: number[];
  logProbs: (number | null)[];
}

function average(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((sum, x) => sum + x, 0) / xs.length;
}

export function iterationMetrics(groups: GroupOutcome[], churn: LessonChurn): IterationMetrics {
  groups.forEach((group, index) => {
    const n = group.rewards.length;
    if (group.successes.length !== n || group.advantages.length !== n || group.logProbs.length !== n) {
      throw new Error(
        `iterationMetrics: group ${index} has ${n} rewards, ${group.successes.length} successes, ` +
          `${group.advantages.length} advantages and ${group.logProbs.length} log-probs; all must be equal`,
      );
    }
  });
  const rewards = groups.flatMap((group) => group.rewards);
  const successes = groups.flatMap((group) => group.successes);
  const lossItems = groups.flatMap((group) =>
    group.advantages.map((advantage, i) => ({ logProb: group.logProbs[i], advantage })),
  );
  const spreads = groups
    .filter((group) => group.advantages.length > 0)
    .map((group) => Math.max(...group.advantages) - Math.min(...group.advantages));
  return {
    trajectories: rewards.length,
    mean_reward: average(rewards),
    success_rate: average(successes.map((success) => (success ? 1 : 0))),
    loss: surrogateLoss(lossItems),
    advantage_spread: average(spreads),
    lesson_churn: churn.added + churn.edited + churn.reweighted + churn.dropped,
  };
}
