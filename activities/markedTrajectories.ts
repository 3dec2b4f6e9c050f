/**
 * Trajectories the reward step marked (its `reward_errors`: a reward that failed validation)
 * are left out of their group's advantages, by a wrapper around the GRPO step (activities/grpo.ts).
 */
import type { TrajectoryRepository } from '../adapters/db';

/** The part of the GRPO step's input that marked trajectories concern. */
interface AdvantagesInput {
  trajectory_ids: string[];
  rewards: number[];
  step_counts: number[];
}

/**
 * Wraps the GRPO step so trajectories whose reward failed are left out: the group's advantages
 * are computed over the validly scored ones only, and a marked one is stored with reward null
 * and advantage 0 (so the policy update neither learns from it nor against it).
 */
export function excludingMarkedTrajectories<I extends AdvantagesInput, A extends object>(
  activities: A & { computeGroupAdvantages: (input: I) => Promise<{ advantages: number[] }> },
  trajectories: TrajectoryRepository,
): Omit<A, 'computeGroupAdvantages'> & { computeGroupAdvantages(input: I & { reward_errors?: (string | null)[] }): Promise<{ advantages: number[] }> } {
  const inner = activities.computeGroupAdvantages;
  return {
    ...activities,
    async computeGroupAdvantages(input: I & { reward_errors?: (string | null)[] }): Promise<{ advantages: number[] }> {
      const { reward_errors: errors, ...rest } = input;
      const kept = input.trajectory_ids.flatMap((_, i) => (errors?.[i] ? [] : [i]));
      if (kept.length === input.trajectory_ids.length) return inner(rest as unknown as I);
      const pick = <T>(xs: T[]) => kept.map((i) => xs[i]);
      const valid = kept.length > 0
        ? (await inner({ ...rest, trajectory_ids: pick(input.trajectory_ids), rewards: pick(input.rewards), step_counts: pick(input.step_counts) } as unknown as I)).advantages
        : [];
      const markedIds = input.trajectory_ids.filter((_, i) => !kept.includes(i));
      await trajectories.score(markedIds.map((id) => ({ id, reward: null, advantage: 0, stepAdvantages: null })));
      const advantages = input.trajectory_ids.map(() => 0);
      kept.forEach((index, j) => {
        advantages[index] = valid[j];
      });
      return { advantages };
    },
  };
}
