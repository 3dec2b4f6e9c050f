/**
 * The 200-concurrent-jobs workload (tests/perf/concurrentJobs.ts: 2 worker processes, the
 * simulated model over HTTP) against a multi-service Temporal cluster on PostgreSQL
 * (scripts/temporal-cluster.ts) instead of the dev server, and mid-run the history service is
 * SIGKILLed and restarted once, then the matching service once.
 *
 * Keys: cluster_jobs_completed (bar: all), cluster_duplicate_trajectories (bar: 0),
 * cluster_missing_trajectories (bar: 0), cluster_history_kill_stall_s and
 * cluster_matching_kill_stall_s (from the SIGKILL until the first trajectory written after the
 * service is back), cluster_jobs_per_min and cluster_trajectories_per_s; with --dev-too the same
 * workload also runs on the dev server in the same run, for throughput side by side
 * (cluster_dev_server_jobs_per_min).
 *
 *   npx tsx tests/perf/clusterJobs.ts [--write] [--dev-too]     (BENCH_CONCURRENT_JOBS=40 for a quicker run)
 *
 * `npm run bench:cluster` runs it with --write --dev-too.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createPrismaClient } from '../../adapters/db';
import { createDatabase, dropDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, sleep, startTemporal } from '../../workers/dev/devStack';
import { freeBasePort, startCluster, TEMPORAL_SERVER_VERSION, type ClusterService, type TemporalCluster } from '../../scripts/temporal-cluster';
import { CONCURRENT_JOBS, measureConcurrentJobs, type ConcurrentJobsResult } from './concurrentJobs';
import { formatValue, machine, meetsBar, mergeResults, type Figure } from './results';
import { round } from './stats';

export const CLUSTER_OWNED_PREFIXES = ['cluster_'];

interface KillRecord {
  service: ClusterService;
  atS: number;
  trajectoriesBefore: number;
  downS: number;
  stallS: number;
}

/** SIGKILLs `service`, restarts it at once, and measures until a trajectory is written again. */
async function killAndRestart(cluster: TemporalCluster, service: ClusterService, count: () => Promise<number>, t0: number, log: (line: string) => void): Promise<KillRecord> {
  const before = await count();
  const killedAt = Date.now();
  log(`    ${((killedAt - t0) / 1000).toFixed(0)} s: SIGKILL ${service} (pid ${cluster.pid(service)}) at ${before} trajectories`);
  await cluster.kill(service, 'SIGKILL');
  await cluster.restart(service);
  const backAt = Date.now();
  const seen = await count();
  for (;;) {
    const now = await count();
    if (now > seen) break;
    if (Date.now() - killedAt > 600_000) throw new Error(`no trajectory written within 10 minutes of the ${service} SIGKILL`);
    await sleep(250);
  }
  const stallS = (Date.now() - killedAt) / 1000;
  log(`    ${service} back (pid ${cluster.pid(service)}) after ${((backAt - killedAt) / 1000).toFixed(1)} s; trajectories flowing again ${stallS.toFixed(1)} s after the kill`);
  return { service, atS: (killedAt - t0) / 1000, trajectoriesBefore: before, downS: (backAt - killedAt) / 1000, stallS };
}

export interface ClusterJobsResult {
  run: ConcurrentJobsResult;
  kills: KillRecord[];
  clusterStartS: number;
  dev: ConcurrentJobsResult | null;
}

export async function measureClusterJobs(adminUrl: string, log: (line: string) => void, { devToo = false } = {}): Promise<ClusterJobsResult> {
  const databaseName = `flow_bench_cluster_${process.pid}`;
  const databaseUrl = await createDatabase(adminUrl, databaseName, { fresh: true });
  migrateDatabase(databaseUrl);
  const temporalDb = `temporal_bench_${process.pid}`;
  const started = Date.now();
  const cluster = await startCluster({ name: `bench-${process.pid}`, database: temporalDb, fresh: true, basePort: await freeBasePort(), namespace: 'default', log: (line) => log(`    cluster: ${line}`) });
  const clusterStartS = (Date.now() - started) / 1000;
  const prisma = createPrismaClient(databaseUrl, { poolSize: 2 });
  const kills: KillRecord[] = [];
  try {
    log(`  ${CONCURRENT_JOBS} concurrent jobs on the cluster at ${cluster.address} (up in ${clusterStartS.toFixed(0)} s)`);
    const run = await measureConcurrentJobs({
      temporalAddress: cluster.address,
      databaseUrl,
      log,
      midRun: async ({ t0, jobIds, trajectoriesPerJob }) => {
        const total = jobIds.length * trajectoriesPerJob;
        const count = () => prisma.trajectory.count({ where: { jobId: { in: jobIds } } });
        const until = async (share: number) => {
          while ((await count()) < total * share) await sleep(500);
        };
        await until(0.25);
        kills.push(await killAndRestart(cluster, 'history', count, t0, log));
        await until(0.6);
        kills.push(await killAndRestart(cluster, 'matching', count, t0, log));
      },
    });
    let dev: ConcurrentJobsResult | null = null;
    if (devToo) {
      await cluster.stop();
      const devDb = await createDatabase(adminUrl, `${databaseName}_dev`, { fresh: true });
      migrateDatabase(devDb);
      const temporal = await startTemporal({ headless: true, logFile: path.join(PROJECT_ROOT, '.flow', 'bench-cluster-devserver.log') });
      try {
        log(`  the same workload on the dev server, for comparison`);
        dev = await measureConcurrentJobs({ temporalAddress: temporal.address, temporalPid: temporal.process.pid, databaseUrl: devDb, log });
      } finally {
        await temporal.stop();
        await dropDatabase(adminUrl, `${databaseName}_dev`).catch(() => undefined);
      }
    }
    return { run, kills, clusterStartS, dev };
  } finally {
    await prisma.$disconnect();
    await cluster.stop();
    for (const db of [databaseName, temporalDb, `${temporalDb}_visibility`]) await dropDatabase(adminUrl, db).catch(() => undefined);
  }
}

export function clusterJobsFigures(r: ClusterJobsResult): Figure[] {
  const kill = (service: ClusterService) => r.kills.find((k) => k.service === service);
  const figures: Figure[] = [
    { key: 'cluster_jobs_completed', label: `Concurrent jobs completed on the Temporal cluster (4 services, PostgreSQL), history and matching SIGKILLed mid-run`, value: r.run.completed, unit: 'jobs', bar: { op: '>=', value: r.run.jobs } },
    { key: 'cluster_duplicate_trajectories', label: 'Duplicate trajectories on the cluster run', value: r.run.duplicateTrajectories, unit: 'rows', bar: { op: '<=', value: 0 } },
    { key: 'cluster_missing_trajectories', label: 'Trajectories missing from completed jobs on the cluster run', value: r.run.missingTrajectories, unit: 'rows', bar: { op: '<=', value: 0 } },
    { key: 'cluster_history_kill_stall_s', label: 'History SIGKILL → first trajectory written after its restart', value: kill('history')?.stallS ?? NaN, unit: 's' },
    { key: 'cluster_matching_kill_stall_s', label: 'Matching SIGKILL → first trajectory written after its restart', value: kill('matching')?.stallS ?? NaN, unit: 's' },
    { key: 'cluster_jobs_per_min', label: 'Throughput on the cluster (kills included): jobs per minute', value: r.run.jobsPerMinute, unit: 'jobs/min' },
    { key: 'cluster_trajectories_per_s', label: 'Throughput on the cluster: trajectories per second', value: r.run.trajectoriesPerSecond, unit: 'traj/s' },
    { key: 'cluster_wall_s', label: 'Cluster run: first submitted → last finished', value: r.run.wallSeconds, unit: 's' },
    { key: 'cluster_start_s', label: 'Cluster start (schemas, four services, namespace; binaries cached)', value: r.clusterStartS, unit: 's' },
  ];
  if (r.dev) {
    figures.push(
      { key: 'cluster_dev_server_jobs_per_min', label: 'The same workload on the dev server in the same run: jobs per minute', value: r.dev.jobsPerMinute, unit: 'jobs/min' },
      { key: 'cluster_dev_server_jobs_completed', label: 'Of it, jobs completed on the dev server', value: r.dev.completed, unit: 'jobs' },
    );
  }
  return figures;
}

const MARK_START = '<!-- temporal-cluster:start -->';
const MARK_END = '<!-- temporal-cluster:end -->';

/** The cluster section of benchmark_results.md, between markers (the rest of the file is kept). */
export function writeClusterSection(r: ClusterJobsResult, figures: Figure[], file: string): void {
  const row = (f: Figure) => `| ${f.label} | \`${f.key}\` | ${formatValue(f.value, f.unit)} | ${f.bar ? `${f.bar.op} ${f.bar.value} ${meetsBar(f) ? '(met)' : '(MISSED)'}` : ''} |`;
  const section = [
    MARK_START,
    '## The Temporal cluster (production mode), with history and matching killed',
    '',
    `\`npm run bench:cluster\` (tests/perf/clusterJobs.ts), measured ${new Date().toISOString()}: the ${r.run.jobs}-concurrent-jobs workload (2 worker processes, simulated model) against temporal-server ${TEMPORAL_SERVER_VERSION} ` +
      `as four processes (frontend, history, matching, worker; \`scripts/temporal-cluster.ts\`) on PostgreSQL persistence and SQL visibility, started in ${r.clusterStartS.toFixed(0)} s with the binaries cached. ` +
      r.kills.map((k) => `At ${k.atS.toFixed(0)} s (${k.trajectoriesBefore} trajectories written) ${k.service} was SIGKILLed and restarted (listening again after ${k.downS.toFixed(1)} s); trajectories were written again ${k.stallS.toFixed(1)} s after the kill.`).join(' '),
    '',
    '| figure | key | value | bar |',
    '| --- | --- | --- | --- |',
    ...figures.map(row),
    '',
    r.dev
      ? `Throughput side by side, same machine, same run: cluster ${r.run.jobsPerMinute.toFixed(1)} jobs/min (two kills included) against the dev server's ${r.dev.jobsPerMinute.toFixed(1)} jobs/min.`
      : 'The dev server was not run beside it in this run (add --dev-too).',
    ...(r.run.jobs < 200 ? ['', `${r.run.jobs} jobs (\`BENCH_CONCURRENT_JOBS=${r.run.jobs}\`), not the full 200; load average at the end ${os.loadavg()[0].toFixed(1)}.`] : []),
    'The stall figures run from the SIGKILL to the first trajectory row written after the restarted service listens again; activities already running keep writing while history is down, so they are a lower bound of what a single workflow waits.',
    MARK_END,
  ].join('\n');
  const md = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const start = md.indexOf(MARK_START);
  const end = md.indexOf(MARK_END);
  writeFileSync(file, start >= 0 && end > start ? md.slice(0, start) + section + md.slice(end + MARK_END.length) : `${md.trimEnd()}\n\n${section}\n`);
}

if (require.main === module) {
  void (async () => {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    const postgres = await ensurePostgres();
    let code = 0;
    try {
      console.log(`cluster bench: ${CONCURRENT_JOBS} concurrent jobs (load average ${os.loadavg()[0].toFixed(2)} at start)`);
      const result = await measureClusterJobs(postgres.adminUrl, (line) => console.log(line), { devToo: process.argv.includes('--dev-too') });
      const figures = clusterJobsFigures(result);
      for (const f of figures) console.log(`  ${f.key.padEnd(36)} ${formatValue(f.value, f.unit).padStart(14)}${f.bar ? (meetsBar(f) ? '  ok' : '  MISSED') : ''}`);
      if (figures.some((f) => f.bar && !meetsBar(f))) code = 1;
      if (process.argv.includes('--write')) {
        const file = path.join(PROJECT_ROOT, 'docs', 'performance', 'benchmark_results.json');
        mergeResults(file, Object.fromEntries(figures.map((f) => [f.key, round(f.value, 3)])), CLUSTER_OWNED_PREFIXES, { machine: machine(), measured_at: new Date().toISOString() });
        writeClusterSection(result, figures, path.join(PROJECT_ROOT, 'docs', 'performance', 'benchmark_results.md'));
        console.log(`merged into ${file} and benchmark_results.md`);
      }
    } catch (error) {
      console.error(`cluster bench failed: ${error instanceof Error ? error.stack : String(error)}`);
      code = 1;
    }
    process.exit(code);
  })();
}
