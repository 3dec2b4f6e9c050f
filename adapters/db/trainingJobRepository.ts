import type { Pool } from 'pg';
import type { JobStatus } from '../../training/jobStatus';
import type { Prisma, PrismaClient, TrainingJob } from '../../generated/prisma/client';
import { poolOf } from './prismaClient';

export type TrainingJobRow = TrainingJob;

export interface BestCheckpoint {
  run: number;
  iteration: number;
  score: number | null;
  createdAt: Date;
}

/**
 * A job row for status: every column but `input`, the stored job input (up to 2,000 training
 * queries) that only a resume reads, so a status poll never fetches and parses it.
 */
export type JobStatusRow = Omit<TrainingJobRow, 'input'>;

type JobWithBestCheckpointRow = JobStatusRow & {
  bestRun: number | null;
  bestIteration: number | null;
  bestScore: number | null;
  bestCreatedAt: Date | null;
  /** The latest validation-split evaluation's summary (scheduled or on demand), if any. */
  evaluation: unknown;
  /** The latest test-split evaluation's summary (after the last iteration, or on demand), if any. */
  testEvaluation: unknown;
};

/**
 * A job row, its best checkpoint and its latest evaluation in one statement. Named, so node-postgres prepares it once
 * per connection. The checkpoint order is `getWithBestCheckpoint`'s contract: score descending
 * with nulls last, then the latest run and iteration.
 */
const JOB_WITH_BEST_CHECKPOINT = {
  name: 'flow_job_with_best_checkpoint_and_evaluation',
  text: `SELECT j.id, j.agent_id AS "agentId", j.tenant_id AS "tenantId", j.owner_id AS "ownerId", j.status::text AS status,
      j.priority, j.config, j.current_run AS "currentRun", j.iteration, j.phase, j.last_metrics AS "lastMetrics",
      j.spend_usd AS "spendUsd", j.committed_usd AS "committedUsd", j.budget_usd AS "budgetUsd", j.budget_alerts AS "budgetAlerts", j.reason, j.created_at AS "createdAt",
      j.updated_at AS "updatedAt", j.started_at AS "startedAt", j.finished_at AS "finishedAt",
      c.run AS "bestRun", c.iteration AS "bestIteration", c.score AS "bestScore", c.created_at AS "bestCreatedAt",
      e.summary AS "evaluation", t.summary AS "testEvaluation"
    FROM training_jobs j
    LEFT JOIN LATERAL (
      SELECT run, iteration, score, created_at FROM policy_checkpoints
      WHERE job_id = j.id
      ORDER BY score DESC NULLS LAST, run DESC, iteration DESC
      LIMIT 1
    ) c ON true
    LEFT JOIN LATERAL (
      SELECT summary FROM evaluations WHERE job_id = j.id AND coalesce(summary->>'split', 'validation') <> 'test'
      ORDER BY created_at DESC, run DESC, iteration DESC LIMIT 1
    ) e ON true
    LEFT JOIN LATERAL (
      SELECT summary FROM evaluations WHERE job_id = j.id AND summary->>'split' = 'test' ORDER BY created_at DESC, run DESC, iteration DESC LIMIT 1
    ) t ON true
    WHERE j.id = $1`,
};

export interface NewTrainingJob {
  id: string;
  agentId: string;
  tenantId: string;
  ownerId: string;
  priority: string;
  config: Prisma.InputJsonValue;
  budgetUsd: number;
  /** The validated TrainingJobInput (without carry_over), which a resume starts a later run from. */
  input?: Prisma.InputJsonValue;
}

/** A job's identity, priority, config and budget in wire names (the API's start, the startJobRun activity's input). */
export interface JobIdentity {
  job_id: string;
  agent_id: string;
  tenant_id: string;
  owner_id: string;
  priority: string;
  config: Record<string, unknown>;
  budget_usd: number;
}

/** The one mapping of a job's identity onto its `training_jobs` columns (the API's insert, the workflow's startJobRun). */
export function newJobRow(job: JobIdentity): Omit<NewTrainingJob, 'input'> {
  return {
    id: job.job_id,
    agentId: job.agent_id,
    tenantId: job.tenant_id,
    ownerId: job.owner_id,
    priority: job.priority,
    config: job.config as Prisma.InputJsonValue,
    budgetUsd: job.budget_usd,
  };
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

/** What a progress report wrote, with the spend the row held before it (for the spend metric). */
export interface RecordedProgress {
  id: string;
  agentId: string;
  priority: string;
  spendUsd: number;
  budgetUsd: number;
  spentBeforeUsd: number;
}

/**
 * CRUD on `training_jobs`, the durable record of a job once its workflow is gone. Who writes
 * which column: docs/architecture.md, "Who writes training_jobs". The API inserts the row and
 * moves it only between runs, by conditional updates (finishIfQueued, markResumed); a run's
 * workflow writes it through activities while it runs.
 */
export class TrainingJobRepository {
  /** The node-postgres pool under `prisma`, for `getWithBestCheckpoint` (taken on first use). */
  private pool: Pool | undefined;

  constructor(private readonly prisma: PrismaClient) {}

  create(job: NewTrainingJob): Promise<TrainingJobRow> {
    return this.prisma.trainingJob.create({ data: { ...job, status: 'queued' } });
  }

  get(jobId: string): Promise<TrainingJobRow | null> {
    return this.prisma.trainingJob.findUnique({ where: { id: jobId } });
  }

  /**
   * Newest first; `cursor` is the id of the last job of the previous page (keyset paging on
   * created_at, id, so jobs created meanwhile neither repeat nor shift a page). An unknown
   * cursor gives null, not an empty page, so callers can tell the two apart; a job of another
   * tenant than the filter's is unknown too (a cursor must not tell whether another tenant's
   * job id exists).
   */
  async list(filter: TrainingJobFilter, page: { limit: number; cursor?: string }): Promise<TrainingJobRow[] | null> {
    let after: Prisma.TrainingJobWhereInput = {};
    if (page.cursor) {
      const last = await this.prisma.trainingJob.findFirst({ where: { id: page.cursor, tenantId: filter.tenantId }, select: { id: true, createdAt: true } });
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

  /**
   * The job with its best checkpoint (highest score, then latest), for status: `training.get_status`,
   * which clients poll. One prepared statement on the node-postgres pool under the Prisma client
   * (see `poolOf`), one round trip per call; through Prisma 6.19 (query compiler, no plan cache)
   * the same read (with `input`) cost ~2 ms of API CPU per call and held the API near 300
   * calls/s under the bench's get_status load on 2 cores (docs/performance). The row has the
   * shape `findUnique` gives (camelCase fields, Dates, parsed JSON) without `input` (see
   * JobStatusRow), with `checkpoints` holding the best one or none.
   */
  async getWithBestCheckpoint(jobId: string): Promise<(JobStatusRow & { checkpoints: BestCheckpoint[]; evaluation: unknown; testEvaluation: unknown }) | null> {
    this.pool ??= poolOf(this.prisma);
    const { rows } = await this.pool.query<JobWithBestCheckpointRow>({ ...JOB_WITH_BEST_CHECKPOINT, values: [jobId] });
    if (rows.length === 0) return null;
    const { bestRun, bestIteration, bestScore, bestCreatedAt, evaluation, testEvaluation, ...job } = rows[0];
    const checkpoints = bestRun === null ? [] : [{ run: bestRun, iteration: bestIteration!, score: bestScore, createdAt: bestCreatedAt! }];
    return { ...job, checkpoints, evaluation, testEvaluation };
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
   * A run that takes the row over (the API's `queued` row, or a row still at an earlier run)
   * writes its budget: a resumed run's may differ from the last run's, and the spend ledger
   * admits calls against the row's. A retried start of a run already under way leaves the
   * budget alone, so a raise recorded meanwhile stays.
   */
  startRun(job: NewTrainingJob, run: number): Promise<TrainingJobRow> {
    const { id, ...fields } = job;
    return this.prisma.$transaction(async (tx) => {
      const existing = await tx.trainingJob.findUnique({ where: { id }, select: { startedAt: true, currentRun: true, status: true } });
      const running = { status: 'running' as const, currentRun: run, finishedAt: null, reason: null, phase: 'starting' };
      if (!existing) return tx.trainingJob.create({ data: { id, ...fields, ...running, startedAt: new Date() } });
      const takesOver = existing.status === 'queued' || existing.currentRun < run;
      return tx.trainingJob.update({
        where: { id },
        data: { ...running, ...(takesOver ? { budgetUsd: fields.budgetUsd } : {}), startedAt: existing.startedAt ?? new Date() },
      });
    });
  }

  /**
   * Records where the job is (iteration, phase, spend, and the last iteration's metrics when
   * given; the stored ones stay otherwise) in one statement that locks the row, writes those
   * columns only and returns, besides what the spend metric needs, the spend the row held before,
   * so two reports never count the same dollars. `input` (up to 2,000 queries) is neither read
   * nor returned. Throws when the job has no row, as an update of a missing row does.
   */
  async recordProgress(jobId: string, progress: JobProgress): Promise<RecordedProgress> {
    const lastMetrics = progress.lastMetrics === undefined ? null : JSON.stringify(progress.lastMetrics);
    const rows = await this.prisma.$queryRaw<RecordedProgress[]>`
      WITH before AS (SELECT spend_usd FROM training_jobs WHERE id = ${jobId} FOR UPDATE)
      UPDATE training_jobs j
      SET iteration = ${progress.iteration}::int, phase = ${progress.phase}::text, spend_usd = ${progress.spendUsd}::float8,
        last_metrics = coalesce(${lastMetrics}::jsonb, j.last_metrics), updated_at = now()
      FROM before WHERE j.id = ${jobId}
      RETURNING j.id, j.agent_id AS "agentId", j.priority, j.spend_usd AS "spendUsd", j.budget_usd AS "budgetUsd", before.spend_usd AS "spentBeforeUsd"`;
    if (rows.length === 0) throw new Error(`recordProgress: no training_jobs row with id ${JSON.stringify(jobId)}`);
    return rows[0];
  }

  /** Paused by the kill switch, or running again (non-terminal moves only). */
  setStatus(jobId: string, status: Extract<JobStatus, 'paused' | 'running'>): Promise<TrainingJobRow> {
    return this.prisma.trainingJob.update({ where: { id: jobId }, data: { status, ...(status === 'paused' ? { phase: 'paused' } : {}) } });
  }

  /**
   * A raise of run `run`'s budget (absent: whichever run holds the row). Never lowers it, so the
   * records of two raises landing in either order leave the higher; and a late record of an
   * earlier run does not touch the run that took the row over (training.resume may lower the budget).
   */
  async setBudget(jobId: string, budgetUsd: number, run?: number): Promise<void> {
    const found = await this.prisma.trainingJob.count({ where: { id: jobId } });
    if (found === 0) throw new Error(`setBudget: no training_jobs row with id ${JSON.stringify(jobId)}`);
    await this.prisma.trainingJob.updateMany({ where: { id: jobId, budgetUsd: { lt: budgetUsd }, ...(run === undefined ? {} : { currentRun: run }) }, data: { budgetUsd } });
  }

  /**
   * Appends a budget alert unless one with this threshold is there already, in one statement,
   * so a retried activity records it once.
   */
  async appendBudgetAlert(jobId: string, alert: { threshold: number; spend_usd: number; budget_usd: number; at: string }): Promise<void> {
    // Kept in threshold order, the order spend crosses them: two groups that cross 75% and 90%
    // close together record their alerts in activities that may run in either order.
    await this.prisma.$executeRaw`
      UPDATE training_jobs SET budget_alerts = (
        SELECT jsonb_agg(alert ORDER BY (alert->>'threshold')::float8)
        FROM jsonb_array_elements(budget_alerts || ${JSON.stringify([alert])}::jsonb) AS alert
      ), updated_at = now()
      WHERE id = ${jobId} AND NOT budget_alerts @> ${JSON.stringify([{ threshold: alert.threshold }])}::jsonb`;
  }

  /** Ids of jobs whose workflow may be running (for the kill switch's broadcast). */
  async activeIds(): Promise<string[]> {
    const rows = await this.prisma.trainingJob.findMany({ where: { status: { in: ['queued', 'running', 'paused'] } }, select: { id: true } });
    return rows.map((row) => row.id);
  }

  /**
   * A resumed run of the job was started (training.resume): the row says `queued` at `run`, from
   * the checkpoint's iteration, until the new workflow run marks it running. Only a row whose
   * current run is earlier moves, so this never undoes what the new run has already recorded.
   */
  async markResumed(jobId: string, run: number, iteration: number): Promise<void> {
    await this.prisma.trainingJob.updateMany({
      where: { id: jobId, currentRun: { lt: run } },
      data: { status: 'queued', currentRun: run, iteration, phase: null, reason: null, finishedAt: null },
    });
  }

  /** Ids of jobs `queued` and untouched since `before` (candidates for orphan reconciliation). */
  async queuedSince(before: Date): Promise<string[]> {
    const rows = await this.prisma.trainingJob.findMany({ where: { status: 'queued', updatedAt: { lt: before } }, select: { id: true } });
    return rows.map((row) => row.id);
  }

  /** Ends a job that is still `queued` (no run ever started); false when it had moved on meanwhile. */
  async finishIfQueued(jobId: string, status: JobStatus, reason: string): Promise<boolean> {
    const { count } = await this.prisma.trainingJob.updateMany({
      where: { id: jobId, status: 'queued' },
      data: { status, reason, phase: null, finishedAt: new Date() },
    });
    return count === 1;
  }

  /** Moves a job to a terminal status, recording why when it did not complete. */
  finish(jobId: string, status: JobStatus, reason: string | null = null): Promise<TrainingJobRow> {
    return this.prisma.trainingJob.update({ where: { id: jobId }, data: { status, reason, phase: null, finishedAt: new Date() } });
  }
}
