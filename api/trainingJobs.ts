/**
 * Starting and steering training jobs through Temporal. The JSON-RPC facade, the demo and the
 * tests all go through here: validation first (nothing is written or started for bad input),
 * then the `queued` row, then the workflow (workflow id = job id).
 */
import { tokenCounterFor } from '../adapters/llm/tokenCounter';
import { renderedPolicyTokens } from '../training/tokenBudget';
import { startingPolicy } from '../training/startingPolicy';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { ApplicationFailure, Client, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError, type WorkflowExecutionDescription } from '@temporalio/client';
import { TrainingJobInputSchema, type TrainingJobInput } from '../training/jobInput';
import { describeZodError } from '../training/zodErrors';
import { describeCheckpointSelector, selectCheckpoint, type CheckpointPosition, type CheckpointSelector } from '../training/checkpoints';
import { formatUsd } from '../training/budget';
import { countJobCreated } from '../adapters/telemetry/metrics';
import { taskPriority } from '../training/priority';
import { isTerminalJobStatus, type JobStatus } from '../training/jobStatus';
import type { Prisma } from '../generated/prisma/client';
import type { KillSwitchSetting, Repositories } from '../adapters/db';
import { newJobRow } from '../adapters/db/trainingJobRepository';
import { resolveModelPrice, UnknownModelPriceError } from '../adapters/llm/pricing';
import { FLOW_AGENT_ID, FLOW_JOB_STATUS, FLOW_PRIORITY } from '../workflows/searchAttributes';
import { ConcurrencyLimit } from '../workflows/concurrencyLimit';
import { TRAINING_TASK_QUEUE } from '../workflows/taskQueues';
import { cancelReasonSignal, killSwitchSignal, trainingJob } from '../workflows/trainingJob';
import { evaluateCheckpoint, evaluateCheckpointWorkflowId } from '../workflows/evaluateCheckpoint';
import type { EvaluationSummary } from '../training/evaluation';

export class InvalidTrainingJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTrainingJobError';
  }
}

/** Temporal task priority: P0 is dispatched first (priorityKey 1 of 1..5); see training/priority.ts. */
export { PRIORITY_KEYS } from '../training/priority';

export function validateTrainingJob(request: unknown): TrainingJobInput {
  const withId = request && typeof request === 'object' && !('job_id' in request) ? { ...request, job_id: `job-${randomUUID()}` } : request;
  const parsed = TrainingJobInputSchema.safeParse(withId);
  if (!parsed.success) throw new InvalidTrainingJobError(describeZodError(parsed.error, withId));
  // FLOW-011: spend is counted and capped per call, so every model the job calls needs a price.
  const { config } = parsed.data;
  for (const field of ['model', 'optimizer_model'] as const) {
    try {
      resolveModelPrice(config[field], config.prices);
    } catch (error) {
      if (error instanceof UnknownModelPriceError) throw new InvalidTrainingJobError(`config.${field}: ${error.message}`);
      throw error;
    }
  }
  // The reward judge's model (config.judge.model) is priced too: its calls count in the spend.
  if (config.judge?.model) {
    try {
      resolveModelPrice(config.judge.model, config.prices);
    } catch (error) {
      if (error instanceof UnknownModelPriceError) throw new InvalidTrainingJobError(`config.judge.model: ${error.message}`);
      throw error;
    }
  }
  // Issue 16: the rendered policy never exceeds max_policy_tokens, from the first iteration on:
  // the base prompt alone must fit, and so must a starting policy taken from the registry.
  const counter = tokenCounterFor(config.model);
  const measured = `${counter.encoding}${counter.exact ? '' : ', approximate'}`;
  const baseTokens = counter.count(parsed.data.base_prompt);
  const initial = parsed.data.initial_policy;
  if (baseTokens > config.max_policy_tokens) {
    // From the registry (base: "active"), the base prompt is the active version's, not the caller's.
    throw new InvalidTrainingJobError(
      initial
        ? `base: the active policy version ${initial.version}'s base prompt alone is ${baseTokens} tokens (${measured}), over config.max_policy_tokens ${config.max_policy_tokens}; raise max_policy_tokens`
        : `base_prompt: ${baseTokens} tokens (${measured}) alone exceed config.max_policy_tokens ${config.max_policy_tokens}; raise max_policy_tokens or shorten the base prompt`,
    );
  }
  const startTokens = initial ? renderedPolicyTokens(startingPolicy(parsed.data), counter.count) : baseTokens;
  if (initial && startTokens > config.max_policy_tokens) {
    throw new InvalidTrainingJobError(
      `base: the active policy version ${initial.version} renders to ${startTokens} tokens (${measured}), over config.max_policy_tokens ${config.max_policy_tokens}; raise max_policy_tokens`,
    );
  }
  return parsed.data;
}

export class IdempotencyConflictError extends Error {
  constructor(jobId: string) {
    super(`job ${jobId} was started with this idempotency key and a different request`);
    this.name = 'IdempotencyConflictError';
  }
}

export interface StartOptions {
  taskQueue?: string;
  /**
   * The job id is derived from an idempotency key: a retried start (even a concurrent one)
   * finds the existing row and the existing workflow and starts nothing new. Temporal's
   * workflow-id policies decide the race, not a lock of ours.
   */
  idempotent?: boolean;
}

export async function startTrainingJob(
  client: Client,
  repos: Repositories,
  request: unknown,
  { taskQueue = TRAINING_TASK_QUEUE, idempotent = false }: StartOptions = {},
): Promise<{ jobId: string; input: TrainingJobInput; created: boolean }> {
  const input = validateTrainingJob(request);
  const row = { ...newJobRow({ ...input, priority: input.config.priority, budget_usd: input.config.budget_usd }), input: storedInput(input) };
  let created = true;
  if (idempotent) {
    const existing = await repos.jobs.createIfAbsent(row);
    created = existing.created;
    if (!created && !sameRequest(existing.row, row)) throw new IdempotencyConflictError(input.job_id);
  } else {
    await repos.jobs.create(row);
  }
  // While the kill switch is on, a new job starts paused (its row says `paused` once the workflow waits).
  const killSwitch = await repos.settings.getKillSwitch();
  try {
    await startWorkflowRun(client, { ...input, start_paused: killSwitch.on }, {
      taskQueue,
      // A concurrent duplicate joins the running workflow; one that comes after the job ended
      // is refused (and answered with the same job) instead of training it a second time.
      ...(idempotent ? { workflowIdConflictPolicy: 'USE_EXISTING' as const, workflowIdReusePolicy: 'REJECT_DUPLICATE' as const } : {}),
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError && idempotent) return { jobId: input.job_id, input, created: false };
    if (!(error instanceof WorkflowExecutionAlreadyStartedError) && created) {
      // No workflow will ever update this row: record why the job never ran. Only while it is
      // still queued: a start that failed after Temporal took it leaves the row to the workflow.
      await repos.jobs.finishIfQueued(input.job_id, 'failed', `could not start the workflow: ${(error as Error).message}`);
    }
    throw error;
  }
  await catchUpWithKillSwitch(client, repos, input.job_id, killSwitch);
  if (created) countJobCreated(input.agent_id, input.config.priority);
  return { jobId: input.job_id, input, created };
}

/** What a job row keeps of its input: everything a later run needs, never continue-as-new state. */
function storedInput(input: TrainingJobInput): Prisma.InputJsonValue {
  const { carry_over: _carried, ...rest } = input;
  return JSON.parse(JSON.stringify(rest)) as Prisma.InputJsonValue;
}

interface RunStartOptions {
  taskQueue: string;
  workflowIdConflictPolicy?: 'USE_EXISTING' | 'FAIL';
  workflowIdReusePolicy?: 'REJECT_DUPLICATE' | 'ALLOW_DUPLICATE';
}

/**
 * Starts one workflow run of a job (workflow id = job id): the first run, or a resumed one. Both
 * carry the same search attributes and the same Temporal task priority and fairness key.
 */
async function startWorkflowRun(client: Client, input: TrainingJobInput, { taskQueue, ...policies }: RunStartOptions) {
  return client.workflow.start(trainingJob, {
    workflowId: input.job_id,
    taskQueue,
    args: [input],
    ...policies,
    typedSearchAttributes: [
      { key: FLOW_AGENT_ID, value: input.agent_id },
      { key: FLOW_PRIORITY, value: input.config.priority },
      { key: FLOW_JOB_STATUS, value: 'queued' },
    ],
    priority: taskPriority(input.config.priority, input.tenant_id),
  });
}

/**
 * The kill switch may have been flipped between reading it and starting the workflow, and its
 * broadcast may have missed a workflow that was not started (or not visible) yet. Reading it
 * again after the start closes that gap: the switch is stored before it is broadcast, so either
 * the broadcast reaches this workflow or this read sees the new state and sends it.
 */
async function catchUpWithKillSwitch(client: Client, repos: Repositories, jobId: string, startedWith: KillSwitchSetting): Promise<void> {
  const now = await repos.settings.getKillSwitch();
  if (now.on === startedWith.on) return;
  await signalKillSwitch(client, jobId, now);
}

/** Sends the kill switch's state to one job; false when its workflow has ended meanwhile. */
async function signalKillSwitch(client: Client, jobId: string, state: { on: boolean; reason?: string | null }): Promise<boolean> {
  try {
    await client.workflow.getHandle(jobId).signal(killSwitchSignal, { on: state.on, ...(state.reason ? { reason: state.reason } : {}) });
    return true;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

/** The query that finds every running training job workflow, whatever its task queue. */
export const RUNNING_TRAINING_JOBS_QUERY = 'WorkflowType = "trainingJob" AND ExecutionStatus = "Running"';

/**
 * Sends the kill switch's state to every training job workflow that may be running: those a
 * visibility query finds, plus those whose rows say queued, running or paused (visibility is
 * eventually consistent, the rows are not). Workflows that have ended meanwhile are skipped.
 * Returns how many were signalled.
 */
export async function broadcastKillSwitch(client: Client, repos: Repositories, state: { on: boolean; reason?: string | null }): Promise<number> {
  const ids = new Set<string>();
  for await (const execution of client.workflow.list({ query: RUNNING_TRAINING_JOBS_QUERY })) ids.add(execution.workflowId);
  for (const id of await repos.jobs.activeIds()) ids.add(id);
  // At most 16 signals in flight, so a large fleet does not flood the Temporal frontend.
  const limit = new ConcurrencyLimit(16);
  const sent = await Promise.all([...ids].map((id) => limit.run(() => signalKillSwitch(client, id, state))));
  return sent.filter(Boolean).length;
}

export class JobStillRunningError extends Error {
  constructor(
    readonly jobId: string,
    readonly status: string,
    detail = `job "${jobId}" is ${status}; only a job that has ended can be resumed (cancel it first)`,
  ) {
    super(detail);
    this.name = 'JobStillRunningError';
  }
}

export class NoCheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoCheckpointError';
  }
}

/** The checkpoint failed its integrity check where the evaluation loaded it; `summary` names no server path. */
export class CheckpointUnreadableError extends Error {
  constructor(
    readonly summary: string,
    readonly run: number,
    readonly iteration: number,
  ) {
    super(summary);
    this.name = 'CheckpointUnreadableError';
  }
}

export class JobNotResumableError extends Error {
  constructor(jobId: string, purpose = 'to start a new run from') {
    super(`job "${jobId}" has no stored input ${purpose} (it was started before inputs were stored, or outside the API); start a new job instead`);
    this.name = 'JobNotResumableError';
  }
}

export class JobNotFoundError extends Error {
  constructor(jobId: string) {
    super(`no job "${jobId}"`);
    this.name = 'JobNotFoundError';
  }
}

export interface ResumeOptions {
  checkpoint?: CheckpointSelector;
  /** The new run's budget (default the job's current one). */
  budgetUsd?: number;
  taskQueue?: string;
  /** How long to wait for the previous run's workflow to close when its row says it ended. */
  closeWaitMs?: number;
}

export interface ResumedJob {
  jobId: string;
  run: number;
  from: CheckpointPosition;
  status: JobStatus;
}

const CLOSED_STATUSES = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED', 'CONTINUED_AS_NEW', 'TIMED_OUT']);

/**
 * Starts a new run of a finished job from one of its checkpoints: same workflow id (the previous
 * execution is closed), the stored input with `run` + 1, `resume_from` the checkpoint and the
 * spend of earlier runs carried over; the workflow loads the checkpoint and trains from the next
 * iteration. Throws JobNotFoundError, JobStillRunningError, NoCheckpointError,
 * JobNotResumableError or InvalidTrainingJobError.
 */
export async function resumeTrainingJob(client: Client, repos: Repositories, jobId: string, options: ResumeOptions = {}): Promise<ResumedJob> {
  const { checkpoint: which = 'best', taskQueue = TRAINING_TASK_QUEUE, closeWaitMs = 10_000 } = options;
  const row = await repos.jobs.get(jobId);
  if (!row) throw new JobNotFoundError(jobId);
  await requireClosedWorkflow(client, repos, jobId, row.status, closeWaitMs);

  const stored = runnableInput(row, jobId, 'to start a new run from');
  const chosen = await chooseCheckpoint(repos, jobId, which);
  const from = { run: chosen.run, iteration: chosen.iteration };
  const input = stored;
  if (from.iteration >= input.config.iterations) {
    throw new InvalidTrainingJobError(
      `checkpoint: run ${from.run}, iteration ${from.iteration} is the job's last iteration (iterations = ${input.config.iterations}); nothing is left to train from it`,
    );
  }
  const budgetUsd = options.budgetUsd ?? row.budgetUsd;
  if (budgetUsd <= row.spendUsd) {
    throw new InvalidTrainingJobError(
      `budget_usd: the job has spent ${formatUsd(row.spendUsd)}, which counts against the new run; give a budget_usd above that (got ${formatUsd(budgetUsd)})`,
    );
  }
  const killSwitch = await repos.settings.getKillSwitch();
  const run = row.currentRun + 1;
  const next = validateTrainingJob({
    ...input,
    config: { ...input.config, budget_usd: budgetUsd },
    run,
    resume_from: from,
    prior_spend_usd: row.spendUsd,
    start_paused: killSwitch.on,
  });
  try {
    // ALLOW_DUPLICATE: a new run of a closed workflow id; FAIL: never while one runs.
    await startWorkflowRun(client, next, { taskQueue, workflowIdReusePolicy: 'ALLOW_DUPLICATE', workflowIdConflictPolicy: 'FAIL' });
  } catch (error) {
    // Someone else resumed it first.
    if (error instanceof WorkflowExecutionAlreadyStartedError) throw new JobStillRunningError(jobId, 'running', `job "${jobId}" was resumed by another request meanwhile`);
    throw error;
  }
  await repos.jobs.markResumed(jobId, run, from.iteration);
  await catchUpWithKillSwitch(client, repos, jobId, killSwitch);
  const now = await repos.jobs.get(jobId);
  return { jobId, run, from, status: (now?.status ?? 'queued') as JobStatus };
}

/** The job's validated stored input without any carry-over, or JobNotResumableError. */
function runnableInput(row: { input: unknown }, jobId: string, purpose: string): Omit<TrainingJobInput, 'carry_over'> {
  if (row.input === null) throw new JobNotResumableError(jobId, purpose);
  const stored = TrainingJobInputSchema.safeParse(row.input);
  if (!stored.success) throw new JobNotResumableError(jobId, purpose);
  const { carry_over: _carried, ...input } = stored.data;
  return input;
}

/** The checkpoint a selector names, or NoCheckpointError listing the ones the job has. */
async function chooseCheckpoint(repos: Repositories, jobId: string, which: CheckpointSelector): Promise<CheckpointPosition> {
  const checkpoints = await repos.progress.checkpoints(jobId);
  const chosen = selectCheckpoint(checkpoints, which);
  if (!chosen) {
    const what = describeCheckpointSelector(which);
    const has = checkpoints.length ? `it has ${checkpoints.map((c) => `${c.run}:${c.iteration}`).join(', ')} (run:iteration)` : 'it has none';
    throw new NoCheckpointError(`job "${jobId}" has no ${what}; ${has}`);
  }
  return { run: chosen.run, iteration: chosen.iteration };
}

export interface EvaluateOptions {
  checkpoint?: CheckpointSelector;
  /** The most the evaluation may spend (default: what is left of the job's budget). */
  budgetUsd?: number;
  taskQueue?: string;
}

/**
 * training.evaluate: runs `evaluateCheckpoint` for one checkpoint of a job (one workflow per
 * checkpoint: concurrent requests for the same one share it) and waits for its summary. Throws
 * JobNotFoundError, JobNotResumableError (no stored input, so no held-out queries),
 * NoCheckpointError or InvalidTrainingJobError (no budget left, worst case above the budget,
 * nothing held out).
 */
export async function evaluateJobCheckpoint(client: Client, repos: Repositories, jobId: string, options: EvaluateOptions = {}): Promise<EvaluationSummary> {
  const row = await repos.jobs.get(jobId);
  if (!row) throw new JobNotFoundError(jobId);
  const job = runnableInput(row, jobId, 'to know its held-out queries');
  const checkpoint = await chooseCheckpoint(repos, jobId, options.checkpoint ?? 'best');
  const budgetUsd = options.budgetUsd ?? row.budgetUsd - row.spendUsd;
  // A job that ran its test evaluation held its test split out of training: evaluate there.
  const split = (await repos.progress.evaluations(jobId)).some((evaluation) => evaluation.kind === 'test') ? 'test' : 'validation';
  if (!(budgetUsd > 0)) {
    throw new InvalidTrainingJobError(`budget_usd: the job has spent its whole budget (${formatUsd(row.spendUsd)} of ${formatUsd(row.budgetUsd)}); give a budget_usd for this evaluation`);
  }
  try {
    return await client.workflow.execute(evaluateCheckpoint, {
      workflowId: evaluateCheckpointWorkflowId(jobId, checkpoint),
      taskQueue: options.taskQueue ?? TRAINING_TASK_QUEUE,
      args: [{ job, checkpoint, budget_usd: budgetUsd, split }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      priority: taskPriority(job.config.priority, job.tenant_id),
    });
  } catch (error) {
    // The workflow's own refusals are its failure's cause; an activity's (loadCheckpoint) is one level deeper, under an ActivityFailure.
    let cause: Error | undefined = error instanceof WorkflowFailedError ? error.cause : undefined;
    while (cause && !(cause instanceof ApplicationFailure)) cause = cause.cause instanceof Error ? cause.cause : undefined;
    if (cause instanceof ApplicationFailure && EVALUATION_REFUSALS.has(cause.type ?? '')) throw new InvalidTrainingJobError(cause.message);
    if (cause instanceof ApplicationFailure && cause.type === 'CheckpointNotFound') throw new NoCheckpointError(cause.message);
    if (cause instanceof ApplicationFailure && cause.type === 'CheckpointIntegrityError') {
      const details = (cause.details?.[0] ?? {}) as { summary?: string };
      throw new CheckpointUnreadableError(details.summary ?? `checkpoint run ${checkpoint.run}, iteration ${checkpoint.iteration} of job ${jobId} failed its integrity check; it was not loaded`, checkpoint.run, checkpoint.iteration);
    }
    throw error;
  }
}

/** Failures of evaluateCheckpoint that are the request's fault, answered as invalid params. */
const EVALUATION_REFUSALS = new Set(['EvaluationBudgetTooSmall', 'NothingToEvaluate']);

/**
 * A job can be resumed once its workflow has closed. Its row may say it ended a moment before
 * the workflow closes (the row is written by the workflow's last activity): then this waits a
 * little for that execution to close. A row that says running while its workflow is gone
 * (terminated) counts as ended.
 */
async function requireClosedWorkflow(client: Client, repos: Repositories, jobId: string, rowStatus: string, closeWaitMs: number): Promise<void> {
  const describe = async (runId?: string): Promise<WorkflowExecutionDescription | null> => {
    try {
      return await client.workflow.getHandle(jobId, runId).describe();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return null;
      throw error;
    }
  };
  const open = (e: WorkflowExecutionDescription | null) => e !== null && !CLOSED_STATUSES.has(e.status.name);
  let execution = await describe();
  if (!open(execution)) return;
  if (!isTerminalJobStatus(rowStatus as JobStatus)) throw new JobStillRunningError(jobId, rowStatus);
  const runId = execution!.runId;
  const deadline = Date.now() + closeWaitMs;
  while (open(execution) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Another request may have resumed the job meanwhile: then its row no longer says it ended.
    const status = (await repos.jobs.get(jobId))?.status ?? rowStatus;
    if (!isTerminalJobStatus(status as JobStatus)) throw new JobStillRunningError(jobId, status);
    execution = await describe(runId);
  }
  if (open(execution)) throw new JobStillRunningError(jobId, rowStatus, `job "${jobId}" ended ${rowStatus} but its workflow has not closed yet; retry in a moment`);
}

function sameRequest(existing: { agentId: string; tenantId: string; config: unknown }, requested: { agentId: string; tenantId: string; config: unknown }): boolean {
  return existing.agentId === requested.agentId && existing.tenantId === requested.tenantId && isDeepStrictEqual(existing.config, requested.config);
}

/** Cancels through Temporal; the workflow records `cancelled` with the reason, then ends. */
export async function cancelTrainingJob(client: Client, jobId: string, reason = 'cancelled by request'): Promise<void> {
  const handle = client.workflow.getHandle(jobId);
  await handle.signal(cancelReasonSignal, reason);
  await handle.cancel();
}
