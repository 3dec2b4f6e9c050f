/**
 * The job's durable record in PostgreSQL, written by the workflow through these activities:
 * the row that status and listing read once the workflow is gone, per-iteration metrics and
 * policy checkpoints. Every write is idempotent, so Temporal may retry any of them.
 */
import type { Prisma } from '../generated/prisma/client';
import type { JobStatus } from '../training/jobStatus';
import type { Repositories } from './db';

export interface StartJobRunInput {
  job_id: string;
  agent_id: string;
  tenant_id: string;
  owner_id: string;
  priority: string;
  config: Record<string, unknown>;
  budget_usd: number;
  run: number;
}

export interface JobProgressInput {
  job_id: string;
  iteration: number;
  phase: string;
  spend_usd: number;
  last_metrics?: Record<string, unknown>;
}

export interface IterationInput {
  job_id: string;
  run: number;
  iteration: number;
  metrics: Record<string, unknown>;
  policy_version: number;
  spend_usd: number;
}

export interface CheckpointInput {
  job_id: string;
  run: number;
  iteration: number;
  policy: Record<string, unknown>;
  optimizer_state: Record<string, unknown>;
  metrics: Record<string, unknown>;
  score: number | null;
}

const json = (value: Record<string, unknown>) => value as Prisma.InputJsonValue;

export function createJobRecordActivities(repos: Repositories) {
  return {
    async startJobRun(input: StartJobRunInput): Promise<void> {
      await repos.jobs.startRun(
        {
          id: input.job_id,
          agentId: input.agent_id,
          tenantId: input.tenant_id,
          ownerId: input.owner_id,
          priority: input.priority,
          config: json(input.config),
          budgetUsd: input.budget_usd,
        },
        input.run,
      );
    },

    async recordJobProgress(input: JobProgressInput): Promise<void> {
      await repos.jobs.recordProgress(input.job_id, {
        iteration: input.iteration,
        phase: input.phase,
        spendUsd: input.spend_usd,
        lastMetrics: input.last_metrics ? json(input.last_metrics) : undefined,
      });
    },

    async recordIteration(input: IterationInput): Promise<void> {
      await repos.progress.recordIteration({
        jobId: input.job_id,
        run: input.run,
        iteration: input.iteration,
        metrics: json(input.metrics),
        policyVersion: input.policy_version,
        spendUsd: input.spend_usd,
      });
    },

    async saveCheckpoint(input: CheckpointInput): Promise<void> {
      await repos.progress.saveCheckpoint({
        jobId: input.job_id,
        run: input.run,
        iteration: input.iteration,
        policy: json(input.policy),
        optimizerState: json(input.optimizer_state),
        metrics: json(input.metrics),
        score: input.score,
      });
    },

    async finishJob(input: { job_id: string; status: JobStatus; reason: string | null }): Promise<void> {
      await repos.jobs.finish(input.job_id, input.status, input.reason);
    },
  };
}
