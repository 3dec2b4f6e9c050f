/** How held-out evaluation episodes (activities/evaluation.ts) are rewarded. */
import type { AgentType } from '../training/task';
import { DEFAULT_REWARD_STRATEGY, type RewardInput, type RewardRegistry } from '../training/rewards';

/**
 * Rewards for held-out evaluation episodes, which are scored one at a time, synchronously and
 * outside the training groups: the job's strategy when it scores a trajectory alone; for a
 * group or judge strategy (code_tests, llm_judge, ruler) the built-in 'shaped', so evaluation
 * makes no judge calls of its own. A value that fails validation has no row to be marked on
 * here, so it counts as 0 (the same trajectory in training is marked).
 */
export function evaluationRewardOf(registry: RewardRegistry, agentType: AgentType = 'llm') {
  return (strategy: string | undefined, episode: RewardInput): number => {
    const name = registry.resolve(strategy, agentType);
    const kind = registry.list().find((entry) => entry.name === name)!.kind;
    try {
      return registry.score(kind === 'trajectory' ? name : DEFAULT_REWARD_STRATEGY, episode);
    } catch {
      return 0;
    }
  };
}
