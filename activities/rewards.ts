/**
 * FLOW-004, the reward engine's activity: scores a finished group of trajectories with the
 * job's reward strategy (a name in the reward registry). Every score is validated to [0, 1]
 * by the registry; a function that breaks that rule fails the job with its name, not silently.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { TrajectoryStep } from '../training/config';
import { RewardRegistry, RewardValidationError } from '../training/rewards';
import type { TrajectoryRepository, TrajectoryRow } from './db';

export interface RewardGroupInput {
  trajectory_ids: string[];
  reward_strategy: string;
}

export interface ScoredGroup {
  rewards: number[];
  successes: boolean[];
  step_counts: number[];
  log_probs: (number | null)[];
}

export function createRewardActivities(deps: { rewards: RewardRegistry; trajectories: TrajectoryRepository }) {
  return {
    async rewardGroup(input: RewardGroupInput): Promise<ScoredGroup> {
      if (!deps.rewards.has(input.reward_strategy)) {
        throw ApplicationFailure.nonRetryable(
          `unknown reward_strategy ${JSON.stringify(input.reward_strategy)}; registered: ${deps.rewards.names().join(', ')}`,
          'UnknownRewardStrategy',
        );
      }
      const rows = await loadInOrder(deps.trajectories, input.trajectory_ids);
      try {
        return {
          rewards: rows.map((row) =>
            deps.rewards.score(input.reward_strategy, {
              success: row.success,
              verified: row.verified,
              error: row.error,
              steps: row.steps as unknown as TrajectoryStep[],
            }),
          ),
          successes: rows.map((row) => row.success),
          step_counts: rows.map((row) => (row.steps as unknown[]).length),
          log_probs: rows.map((row) => row.logProb),
        };
      } catch (error) {
        if (error instanceof RewardValidationError) throw ApplicationFailure.nonRetryable(error.message, 'RewardValidationError');
        throw error;
      }
    },
  };
}

/** Rows in the order of `ids`; a missing row is a bug upstream, so it fails loudly. */
export async function loadInOrder(trajectories: TrajectoryRepository, ids: string[]): Promise<TrajectoryRow[]> {
  const rows = await trajectories.findByIds(ids);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => {
    const row = byId.get(id);
    if (!row) throw ApplicationFailure.nonRetryable(`trajectory ${id} is not in the database`, 'MissingTrajectory');
    return row;
  });
}
