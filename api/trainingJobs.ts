/**
 * Starting and steering training jobs through Temporal. The JSON-RPC facade, the demo and the
 * tests all go through here: validation first (nothing is written or started for bad input),
 * then the `queued` row, then the workflow (workflow id = job id).
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { describeZodError, TrainingJobInputSchema, type Priority, type TrainingJobInput } from '../training/config';
import type { Repositories } from '../activities/db';
import { resolveModelPrice, UnknownModelPriceError } from '../activities/llm/pricing';
import { FLOW_AGENT_ID, FLOW_JOB_STATUS, FLOW_PRIORITY } from '../workflows/searchAttributes';
import { TRAINING_TASK_QUEUE } from '../workflows/taskQueues';
import { cancelReasonSignal, trainingJob } from '../workflows/trainingJob';

export class InvalidTrainingJobError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTrainingJobError';
  }
}

/** Temporal task priority: P0 is dispatched first (priorityKey 1 of 1..5). */
export const PRIORITY_KEYS: Record<Priority, number> = { P0: 1, P1: 3, P2: 5 };

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
  const row = {
    id: input.job_id,
    agentId: input.agent_id,
    tenantId: input.tenant_id,
    ownerId: input.owner_id,
    priority: input.config.priority,
    config: input.config,
    budgetUsd: input.config.budget_usd,
  };
  let created = true;
  if (idempotent) {
    const existing = await repos.jobs.createIfAbsent(row);
    created = existing.created;
    if (!created && !sameRequest(existing.row, row)) throw new IdempotencyConflictError(input.job_id);
  } else {
    await repos.jobs.create(row);
  }
  try {
    await client.workflow.start(trainingJob, {
      workflowId: input.job_id,
      taskQueue,
      args: [input],
      // A concurrent duplicate joins the running workflow; one that comes after the job ended
      // is refused (and answered with the same job) instead of training it a second time.
      ...(idempotent ? { workflowIdConflictPolicy: 'USE_EXISTING' as const, workflowIdReusePolicy: 'REJECT_DUPLICATE' as const } : {}),
      typedSearchAttributes: [
        { key: FLOW_AGENT_ID, value: input.agent_id },
        { key: FLOW_PRIORITY, value: input.config.priority },
        { key: FLOW_JOB_STATUS, value: 'queued' },
      ],
      priority: { priorityKey: PRIORITY_KEYS[input.config.priority], fairnessKey: input.tenant_id.slice(0, 64) },
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError && idempotent) return { jobId: input.job_id, input, created: false };
    if (!(error instanceof WorkflowExecutionAlreadyStartedError) && created) {
      // No workflow will ever update this row: record why the job never ran.
      await repos.jobs.finish(input.job_id, 'failed', `could not start the workflow: ${(error as Error).message}`);
    }
    throw error;
  }
  return { jobId: input.job_id, input, created };
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
