/**
 * Where does a trajectory write's time go? Short runs of the same workload through other
 * paths than TrajectoryRepository.record, so the repository's cost can be split into Prisma's
 * client-side work, transaction round trips and PostgreSQL itself. Nothing here is used by
 * Flow; these are yardsticks for what a change to the repository would buy.
 */
import { Pool } from 'pg';
import { Prisma } from '../../generated/prisma/client';
import { createPrismaClient, createRepositories, type PrismaClient } from '../../adapters/db';
import type { Trajectory } from '../../training/trajectory';
import { CPU_CATEGORY_LABELS, profiled, type CpuBreakdown, type CpuCategory } from './cpuProfile';
import { ensureJob, runWriters, TrajectoryFactory, type RecordFn, type WriteRunResult } from './trajectoryWrites';

export interface WriteVariant {
  key: string;
  description: string;
  poolSize: number;
  concurrency: number;
  result: WriteRunResult;
}

const IDENTITY = '(job_id, run, iteration, query_index, sample_index)';
const COLUMNS =
  'id, job_id, run, iteration, query_index, sample_index, query_id, agent_id, success, verified, steps, final_answer, error, prompt_tokens, completion_tokens, cost_usd, log_prob, started_at, ended_at';

function values(t: Trajectory): unknown[] {
  return [
    t.job_id, t.run, t.iteration, t.query_index, t.sample_index, t.query_id, t.agent_id, t.success, t.verified,
    JSON.stringify(t.steps), t.final_answer, t.error, t.usage.prompt_tokens, t.usage.completion_tokens, t.cost_usd, t.log_prob,
    new Date(t.started_at), new Date(t.ended_at),
  ];
}

/** One statement, idempotent on the identity key; the id of an existing row is read back on conflict. */
const INSERT_SQL = `INSERT INTO trajectories (${COLUMNS}) VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15, $16, $17, $18) ON CONFLICT ${IDENTITY} DO NOTHING RETURNING id`;
const SELECT_SQL = 'SELECT id FROM trajectories WHERE job_id = $1 AND run = $2 AND iteration = $3 AND query_index = $4 AND sample_index = $5';

function prismaCreateRecord(prisma: PrismaClient): RecordFn {
  return async (t) => {
    try {
      return await prisma.trajectory.create({
        data: {
          jobId: t.job_id, run: t.run, iteration: t.iteration, queryIndex: t.query_index, sampleIndex: t.sample_index,
          queryId: t.query_id, agentId: t.agent_id, success: t.success, verified: t.verified,
          steps: t.steps as unknown as Prisma.InputJsonValue, finalAnswer: t.final_answer, error: t.error,
          promptTokens: t.usage.prompt_tokens, completionTokens: t.usage.completion_tokens, costUsd: t.cost_usd, logProb: t.log_prob,
          startedAt: new Date(t.started_at), endedAt: new Date(t.ended_at),
        },
        select: { id: true },
      });
    } catch (error) {
      if (!(error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002')) throw error;
      return prisma.trajectory.findUniqueOrThrow({
        where: { identity: { jobId: t.job_id, run: t.run, iteration: t.iteration, queryIndex: t.query_index, sampleIndex: t.sample_index } },
        select: { id: true },
      });
    }
  };
}

function prismaRawRecord(prisma: PrismaClient): RecordFn {
  return async (t) => {
    const inserted = await prisma.$queryRawUnsafe<{ id: string }[]>(INSERT_SQL, ...values(t));
    if (inserted.length === 1) return inserted[0];
    return (await prisma.$queryRawUnsafe<{ id: string }[]>(SELECT_SQL, t.job_id, t.run, t.iteration, t.query_index, t.sample_index))[0];
  };
}

function pgRecord(pool: Pool): RecordFn {
  return async (t) => {
    const inserted = await pool.query<{ id: string }>({ name: 'flow_bench_insert_trajectory', text: INSERT_SQL, values: values(t) });
    if (inserted.rows.length === 1) return inserted.rows[0];
    return (await pool.query<{ id: string }>(SELECT_SQL, [t.job_id, t.run, t.iteration, t.query_index, t.sample_index])).rows[0];
  };
}

export interface DiagnosticsOptions {
  databaseUrl: string;
  databaseName: string;
  jobId: string;
  /** Each variant writes its own iterations, from here on. */
  iterationBase: number;
  seconds: number;
  log: (line: string) => void;
}

export interface WriteDiagnostics {
  variants: WriteVariant[];
  /** Where the repository path's Node CPU goes (sampling profile of a run like the headline). */
  profile: CpuBreakdown & { writesPerSecond: number };
}

export async function runWriteDiagnostics(options: DiagnosticsOptions): Promise<WriteDiagnostics> {
  const profile = await profileRepositoryWrites(options);
  options.log(`    CPU profile of TrajectoryRepository.record (pool 20, 48 writers, ${Math.round(profile.writesPerSecond)} writes/s while profiled), share of busy Node CPU:`);
  for (const [category, share] of Object.entries(profile.shares) as [CpuCategory, number][]) {
    options.log(`      ${(share * 100).toFixed(0).padStart(3)}%  ${CPU_CATEGORY_LABELS[category]}`);
  }

  const plans: { key: string; description: string; poolSize: number; concurrency: number; make: (prisma: PrismaClient, pool: Pool) => RecordFn }[] = [
    ...[5, 10, 40].map((poolSize) => ({
      key: `repository_pool${poolSize}`,
      description: `TrajectoryRepository.record, pool ${poolSize}`,
      poolSize,
      concurrency: 48,
      make: (prisma: PrismaClient) => {
        const repos = createRepositories(prisma);
        return (t: Trajectory) => repos.trajectories.record(t);
      },
    })),
    { key: 'prisma_create', description: 'prisma.trajectory.create (1 statement, no transaction), findUnique on P2002', poolSize: 20, concurrency: 48, make: prismaCreateRecord },
    { key: 'prisma_raw_insert', description: 'prisma.$queryRaw INSERT … ON CONFLICT (identity) DO NOTHING RETURNING id', poolSize: 20, concurrency: 48, make: prismaRawRecord },
    { key: 'pg_direct_insert', description: 'node-postgres directly, same INSERT, prepared', poolSize: 20, concurrency: 48, make: (_prisma, pool) => pgRecord(pool) },
  ];
  const variants: WriteVariant[] = [];
  let iterationBase = options.iterationBase + 10_000;
  for (const plan of plans) {
    const prisma = createPrismaClient(options.databaseUrl, { poolSize: plan.poolSize });
    const pool = new Pool({ connectionString: options.databaseUrl, max: plan.poolSize });
    pool.on('error', () => undefined);
    try {
      await ensureJob(prisma, options.jobId);
      const factory = new TrajectoryFactory(options.jobId, iterationBase);
      iterationBase += 10_000;
      const result = await runWriters(plan.make(prisma, pool), factory, {
        concurrency: plan.concurrency,
        minSeconds: options.seconds,
        minRows: 0,
        maxSeconds: options.seconds,
        warmupRows: 300,
      }, { prisma, database: options.databaseName });
      variants.push({ key: plan.key, description: plan.description, poolSize: plan.poolSize, concurrency: plan.concurrency, result });
      options.log(`    ${plan.description.padEnd(82)} ${Math.round(result.writesPerSecond).toString().padStart(6)} writes/s  (Node ${result.nodeCpuMsPerWrite.toFixed(2)} ms CPU/write, PostgreSQL ${result.postgresCpuMsPerWrite?.toFixed(2) ?? '?'} ms CPU/write)`);
    } finally {
      await prisma.$disconnect();
      await pool.end();
    }
  }
  return { variants, profile };
}

async function profileRepositoryWrites(options: DiagnosticsOptions): Promise<WriteDiagnostics['profile']> {
  const prisma = createPrismaClient(options.databaseUrl, { poolSize: 20 });
  try {
    await ensureJob(prisma, options.jobId);
    const repos = createRepositories(prisma);
    const factory = new TrajectoryFactory(options.jobId, options.iterationBase);
    const record = (t: Trajectory) => repos.trajectories.record(t);
    // Warm up outside the profile, then profile a steady-state run.
    await runWriters(record, factory, { concurrency: 48, minSeconds: 0, minRows: 0, maxSeconds: 0, warmupRows: 300 });
    const { result, breakdown } = await profiled(() =>
      runWriters(record, factory, { concurrency: 48, minSeconds: options.seconds, minRows: 0, maxSeconds: options.seconds, warmupRows: 0 }),
    );
    return { ...breakdown, writesPerSecond: result.writesPerSecond };
  } finally {
    await prisma.$disconnect();
  }
}
