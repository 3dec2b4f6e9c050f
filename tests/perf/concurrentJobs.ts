/**
 * FLOW-020 at scale: 200 training jobs at once on one Temporal dev server, trained by TWO worker
 * processes (workers/main.ts, every pool in each, as `npm run worker` runs them), the LLM being
 * the simulated model server over HTTP. Each job: 2 iterations × 2 queries × a group of 8 (32
 * trajectories, 2 policy updates). Half the jobs are P2 and are submitted first; then the other
 * half, P0: under contention the P0 jobs must finish first (Temporal task priority).
 *
 * Figures: jobs started and completed (bar: all), duplicate trajectories counted in PostgreSQL
 * (bar: 0), trajectories missing (bar: 0), throughput (jobs/min, trajectories/s), end-to-end job
 * latency p50/p95 (submission → the row's finished_at), the median finish time of P0 and P2
 * jobs, and where the CPU went (/proc accounting of the worker processes, the Temporal server,
 * this process and the rest of the machine, mostly PostgreSQL).
 *
 * Standalone (its own database and dev server): `npx tsx tests/perf/concurrentJobs.ts`
 * (BENCH_CONCURRENT_JOBS=40 for a quicker run; --write merges the figures into
 * docs/performance/benchmark_results.json). `npm run bench` runs it as one of its stages.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { startTrainingJob } from '../../api/trainingJobs';
import type { Priority } from '../../training/priority';
import type { TrainingJobRequest } from '../../training/jobInput';
import { isTerminalJobStatus } from '../../training/jobStatus';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { ConcurrencyLimit } from '../../workflows/concurrencyLimit';
import { startSimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';
import type { Figure, MarkdownSection } from './results';
import { median, quantile, round } from './stats';

export const CONCURRENT_JOBS = Number(process.env.BENCH_CONCURRENT_JOBS ?? 200);
export const CONCURRENT_WORKER_PROCESSES = 2;
export const CONCURRENT_MODEL_LATENCY_MS = Number(process.env.BENCH_CONCURRENT_MODEL_LATENCY_MS ?? 100);
export const CONCURRENT_JOB_SHAPE = { iterations: 2, batch_size: 2, group_size: 8 } as const;
const TRAJECTORIES_PER_JOB = CONCURRENT_JOB_SHAPE.iterations * CONCURRENT_JOB_SHAPE.batch_size * CONCURRENT_JOB_SHAPE.group_size;
/** Jobs submitted at once (each start is a row insert, a kill-switch read and a workflow start). */
const SUBMIT_CONCURRENCY = 20;
const TIMEOUT_S = Number(process.env.BENCH_CONCURRENT_TIMEOUT_S ?? 1200);
const TENANTS = ['tenant-a', 'tenant-b', 'tenant-c', 'tenant-d'];
/** Prefixes of the keys this stage owns in benchmark_results.json. */
export const CONCURRENT_OWNED_PREFIXES = ['concurrent_', 'duplicate_trajectories', 'p0_', 'p2_', 'priority_order'];

export interface ConcurrentJobsOptions {
  temporalAddress: string;
  temporalPid?: number;
  databaseUrl: string;
  log: (line: string) => void;
  /** Temporal namespace (default `default`). */
  namespace?: string;
  /** Runs beside the wait once every job is submitted (the cluster bench kills services); awaited before the figures. */
  midRun?: (run: { t0: number; jobIds: string[]; trajectoriesPerJob: number }) => Promise<void>;
}

export interface CpuCores {
  workers: number;
  temporal: number | null;
  benchProcess: number;
  /** PostgreSQL backends serving the bench database. */
  postgres: number | null;
  /** Everything else that ran on the machine (other PostgreSQL work, other processes). */
  rest: number;
  machine: number;
}

export interface ConcurrentJobsResult {
  jobs: number;
  started: number;
  completed: number;
  otherEndings: Record<string, number>;
  unfinished: number;
  trajectories: number;
  duplicateTrajectories: number;
  missingTrajectories: number;
  submitSeconds: number;
  wallSeconds: number;
  jobsPerMinute: number;
  trajectoriesPerSecond: number;
  latencyP50S: number;
  latencyP95S: number;
  p0MedianFinishS: number;
  p2MedianFinishS: number;
  /** Share of P0 jobs that finished before the median P2 job did. */
  p0BeforeP2MedianShare: number;
  priorityOrderOk: boolean;
  cores: CpuCores | null;
  modelCalls: number;
  workerMaxRssMiB: number[];
}

function jobRequest(priority: Priority, index: number): TrainingJobRequest {
  return {
    job_id: `bench-cj-${priority}-${index}-${randomUUID().slice(0, 8)}`,
    agent_id: 'bench-concurrent-agent',
    tenant_id: TENANTS[index % TENANTS.length],
    owner_id: 'bench',
    training_queries: simulatedTaskSet({ queriesPerFamily: 2, seed: 100 + index }),
    config: { ...CONCURRENT_JOB_SHAPE, max_parallel: 8, seed: index, priority },
  };
}

export async function measureConcurrentJobs(options: ConcurrentJobsOptions): Promise<ConcurrentJobsResult> {
  const { log } = options;
  const model = await startSimulatedModelServer({ latencyMs: CONCURRENT_MODEL_LATENCY_MS });
  const prisma = createPrismaClient(options.databaseUrl, { poolSize: 10 });
  const repos = createRepositories(prisma);
  const connection = await Connection.connect({ address: options.temporalAddress });
  const client = new Client({ connection, namespace: options.namespace });
  const taskQueue = `bench-concurrent-${process.pid}-${randomUUID().slice(0, 8)}`;
  const workers: (ChildProcess & { output(): string })[] = [];
  try {
    for (let i = 0; i < CONCURRENT_WORKER_PROCESSES; i++) {
      workers.push(
        await spawnWorkerProcess({
          taskQueue,
          temporalAddress: options.temporalAddress,
          databaseUrl: options.databaseUrl,
          llmBaseUrl: model.url,
          env: { FLOW_DB_POOL_SIZE: '10', ...(options.namespace ? { TEMPORAL_NAMESPACE: options.namespace } : {}) },
        }),
      );
    }
    log(`    ${CONCURRENT_WORKER_PROCESSES} worker processes (pids ${workers.map((w) => w.pid).join(', ')}) polling ${taskQueue} and its -trajectories and -cpu queues`);

    const half = Math.floor(CONCURRENT_JOBS / 2);
    const requests = [
      ...Array.from({ length: CONCURRENT_JOBS - half }, (_, i) => jobRequest('P2', i)),
      ...Array.from({ length: half }, (_, i) => jobRequest('P0', CONCURRENT_JOBS - half + i)),
    ];
    const submittedAt = new Map<string, number>();
    const backendPids = async () =>
      (await prisma.$queryRawUnsafe<{ pid: number }[]>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()')).map((r) => Number(r.pid));
    const cpuBefore = cpuSnapshot(workers, options.temporalPid, await backendPids());
    const t0 = Date.now();
    // The P2 jobs go in first, then the P0 ones: without priorities, first in would finish first.
    const limit = new ConcurrencyLimit(SUBMIT_CONCURRENCY);
    let startFailures = 0;
    await Promise.all(
      requests.map((request) =>
        limit.run(async () => {
          submittedAt.set(request.job_id!, Date.now());
          try {
            await startTrainingJob(client, repos, request, { taskQueue });
          } catch (error) {
            startFailures++;
            submittedAt.delete(request.job_id!);
            log(`    start of ${request.job_id} failed: ${error instanceof Error ? error.message : String(error)}`);
          }
        }),
      ),
    );
    const submitSeconds = (Date.now() - t0) / 1000;
    const ids = [...submittedAt.keys()];
    log(`    ${ids.length} jobs started in ${submitSeconds.toFixed(1)} s (${startFailures} refused); waiting for them to end`);
    const midRun = options.midRun?.({ t0, jobIds: ids, trajectoriesPerJob: TRAJECTORIES_PER_JOB });

    type Row = { id: string; status: string; priority: string; finishedAt: Date | null };
    let rows: Row[] = [];
    let lastReport = 0;
    const deadline = t0 + TIMEOUT_S * 1000;
    for (;;) {
      rows = await prisma.trainingJob.findMany({ where: { id: { in: ids } }, select: { id: true, status: true, priority: true, finishedAt: true } });
      const ended = rows.filter((r) => isTerminalJobStatus(r.status as never)).length;
      if (ended === ids.length) break;
      if (Date.now() > deadline) {
        log(`    timed out after ${TIMEOUT_S} s with ${ids.length - ended} jobs unfinished`);
        break;
      }
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        const trajectories = await prisma.trajectory.count({ where: { jobId: { in: ids } } });
        log(`    ${((Date.now() - t0) / 1000).toFixed(0)} s: ${ended}/${ids.length} jobs ended, ${trajectories} trajectories written, load ${os.loadavg()[0].toFixed(1)}`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    await midRun;
    const cpuAfter = cpuSnapshot(workers, options.temporalPid, await backendPids());
    const ended = rows.filter((r) => isTerminalJobStatus(r.status as never) && r.finishedAt);
    const lastFinish = Math.max(...ended.map((r) => r.finishedAt!.getTime()), t0);
    const wallSeconds = (lastFinish - t0) / 1000;

    const identity = await prisma.$queryRawUnsafe<{ rows: bigint; distinct_identities: bigint }[]>(
      `SELECT count(*) AS rows, count(DISTINCT (job_id, run, iteration, query_index, sample_index)) AS distinct_identities FROM trajectories WHERE job_id = ANY($1::text[])`,
      ids,
    );
    const trajectories = Number(identity[0].rows);
    const distinct = Number(identity[0].distinct_identities);

    const completed = rows.filter((r) => r.status === 'completed');
    const otherEndings: Record<string, number> = {};
    for (const r of ended) if (r.status !== 'completed') otherEndings[r.status] = (otherEndings[r.status] ?? 0) + 1;
    const latencies = completed.map((r) => (r.finishedAt!.getTime() - submittedAt.get(r.id)!) / 1000);
    const finishOf = (priority: Priority) => completed.filter((r) => r.priority === priority).map((r) => (r.finishedAt!.getTime() - t0) / 1000);
    const p0 = finishOf('P0');
    const p2 = finishOf('P2');
    const p0Median = p0.length ? median(p0) : NaN;
    const p2Median = p2.length ? median(p2) : NaN;
    const workerMaxRssMiB = workers.map((w) => maxRssMiB(w.pid));
    return {
      jobs: requests.length,
      started: ids.length,
      completed: completed.length,
      otherEndings,
      unfinished: ids.length - ended.length,
      trajectories,
      duplicateTrajectories: trajectories - distinct,
      missingTrajectories: Math.max(0, completed.length * TRAJECTORIES_PER_JOB - distinct),
      submitSeconds,
      wallSeconds,
      jobsPerMinute: wallSeconds > 0 ? (completed.length / wallSeconds) * 60 : 0,
      trajectoriesPerSecond: wallSeconds > 0 ? trajectories / wallSeconds : 0,
      latencyP50S: latencies.length ? quantile(latencies, 0.5) : NaN,
      latencyP95S: latencies.length ? quantile(latencies, 0.95) : NaN,
      p0MedianFinishS: p0Median,
      p2MedianFinishS: p2Median,
      p0BeforeP2MedianShare: p0.length ? p0.filter((s) => s < p2Median).length / p0.length : 0,
      priorityOrderOk: p0.length > 0 && p2.length > 0 && p0Median < p2Median,
      cores: cpuSplit(cpuBefore, cpuAfter),
      modelCalls: model.calls(),
      workerMaxRssMiB,
    };
  } finally {
    for (const worker of workers) await stopProcess(worker, 'SIGTERM');
    await connection.close();
    await prisma.$disconnect();
    await model.close();
  }
}

// CPU accounting from /proc (Linux).

const TICKS_PER_SECOND = 100;

function procCpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime (fields 14-17; the child times count the tsx loader's children).
    return ((Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

function machineCpuMs(): number {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / TICKS_PER_SECOND;
}

function maxRssMiB(pid: number | undefined): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return round(kb / 1024, 0);
  } catch {
    return 0;
  }
}

interface CpuSnapshot {
  at: number;
  /** CPU ms per PostgreSQL backend of the bench database. */
  backends: Map<number, number>;
  workers: number | null;
  temporal: number | null;
  bench: number;
  machine: number | null;
}

function cpuSnapshot(workers: ChildProcess[], temporalPid: number | undefined, backendPids: number[]): CpuSnapshot {
  const backends = new Map<number, number>();
  for (const pid of backendPids) {
    const ms = procCpuMs(pid);
    if (ms !== null) backends.set(pid, ms);
  }
  let machine: number | null = null;
  try {
    machine = machineCpuMs();
  } catch {
    machine = null;
  }
  const perWorker = workers.map((w) => procCpuMs(w.pid));
  const usage = process.cpuUsage();
  return {
    at: Date.now(),
    backends,
    workers: perWorker.every((v) => v !== null) ? perWorker.reduce((a, b) => a! + b!, 0) : null,
    temporal: procCpuMs(temporalPid),
    bench: (usage.user + usage.system) / 1000,
    machine,
  };
}

function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuCores | null {
  if (a.workers === null || b.workers === null || a.machine === null || b.machine === null) return null;
  const seconds = (b.at - a.at) / 1000;
  const cores = (x: number, y: number) => (y - x) / 1000 / seconds;
  const workers = cores(a.workers, b.workers);
  const temporal = a.temporal !== null && b.temporal !== null ? cores(a.temporal, b.temporal) : null;
  const benchProcess = cores(a.bench, b.bench);
  const machine = cores(a.machine, b.machine);
  // A backend that connected during the run counts from zero.
  let postgresMs = 0;
  for (const [pid, ms] of b.backends) postgresMs += ms - (a.backends.get(pid) ?? 0);
  const postgres = b.backends.size > 0 ? postgresMs / 1000 / seconds : null;
  return { workers, temporal, benchProcess, postgres, machine, rest: Math.max(0, machine - workers - (temporal ?? 0) - benchProcess - (postgres ?? 0)) };
}

// Figures and Markdown.

export function concurrentJobsFigures(r: ConcurrentJobsResult): Figure[] {
  const figures: Figure[] = [
    { key: 'concurrent_jobs_started', label: `Concurrent training jobs started (${CONCURRENT_WORKER_PROCESSES} worker processes, one dev server)`, value: r.started, unit: 'jobs', bar: { op: '>=', value: r.jobs } },
    { key: 'concurrent_jobs_completed', label: 'Of them, completed', value: r.completed, unit: 'jobs', bar: { op: '>=', value: r.jobs } },
    { key: 'duplicate_trajectories', label: 'Duplicate trajectories (same job, run, iteration, query, sample) in PostgreSQL', value: r.duplicateTrajectories, unit: 'rows', bar: { op: '<=', value: 0 } },
    { key: 'concurrent_trajectories_missing', label: 'Trajectories missing from completed jobs', value: r.missingTrajectories, unit: 'rows', bar: { op: '<=', value: 0 } },
    { key: 'concurrent_jobs_per_min', label: 'Throughput: jobs completed per minute', value: r.jobsPerMinute, unit: 'jobs/min' },
    { key: 'concurrent_trajectories_per_s', label: 'Throughput: trajectories written per second', value: r.trajectoriesPerSecond, unit: 'traj/s' },
    { key: 'concurrent_job_latency_p50_s', label: 'End-to-end job latency (submitted → finished), p50', value: r.latencyP50S, unit: 's' },
    { key: 'concurrent_job_latency_p95_s', label: 'End-to-end job latency, p95', value: r.latencyP95S, unit: 's' },
    { key: 'concurrent_wall_s', label: `All ${r.jobs} jobs, first submitted → last finished`, value: r.wallSeconds, unit: 's' },
    { key: 'p0_median_finish_s', label: 'P0 jobs (submitted last): median finish after the first submission', value: r.p0MedianFinishS, unit: 's' },
    { key: 'p2_median_finish_s', label: 'P2 jobs (submitted first): median finish after the first submission', value: r.p2MedianFinishS, unit: 's' },
    { key: 'priority_order_ok', label: 'P0 jobs finish before P2 jobs under contention (median; 1 = yes)', value: r.priorityOrderOk ? 1 : 0, unit: '', bar: { op: '>=', value: 1 } },
    { key: 'p0_before_p2_median_share', label: 'Share of P0 jobs finished before the median P2 job', value: r.p0BeforeP2MedianShare, unit: '' },
  ];
  if (r.cores) {
    figures.push(
      { key: 'concurrent_cpu_workers_cores', label: 'CPU of the two worker processes during the run', value: r.cores.workers, unit: 'cores' },
      ...(r.cores.temporal !== null ? [{ key: 'concurrent_cpu_temporal_cores', label: 'CPU of the Temporal dev server', value: r.cores.temporal, unit: 'cores' }] : []),
      ...(r.cores.postgres !== null ? [{ key: 'concurrent_cpu_postgres_cores', label: "CPU of the bench database's PostgreSQL backends", value: r.cores.postgres, unit: 'cores' }] : []),
      { key: 'concurrent_cpu_rest_cores', label: 'CPU of everything else on the machine', value: r.cores.rest, unit: 'cores' },
      { key: 'concurrent_cpu_ms_per_trajectory', label: 'CPU per trajectory, whole machine (workers, Temporal, PostgreSQL, model server)', value: perTrajectoryMs(r, r.cores.machine - r.cores.rest), unit: 'ms' },
    );
  }
  return figures;
}

/** CPU milliseconds per trajectory written, at `cores` over the run. */
const perTrajectoryMs = (r: ConcurrentJobsResult, cores: number) => (r.trajectories > 0 ? (cores * r.wallSeconds * 1000) / r.trajectories : 0);

export function concurrentJobsSection(r: ConcurrentJobsResult): MarkdownSection {
  const c = r.cores;
  const missed = r.completed < r.jobs || r.duplicateTrajectories > 0 || r.missingTrajectories > 0 || !r.priorityOrderOk;
  return {
    title: `${r.jobs} concurrent training jobs`,
    lines: [
      `- **How**: ${r.jobs} jobs started through \`startTrainingJob\` (the API's path: row, kill-switch check, workflow start with task priority and the tenant as fairness key), ${SUBMIT_CONCURRENCY} starts at a time, ` +
        `each ${CONCURRENT_JOB_SHAPE.iterations} iterations × ${CONCURRENT_JOB_SHAPE.batch_size} queries × a group of ${CONCURRENT_JOB_SHAPE.group_size} (${TRAJECTORIES_PER_JOB} trajectories and ${CONCURRENT_JOB_SHAPE.iterations} policy updates per job), max_parallel 8, ${TENANTS.length} tenants; ` +
        `the first ${r.jobs - Math.floor(r.jobs / 2)} submitted are P2, the last ${Math.floor(r.jobs / 2)} P0. One Temporal dev server; ${CONCURRENT_WORKER_PROCESSES} worker processes (\`workers/main.ts\`, every pool, default pool sizes, a database pool of 10 each); ` +
        `the simulated model server with ${CONCURRENT_MODEL_LATENCY_MS} ms per call (${r.modelCalls} calls). Jobs were all submitted within ${r.submitSeconds.toFixed(1)} s.`,
      `- **Outcome**: ${r.started} started, ${r.completed} completed${Object.keys(r.otherEndings).length ? `, other endings ${JSON.stringify(r.otherEndings)}` : ''}${r.unfinished ? `, ${r.unfinished} unfinished at the timeout` : ''}; ` +
        `${r.trajectories} trajectory rows, ${r.duplicateTrajectories} duplicates and ${r.missingTrajectories} missing (counted in PostgreSQL by job, run, iteration, query and sample).`,
      `- **Throughput and latency**: ${r.jobsPerMinute.toFixed(1)} jobs/min, ${r.trajectoriesPerSecond.toFixed(1)} trajectories/s over ${r.wallSeconds.toFixed(0)} s; job latency p50 ${r.latencyP50S.toFixed(1)} s, p95 ${r.latencyP95S.toFixed(1)} s.`,
      `- **Priority under contention**: P0 jobs (submitted last) finished at a median ${r.p0MedianFinishS.toFixed(1)} s, P2 jobs (submitted first) at ${r.p2MedianFinishS.toFixed(1)} s; ${(r.p0BeforeP2MedianShare * 100).toFixed(0)}% of P0 jobs finished before the median P2 job.`,
      ...(c
        ? [
            `- **Where the time goes** (CPU from /proc over the run, in cores of ${os.cpus().length}): worker processes ${c.workers.toFixed(2)}, Temporal dev server ${c.temporal?.toFixed(2) ?? '?'}, ` +
              `PostgreSQL backends of the bench database ${c.postgres?.toFixed(2) ?? '?'}, bench process (job submission, polling, simulated model server) ${c.benchProcess.toFixed(2)}, everything else on the machine ${c.rest.toFixed(2)}; ${c.machine.toFixed(2)} busy in all. ` +
              `Per trajectory (with its share of workflow tasks, rewards, advantages, policy updates and records): workers ${perTrajectoryMs(r, c.workers).toFixed(1)} ms, Temporal ${perTrajectoryMs(r, c.temporal ?? 0).toFixed(1)} ms, PostgreSQL ${perTrajectoryMs(r, c.postgres ?? 0).toFixed(1)} ms of CPU. ` +
              `Worker peak RSS ${r.workerMaxRssMiB.join(' and ')} MiB. ${c.machine > os.cpus().length * 0.85 ? 'The machine was CPU-bound: more worker processes on these cores would not help; more cores (or machines) would.' : 'The machine had CPU to spare: the run was bounded by latency and pool sizes, not cores.'}`,
          ]
        : []),
      ...(missed ? ['- **A bar was missed**: see the figures above and the CPU split for where the time went.'] : []),
    ],
  };
}

// Standalone: its own database and dev server.
if (require.main === module) {
  void (async () => {
    const { createDatabase, dropDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, startTemporal } = await import('../../workers/dev/devStack');
    const { DefaultLogger, Runtime } = await import('@temporalio/worker');
    const { mergeResults, machine, formatValue, meetsBar } = await import('./results');
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    const postgres = await ensurePostgres();
    const databaseName = `flow_bench_cj_${process.pid}`;
    const databaseUrl = await createDatabase(postgres.adminUrl, databaseName, { fresh: true });
    migrateDatabase(databaseUrl);
    const temporal = await startTemporal({ headless: true, logFile: path.join(PROJECT_ROOT, '.flow', 'bench-concurrent-temporal.log') });
    let code = 0;
    try {
      console.log(`${CONCURRENT_JOBS} concurrent jobs (load average ${os.loadavg()[0].toFixed(2)} at start)`);
      const result = await measureConcurrentJobs({ temporalAddress: temporal.address, temporalPid: temporal.process.pid, databaseUrl, log: (line) => console.log(line) });
      const figures = concurrentJobsFigures(result);
      for (const f of figures) {
        const verdict = f.bar ? (meetsBar(f) ? '  ok' : '  MISSED') : '';
        console.log(`  ${f.key.padEnd(36)} ${formatValue(f.value, f.unit).padStart(14)}${verdict}`);
      }
      for (const line of concurrentJobsSection(result).lines) console.log(line);
      if (process.argv.includes('--write')) {
        const file = path.join(PROJECT_ROOT, 'docs', 'performance', 'benchmark_results.json');
        mergeResults(file, Object.fromEntries(figures.map((f) => [f.key, round(f.value, 3)])), CONCURRENT_OWNED_PREFIXES, { machine: machine(), measured_at: new Date().toISOString() });
        console.log(`merged into ${file}`);
      }
    } catch (error) {
      console.error(`concurrent jobs bench failed: ${error instanceof Error ? error.stack : String(error)}`);
      code = 1;
    } finally {
      await temporal.stop();
      await dropDatabase(postgres.adminUrl, databaseName).catch(() => undefined);
    }
    process.exit(code);
  })();
}
