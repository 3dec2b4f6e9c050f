/**
 * The job's durable record in PostgreSQL, written by the workflow through these activities:
 * the row that status and listing read once the workflow is gone, per-iteration metrics and
 * policy checkpoints (payloads in the blob store, through adapters/checkpoints/checkpointStore.ts).
 * Every write is idempotent, so Temporal may retry any of them.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Prisma } from '../generated/prisma/client';
import type { JobStatus } from '../training/jobStatus';
import {
  CheckpointIntegrityError,
  CheckpointNotFoundError,
  InvalidCheckpointSelectorError,
  type CheckpointStore,
  type LoadedCheckpoint,
  type SaveCheckpointInput,
} from '../adapters/checkpoints/checkpointStore';
import type { CheckpointSelector } from '../training/checkpoints';
import type { Repositories } from '../adapters/db';
import { newJobRow, type JobIdentity } from '../adapters/db/trainingJobRepository';
import { countJobFinished, recordBudgetUsage } from '../adapters/telemetry/metrics';

/** The job's identity (one shape with the API's insert) and the run the workflow starts. */
export interface StartJobRunInput extends JobIdentity {
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

/** What the workflow checkpoints: the store's input (no evaluation score: the store reads it). */
export type CheckpointInput = Omit<SaveCheckpointInput, 'eval_score'>;

const json = (value: Record<string, unknown>) => value as Prisma.InputJsonValue;

export interface LoadCheckpointInput {
  job_id: string;
  which: CheckpointSelector;
}

export function createJobRecordActivities(repos: Repositories, checkpoints: CheckpointStore) {
  return {
    async startJobRun(input: StartJobRunInput): Promise<void> {
      await repos.jobs.startRun(newJobRow(input), input.run);
    },

    /** One statement per report (no read of the row first); the spend metric counts what this report adds. */
    async recordJobProgress(input: JobProgressInput): Promise<void> {
      const recorded = await repos.jobs.recordProgress(input.job_id, {
        iteration: input.iteration,
        phase: input.phase,
        spendUsd: input.spend_usd,
        lastMetrics: input.last_metrics ? json(input.last_metrics) : undefined,
      });
      recordBudgetUsage(recorded, recorded.spentBeforeUsd);
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

    /** The payload goes to the blob store, the row records where and its sha256; then cleanup (best 5 + latest stay). */
    async saveCheckpoint(input: CheckpointInput): Promise<void> {
      await checkpoints.save(input);
    },

    /** A verified checkpoint; a corrupt or missing one fails at once (retrying cannot repair it). */
    async loadCheckpoint(input: LoadCheckpointInput): Promise<LoadedCheckpoint> {
      try {
        return await checkpoints.load(input.job_id, input.which);
      } catch (error) {
        if (error instanceof CheckpointIntegrityError) {
          const { jobId, run, iteration, blobKey, expectedHash, actualHash, summary } = error;
          throw ApplicationFailure.nonRetryable(error.message, 'CheckpointIntegrityError', { job_id: jobId, run, iteration, blob_key: blobKey, expected_sha256: expectedHash, actual_sha256: actualHash, summary });
        }
        if (error instanceof CheckpointNotFoundError) throw ApplicationFailure.nonRetryable(error.message, 'CheckpointNotFound');
        if (error instanceof InvalidCheckpointSelectorError) throw ApplicationFailure.nonRetryable(error.message, 'InvalidCheckpointSelector');
        throw error;
      }
    },

    async finishJob(input: { job_id: string; status: JobStatus; reason: string | null }): Promise<void> {
      countJobFinished(await repos.jobs.finish(input.job_id, input.status, input.reason));
    },
  };
}
