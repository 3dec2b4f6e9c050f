/**
 * FLOW-010, evaluation's activities: run a policy on held-out queries (episodes are not
 * training trajectories: they are never stored as such, never scored into advantages, never
 * shown to the optimizer) and record an evaluation with its statistics. The statistics are
 * pure (training/evaluationStatistics.ts): the verdict is on task success with queries as the
 * unit (paired t-test and bootstrap over queries); Welch's per-episode t-test is kept beside it.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Task } from '../training/task';
import type { TrajectoryStep } from '../training/trajectory';
import {
  EVALUATION_KINDS,
  taskFamily,
  type EvaluationEpisode,
  type EvaluationSplitName,
  type EvaluationSummary,
} from '../training/evaluation';
import { runLevelEvidence, SIGNIFICANCE_LEVEL, summarizeEpisodes, welchTTest } from '../training/evaluationStatistics';
import { SIMULATED_VERIFICATION_TOOL } from '../training/simulation/environment';
import type { AgentSelection } from './agents/agentFactory';
import type { AgentRuntime } from './agents/agentRuntime';
import { allowanceOf, type GuardedChatFactory } from './budgetGuard';
import { runAgentEpisode, type AgentOutcome, type RunTrajectoryInput } from './trajectories';
import type { ProgressRepository } from '../adapters/db';
import type { ChatClient } from '../adapters/llm/chatClient';

/** A trajectory's settings, for one held-out query; one episode per seed instead of one run. */
export interface RunEvaluationEpisodesInput
  extends Pick<
    RunTrajectoryInput,
    'job_id' | 'run' | 'task' | 'system_prompt' | 'model' | 'max_steps' | 'max_tokens' | 'timeout_seconds' | 'environment' | 'agent' | 'prices'
  > {
  /** The iteration whose policy is evaluated. */
  iteration: number;
  /** Which policy this is, for logs and heartbeats. */
  policy: 'current' | 'baseline';
  /** The query's index among the held-out queries. */
  query_index: number;
  /** One episode per seed; the same seeds for both policies, so only the policy differs. */
  seeds: number[];
  reward_strategy?: string;
  /** USD all these episodes together may spend (FLOW-011); absent = no cap. */
  allowance_usd?: number;
}

export interface EvaluationEpisodesResult {
  episodes: EvaluationEpisode[];
  cost_usd: number;
}

/** What a reward function needs of an episode; the registry's per-trajectory input. */
export interface EpisodeForReward {
  task: Task;
  success: boolean;
  verified: boolean;
  error: string | null;
  steps: TrajectoryStep[];
  final_answer: string | null;
}

export interface EvaluationActivityDependencies {
  chats: GuardedChatFactory;
  agentFor(chat: ChatClient, selection: AgentSelection): AgentRuntime;
  /** The job's reward for one episode, in [0, 1] (validated by the registry). */
  rewardOf(strategy: string | undefined, episode: EpisodeForReward): number;
  progress: ProgressRepository;
}

/**
 * Tools that check an answer rather than fetch one are neither right nor wrong choices, so
 * tool accuracy leaves them out.
 */
const CHECKING_TOOLS = new Set([SIMULATED_VERIFICATION_TOOL]);

export interface RecordEvaluationInput {
  job_id: string;
  run: number;
  iteration: number;
  kind: (typeof EVALUATION_KINDS)[number];
  held_out_queries: number;
  samples_per_query: number;
  current: EvaluationEpisode[];
  baseline: EvaluationEpisode[];
  cost_usd: number;
  /** Which queries these were; absent from workflows scheduled before splits: `validation`. */
  split?: EvaluationSplitName;
}

export function createEvaluationActivities(deps: EvaluationActivityDependencies) {
  return {
    async runEvaluationEpisodes(input: RunEvaluationEpisodesInput): Promise<EvaluationEpisodesResult> {
      const context = Context.current();
      const chat = deps.chats.open({ allowanceUsd: allowanceOf(input), prices: input.prices, jobId: input.job_id });
      // The episodes an earlier attempt finished (it was retried after a provider outage or a
      // worker crash) are kept, not run and paid for again: the heartbeat carries them.
      const episodes: EvaluationEpisode[] = finishedEpisodes(context.info.heartbeatDetails, input);
      for (const [sampleIndex, seed] of input.seeds.entries()) {
        if (sampleIndex < episodes.length) continue;
        const agent = deps.agentFor(chat, {
          environment: input.environment,
          agent: input.agent,
          job_id: input.job_id,
          run: input.run,
          iteration: input.iteration,
          query_index: input.query_index,
          sample_index: sampleIndex,
        });
        const steps: TrajectoryStep[] = [];
        const { outcome } = await runAgentEpisode(agent, {
          task: input.task,
          systemPrompt: input.system_prompt,
          model: input.model,
          maxSteps: input.max_steps,
          maxTokens: input.max_tokens,
          seed,
          timeoutSeconds: input.timeout_seconds,
          steps,
          cancelledMessage: 'evaluation cancelled with its job',
          progressAlso: () => ({ episodes }),
        });
        episodes.push(toEpisode(input, steps, outcome, deps.rewardOf));
        context.heartbeat({ steps: 0, episodes });
      }
      // Every call billed, killed attempts' included (the spend ledger).
      return { episodes, cost_usd: await chat.billedUsd() };
    },

    /** Computes the statistics and stores them; what it returns is what status shows. */
    async recordEvaluation(input: RecordEvaluationInput): Promise<EvaluationSummary> {
      const rewards = (episodes: EvaluationEpisode[]) => episodes.map((episode) => episode.reward);
      if (input.current.length < 2 || input.baseline.length < 2) {
        throw ApplicationFailure.nonRetryable(
          `an evaluation needs at least two episodes per policy, got ${input.current.length} and ${input.baseline.length}`,
          'EvaluationTooSmall',
        );
      }
      const welch = welchTTest(rewards(input.current), rewards(input.baseline));
      const evidence = runLevelEvidence(input.current, input.baseline, input.samples_per_query);
      const summary: EvaluationSummary = {
        job_id: input.job_id,
        run: input.run,
        iteration: input.iteration,
        kind: input.kind,
        held_out_queries: input.held_out_queries,
        samples_per_query: input.samples_per_query,
        current: summarizeEpisodes(input.current),
        baseline: summarizeEpisodes(input.baseline),
        welch,
        alpha: SIGNIFICANCE_LEVEL,
        significant_improvement: evidence.significant_improvement,
        cost_usd: input.cost_usd,
        split: input.split ?? 'validation',
        success_test: evidence.success_test,
        reward_test: evidence.reward_test,
        families: evidence.families,
        warnings: evidence.warnings,
      };
      await deps.progress.recordEvaluation({
        jobId: input.job_id,
        run: input.run,
        iteration: input.iteration,
        kind: input.kind,
        summary: summary as unknown as object,
        // The verdict's p (success, per query); 1 when there are too few queries to test.
        pValue: evidence.success_test.p ?? 1,
        significant: summary.significant_improvement,
        costUsd: input.cost_usd,
      });
      return summary;
    },
  };
}

/** The finished episodes an earlier attempt heartbeated, if they are this activity's (same query, at most one per seed). */
function finishedEpisodes(details: unknown, input: RunEvaluationEpisodesInput): EvaluationEpisode[] {
  const episodes = (details as { episodes?: unknown } | undefined)?.episodes;
  if (!Array.isArray(episodes) || episodes.length > input.seeds.length) return [];
  const valid = episodes.every(
    (e: Partial<EvaluationEpisode> | null) => e !== null && typeof e === 'object' && typeof e.reward === 'number' && typeof e.success === 'boolean' && e.query_index === input.query_index,
  );
  return valid ? (episodes as EvaluationEpisode[]) : [];
}

function toEpisode(
  input: RunEvaluationEpisodesInput,
  steps: TrajectoryStep[],
  outcome: AgentOutcome,
  rewardOf: EvaluationActivityDependencies['rewardOf'],
): EvaluationEpisode {
  const expectedTool = input.task.expected_tool;
  const calls = steps.flatMap((step) => step.tool_calls).filter((call) => !CHECKING_TOOLS.has(call.name));
  const scored = expectedTool === undefined ? [] : calls;
  return {
    reward: rewardOf(input.reward_strategy, {
      task: input.task,
      success: outcome.success,
      verified: outcome.verified,
      error: outcome.error,
      steps,
      final_answer: outcome.finalAnswer,
    }),
    success: outcome.success,
    steps: steps.length,
    scored_tool_calls: scored.length,
    correct_tool_calls: scored.filter((call) => call.name === expectedTool).length,
    error: outcome.error,
    query_index: input.query_index,
    family: taskFamily(input.task),
  };
}
