/**
 * FLOW-004 / FLOW-017, the reward engine's activity: scores a finished group of trajectories
 * with the job's reward strategy (a name in the reward registry, or the registry's default for
 * the job's agent type). Every value is validated to [0, 1] by the registry; a trajectory
 * whose reward failed validation is marked on its row (`reward_error`) and left out of the
 * group's advantages; the job goes on. Judges call their model through the budget guard, and
 * what they spent comes back as `cost_usd` for the job's spend. The `code_tests` reward runs
 * candidate code in codeSandbox.ts; marked trajectories leave the advantages through
 * markedTrajectories.ts; evaluation episodes are rewarded by evaluationReward.ts.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { AgentType } from '../training/task';
import type { TrajectoryStep } from '../training/trajectory';
import { countInvalidOutputs, type InvalidOutputCounts } from '../training/iterationMetrics';
import {
  RewardContractError,
  RewardRegistry,
  UnknownRewardError,
  type RewardContext,
  type RewardInput,
  type RewardTask,
} from '../training/rewards';
import { allowanceOf, type GuardedChatFactory } from './budgetGuard';
import { runCodeTests } from './codeSandbox';
import type { TrajectoryRepository, TrajectoryRow } from '../adapters/db';
import { LlmJudge } from './llm/judge';
import type { ModelPrices } from '../adapters/llm/pricing';
import { loadInOrder } from './trajectoryRows';
import { ProviderUnavailableError } from '../adapters/llm/chatClient';
import { activityCancellationSignal, providerRetry } from './providerRetry';

export interface RewardGroupInput {
  trajectory_ids: string[];
  /** The job's `config.reward_strategy`; absent, the registry's default for `agent_type`. */
  reward_strategy?: string;
  /** The job's `agent.type`; absent (histories from before it existed), 'llm'. */
  agent_type?: AgentType;
  /** The query the group answered: rewards may compare with its expected answer or tool. */
  task?: RewardTask;
  /** The judge of 'llm_judge' and 'ruler': its model and rubric (absent, the built-in one). */
  judge?: { model: string; rubric?: string };
  max_tokens?: number;
  seed?: number;
  /** USD the judge may spend in this activity; absent, no cap. */
  allowance_usd?: number | null;
  prices?: ModelPrices;
}

export interface ScoredGroup {
  /** The strategy that scored the group (the job's, or its agent type's default). */
  reward_strategy: string;
  /**
   * Validated rewards; 0 for a trajectory whose reward failed (it counts as 0 in the
   * iteration's mean reward only: its row keeps reward null and gets advantage 0).
   */
  rewards: number[];
  /** Why each trajectory could not be scored (also on its row), or null. */
  reward_errors: (string | null)[];
  successes: boolean[];
  step_counts: number[];
  log_probs: (number | null)[];
  /** The group's agent steps that were invalid model outputs, by kind (issue 13). */
  invalid_outputs?: InvalidOutputCounts;
  /** What the judge's LLM calls cost (0 for rewards that call no model). */
  cost_usd: number;
}

function rewardInputOf(row: TrajectoryRow, task: RewardTask | undefined): RewardInput {
  return {
    success: row.success,
    verified: row.verified,
    error: row.error,
    steps: row.steps as unknown as TrajectoryStep[],
    final_answer: row.finalAnswer,
    task,
  };
}

export function createRewardActivities(deps: { rewards: RewardRegistry; trajectories: TrajectoryRepository; chats?: GuardedChatFactory }) {
  return {
    async rewardGroup(input: RewardGroupInput): Promise<ScoredGroup> {
      let strategy: string;
      try {
        strategy = deps.rewards.resolve(input.reward_strategy, input.agent_type ?? 'llm');
      } catch (error) {
        const names = deps.rewards.names().join(', ');
        throw ApplicationFailure.nonRetryable(
          `reward_strategy ${JSON.stringify(input.reward_strategy)}: ${(error as Error).message} (registered: ${names})`,
          'UnknownRewardStrategy',
        );
      }
      const rows = await loadInOrder(deps.trajectories, input.trajectory_ids);
      const chat = deps.chats && input.judge ? deps.chats.open({ allowanceUsd: allowanceOf(input), prices: input.prices }) : null;
      const context: RewardContext = { runCode: runCodeTests };
      if (chat && input.judge) {
        context.judge = new LlmJudge(chat, { model: input.judge.model, rubric: input.judge.rubric, max_tokens: input.max_tokens ?? 512, seed: input.seed, signal: activityCancellationSignal() });
      }
      let outcomes;
      try {
        outcomes = await deps.rewards.scoreGroup(strategy, rows.map((row) => rewardInputOf(row, input.task)), context);
      } catch (error) {
        if (error instanceof RewardContractError || error instanceof UnknownRewardError) {
          throw ApplicationFailure.nonRetryable(error.message, error.name);
        }
        // The judge's provider could not answer: retried as the agent's calls are, after its Retry-After.
        if (error instanceof ProviderUnavailableError) throw providerRetry(error);
        throw error;
      }
      const rewardErrors = outcomes.map((outcome) => outcome.error);
      // A retry may score differently (a judge): the rows say what this attempt found.
      const changed = rows.flatMap((row, i) => (row.rewardError === rewardErrors[i] ? [] : [{ id: row.id, rewardError: rewardErrors[i] }]));
      if (changed.length > 0) await deps.trajectories.markRewardErrors(changed);
      return {
        reward_strategy: strategy,
        rewards: outcomes.map((outcome) => outcome.reward ?? 0),
        reward_errors: rewardErrors,
        successes: rows.map((row) => row.success),
        step_counts: rows.map((row) => (row.steps as unknown[]).length),
        log_probs: rows.map((row) => row.logProb),
        invalid_outputs: countInvalidOutputs(rows.flatMap((row) => (row.steps as { error?: string | null }[]).map((step) => step.error))),
        cost_usd: chat ? await chat.billedUsd() : 0,
      };
    },
  };
}
