import { shuffle } from 'simple-statistics';
import type { TrajectoryStep } from './trajectory';
import { mean, populationStd, seededRandom } from './statistics';

/**
 * FLOW-005: group-relative advantages (GRPO). Each trajectory is judged against the other
 * trajectories of the same query, so no learned value function is needed.
 */

/** Below this the group is treated as having no spread at all (floating-point noise). */
export const MIN_GROUP_STD = 1e-12;

function requireFinite(xs: readonly number[], what: string): void {
  const bad = xs.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
  if (bad >= 0) {
    throw new Error(`${what}: value at index ${bad} is ${String(xs[bad])}, expected a finite number`);
  }
}

/**
 * (r - mean) / std with the population std. A group whose rewards are all equal carries no
 * signal about which behaviour was better, so every advantage is 0 (never NaN).
 */
export function groupAdvantages(rewards: number[]): number[] {
  if (rewards.length === 0) return [];
  requireFinite(rewards, 'groupAdvantages rewards');
  const groupMean = mean(rewards);
  const std = populationStd(rewards);
  if (std < MIN_GROUP_STD) return rewards.map(() => 0);
  return rewards.map((r) => (r - groupMean) / std);
}

function requireDiscount(nSteps: number, gamma: number, what: string): void {
  if (!Number.isInteger(nSteps) || nSteps < 0) {
    throw new Error(`${what}: nSteps must be a non-negative integer, got ${nSteps}`);
  }
  if (!(gamma > 0 && gamma <= 1)) {
    throw new Error(`${what}: gamma must be in (0, 1], got ${gamma}`);
  }
}

/** Discounted credit: the last step gets the full value, earlier steps gamma^(steps to the end). */
function discountBack(value: number, nSteps: number, gamma: number): number[] {
  return Array.from({ length: nSteps }, (_, i) => value * gamma ** (nSteps - i - 1));
}

/** Per-step reward when only the final outcome is known: finalReward * gamma^(n - i - 1). */
export function stepRewards(finalReward: number, nSteps: number, gamma: number): number[] {
  requireDiscount(nSteps, gamma, 'stepRewards');
  return discountBack(finalReward, nSteps, gamma);
}

/** Per-step advantage for credit assignment: advantage * gamma^(n - i - 1). */
export function stepAdvantages(advantage: number, nSteps: number, gamma: number): number[] {
  requireDiscount(nSteps, gamma, 'stepAdvantages');
  return discountBack(advantage, nSteps, gamma);
}

/**
 * The policy-gradient surrogate -log pi(trajectory) * advantage. Unknown when the model gave no
 * log-probs, so null rather than 0 (a 0 would read as "perfect" in the metrics).
 */
export function trajectoryLoss(logProb: number | null, advantage: number): number | null {
  if (logProb === null) return null;
  // 0 - x rather than -x so a zero product is +0, not -0, in stored metrics.
  return 0 - logProb * advantage;
}

/** Mean trajectory loss over the trajectories that have log-probs; null when none do. */
export function surrogateLoss(items: { logProb: number | null; advantage: number }[]): number | null {
  const losses = items
    .map((item) => trajectoryLoss(item.logProb, item.advantage))
    .filter((loss): loss is number => loss !== null);
  return losses.length === 0 ? null : mean(losses);
}

/** Trajectories that beat their group, best first; ties keep their input order. */
export function selectPositiveAdvantage<T extends { advantage: number }>(items: T[]): T[] {
  return items
    .map((item, index) => ({ item, index }))
    .filter(({ item }) => item.advantage > 0)
    .sort((a, b) => b.item.advantage - a.item.advantage || a.index - b.index)
    .map(({ item }) => item);
}

/**
 * The `shuffled_advantages` learning control: the group's values in a seeded random order
 * (Fisher-Yates from simple-statistics, driven by the deterministic `seededRandom`). Shuffling
 * within a group keeps every group's spread but cuts the link between a trajectory and what it
 * earned, so a job that still "learns" under this control learns from something else.
 */
export function shuffleWithinGroup<T>(values: readonly T[], seed: number): T[] {
  return shuffle([...values], seededRandom(seed));
}

/** What a step did, as credit assignment compares steps: the tool it called, or that it answered. */
export function stepActionKey(step: Pick<TrajectoryStep, 'action' | 'tool_calls'>): string {
  return step.action.type === 'tool_call' ? `tool_call:${step.tool_calls[0]?.name ?? ''}` : 'final_answer';
}

export interface CreditGroupMember {
  reward: number;
  /** One key per step (`stepActionKey`); two steps with the same key made the same decision. */
  actions: readonly string[];
}

/**
 * FLOW-015 credit assignment: which steps earned the outcome. Step i of a trajectory of n steps
 * earns the per-step reward G_i = reward * gamma^(n - i - 1) (`stepRewards`). Its advantage is
 * Q - V, normalised like the group advantages (divided by the group's reward std):
 *  - V: mean G_i of the group's trajectories that reached step i in the same state (made the
 *    same decisions at steps 0..i-1), the value of being there;
 *  - Q: mean G_i of those that also made this step's decision, the value of choosing it.
 * The group is its own Monte-Carlo critic, as GRPO is its own baseline. A decision every
 * trajectory in that state made earns 0; a correct intermediate step of a failed run that
 * others completed earns positive credit; the step that went wrong earns negative credit.
 * Returns one array per trajectory, one value per step; all 0 when the rewards are all equal.
 */
export function stepCredits(group: readonly CreditGroupMember[], gamma: number): number[][] {
  if (group.length === 0) return [];
  const rewards = group.map((member) => member.reward);
  requireFinite(rewards, 'stepCredits rewards');
  group.forEach((member) => requireDiscount(member.actions.length, gamma, 'stepCredits'));
  const std = populationStd(rewards);
  if (std < MIN_GROUP_STD) return group.map((member) => member.actions.map(() => 0));
  const returns = group.map((member) => stepRewards(member.reward, member.actions.length, gamma));
  // A trajectory's state before step i is the decisions it made at steps 0..i-1.
  const prefix = (member: CreditGroupMember, length: number) => JSON.stringify(member.actions.slice(0, length));
  /** Mean G_step over the trajectories that made the same first `length` decisions as `member`. */
  const meanReturn = (member: CreditGroupMember, step: number, length: number) =>
    mean(group.flatMap((other, k) => (other.actions.length > step && prefix(other, length) === prefix(member, length) ? [returns[k][step]] : [])));
  return group.map((member) =>
    member.actions.map((_, step) => {
      const credit = (meanReturn(member, step, step + 1) - meanReturn(member, step, step)) / std;
      // + 0 turns a -0 into +0, so stored credits never read "-0".
      return credit + 0;
    }),
  );
}
