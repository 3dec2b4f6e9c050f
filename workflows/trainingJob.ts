/**
 * One training job = one `trainingJob` workflow (workflow id = job id). This file wires
 * messages and activities and runs the GRPO loop; the job's state is the plain
 * TrainingJobState, and all arithmetic is in training/. Deterministic: no I/O, clock or
 * randomness outside Temporal's APIs.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { TrainingActivities } from '../activities';
import { describeZodError, TrainingJobInputSchema, type TrainingJobInput, type TrainingJobRequest } from '../training/config';
import { selectBatch } from '../training/batches';
import { iterationMetrics, type GroupOutcome } from '../training/iterationMetrics';
import type { JobStatus } from '../training/jobStatus';
import { renderSystemPrompt } from '../training/policy';
import { hashString } from '../training/statistics';
import { ConcurrencyLimit, settleAll } from './concurrencyLimit';
import { FLOW_AGENT_ID, FLOW_JOB_STATUS, FLOW_PRIORITY } from './searchAttributes';
import { TrainingJobState, type TrainingJobResult, type TrainingJobStatus } from './trainingJobState';

export type { TrainingJobResult, TrainingJobStatus };

// Messages first.
export const statusQuery = defineQuery<TrainingJobStatus>('status');
/** Sent before a cancellation request so the job row records why it was cancelled. */
export const cancelReasonSignal = defineSignal<[string]>('cancel_reason');

export async function trainingJob(request: TrainingJobRequest): Promise<TrainingJobResult> {
  // Jobs can be started from the `temporal` CLI, so the workflow validates its own input.
  const parsed = TrainingJobInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid training job input: ${describeZodError(parsed.error, request)}`, 'InvalidTrainingJobInput');
  }
  const input = parsed.data;
  const state = new TrainingJobState(input);
  let cancelReason = 'cancelled by request';
  setHandler(statusQuery, () => state.snapshot());
  setHandler(cancelReasonSignal, (reason) => {
    cancelReason = reason;
  });

  const acts = activitiesFor(input);
  const finish = async (status: JobStatus, reason: string | null) => {
    state.end(status, reason);
    // Runs even when the workflow is being cancelled, so Temporal and the database agree.
    await CancellationScope.nonCancellable(async () => {
      await acts.records.finishJob({ job_id: input.job_id, status, reason });
      upsertSearchAttributes([{ key: FLOW_JOB_STATUS, value: status }]);
    });
  };

  try {
    upsertSearchAttributes([
      { key: FLOW_AGENT_ID, value: input.agent_id },
      { key: FLOW_PRIORITY, value: input.config.priority },
      { key: FLOW_JOB_STATUS, value: 'running' },
    ]);
    await acts.records.startJobRun({
      job_id: input.job_id,
      agent_id: input.agent_id,
      tenant_id: input.tenant_id,
      owner_id: input.owner_id,
      priority: input.config.priority,
      config: input.config,
      budget_usd: input.config.budget_usd,
      run: input.run,
    });
    const limit = new ConcurrencyLimit(input.config.max_parallel);
    for (let iteration = state.iteration + 1; iteration <= input.config.iterations; iteration++) {
      if (state.budgetExhausted()) {
        const reason = `spent $${state.spendUsd.toFixed(4)} of a $${input.config.budget_usd} budget before iteration ${iteration}`;
        await finish('budget_exceeded', reason);
        return state.result();
      }
      await runIteration(input, state, acts, limit, iteration);
    }
    await finish('completed', null);
    return state.result();
  } catch (error) {
    if (isCancellation(error)) {
      await finish('cancelled', cancelReason);
    } else {
      await finish('failed', failureReason(error));
    }
    throw error;
  }
}

/** The root cause's message: an activity failure's own message is only "Activity task failed". */
function failureReason(error: unknown): string {
  let cause = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}

type Activities = ReturnType<typeof activitiesFor>;

/** Activity stubs grouped by what they need from Temporal. */
function activitiesFor(input: TrainingJobInput) {
  const trajectories = proxyActivities<Pick<TrainingActivities, 'runTrajectory'>>({
    // The agent's own timeout ends a run as a failed trajectory; this bound is for lost workers.
    startToCloseTimeout: `${input.config.trajectory_timeout_seconds + 60}s`,
    heartbeatTimeout: '30s',
    // Wait for in-flight trajectories to stop before the job is recorded cancelled.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
  });
  const scoring = proxyActivities<Pick<TrainingActivities, 'rewardGroup' | 'computeGroupAdvantages'>>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', maximumAttempts: 10 },
  });
  const policy = proxyActivities<Pick<TrainingActivities, 'updatePolicy'>>({
    startToCloseTimeout: '5m',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 5 },
  });
  const records = proxyActivities<
    Pick<TrainingActivities, 'startJobRun' | 'recordJobProgress' | 'recordIteration' | 'saveCheckpoint' | 'finishJob'>
  >({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', maximumInterval: '10s' },
  });
  return { trajectories, scoring, policy, records };
}

async function runIteration(input: TrainingJobInput, state: TrainingJobState, acts: Activities, limit: ConcurrencyLimit, iteration: number) {
  const { config } = input;
  const batch = selectBatch(input.training_queries.length, iteration, config.batch_size, config.seed);
  const systemPrompt = renderSystemPrompt(state.policy);
  state.beginIteration(batch.length);

  const groups = await settleAll(
    batch.map(async (queryIndex) => {
      const task = input.training_queries[queryIndex];
      const summaries = await settleAll(
        Array.from({ length: config.group_size }, (_, sampleIndex) =>
          limit.run(() =>
            acts.trajectories.runTrajectory({
              job_id: input.job_id,
              agent_id: input.agent_id,
              run: input.run,
              iteration,
              query_index: queryIndex,
              sample_index: sampleIndex,
              task,
              system_prompt: systemPrompt,
              model: config.model,
              max_steps: config.max_steps,
              max_tokens: config.max_tokens,
              timeout_seconds: config.trajectory_timeout_seconds,
              // The job id is left out on purpose: two jobs with the same seed and input train alike.
              seed: hashString(`${config.seed}:${input.run}:${iteration}:${queryIndex}:${sampleIndex}`),
            }),
          ),
        ),
      );
      const trajectoryIds = summaries.map((s) => s.trajectory_id);
      const scored = await acts.scoring.rewardGroup({ trajectory_ids: trajectoryIds, reward_strategy: config.reward_strategy });
      const { advantages } = await acts.scoring.computeGroupAdvantages({
        trajectory_ids: trajectoryIds,
        rewards: scored.rewards,
        step_counts: scored.step_counts,
        gamma: config.gamma,
        credit_assignment: config.credit_assignment,
      });
      state.recordGroup(summaries.length, summaries.reduce((sum, s) => sum + s.cost_usd, 0));
      // Published after every group, so status from the row is never more than a group behind.
      await acts.records.recordJobProgress({ job_id: input.job_id, iteration: state.iteration, phase: 'collecting', spend_usd: state.spendUsd });
      const outcome: GroupOutcome = { rewards: scored.rewards, successes: scored.successes, advantages, logProbs: scored.log_probs };
      return { task, trajectoryIds, outcome };
    }),
  );

  state.phase = 'updating_policy';
  const update = await acts.policy.updatePolicy({
    policy: state.policy,
    candidates: groups.flatMap((group) =>
      group.trajectoryIds.map((id, i) => ({ trajectory_id: id, advantage: group.outcome.advantages[i], query: group.task.prompt })),
    ),
    learning_rate: config.learning_rate,
    clip: config.clip,
    max_lessons: config.max_lessons,
    optimizer_model: config.optimizer_model,
    max_tokens: config.max_tokens,
    seed: hashString(`${config.seed}:${input.run}:${iteration}:policy`),
  });
  state.addSpend(update.cost_usd);
  const metrics = iterationMetrics(groups.map((group) => group.outcome), update.churn);
  state.finishIteration(iteration, metrics, update.policy);

  await acts.records.recordIteration({
    job_id: input.job_id,
    run: input.run,
    iteration,
    metrics,
    policy_version: update.policy.version,
    spend_usd: state.spendUsd,
  });
  await acts.records.recordJobProgress({
    job_id: input.job_id,
    iteration,
    phase: 'iteration_done',
    spend_usd: state.spendUsd,
    last_metrics: metrics,
  });
  if (iteration % config.checkpoint_interval === 0 || iteration === config.iterations) {
    state.phase = 'checkpointing';
    await acts.records.saveCheckpoint({
      job_id: input.job_id,
      run: input.run,
      iteration,
      policy: state.policy,
      optimizer_state: { spend_usd: state.spendUsd, success_rates: state.successRates, trajectories: state.trajectories },
      metrics,
      score: metrics.mean_reward,
    });
  }
}
