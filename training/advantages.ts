import { mean, populationStd } from './statistics';

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
