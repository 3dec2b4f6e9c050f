import type { Evaluation, PolicyCheckpoint, Prisma, PrismaClient, TrainingIteration } from '../../generated/prisma/client';

export interface IterationRecord {
  jobId: string;
  run: number;
  iteration: number;
  metrics: Prisma.InputJsonValue;
  policyVersion: number;
  spendUsd: number;
}

/** A checkpoint's row; the payload itself is a blob (adapters/checkpoints/checkpointStore.ts). */
export interface CheckpointRecord {
  jobId: string;
  run: number;
  iteration: number;
  /** The payload's key in the blob store. */
  blobKey: string;
  /** sha256 (hex) of the payload bytes. */
  contentHash: string;
  sizeBytes: number;
  metrics: Prisma.InputJsonValue;
  score: number | null;
}

export interface EvaluationRecord {
  jobId: string;
  run: number;
  iteration: number;
  kind: string;
  summary: Prisma.InputJsonValue;
  pValue: number;
  significant: boolean;
  costUsd: number;
}

/** (run, iteration): which checkpoint of a job. */
export interface CheckpointKey {
  run: number;
  iteration: number;
}

/**
 * Per-iteration metrics, policy checkpoints and held-out evaluations, each idempotent on its
 * key: (job, run, iteration), and the evaluation's kind.
 */
export class ProgressRepository {
  constructor(private readonly prisma: PrismaClient) {}

  recordIteration(record: IterationRecord): Promise<TrainingIteration> {
    const { jobId, run, iteration, ...rest } = record;
    return this.prisma.trainingIteration.upsert({
      where: { jobId_run_iteration: { jobId, run, iteration } },
      create: record,
      update: rest,
    });
  }

  iterations(jobId: string): Promise<TrainingIteration[]> {
    return this.prisma.trainingIteration.findMany({ where: { jobId }, orderBy: [{ run: 'asc' }, { iteration: 'asc' }] });
  }

  saveCheckpoint(record: CheckpointRecord): Promise<PolicyCheckpoint> {
    const { jobId, run, iteration, ...rest } = record;
    return this.prisma.policyCheckpoint.upsert({
      where: { jobId_run_iteration: { jobId, run, iteration } },
      create: record,
      update: rest,
    });
  }

  /** The job's checkpoint rows in (run, iteration) order. */
  checkpoints(jobId: string): Promise<PolicyCheckpoint[]> {
    return this.prisma.policyCheckpoint.findMany({ where: { jobId }, orderBy: [{ run: 'asc' }, { iteration: 'asc' }] });
  }

  checkpoint(jobId: string, { run, iteration }: CheckpointKey): Promise<PolicyCheckpoint | null> {
    return this.prisma.policyCheckpoint.findUnique({ where: { jobId_run_iteration: { jobId, run, iteration } } });
  }

  /** Deletes these checkpoint rows (those already gone are skipped); returns how many went. */
  async deleteCheckpoints(jobId: string, keys: readonly CheckpointKey[]): Promise<number> {
    if (keys.length === 0) return 0;
    const { count } = await this.prisma.policyCheckpoint.deleteMany({
      where: { jobId, OR: keys.map(({ run, iteration }) => ({ run, iteration })) },
    });
    return count;
  }

  /** Written once per (job, run, iteration, kind); a retried activity rewrites the same row. */
  recordEvaluation(record: EvaluationRecord): Promise<Evaluation> {
    const { jobId, run, iteration, kind, ...rest } = record;
    return this.prisma.evaluation.upsert({
      where: { jobId_run_iteration_kind: { jobId, run, iteration, kind } },
      create: record,
      update: rest,
    });
  }

  /** The job's evaluations, oldest first. */
  evaluations(jobId: string): Promise<Evaluation[]> {
    return this.prisma.evaluation.findMany({ where: { jobId }, orderBy: [{ createdAt: 'asc' }, { run: 'asc' }, { iteration: 'asc' }] });
  }
}
