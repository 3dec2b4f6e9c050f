/**
 * FLOW-005, the GRPO step's activity: group-relative advantages from the group's rewards
 * (std == 0 gives zero advantages), optional per-step credit with gamma (FLOW-015), persisted
 * with the rewards on each trajectory row. The arithmetic is pure (training/advantages.ts).
 */
import { groupAdvantages, shuffleWithinGroup, stepActionKey, stepCredits } from '../training/advantages';
import type { LearningControl } from '../training/grpoConfig';
import type { TrajectoryStep } from '../training/trajectory';
import type { TrajectoryRepository } from '../adapters/db';
import { loadInOrder } from './trajectoryRows';

export interface GroupAdvantagesInput {
  trajectory_ids: string[];
  rewards: number[];
  step_counts: number[];
  gamma: number;
  credit_assignment: boolean;
  /** `shuffled_advantages`: the learning control that cuts trajectories from what they earned. */
  control?: LearningControl;
  /** Seeds the control's shuffle (the workflow derives it from the job's seed and the group). */
  seed?: number;
}

export function createGrpoActivities(deps: { trajectories: TrajectoryRepository }) {
  return {
    async computeGroupAdvantages(input: GroupAdvantagesInput): Promise<{ advantages: number[] }> {
      // Under the control every trajectory is credited as if it had earned another one's reward;
      // the stored reward stays the true one. Advantages are a function of the rewards, so this
      // is the same as shuffling the advantages, and the step credits follow suit.
      const credited = input.control === 'shuffled_advantages' ? shuffleWithinGroup(input.rewards, input.seed ?? 0) : input.rewards;
      const advantages = groupAdvantages(credited);
      const credits = input.credit_assignment ? await stepCreditsOf(deps.trajectories, input.trajectory_ids, credited, input.gamma) : null;
      await deps.trajectories.score(
        input.trajectory_ids.map((id, i) => ({
          id,
          reward: input.rewards[i],
          advantage: advantages[i],
          stepAdvantages: credits ? credits[i] : null,
        })),
      );
      return { advantages };
    },
  };
}

/** Per-step credit needs what each step did, which the rows hold. */
async function stepCreditsOf(trajectories: TrajectoryRepository, ids: string[], rewards: number[], gamma: number): Promise<number[][]> {
  const rows = await loadInOrder(trajectories, ids);
  return stepCredits(
    rows.map((row, i) => ({ reward: rewards[i], actions: (row.steps as unknown as TrajectoryStep[]).map(stepActionKey) })),
    gamma,
  );
}
