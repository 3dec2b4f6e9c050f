import type { JobStatus } from '../../training/jobStatus';
import type { Prisma, PrismaClient, TrainingJob } from '../../generated/prisma/client';

export type TrainingJobRow = TrainingJob;

export interface NewTrainingJob {
  id: string;
  agentId: string;
  tenantId: string;
  ownerId: string;
  priority: string;
  config: Prisma.InputJsonValue;
  budgetUsd: number;
}

export interface TrainingJobFilter {
  tenantId?: string;
  agentId?: string;
  status?: JobStatus;
  priority?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

export interface JobProgress {
  iteration: number;
  phase: string;
  spendUsd: number;
  lastMetrics?: Prisma.InputJsonValue;
}

/** CRUD on `training_jobs`: the durable record of a job once its workflow is gone. */
export class TrainingJobRepository {
  constructor(private readonly prisma: PrismaClient) {}

  create(job: NewTrainingJob): Promise<TrainingJobRow> {
    return this.prisma.trainingJob.create({ data: { ...job, status: 'queued' } });
  }

  get(id: string): Promise<TrainingJobRow | null> {
    return this.prisma.trainingJob.findUnique({ where: { id } });
  }

  /** Newest first; `cursor` is the id of the last job of the previous page. */
  list(filter: TrainingJobFilter, page: { limit: number; cursor?: string }): Promise<TrainingJobRow[]> {
    return this.prisma.trainingJob.findMany({
      where: {
        tenantId: filter.tenantId,
        agentId: filter.agentId,
        status: filter.status,
        priority: filter.priority,
        createdAt: { gte: filter.createdAfter, lt: filter.createdBefore },
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: page.limit,
      ...(page.cursor ? { cursor: { id: page.cursor }, skip: 1 } : {}),
    });
  }

  /**
   * Marks the job running for `run`, creating its row when the job was started outside the
   * API (for example with `temporal workflow start`). Idempotent, as a retried activity needs.
   */
  startRun(job: NewTrainingJob, run: number): Promise<TrainingJobRow> {
    const { id, ...fields } = job;
    return this.prisma.$transaction(async (tx) => {
      const existing = await tx.trainingJob.findUnique({ where: { id }, select: { startedAt: true } });
      const running = { status: 'running' as const, currentRun: run, finishedAt: null, reason: null, phase: 'starting' };
      if (!existing) return tx.trainingJob.create({ data: { id, ...fields, ...running, startedAt: new Date() } });
      return tx.trainingJob.update({ where: { id }, data: { ...running, startedAt: existing.startedAt ?? new Date() } });
    });
  }

  recordProgress(id: string, progress: JobProgress): Promise<TrainingJobRow> {
    return this.prisma.trainingJob.update({ where: { id }, data: progress });
  }

  /** Moves a job to a terminal status, recording why when it did not complete. */
  finish(id: string, status: JobStatus, reason: string | null = null): Promise<TrainingJobRow> {
    return this.prisma.trainingJob.update({ where: { id }, data: { status, reason, phase: null, finishedAt: new Date() } });
  }
}
