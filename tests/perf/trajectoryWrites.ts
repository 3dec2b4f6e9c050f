/**
 * trajectory_writes_per_s: realistic trajectories (5 steps, ~2 KB of JSON) written through
 * TrajectoryRepository.record, the runTrajectory activity's own idempotent path, by many
 * concurrent writers sharing one Prisma client, as a worker's activities would.
 */
import { readFileSync } from 'node:fs';
import { createPrismaClient, createRepositories, type PrismaClient } from '../../adapters/db';
import { TrajectorySchema, type Trajectory, type TrajectoryStep } from '../../training/trajectory';
import { quantile } from './stats';

export interface WriteRunResult {
  rows: number;
  seconds: number;
  writesPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** CPU seconds of this Node process per 1,000 writes. */
  nodeCpuMsPerWrite: number;
  /** CPU of the PostgreSQL backends serving this database, per write (null where /proc is unreadable). */
  postgresCpuMsPerWrite: number | null;
}

export interface WriteRunOptions {
  concurrency: number;
  /** Stop once both are reached... */
  minSeconds: number;
  minRows: number;
  /** ...or at this hard limit. */
  maxSeconds: number;
  warmupRows: number;
}

export type RecordFn = (trajectory: Trajectory) => Promise<unknown>;

/** Fresh, unique identities per writer slot; all rows belong to `jobId`. */
export class TrajectoryFactory {
  private next = 0;
  constructor(
    private readonly jobId: string,
    private readonly iterationBase = 0,
  ) {}

  make(): Trajectory {
    const n = this.next++;
    return buildTrajectory(this.jobId, this.iterationBase + Math.floor(n / 64), Math.floor(n / 8) % 8, n % 8);
  }
}

const QUESTION = '[billing] Order 48213 was charged twice in March. What refund in USD should support issue?';

/** Five steps (four tool calls, then the answer) of the sizes the LLM agent records. */
export function buildTrajectory(jobId: string, iteration: number, queryIndex: number, sampleIndex: number): Trajectory {
  const t0 = Date.now() - 6_000;
  const iso = (offsetMs: number) => new Date(t0 + offsetMs).toISOString();
  const tools = ['lookup_docs', 'query_database', 'calculator', 'verify_answer'];
  const steps: TrajectoryStep[] = tools.map((tool, index) => ({
    index,
    state: index === 0 ? QUESTION : `${tools[index - 1]}: order 48213 charged twice, 49.00 USD each`,
    action: { type: 'tool_call', content: null },
    tool_calls: [
      {
        id: `call_${iteration}_${queryIndex}_${sampleIndex}_${index}`,
        name: tool,
        arguments: tool === 'verify_answer' ? { answer: '49.00' } : { query: 'duplicate charge order 48213' },
      },
    ],
    result: `refund policy 4.2 applies: 49.00 USD (${tool})`,
    started_at: iso(index * 1000),
    ended_at: iso(index * 1000 + 900),
    usage: { prompt_tokens: 412 + index * 60, completion_tokens: 38 },
    cost_usd: 0.000263,
    logprob: -0.35 - index * 0.05,
    error: null,
  }));
  steps.push({
    index: 4,
    state: 'verify_answer: correct',
    action: { type: 'final_answer', content: '49.00' },
    tool_calls: [],
    result: null,
    started_at: iso(4000),
    ended_at: iso(4900),
    usage: { prompt_tokens: 700, completion_tokens: 6 },
    cost_usd: 0.000359,
    logprob: -0.12,
    error: null,
  });
  return {
    job_id: jobId,
    run: 1,
    iteration,
    query_index: queryIndex,
    sample_index: sampleIndex,
    query_id: `sim-17-billing-${queryIndex}`,
    agent_id: 'bench-agent',
    steps,
    final_answer: '49.00',
    success: sampleIndex % 3 !== 0,
    verified: true,
    error: null,
    usage: { prompt_tokens: steps.reduce((s, x) => s + x.usage.prompt_tokens, 0), completion_tokens: steps.reduce((s, x) => s + x.usage.completion_tokens, 0) },
    cost_usd: steps.reduce((s, x) => s + x.cost_usd, 0),
    log_prob: steps.reduce((s, x) => s + (x.logprob ?? 0), 0),
    started_at: iso(0),
    ended_at: iso(4950),
  };
}

/** A sample trajectory, validated by the schema the activity's type comes from, and its JSON size. */
export function sampleTrajectorySize(): { bytes: number; stepsBytes: number; steps: number } {
  const sample = TrajectorySchema.parse(buildTrajectory('bench-size', 0, 0, 0));
  return { bytes: Buffer.byteLength(JSON.stringify(sample)), stepsBytes: Buffer.byteLength(JSON.stringify(sample.steps)), steps: sample.steps.length };
}

/** PIDs of the backends connected to `database` (for the CPU split). */
async function backendPids(prisma: PrismaClient, database: string): Promise<number[]> {
  const rows = await prisma.$queryRawUnsafe<{ pid: number }[]>('select pid from pg_stat_activity where datname = $1', database);
  return rows.map((row) => Number(row.pid));
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** utime + stime of the processes, in ms; null if any is unreadable (not Linux, other user). */
function cpuMsOf(pids: number[]): number | null {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    } catch {
      return null;
    }
  }
  return total;
}

/** Runs `concurrency` writers until the options say stop; returns throughput and latency. */
export async function runWriters(
  record: RecordFn,
  factory: TrajectoryFactory,
  options: WriteRunOptions,
  cpu?: { prisma: PrismaClient; database: string },
): Promise<WriteRunResult> {
  // Warm-up: opens the pool's connections and JIT-compiles the path; not counted.
  await pool(options.concurrency, () => options.warmupRows, () => record(factory.make()));

  const pids = cpu ? await backendPids(cpu.prisma, cpu.database) : [];
  const pgCpuBefore = cpu ? cpuMsOf(pids) : null;
  const nodeCpuBefore = process.cpuUsage();
  const latencies: number[] = [];
  const started = performance.now();
  let rows = 0;
  let stop = false;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (!stop) {
        const t = performance.now();
        await record(factory.make());
        latencies.push(performance.now() - t);
        rows++;
        const elapsed = (performance.now() - started) / 1000;
        if ((elapsed >= options.minSeconds && rows >= options.minRows) || elapsed >= options.maxSeconds) stop = true;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const nodeCpu = process.cpuUsage(nodeCpuBefore);
  const pgCpuAfter = cpu ? cpuMsOf(pids) : null;
  return {
    rows,
    seconds,
    writesPerSecond: rows / seconds,
    latencyP50Ms: quantile(latencies, 0.5),
    latencyP99Ms: quantile(latencies, 0.99),
    nodeCpuMsPerWrite: (nodeCpu.user + nodeCpu.system) / 1000 / rows,
    postgresCpuMsPerWrite: pgCpuBefore !== null && pgCpuAfter !== null ? (pgCpuAfter - pgCpuBefore) / rows : null,
  };
}

async function pool(concurrency: number, total: () => number, task: () => Promise<unknown>): Promise<void> {
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < total()) {
        issued++;
        await task();
      }
    }),
  );
}

export interface TrajectoryWritesOptions {
  databaseUrl: string;
  databaseName: string;
  poolSize: number;
  concurrency: number;
  minSeconds: number;
  minRows: number;
  maxSeconds: number;
  jobId: string;
  iterationBase: number;
}

/** The headline figure: TrajectoryRepository.record on a Prisma client with `poolSize` connections. */
export async function measureRepositoryWrites(options: TrajectoryWritesOptions): Promise<WriteRunResult> {
  const prisma = createPrismaClient(options.databaseUrl, { poolSize: options.poolSize });
  try {
    const repos = createRepositories(prisma);
    await ensureJob(prisma, options.jobId);
    const factory = new TrajectoryFactory(options.jobId, options.iterationBase);
    return await runWriters((t) => repos.trajectories.record(t), factory, { ...options, warmupRows: 500 }, { prisma, database: options.databaseName });
  } finally {
    await prisma.$disconnect();
  }
}

/** The training_jobs row the trajectories' foreign key needs. */
export async function ensureJob(prisma: PrismaClient, jobId: string): Promise<void> {
  const repos = createRepositories(prisma);
  if (await repos.jobs.get(jobId)) return;
  await repos.jobs.create({
    id: jobId,
    agentId: 'bench-agent',
    tenantId: 'bench',
    ownerId: 'bench',
    priority: 'P1',
    config: { group_size: 8 },
    budgetUsd: 1000,
  });
}
