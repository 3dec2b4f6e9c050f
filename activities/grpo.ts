/**
 * FLOW-005, the GRPO step's activity: group-relative advantages from the group's rewards
 * (std == 0 gives zero advantages), optional per-step credit with gamma, persisted with the
 * rewards on each trajectory row. The arithmetic is pure (training/advantages.ts).
 */
import { groupAdvantages, stepAdvantages } from '../training/advantages';
import type { TrajectoryRepository } from './db';

export interface GroupAdvantagesInput {
  trajectory_ids: string[];
  rewards: number[];
  step_counts: number[];
  gamma: number;
  credit_assignment: boolean;
}

export function createGrpoActivities(deps: { trajectories: TrajectoryRepository }) {
  return {
    async computeGroupAdvantages(input: GroupAdvantagesInput): Promise<{ advantages: number[] }> {
      const advantages = groupAdvantages(input.rewards);
      await deps.trajectories.score(
        input.trajectory_ids.map((id, i) => ({
          id,
          reward: input.rewards[i],
          advantage: advantages[i],
          stepAdvantages: input.credit_assignment ? stepAdvantages(advantages[i], input.step_counts[i], input.gamma) : null,
        })),
      );
      return { advantages };
    },
  };
}
