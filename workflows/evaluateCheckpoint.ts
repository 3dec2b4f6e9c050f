/**
 * `training.evaluate`: one workflow per (job, checkpoint) that evaluates the checkpoint's policy
 * against the untrained baseline on the job's held-out queries and stores the result as an
 * `on_demand` evaluation: on the test split when the caller says the job has one (it only
 * reports, so evaluating "best" there is not biased by the choice of "best"), else on validation. Its LLM calls are capped by the budget the caller gives; the
 * worst case must fit in it before anything runs.
 */
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { TrainingActivities } from '../activities';
import { formatUsd, promptTokenBound, trajectoryWorstCaseUsd } from '../training/budget';
import { TrainingJobInputSchema, type TrainingJobRequest } from '../training/jobInput';
import { describeZodError } from '../training/zodErrors';
import { evaluationSplit, type EvaluationSummary } from '../training/evaluation';
import { ConcurrencyLimit } from './concurrencyLimit';
import { evaluateOnHeldOut } from './heldOutEvaluation';
import { cpuTaskQueue } from './taskQueues';
import { evaluationEpisodeOptions, infrastructureRetry } from './activityOptions';

export interface EvaluateCheckpointInput {
  /** The job's stored input (its queries, config, agent and environment). */
  job: TrainingJobRequest;
  checkpoint: { run: number; iteration: number };
  /** The most this evaluation may spend on LLM calls. */
  budget_usd: number;
  /** `test`: the job trained with a test split (it has a test evaluation); absent: validation. */
  split?: 'validation' | 'test';
}

export function evaluateCheckpointWorkflowId(jobId: string, checkpoint: { run: number; iteration: number }): string {
  return `${jobId}:evaluate:${checkpoint.run}-${checkpoint.iteration}`;
}

export async function evaluateCheckpoint(request: EvaluateCheckpointInput): Promise<EvaluationSummary> {
  const parsed = TrainingJobInputSchema.safeParse(request.job);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid job input: ${describeZodError(parsed.error, request.job)}`, 'InvalidTrainingJobInput');
  }
  const input = parsed.data;
  const { config } = input;
  const queue = workflowInfo().taskQueue;
  const records = proxyActivities<Pick<TrainingActivities, 'loadCheckpoint' | 'resolvePrices' | 'recordEvaluation'>>({
    taskQueue: cpuTaskQueue(queue),
    startToCloseTimeout: '10s',
    ...infrastructureRetry(input),
  });
  const episodes = proxyActivities<Pick<TrainingActivities, 'runEvaluationEpisodes'>>(evaluationEpisodeOptions(input));

  if (!config.evaluate && input.evaluation_queries.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `job "${input.job_id}" trained on every query (config.evaluate is false) and has no evaluation_queries: nothing is held out to evaluate on`,
      'NothingToEvaluate',
    );
  }
  const split = evaluationSplit(input);
  // The test split's queries are used only for a job known to have held them out of training.
  const onTest = request.split === 'test' && split.test.length > 0;
  const queries = onTest ? split.test : split.heldOut;
  if (split.heldOut.length === 0) {
    throw ApplicationFailure.nonRetryable(`job "${input.job_id}" has no held-out queries to evaluate on (one training query and no evaluation_queries)`, 'NothingToEvaluate');
  }
  const prices = await records.resolvePrices({ model: config.model, optimizer_model: config.optimizer_model, prices: config.prices });
  const perQuery = config.eval_samples * trajectoryWorstCaseUsd({ max_steps: config.max_steps, max_tokens: config.max_tokens, price: prices.agent, promptTokens: promptTokenBound(null) });
  const worstCase = 2 * queries.length * perQuery;
  if (worstCase > request.budget_usd) {
    throw ApplicationFailure.nonRetryable(
      `budget_usd: this evaluation (${queries.length} held-out queries x ${config.eval_samples} samples x 2 policies) could cost up to ${formatUsd(worstCase)}, more than the ${formatUsd(request.budget_usd)} given`,
      'EvaluationBudgetTooSmall',
      { worst_case_usd: worstCase },
    );
  }
  const checkpoint = await records.loadCheckpoint({ job_id: input.job_id, which: request.checkpoint });
  const { summary } = await evaluateOnHeldOut(
    { runEvaluationEpisodes: episodes.runEvaluationEpisodes, recordEvaluation: records.recordEvaluation },
    {
      input,
      run: request.checkpoint.run,
      iteration: request.checkpoint.iteration,
      kind: 'on_demand',
      policy: checkpoint.policy,
      heldOut: queries,
      ...(onTest ? { split: 'test' as const } : {}),
      baselineEpisodes: null,
      allowancePerQueryUsd: perQuery,
      limit: new ConcurrencyLimit(config.max_parallel),
    },
  );
  return summary;
}
