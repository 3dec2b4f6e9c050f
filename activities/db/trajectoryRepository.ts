import type { Prisma, PrismaClient, Trajectory as TrajectoryRow } from '../../generated/prisma/client';
import type { Trajectory } from '../../training/config';

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

/** CRUD on `trajectories`. Writes are idempotent on the identity key. */
export class TrajectoryRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Inserts the trajectory unless one with the same identity exists. A retried activity
   * therefore never writes a duplicate, and the first write wins.
   */
  async record(trajectory: Trajectory): Promise<RecordedTrajectory> {
    const key = {
      jobId: trajectory.job_id,
      run: trajectory.run,
      iteration: trajectory.iteration,
      queryIndex: trajectory.query_index,
      sampleIndex: trajectory.sample_index,
    };
    const c = trajectoryColumns(trajectory);
    // One parameterised statement: the hot path of every trajectory, where Prisma's query
    // compiler (no plan cache in 6.19) cost 3-5x the throughput (docs/performance).
    const inserted = await this.prisma.$queryRaw<{ id: string }[]>`
      INSERT INTO trajectories (id, job_id, run, iteration, query_index, sample_index, query_id, agent_id,
        success, verified, steps, final_answer, error, prompt_tokens, completion_tokens, cost_usd, log_prob,
        started_at, ended_at)
      VALUES (gen_random_uuid(), ${key.jobId}, ${key.run}, ${key.iteration}, ${key.queryIndex}, ${key.sampleIndex},
        ${c.queryId}, ${c.agentId}, ${c.success}, ${c.verified}, ${JSON.stringify(c.steps)}::jsonb, ${c.finalAnswer},
        ${c.error}, ${c.promptTokens}, ${c.completionTokens}, ${c.costUsd}, ${c.logProb}, ${c.startedAt}, ${c.endedAt})
      ON CONFLICT (job_id, run, iteration, query_index, sample_index) DO NOTHING
      RETURNING id::text`;
    if (inserted.length === 1) return { id: inserted[0].id, created: true };
    const existing = await this.prisma.trajectory.findUniqueOrThrow({ where: { identity: key }, select: { id: true } });
    return { id: existing.id, created: false };
  }

  findByIds(ids: string[]): Promise<TrajectoryRow[]> {
    return this.prisma.trajectory.findMany({ where: { id: { in: ids } } });
  }

  /** Sets each trajectory's reward and advantage in one transaction. */
  async score(scores: { id: string; reward: number; advantage: number; stepAdvantages: number[] | null }[]): Promise<void> {
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
