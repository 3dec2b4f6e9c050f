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

  /**
   * Newest first; `cursor` is the id of the last job of the previous page (keyset paging on
   * created_at, id, so jobs created meanwhile neither repeat nor shift a page). An unknown
   * cursor gives null, not an empty page, so callers can tell the two apart.
   */
  async list(filter: TrainingJobFilter, page: { limit: number; cursor?: string }): Promise<TrainingJobRow[] | null> {
    let after: Prisma.TrainingJobWhereInput = {};
    if (page.cursor) {
      const last = await this.prisma.trainingJob.findUnique({ where: { id: page.cursor }, select: { id: true, createdAt: true } });
      if (!last) return null;
      after = { OR: [{ createdAt: { lt: last.createdAt } }, { createdAt: last.createdAt, id: { lt: last.id } }] };
    }
    return this.prisma.trainingJob.findMany({
      where: {
        tenantId: filter.tenantId,
        agentId: filter.agentId,
        status: filter.status,
        priority: filter.priority,
        createdAt: { gte: filter.createdAfter, lt: filter.createdBefore },
        ...after,
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: page.limit,
    });
  }

  /** The job with its best checkpoint (highest score, then latest), for status. */
  getWithBestCheckpoint(id: string) {
    return this.prisma.trainingJob.findUnique({
      where: { id },
      include: {
        checkpoints: {
          orderBy: [{ score: { sort: 'desc', nulls: 'last' } }, { run: 'desc' }, { iteration: 'desc' }],
          take: 1,
          select: { run: true, iteration: true, score: true, createdAt: true },
        },
      },
    });
  }

  /**
   * Inserts the `queued` row unless a job with this id exists (an idempotent start retried);
   * `created` says which. Concurrent callers are safe: the primary key decides.
   */
  async createIfAbsent(job: NewTrainingJob): Promise<{ row: TrainingJobRow; created: boolean }> {
    const { count } = await this.prisma.trainingJob.createMany({ data: [{ ...job, status: 'queued' }], skipDuplicates: true });
    const row = await this.prisma.trainingJob.findUniqueOrThrow({ where: { id: job.id } });
    return { row, created: count === 1 };
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
