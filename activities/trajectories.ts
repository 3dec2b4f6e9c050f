/**
 * FLOW-003, the trajectory collector: one activity runs one agent trajectory, records every
 * step, persists it idempotently and returns only its id and what the workflow needs.
 * A run that throws, times out or reaches its budget allowance becomes a failed trajectory with
 * the reason, never a failed job.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { AgentSpec, Task, TokenUsage, Trajectory, TrajectoryStep } from '../training/config';
import type { AgentRunRequest, AgentRuntime } from './agents/agentRuntime';
import { allowanceOf, BudgetAllowanceExceededError, type GuardedChatFactory } from './budgetGuard';
import type { TrajectoryRepository } from './db';
import type { ChatClient } from './llm/chatClient';
import type { ModelPrice } from './llm/pricing';
import { keepAlive } from './keepAlive';

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
      const agent = deps.agentFor(deps.chats.open({ allowanceUsd: allowanceOf(input), prices: input.prices }), input);
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
      };
    },
  };
}

export type AgentOutcome = { finalAnswer: string | null; success: boolean; verified: boolean; error: string | null };

/**
 * Runs one agent episode inside an activity: steps go into `steps` with a heartbeat each (an
 * episode with a real model can outlast the heartbeat timeout), the run is bounded by its
 * timeout, and a run that throws, times out or is stopped by its budget allowance becomes an
 * outcome with the reason. Only the activity's cancellation is thrown (CancelledFailure).
 */
export async function runAgentEpisode(
  agent: AgentRuntime,
  request: Omit<AgentRunRequest, 'signal' | 'onStep' | 'heartbeat'> & { timeoutSeconds: number; steps: TrajectoryStep[]; cancelledMessage: string },
): Promise<{ outcome: AgentOutcome; allowanceExceeded: boolean }> {
  const context = Context.current();
  const { timeoutSeconds, steps, cancelledMessage, ...run } = request;
  const timeout = AbortSignal.timeout(timeoutSeconds * 1000);
  const progress = () => ({ steps: steps.length });
  const heartbeat = () => context.heartbeat(progress());
  try {
    // Heartbeats every second as well as every step: one step of a slow model can outlast the heartbeat timeout.
    const outcome = await keepAlive(
      () =>
        agent.run({
          ...run,
          signal: AbortSignal.any([context.cancellationSignal, timeout]),
          onStep(step) {
            steps.push(step);
            heartbeat();
          },
          heartbeat,
        }),
      progress,
    );
    return { outcome, allowanceExceeded: false };
  } catch (error) {
    if (context.cancellationSignal.aborted) throw new CancelledFailure(cancelledMessage);
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
    cost_usd: steps.reduce((sum, step) => sum + step.cost_usd, 0),
    log_prob: steps.length > 0 && logprobs.every((lp) => lp !== null) ? (logprobs as number[]).reduce((a, b) => a + b, 0) : null,
    started_at: startedAt,
    ended_at: new Date().toISOString(),
  };
}
