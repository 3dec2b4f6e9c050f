/**
 * What each JSON-RPC method does, given validated params and an authenticated caller. The
 * server (server.ts) does the protocol, authentication, permissions and params validation;
 * these functions enforce tenancy and talk to Temporal and the repositories.
 */
import { createHash, randomUUID } from 'node:crypto';
import { formatUsd, validateBudgetRaise } from '../training/budget';
import { EvaluationSummarySchema } from '../training/evaluation';
import { ActivityFailure, ApplicationFailure, CancelledFailure, WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { z } from 'zod';
import type { JobStatusRow, Repositories, TrainingJobRow, TrajectoryRow } from '../adapters/db';
import type { Prisma } from '../generated/prisma/client';
import { IterationMetricsSchema } from '../training/iterationMetrics';
import { isTerminalJobStatus, type JobStatus } from '../training/jobStatus';
import type { Priority } from '../training/priority';
import type { TrajectoryStep } from '../training/trajectory';
import type { Principal } from './auth';
import { checkpointUnreadable, FlowRpcError } from './errors';
import { buildOpenRpcDocument } from './openrpc';
import { CheckpointIntegrityError, CheckpointStore } from '../adapters/checkpoints/checkpointStore';
import { blobStoreFromEnv, type BlobStore } from '../adapters/checkpoints/blobStore';
import { PolicySchema } from '../training/policy';
import {
  BudgetAlertSchema,
  EXPORT_HARD_CAP,
  type CancelParamsSchema,
  type ExportedTrajectory,
  type ExportParamsSchema,
  type ExportResult,
  type GetHistoryParamsSchema,
  type GetHistoryResult,
  type ListCheckpointsParamsSchema,
  type ListCheckpointsResult,
  type ServerInfo,
  type GetStatusParamsSchema,
  type JobStatusResult,
  type JobSummary,
  type KillSwitchParamsSchema,
  type KillSwitchState,
  type ListJobsParamsSchema,
  type ListJobsResult,
  type MethodName,
  type ResumeParamsSchema,
  type EvaluateParamsSchema,
  type StartGrpoParamsSchema,
  type UpdateBudgetParamsSchema,
} from './schemas';
import { resolveTaskInput, TaskSetError } from './taskSets';
import {
  broadcastKillSwitch,
  cancelTrainingJob,
  IdempotencyConflictError,
  InvalidTrainingJobError,
  JobNotFoundError,
  JobNotResumableError,
  JobStillRunningError,
  NoCheckpointError,
  CheckpointUnreadableError,
  resumeTrainingJob,
  evaluateJobCheckpoint,
  startTrainingJob,
} from './trainingJobs';
import { updateBudgetUpdate } from '../workflows/trainingJob';
import { endOrphanedJob } from './orphanedJobs';
import { requireFlowNamespace } from './namespaceGate';
import { agentAllowListFromEnv, agentUrlRefusal } from '../adapters/net/agentUrlPolicy';
import { JobStatusCache, oncePerRow } from './jobStatusCache';
import { policyMethodHandlers, PolicyRegistry } from './policyRegistry';

/** How long training.update_budget waits for the job's workflow to take the Update. */
export const UPDATE_BUDGET_TIMEOUT_MS = 15_000;

export interface MethodDependencies {
  client: Client;
  repos: Repositories;
  /** The task queue new jobs go to (tests use one of their own). */
  taskQueue?: string;
  /** Where checkpoint payloads are read from; default what the environment says (`blobStoreFromEnv`). */
  blobs?: BlobStore;
  /** The Temporal Web UI's base URL for links to jobs; default FLOW_TEMPORAL_UI_URL, else none. */
  temporalUiUrl?: string | null;
  /** The policy registry and its read cache, shared with GET /agents/{agent_id}/policy; default a new one. */
  policyRegistry?: PolicyRegistry;
  /** How long get_status may answer from a job row read earlier (api/jobStatusCache.ts); default 250 ms, 0 for never. */
  statusCacheTtlMs?: number;
}

type Handler = (params: never, caller: Principal) => Promise<unknown>;

/** Methods that change a job's row (or start a workflow that will): get_status's copy of it is dropped. */
const JOB_CHANGING_METHODS = ['training.cancel', 'training.update_budget', 'training.resume', 'training.evaluate'] as const satisfies readonly MethodName[];

export function createMethodHandlers(deps: MethodDependencies): Record<MethodName, Handler> {
  const { client, repos } = deps;
  let checkpointStore: CheckpointStore | undefined;
  const registry = deps.policyRegistry ?? new PolicyRegistry(repos, { blobs: deps.blobs });
  const statusRows = new JobStatusCache((jobId) => repos.jobs.getWithBestCheckpoint(jobId), deps.statusCacheTtlMs);
  const statusOfRow = oncePerRow(jobStatus);

  async function visibleJob(jobId: string, caller: Principal): Promise<TrainingJobRow> {
    return requireVisible(await repos.jobs.get(jobId), jobId, caller);
  }

  const handlers: Record<MethodName, Handler> = {
    async 'training.start_grpo'(params: z.infer<typeof StartGrpoParamsSchema>, caller: Principal) {
      requireOwnTenant(params.tenant_id, caller, 'start jobs for another tenant');
      // What the workers would refuse anyway (agentUrlPolicy.ts), refused before a job exists; a
      // host name that resolves into a denied range fails its trajectories at run time.
      if (params.agent?.type === 'http') {
        const refusal = agentUrlRefusal(params.agent.url, agentAllowListFromEnv());
        if (refusal) throw new FlowRpcError('INVALID_PARAMS', `agent.url: ${refusal}`);
      }
      const tenantId = params.tenant_id ?? caller.tenantId;
      const jobId = params.idempotency_key
        ? `job-${createHash('sha256').update(`${tenantId}\0${params.idempotency_key}`).digest('hex').slice(0, 32)}`
        : `job-${randomUUID()}`;
      const request = {
        job_id: jobId,
        agent_id: params.agent_id,
        tenant_id: tenantId,
        owner_id: caller.subject,
        // Inline, a built-in set, JSONL text or a JSONL file in the task directory (api/taskSets.ts).
        ...(await resolveTaskInput(params).catch((error: unknown) => {
          throw error instanceof TaskSetError ? new FlowRpcError('INVALID_PARAMS', error.message) : error;
        })),
        ...(params.environment ? { environment: params.environment } : {}),
        ...(params.agent ? { agent: params.agent } : {}),
        ...(params.base_prompt ? { base_prompt: params.base_prompt } : {}),
        // Resolved once, here: the workflow input carries the policy, so replays never read the registry.
        ...(params.base === 'active' ? await startingFromActive(registry, tenantId, params.agent_id) : {}),
        ...(params.config ? { config: params.config } : {}),
      };
      await requireFlowNamespace(client); // before anything is written
      try {
        const started = await startTrainingJob(client, repos, request, { taskQueue: deps.taskQueue, idempotent: Boolean(params.idempotency_key) });
        const row = await repos.jobs.get(started.jobId);
        return { job_id: started.jobId, status: row!.status, created: started.created };
      } catch (error) {
        if (error instanceof InvalidTrainingJobError) throw new FlowRpcError('INVALID_PARAMS', error.message);
        if (error instanceof IdempotencyConflictError) throw new FlowRpcError('IDEMPOTENCY_CONFLICT', error.message, { job_id: jobId });
        throw error;
      }
    },

    async 'training.get_status'(params: z.infer<typeof GetStatusParamsSchema>, caller: Principal): Promise<JobStatusResult> {
      // Visibility is checked per caller; the answer is built once per row read (statusOfRow).
      return statusOfRow(requireVisible(await statusRows.get(params.job_id), params.job_id, caller));
    },

    async 'training.list_jobs'(params: z.infer<typeof ListJobsParamsSchema>, caller: Principal): Promise<ListJobsResult> {
      requireOwnTenant(params.tenant_id, caller, "list another tenant's jobs");
      const tenantId = caller.admin ? params.tenant_id : caller.tenantId;
      const rows = await repos.jobs.list(
        {
          tenantId,
          agentId: params.agent_id,
          status: params.status,
          priority: params.priority,
          createdAfter: params.created_after ? new Date(params.created_after) : undefined,
          createdBefore: params.created_before ? new Date(params.created_before) : undefined,
        },
        { limit: params.limit + 1, cursor: params.cursor },
      );
      if (rows === null) throw new FlowRpcError('INVALID_PARAMS', 'cursor: not a cursor this server issued (use next_cursor of the previous page)');
      const page = rows.slice(0, params.limit);
      return { jobs: page.map(jobSummary), next_cursor: rows.length > params.limit ? page[page.length - 1].id : null };
    },

    async 'training.cancel'(params: z.infer<typeof CancelParamsSchema>, caller: Principal) {
      const row = await visibleJob(params.job_id, caller);
      if (isTerminalJobStatus(row.status as JobStatus)) {
        throw new FlowRpcError('JOB_ALREADY_FINISHED', `job "${row.id}" ended ${row.status}`, { status: row.status });
      }
      const reason = params.reason ?? `cancelled by ${caller.subject}`;
      // A row left `queued` with no workflow (its start never happened) is cancelled here and now.
      if (row.status === 'queued' && (await endOrphanedJob(client, repos, row.id, 'cancelled', `${reason} (its workflow had never started)`))) {
        return { job_id: row.id, status: 'cancelled' as const };
      }
      try {
        await cancelTrainingJob(client, row.id, reason);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw new FlowRpcError('JOB_ALREADY_FINISHED', `job "${row.id}" has no running workflow`);
        throw error;
      }
      return { job_id: row.id, status: 'cancelling' as const };
    },

    async 'training.export_trajectories'(params: z.infer<typeof ExportParamsSchema>, caller: Principal): Promise<ExportResult> {
      if (params.limit > EXPORT_HARD_CAP) {
        throw new FlowRpcError('EXPORT_LIMIT_EXCEEDED', `limit ${params.limit} is above ${EXPORT_HARD_CAP}; page with limit and offset`, { max: EXPORT_HARD_CAP });
      }
      if (params.iteration_from !== undefined && params.iteration_to !== undefined && params.iteration_from > params.iteration_to) {
        throw new FlowRpcError('INVALID_PARAMS', `iteration_from (${params.iteration_from}) is after iteration_to (${params.iteration_to})`);
      }
      const row = await visibleJob(params.job_id, caller);
      const chat = params.format === 'jsonl_chat';
      const where: Omit<Prisma.TrajectoryWhereInput, 'jobId'> = {
        run: params.run,
        ...(params.success_only || chat ? { success: true } : {}),
        ...(params.min_reward !== undefined ? { reward: { gte: params.min_reward } } : {}),
        iteration: { gte: params.iteration_from, lte: params.iteration_to },
      };
      const [total, rows] = await Promise.all([
        repos.trajectories.countForJobWhere(row.id, where),
        repos.trajectories.listForJob(row.id, where, { limit: params.limit, offset: params.offset }),
      ]);
      const page = { job_id: row.id, format: params.format, total, offset: params.offset, count: rows.length };
      if (chat) return { ...page, lines: rows.map((r) => JSON.stringify({ messages: chatMessages(r) })) };
      return { ...page, trajectories: rows.map(exportedTrajectory) };
    },

    async 'training.update_budget'(params: z.infer<typeof UpdateBudgetParamsSchema>, caller: Principal) {
      const row = await visibleJob(params.job_id, caller);
      if (isTerminalJobStatus(row.status as JobStatus)) {
        throw new FlowRpcError('JOB_ALREADY_FINISHED', `job "${row.id}" ended ${row.status}`, { status: row.status });
      }
      const handle = client.workflow.getHandle(row.id);
      // One update id per amount: the budget only rises within a run (and Temporal keeps update ids
      // per run), so each amount is raised at most once. A retry while its raise is pending (no
      // worker has taken it, or its record is under way) joins that same update instead of sending
      // a second one, whatever else was raised meanwhile. A raise that could not be recorded was not
      // applied, and Temporal keeps that outcome under its id: a retry sends it again under the next
      // id (concurrent retries find and join the same one).
      const firstId = `update_budget:${params.budget_usd}`;
      let updateId = firstId;
      let held = await heldUpdate(client, row.id, updateId);
      for (let resend = 1; held === 'not_recorded'; resend++) {
        if (resend > MAX_BUDGET_RESENDS) throw raiseNotRecorded(row.id, params.budget_usd, `${MAX_BUDGET_RESENDS + 1} tries`, true);
        updateId = `${firstId}:resend-${resend}`;
        held = await heldUpdate(client, row.id, updateId);
      }
      // The row holds the budget in force (the update's handler records it before the workflow
      // takes it). A retry of a raise that has since been applied finds it in force: the same
      // answer, not a refusal. Not so when the raise is still being recorded (pending: joined
      // below), or when its record committed and was still reported failed (its worker died after
      // the write): the row holds it, the workflow does not, and its failed outcome sends it again
      // (the next id, unknown to Temporal, is then not "applied": it has not been sent).
      if (row.budgetUsd === params.budget_usd && (held === 'applied' || (held === 'unknown' && updateId === firstId))) {
        return { job_id: row.id, budget_usd: row.budgetUsd, status: 'applied' as const };
      }
      // Raised to this amount earlier in the run and past it since: Temporal would answer the old
      // raise's result; the budget in force says what a lower amount is.
      const below = held === 'applied' ? validateBudgetRaise(row.budgetUsd, params.budget_usd) : null;
      if (below) throw new FlowRpcError('INVALID_PARAMS', below);
      try {
        const result = await client.withDeadline(Date.now() + UPDATE_BUDGET_TIMEOUT_MS, () =>
          handle.executeUpdate(updateBudgetUpdate, { args: [params.budget_usd], updateId }),
        );
        return { job_id: row.id, budget_usd: result.budget_usd, status: 'applied' as const };
      } catch (error) {
        if (error instanceof WorkflowUpdateFailedError) {
          // A cancel that landed while the handler recorded the raise cancels the handler's activity.
          if (hasCancelledCause(error)) {
            throw raiseOvertakenByCancel(row.id);
          }
          // The handler's record of the raise failed for good (the database out for longer than
          // the job's infrastructure_retry_minutes): the workflow did not take it either.
          const recordFailure = causeOf(error, (cause) => cause instanceof ActivityFailure);
          if (recordFailure) throw raiseNotRecorded(row.id, params.budget_usd, innermostMessage(recordFailure));
          if (causeOf(error, (cause) => cause instanceof ApplicationFailure && cause.type === JOB_ENDED_UNDER_UPDATE)) throw raiseOvertakenByJobEnd(row.id);
          // The workflow's validator refused the new budget: its message says why.
          throw new FlowRpcError('INVALID_PARAMS', error.cause?.message ?? error.message);
        }
        if (error instanceof WorkflowNotFoundError) throw new FlowRpcError('JOB_ALREADY_FINISHED', `job "${row.id}" has no running workflow`);
        if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
          // The deadline passed either because no worker has taken the update (Temporal holds it and
          // delivers it later: pending) or because Temporal never got it (unreachable): ask which.
          // Known to Temporal, the update may also have finished meanwhile: its outcome is the answer.
          const held = await heldUpdate(client, row.id, updateId);
          if (held === 'pending') return { job_id: row.id, budget_usd: params.budget_usd, status: 'pending' as const };
          if (held === 'applied') return { job_id: row.id, budget_usd: params.budget_usd, status: 'applied' as const };
          if (held === 'not_recorded') throw raiseNotRecorded(row.id, params.budget_usd, 'its record failed');
          if (held === 'job_ended') throw raiseOvertakenByJobEnd(row.id);
          if (held !== 'unknown') {
            if (held.cancelled) throw raiseOvertakenByCancel(row.id);
            throw new FlowRpcError('INVALID_PARAMS', held.message);
          }
          throw new FlowRpcError(
            'UNAVAILABLE',
            'Temporal did not confirm that it took the raise, so it may not be applied; retry later (a retry with the same budget_usd is safe: it joins the same raise, or finds it applied)',
          );
        }
        throw error;
      }
    },

    async 'training.kill_switch'(params: z.infer<typeof KillSwitchParamsSchema>, caller: Principal) {
      // Stored before it is broadcast: a job started meanwhile reads the new state (trainingJobs.ts).
      const setting = await repos.settings.setKillSwitch({ on: params.on, reason: params.reason ?? null, by: caller.subject });
      const signalled = await broadcastKillSwitch(client, repos, setting);
      return { on: setting.on, reason: setting.reason, signalled };
    },

    async 'training.get_kill_switch'(): Promise<KillSwitchState> {
      return repos.settings.getKillSwitch();
    },

    async 'training.resume'(params: z.infer<typeof ResumeParamsSchema>, caller: Principal) {
      const row = await visibleJob(params.job_id, caller);
      await requireFlowNamespace(client);
      try {
        const resumed = await resumeTrainingJob(client, repos, row.id, { checkpoint: params.checkpoint, budgetUsd: params.budget_usd, taskQueue: deps.taskQueue });
        return { job_id: resumed.jobId, run: resumed.run, from: resumed.from, status: resumed.status };
      } catch (error) {
        if (error instanceof JobStillRunningError) throw new FlowRpcError('JOB_STILL_RUNNING', error.message, { status: error.status });
        if (error instanceof NoCheckpointError) throw new FlowRpcError('NO_CHECKPOINT', error.message);
        if (error instanceof JobNotResumableError) throw new FlowRpcError('JOB_NOT_RESUMABLE', error.message);
        if (error instanceof InvalidTrainingJobError) throw new FlowRpcError('INVALID_PARAMS', error.message);
        if (error instanceof JobNotFoundError) throw new FlowRpcError('JOB_NOT_FOUND', error.message);
        throw error;
      }
    },

    async 'training.evaluate'(params: z.infer<typeof EvaluateParamsSchema>, caller: Principal) {
      const row = await visibleJob(params.job_id, caller);
      try {
        return await evaluateJobCheckpoint(client, repos, row.id, { checkpoint: params.checkpoint, budgetUsd: params.budget_usd, taskQueue: deps.taskQueue });
      } catch (error) {
        if (error instanceof NoCheckpointError) throw new FlowRpcError('NO_CHECKPOINT', error.message);
        if (error instanceof CheckpointUnreadableError) throw checkpointUnreadable(error);
        if (error instanceof JobNotResumableError) throw new FlowRpcError('JOB_NOT_RESUMABLE', error.message);
        if (error instanceof InvalidTrainingJobError) throw new FlowRpcError('INVALID_PARAMS', error.message);
        throw error;
      }
    },

    async 'training.get_history'(params: z.infer<typeof GetHistoryParamsSchema>, caller: Principal): Promise<GetHistoryResult> {
      const row = await visibleJob(params.job_id, caller);
      const iterations = await repos.progress.iterations(row.id);
      return {
        job_id: row.id,
        iterations: iterations.map((entry) => {
          const metrics = IterationMetricsSchema.safeParse(entry.metrics);
          return {
            run: entry.run,
            iteration: entry.iteration,
            metrics: metrics.success ? metrics.data : null,
            policy_version: entry.policyVersion,
            spend_usd: entry.spendUsd,
            at: entry.createdAt.toISOString(),
          };
        }),
        spend_usd: row.spendUsd,
        budget_usd: row.budgetUsd,
        budget_alerts: budgetAlerts(row.budgetAlerts),
      };
    },

    async 'training.list_checkpoints'(params: z.infer<typeof ListCheckpointsParamsSchema>, caller: Principal): Promise<ListCheckpointsResult> {
      const row = await visibleJob(params.job_id, caller);
      checkpointStore ??= new CheckpointStore(repos.progress, deps.blobs ?? blobStoreFromEnv());
      const store = checkpointStore;
      const rows = await repos.progress.checkpoints(row.id);
      const checkpoints = await Promise.all(
        rows.map(async (checkpoint) => {
          // Each payload is verified against its sha256; one that fails is reported, not hidden.
          const loaded = await store.load(row.id, { run: checkpoint.run, iteration: checkpoint.iteration }).then(
            (value) => ({ value, error: null }),
            // Told without the blob store's location (a server path or bucket); the logs have it.
            (error: Error) => ({ value: null, error: error instanceof CheckpointIntegrityError ? error.summary : error.message }),
          );
          const policy = loaded.value ? PolicySchema.safeParse(loaded.value.policy) : null;
          return {
            run: checkpoint.run,
            iteration: checkpoint.iteration,
            score: checkpoint.score,
            created_at: checkpoint.createdAt.toISOString(),
            metrics: (checkpoint.metrics ?? {}) as Record<string, unknown>,
            policy: policy?.success ? { version: policy.data.version, base_prompt: policy.data.base_prompt, lessons: policy.data.lessons } : null,
            policy_error: loaded.error ?? (policy && !policy.success ? 'the checkpoint holds no well-formed policy' : null),
          };
        }),
      );
      return { job_id: row.id, checkpoints };
    },

    async 'training.get_server_info'(): Promise<ServerInfo> {
      const configured = deps.temporalUiUrl !== undefined ? deps.temporalUiUrl : process.env.FLOW_TEMPORAL_UI_URL?.trim() || null;
      return { temporal_ui_url: configured ? configured.replace(/\/+$/, '') : null, temporal_namespace: client.options.namespace };
    },

    ...policyMethodHandlers(registry),

    async 'rpc.discover'() {
      return buildOpenRpcDocument();
    },
  };
  // A change made through this process is seen by this process's next get_status at once.
  for (const name of JOB_CHANGING_METHODS) {
    const handler = handlers[name] as (params: { job_id: string }, caller: Principal) => Promise<unknown>;
    handlers[name] = ((params: { job_id: string }, caller: Principal) => handler(params, caller).finally(() => statusRows.forget(params.job_id))) as Handler;
  }
  return handlers;
}

/** A start_grpo request's base prompt and initial policy for `base: "active"`: the agent's active version, its counter reset. */
async function startingFromActive(registry: PolicyRegistry, tenantId: string, agentId: string) {
  const active = await registry.activeForJob(tenantId, agentId);
  return {
    base_prompt: active.policy.base_prompt,
    initial_policy: { version: active.version, content_hash: active.content_hash, policy: { ...active.policy, version: 0 } },
  };
}

/** A job the caller may see: its own tenant's, or any for an admin. Others do not exist. */
function requireVisible<Row extends { tenantId: string }>(row: Row | null, jobId: string, caller: Principal): Row {
  if (!row || (!caller.admin && row.tenantId !== caller.tenantId)) throw new FlowRpcError('JOB_NOT_FOUND', `no job "${jobId}"`);
  return row;
}

/** Naming a tenant other than the caller's own takes an admin token. */
function requireOwnTenant(tenantId: string | undefined, caller: Principal, action: string): void {
  if (tenantId && tenantId !== caller.tenantId && !caller.admin) {
    throw new FlowRpcError('PERMISSION_DENIED', `only an admin token may ${action}`);
  }
}

/** A job row as get_status reads it (TrainingJobRepository.getWithBestCheckpoint). */
type StatusRow = NonNullable<Awaited<ReturnType<Repositories['jobs']['getWithBestCheckpoint']>>>;

/** What get_status answers for a row: its summary, the stored metrics, evaluations and alerts, checked against their schemas. */
function jobStatus(row: StatusRow): JobStatusResult {
  const best = row.checkpoints[0];
  // A row without metrics (before the first iteration) or evaluations is common: no parse, no ZodError to build.
  const metrics = row.lastMetrics == null ? null : IterationMetricsSchema.safeParse(row.lastMetrics);
  return {
    ...jobSummary(row),
    last_metrics: metrics?.success ? metrics.data : null,
    best_checkpoint: best ? { run: best.run, iteration: best.iteration, score: best.score, created_at: best.createdAt.toISOString() } : null,
    evaluation: storedEvaluation(row.evaluation),
    test_evaluation: storedEvaluation(row.testEvaluation),
    budget_alerts: budgetAlerts(row.budgetAlerts),
  };
}

/** A row as training.list_jobs shows it (JobSummarySchema); get_status adds the rest. */
function jobSummary(row: JobStatusRow): JobSummary {
  const config = row.config as { iterations?: number };
  return {
    job_id: row.id,
    agent_id: row.agentId,
    tenant_id: row.tenantId,
    owner_id: row.ownerId,
    status: row.status as JobStatus,
    priority: row.priority as Priority,
    run: row.currentRun,
    iteration: row.iteration,
    iterations: config.iterations ?? 0,
    phase: row.phase,
    spend_usd: row.spendUsd,
    budget_usd: row.budgetUsd,
    budget_used_ratio: row.budgetUsd > 0 ? row.spendUsd / row.budgetUsd : 0,
    committed_usd: row.committedUsd,
    reason: row.reason,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    started_at: row.startedAt?.toISOString() ?? null,
    finished_at: row.finishedAt?.toISOString() ?? null,
  };
}

/** The stored evaluation summary, or null when there is none (or it is not one this code wrote). */
function storedEvaluation(value: unknown) {
  if (value == null) return null;
  const parsed = EvaluationSummarySchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** The alerts recorded on the job; an entry that is not a well-formed alert is left out. */
function budgetAlerts(value: unknown) {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry) => {
    const parsed = BudgetAlertSchema.safeParse(entry);
    return parsed.success ? [parsed.data] : [];
  });
}

function exportedTrajectory(row: TrajectoryRow): ExportedTrajectory {
  return {
    id: row.id,
    run: row.run,
    iteration: row.iteration,
    query_index: row.queryIndex,
    sample_index: row.sampleIndex,
    query_id: row.queryId,
    agent_id: row.agentId,
    success: row.success,
    verified: row.verified,
    reward: row.reward,
    advantage: row.advantage,
    step_advantages: (row.stepAdvantages as number[] | null) ?? null,
    steps: row.steps as unknown as TrajectoryStep[],
    final_answer: row.finalAnswer,
    error: row.error,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
    cost_usd: row.costUsd,
    log_prob: row.logProb,
    started_at: row.startedAt.toISOString(),
    ended_at: row.endedAt.toISOString(),
  };
}

/**
 * A trajectory as an OpenAI-style chat transcript for fine-tuning: the task as the user turn,
 * then each step's assistant turn (with its tool calls) and the tools' answers.
 */
function chatMessages(row: TrajectoryRow) {
  const steps = row.steps as unknown as TrajectoryStep[];
  const messages: Record<string, unknown>[] = [{ role: 'user', content: steps[0]?.state ?? '' }];
  for (const step of steps) {
    if (step.action.type === 'final_answer') {
      messages.push({ role: 'assistant', content: step.action.content ?? '' });
      continue;
    }
    messages.push({
      role: 'assistant',
      content: step.action.content,
      tool_calls: step.tool_calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.arguments) } })),
    });
    const outputs = (step.result ?? '').split('\n');
    step.tool_calls.forEach((call, i) => messages.push({ role: 'tool', tool_call_id: call.id, content: step.tool_calls.length === 1 ? step.result ?? '' : outputs[i] ?? '' }));
  }
  return messages;
}

/** The failure type Temporal ends an accepted update with when its workflow closes first. */
const JOB_ENDED_UNDER_UPDATE = 'AcceptedUpdateCompletedWorkflow';

/** How many times training.update_budget sends again a raise whose record failed, before it says so. */
const MAX_BUDGET_RESENDS = 20;

/** A raise whose record failed for good: not applied. `gaveUp` once it has been sent MAX_BUDGET_RESENDS times more. */
function raiseNotRecorded(jobId: string, budgetUsd: number, why: string, gaveUp = false): FlowRpcError {
  const next = gaveUp ? 'this raise is not sent again in this run (ask for another amount, or check PostgreSQL and training.resume the job)' : 'retry later (a retry sends it again)';
  return new FlowRpcError('UNAVAILABLE', `job "${jobId}" could not record the raise to ${formatUsd(budgetUsd)} in PostgreSQL (${why}), so it was not applied; ${next}`);
}

/** A budget raise the job ended under before recording it (Temporal's AcceptedUpdateCompletedWorkflow). */
function raiseOvertakenByJobEnd(jobId: string): FlowRpcError {
  return new FlowRpcError('JOB_ALREADY_FINISHED', `job "${jobId}" ended before the raise was recorded: the raise was not applied`);
}

/** A budget raise ended by a cancel that landed while its handler recorded it, learnt at once or after the deadline. */
function raiseOvertakenByCancel(jobId: string): FlowRpcError {
  return new FlowRpcError('JOB_ALREADY_FINISHED', `job "${jobId}" is being cancelled: the raise was not applied`, { status: 'cancelling' });
}

/** How long training.update_budget waits to learn whether Temporal holds an update it timed out on. */
const UPDATE_LOOKUP_TIMEOUT_MS = 2_000;

/**
 * What Temporal knows of the update `updateId` of workflow `workflowId`: admitted and not yet
 * finished (`pending`: delivered when a worker runs the job), finished (`applied`, `not_recorded`, `job_ended`, or the failure
 * that ended it), or `unknown` when Temporal does not know it or does not answer.
 */
export async function heldUpdate(client: Client, workflowId: string, updateId: string): Promise<'pending' | 'applied' | 'not_recorded' | 'job_ended' | 'unknown' | { message: string; cancelled: boolean }> {
  let answer: temporal.api.workflowservice.v1.IPollWorkflowExecutionUpdateResponse;
  try {
    answer = await client.withDeadline(Date.now() + UPDATE_LOOKUP_TIMEOUT_MS, () =>
      client.workflowService.pollWorkflowExecutionUpdate({
        namespace: client.options.namespace,
        updateRef: { workflowExecution: { workflowId }, updateId },
        identity: client.options.identity,
        // Answers as soon as the update is known, whatever its stage; NOT_FOUND when it is not.
        waitPolicy: { lifecycleStage: temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED },
      }),
    );
  } catch {
    return 'unknown';
  }
  const outcome = answer.outcome;
  if (!outcome) return 'pending';
  if (!outcome.failure) return 'applied';
  let cancelled = false;
  let activityFailed = false;
  for (let failure: temporal.api.failure.v1.IFailure | null | undefined = outcome.failure; failure; failure = failure.cause) {
    if (failure.canceledFailureInfo) cancelled = true;
    if (failure.activityFailureInfo) activityFailed = true;
    if (failure.applicationFailureInfo?.type === JOB_ENDED_UNDER_UPDATE) return 'job_ended';
  }
  // The handler's record of the raise failed (not cancelled): not applied (workflows/trainingJob.ts).
  if (activityFailed && !cancelled) return 'not_recorded';
  // The innermost message is the validator's own sentence (what the synchronous path answers too).
  let innermost = outcome.failure;
  while (innermost.cause) innermost = innermost.cause;
  return { message: innermost.message || outcome.failure.message || 'the raise was refused', cancelled };
}

function causeOf(error: Error, is: (cause: Error) => boolean): Error | undefined {
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) {
    if (is(cause)) return cause;
  }
  return undefined;
}

const hasCancelledCause = (error: Error) => causeOf(error, (cause) => cause instanceof CancelledFailure) !== undefined;

function innermostMessage(error: Error): string {
  let innermost = error;
  while (innermost.cause instanceof Error) innermost = innermost.cause;
  return innermost.message;
}
