import type { Prisma, PrismaClient, Trajectory as TrajectoryRow } from '../../generated/prisma/client';
import type { Pool } from 'pg';
import type { Trajectory } from '../../training/trajectory';

export type { TrajectoryRow };

/** The identity of a trajectory: one sample of one query's group in one iteration of one run. */
export interface TrajectoryKey {
  jobId: string;
  run: number;
  iteration: number;
  queryIndex: number;
  sampleIndex: number;
}

export interface RecordedTrajectory {
  id: string;
  /** False when a row with the same identity already existed (a retried activity). */
  created: boolean;
}

/**
 * The idempotent insert of `record`. Named, so node-postgres prepares it once per connection
 * and each write is one Bind/Execute round trip that Prisma never sees.
 */
const RECORD_INSERT = {
  name: 'flow_trajectory_record',
  text: `INSERT INTO trajectories (id, job_id, run, iteration, query_index, sample_index, query_id, agent_id,
      success, verified, steps, final_answer, error, prompt_tokens, completion_tokens, cost_usd, log_prob,
      started_at, ended_at)
    VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15, $16, $17, $18)
    ON CONFLICT (job_id, run, iteration, query_index, sample_index) DO NOTHING
    RETURNING id::text`,
};

/** The id of the row that won, read on conflict (a retried activity). */
const RECORD_EXISTING = {
  name: 'flow_trajectory_existing',
  text: `SELECT id::text FROM trajectories
    WHERE job_id = $1 AND run = $2 AND iteration = $3 AND query_index = $4 AND sample_index = $5`,
};

/** CRUD on `trajectories`. Writes are idempotent on the identity key. */
export class TrajectoryRepository {
  /** `pool` is the node-postgres pool under `prisma` (see `poolOf`), used by `record` only. */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: Pool,
  ) {}

  /**
   * Inserts the trajectory unless one with the same identity exists. A retried activity
   * therefore never writes a duplicate, and the first write wins.
   */
  async record(trajectory: Trajectory): Promise<RecordedTrajectory> {
    const key = [trajectory.job_id, trajectory.run, trajectory.iteration, trajectory.query_index, trajectory.sample_index];
    const c = trajectoryColumns(trajectory);
    // The hot path of every trajectory goes straight to node-postgres with a prepared statement:
    // through Prisma 6.19 (query compiler, no plan cache; even $queryRaw) it stayed under
    // 2,000 writes/s on 2 cores, CPU-bound in this process (docs/performance).
    const inserted = await this.pool.query<{ id: string }>({
      ...RECORD_INSERT,
      values: [
        ...key, c.queryId, c.agentId, c.success, c.verified, JSON.stringify(c.steps), c.finalAnswer, c.error,
        c.promptTokens, c.completionTokens, c.costUsd, c.logProb, c.startedAt, c.endedAt,
      ],
    });
    if (inserted.rows.length === 1) return { id: inserted.rows[0].id, created: true };
    const existing = await this.pool.query<{ id: string }>({ ...RECORD_EXISTING, values: key });
    if (existing.rows.length !== 1) throw new Error(`trajectory ${key.join('/')} conflicted on insert but no longer exists`);
    return { id: existing.rows[0].id, created: false };
  }

  findByIds(ids: string[]): Promise<TrajectoryRow[]> {
    return this.prisma.trajectory.findMany({ where: { id: { in: ids } } });
  }

  /**
   * Marks trajectories whose reward failed validation (`rewardError`), or clears a mark a
   * retried reward step no longer finds (null), in one transaction.
   */
  async markRewardErrors(marks: { id: string; rewardError: string | null }[]): Promise<void> {
    await this.prisma.$transaction(
      marks.map((m) => this.prisma.trajectory.update({ where: { id: m.id }, data: { rewardError: m.rewardError }, select: { id: true } })),
    );
  }

  /** Sets each trajectory's reward (null: marked, see markRewardErrors) and advantage in one transaction. */
  async score(scores: { id: string; reward: number | null; advantage: number; stepAdvantages: number[] | null }[]): Promise<void> {
    await this.prisma.$transaction(
      scores.map((s) =>
        this.prisma.trajectory.update({
          where: { id: s.id },
          data: { reward: s.reward, advantage: s.advantage, stepAdvantages: s.stepAdvantages ?? undefined },
          select: { id: true },
        }),
      ),
    );
  }

  countForJob(jobId: string, run?: number): Promise<number> {
    return this.prisma.trajectory.count({ where: { jobId, run } });
  }

  countForJobWhere(jobId: string, where: Omit<Prisma.TrajectoryWhereInput, 'jobId'>): Promise<number> {
    return this.prisma.trajectory.count({ where: { ...where, jobId } });
  }

  listForJob(jobId: string, where: Omit<Prisma.TrajectoryWhereInput, 'jobId'> = {}, page = { limit: 1000, offset: 0 }): Promise<TrajectoryRow[]> {
    return this.prisma.trajectory.findMany({
      where: { ...where, jobId },
      orderBy: [{ run: 'asc' }, { iteration: 'asc' }, { queryIndex: 'asc' }, { sampleIndex: 'asc' }],
      take: page.limit,
      skip: page.offset,
    });
  }
}

function trajectoryColumns(t: Trajectory) {
  return {
    queryId: t.query_id,
    agentId: t.agent_id,
    success: t.success,
    verified: t.verified,
    steps: t.steps as unknown as Prisma.InputJsonValue,
    finalAnswer: t.final_answer,
    error: t.error,
    promptTokens: t.usage.prompt_tokens,
    completionTokens: t.usage.completion_tokens,
    costUsd: t.cost_usd,
    logProb: t.log_prob,
    startedAt: new Date(t.started_at),
    endedAt: new Date(t.ended_at),
  };
}
