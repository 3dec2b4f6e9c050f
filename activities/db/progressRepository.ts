import type { PolicyCheckpoint, Prisma, PrismaClient, TrainingIteration } from '../../generated/prisma/client';

export interface IterationRecord {
  jobId: string;
  run: number;
  iteration: number;
  metrics: Prisma.InputJsonValue;
  policyVersion: number;
  spendUsd: number;
}

export interface CheckpointRecord {
  jobId: string;
  run: number;
  iteration: number;
  policy: Prisma.InputJsonValue;
  optimizerState: Prisma.InputJsonValue;
  metrics: Prisma.InputJsonValue;
  score: number | null;
}

/** Per-iteration metrics and policy checkpoints, both idempotent on (job, run, iteration). */
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

  checkpoints(jobId: string): Promise<PolicyCheckpoint[]> {
    return this.prisma.policyCheckpoint.findMany({ where: { jobId }, orderBy: [{ run: 'asc' }, { iteration: 'asc' }] });
  }
}
