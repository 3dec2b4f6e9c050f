/**
 * FLOW-003, the trajectory collector: one activity runs one agent trajectory, records every
 * step, persists it idempotently and returns only its id and what the workflow needs.
 * A run that throws, times out or reaches its budget allowance becomes a failed trajectory with
 * the reason, never a failed job; a provider that cannot answer is retried (runAgentEpisode).
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { AgentSpec, Task } from '../training/task';
import type { TokenUsage, Trajectory, TrajectoryStep } from '../training/trajectory';
import type { AgentResumePoint, AgentRunRequest, AgentRuntime } from './agents/agentRuntime';
import { allowanceOf, BudgetAllowanceExceededError, type GuardedChatFactory, LedgerUnavailableError } from './budgetGuard';
import type { TrajectoryRepository } from '../adapters/db';
import { ProviderUnavailableError, type ChatClient } from '../adapters/llm/chatClient';
import type { ModelPrice } from '../adapters/llm/pricing';
import { keepAlive } from './keepAlive';
import { providerRetry } from './providerRetry';

export interface RunTrajectoryInput {
  job_id: string;
  agent_id: string;
  run: number;
  iteration: number;
  query_index: number;
  sample_index: number;
  task: Task;
  system_prompt: string;
  model: string;
  max_steps: number;
  max_tokens: number;
  timeout_seconds: number;
  seed: number;
  /** USD this trajectory may spend on LLM calls (FLOW-011); absent = no cap. */
  allowance_usd?: number;
  /** The job's `config.prices`, which price its calls before the price table does. */
  prices?: Record<string, ModelPrice>;
  /** The job's environment and agent (absent in trajectories scheduled before jobs named them). */
  environment?: 'simulated' | 'tools';
  agent?: AgentSpec;
}

export interface TrajectorySummary {
  trajectory_id: string;
  success: boolean;
  cost_usd: number;
  usage: TokenUsage;
  error: string | null;
  /** The run was stopped by its budget allowance (`error` says so). */
  allowance_exceeded: boolean;
  /**
   * What the provider billed for this trajectory: its steps, plus calls of earlier attempts that
   * were killed (the spend ledger). What the job's spend counts; absent in older histories.
   */
  billed_usd?: number;
}

export interface TrajectoryActivityDependencies {
  /** LLM clients, each under a trajectory's allowance. */
  chats: GuardedChatFactory;
  /** The agent of one trajectory (the input names its agent and environment), built around that trajectory's guarded client. */
  agentFor(chat: ChatClient, input: RunTrajectoryInput): AgentRuntime;
  trajectories: TrajectoryRepository;
}

export function createTrajectoryActivities(deps: TrajectoryActivityDependencies) {
  return {
    async runTrajectory(input: RunTrajectoryInput): Promise<TrajectorySummary> {
      const context = Context.current();
      const chat = deps.chats.open({ allowanceUsd: allowanceOf(input), prices: input.prices, jobId: input.job_id });
      const agent = deps.agentFor(chat, input);
      const steps: TrajectoryStep[] = [];
      const startedAt = new Date().toISOString();
      context.heartbeat({ steps: 0 });
      const { outcome, allowanceExceeded } = await runAgentEpisode(agent, {
        task: input.task,
        systemPrompt: input.system_prompt,
        model: input.model,
        maxSteps: input.max_steps,
        maxTokens: input.max_tokens,
        seed: input.seed,
        timeoutSeconds: input.timeout_seconds,
        steps,
        cancelledMessage: 'trajectory cancelled with its job',
        resumable: true,
      });
      // Once the cancellation reaches this attempt (with a heartbeat), it writes nothing more.
      if (context.cancellationSignal.aborted) throw new CancelledFailure('trajectory cancelled with its job');

      const trajectory = assembleTrajectory(input, steps, outcome, startedAt);
      const recorded = await deps.trajectories.record(trajectory);
      return {
        trajectory_id: recorded.id,
        success: trajectory.success,
        cost_usd: trajectory.cost_usd,
        usage: trajectory.usage,
        error: trajectory.error,
        allowance_exceeded: allowanceExceeded,
        // Every call this attempt's client completed (a step cut short by the budget or the
        // timeout still billed its call) plus what the ledger billed earlier attempts: what the
        // ledger holds for this activity, call for call.
        billed_usd: await chat.billedUsd(),
      };
    },
  };
}

export type AgentOutcome = { finalAnswer: string | null; success: boolean; verified: boolean; error: string | null };

/** What a trajectory attempt heartbeats: its step count, and where a retry can go on from. */
interface EpisodeProgress {
  steps: number;
  resume?: AgentResumePoint;
}

/**
 * Runs one agent episode inside an activity: steps go into `steps` with a heartbeat each (and
 * every second: an episode with a real model can outlast the heartbeat timeout), the run is
 * bounded by its timeout, and a run that throws, times out or is stopped by its budget allowance
 * becomes an outcome with the reason. Only the activity's cancellation is thrown (CancelledFailure).
 * `resumable`: the heartbeat carries the agent's state after each step, and a retried attempt goes
 * on from the last one heartbeated (an agent that gives no state starts over).
 */
export async function runAgentEpisode(
  agent: AgentRuntime,
  request: Omit<AgentRunRequest, 'signal' | 'onStep' | 'heartbeat' | 'resume'> & {
    timeoutSeconds: number;
    steps: TrajectoryStep[];
    cancelledMessage: string;
    resumable?: boolean;
    /** More for the heartbeat to carry (an evaluation's finished episodes). */
    progressAlso?: () => Record<string, unknown>;
  },
): Promise<{ outcome: AgentOutcome; allowanceExceeded: boolean }> {
  const context = Context.current();
  const { timeoutSeconds, steps, cancelledMessage, resumable = false, progressAlso, ...run } = request;
  const timeout = AbortSignal.timeout(timeoutSeconds * 1000);
  const resume = resumable ? resumePointOf(context.info.heartbeatDetails) : undefined;
  if (resume) steps.push(...resume.steps);
  let state: unknown = resume?.state;
  const progress = (): EpisodeProgress => ({ ...progressAlso?.(), steps: steps.length, ...(resumable && state !== undefined ? { resume: { steps, state } } : {}) });
  const heartbeat = () => context.heartbeat(progress());
  try {
    // Heartbeats every second as well as every step: one step of a slow model can outlast the heartbeat timeout.
    const outcome = await keepAlive(
      () =>
        agent.run({
          ...run,
          signal: AbortSignal.any([context.cancellationSignal, timeout]),
          onStep(step, stepState) {
            steps.push(step);
            state = stepState;
            heartbeat();
          },
          heartbeat,
          ...(resume ? { resume } : {}),
        }),
      progress,
    );
    return { outcome, allowanceExceeded: false };
  } catch (error) {
    if (context.cancellationSignal.aborted) throw new CancelledFailure(cancelledMessage);
    // The infrastructure failed, not the agent: the activity is retried (workflows/activityOptions.ts),
    // and goes on from the last heartbeated step. The model provider is infrastructure too: an
    // outage must not become a group of failed trajectories, zero advantages and a "completed" job.
    if (error instanceof LedgerUnavailableError) throw error;
    if (error instanceof ProviderUnavailableError) throw providerRetry(error);
    // The guard refused the next call: what was spent stays in the steps and is reported.
    const allowanceExceeded = !timeout.aborted && error instanceof BudgetAllowanceExceededError;
    const reason = timeout.aborted
      ? `timed out after ${timeoutSeconds}s`
      : allowanceExceeded
        ? (error as Error).message
        : `agent error: ${error instanceof Error ? error.message : String(error)}`;
    return { outcome: { finalAnswer: null, success: false, verified: false, error: reason }, allowanceExceeded };
  }
}

function stepsCostUsd(steps: TrajectoryStep[]): number {
  return steps.reduce((sum, step) => sum + step.cost_usd, 0);
}

/** The resume point an earlier attempt heartbeated, if it left one with steps. */
function resumePointOf(details: unknown): AgentResumePoint | undefined {
  const resume = (details as EpisodeProgress | undefined)?.resume;
  return resume && Array.isArray(resume.steps) && resume.steps.length > 0 && resume.state !== undefined ? resume : undefined;
}

export function assembleTrajectory(
  input: RunTrajectoryInput,
  steps: TrajectoryStep[],
  outcome: { finalAnswer: string | null; success: boolean; verified: boolean; error: string | null },
  startedAt: string,
): Trajectory {
  const usage = steps.reduce(
    (sum, step) => ({
      prompt_tokens: sum.prompt_tokens + step.usage.prompt_tokens,
      completion_tokens: sum.completion_tokens + step.usage.completion_tokens,
    }),
    { prompt_tokens: 0, completion_tokens: 0 },
  );
  const logprobs = steps.map((step) => step.logprob);
  return {
    job_id: input.job_id,
    run: input.run,
    iteration: input.iteration,
    query_index: input.query_index,
    sample_index: input.sample_index,
    query_id: input.task.id,
    agent_id: input.agent_id,
    steps,
    final_answer: outcome.finalAnswer,
    success: outcome.success,
    verified: outcome.verified,
    error: outcome.error,
    usage,
    cost_usd: stepsCostUsd(steps),
    log_prob: steps.length > 0 && logprobs.every((lp) => lp !== null) ? (logprobs as number[]).reduce((a, b) => a + b, 0) : null,
    started_at: startedAt,
    ended_at: new Date().toISOString(),
  };
}
