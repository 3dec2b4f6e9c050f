/**
 * Write a reward, register it, and check it on two trajectories before a worker ever uses it.
 * A reward is a pure function of what the trajectory shows, returning a number in [0, 1]; the
 * registry (training/rewards.ts) validates every value (NaN or 1.2 marks the trajectory instead
 * of reaching the advantages). docs/guides/custom_rewards.md has the whole story.
 *
 *   npx tsx examples/custom-reward.ts
 */
import { createDefaultRewardRegistry, type RewardInput } from '../training/rewards';

/** 1 for a solved task answered politely, 0.5 for a solved but curt one, 0 otherwise. */
export function politeSuccess(trajectory: RewardInput): number {
  if (!trajectory.success) return 0;
  return /\b(please|thank)/i.test(trajectory.final_answer ?? '') ? 1 : 0.5;
}

export const rewards = createDefaultRewardRegistry().register('polite_success', politeSuccess, 'solved, and polite about it');

// A worker started with `createTrainingWorker({ ..., rewards })` (workers/trainingWorker.ts) then
// scores jobs whose config says `reward_strategy: "polite_success"`.

async function main() {
  const solved = (finalAnswer: string): RewardInput => ({ success: true, verified: false, error: null, steps: [], final_answer: finalAnswer });
  const group = [solved('Your refund is on its way, thank you for waiting.'), solved('Refund issued.'), { ...solved('Sorry.'), success: false }];
  const outcomes = await rewards.scoreGroup('polite_success', group);
  for (const [i, outcome] of outcomes.entries()) console.log(`trajectory ${i}: reward ${outcome.reward}`);
}

if (require.main === module) void main();
