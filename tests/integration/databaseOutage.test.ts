/**
 * A PostgreSQL outage does not fail a job: activities that cannot reach the database are retried
 * until it returns (bounded by `config.infrastructure_retry_minutes`, not by a small attempt
 * count), and the job completes with every trajectory written exactly once.
 *
 * The outage needs a PostgreSQL cluster of its own (the suite's is shared by every test file), so
 * this file starts one on a free port, with a worker process on it, and stops it for 60 s while a
 * group is being collected. Before the retry window, five attempts 1 s apart with backoff 2 gave
 * up after about 15 s and the job failed (`connect ECONNREFUSED`).
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { startTrainingJob } from '../../api/trainingJobs';
import { createPrismaClient, createRepositories, type PrismaClient } from '../../adapters/db';
import type { TrainingJobResult } from '../../workflows/trainingJobState';
import { createDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, stopPostgres } from '../../workers/dev/devStack';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';
import { freeRestartPort } from '../support/restartPort';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';

const OUTAGE_SECONDS = 60;

let h: Harness;
let port: number;
let prisma: PrismaClient | undefined;
let worker: ChildProcess | undefined;

beforeAll(async () => {
  // Calls slow enough that the outage starts in the middle of a group.
  h = await startHarness({ model: { latencyMs: 100 } });
  // Restarted on the same port after the outage.
  port = await freeRestartPort();
}, 120_000);
afterAll(async () => {
  if (worker) await stopProcess(worker, 'SIGKILL');
  await prisma?.$disconnect();
  try {
    stopPostgres(port);
  } catch {
    // already stopped
  }
  rmSync(path.join(PROJECT_ROOT, '.flow', 'pg', String(port)), { recursive: true, force: true });
  await h?.close();
});

test(`PostgreSQL stopped for ${OUTAGE_SECONDS} s mid-group: the job completes, every trajectory exactly once`, async () => {
  const postgres = await ensurePostgres(port);
  const databaseUrl = await createDatabase(postgres.adminUrl, 'flow_outage', { fresh: true });
  migrateDatabase(databaseUrl);
  prisma = createPrismaClient(databaseUrl, { poolSize: 2 });
  const repos = createRepositories(prisma);
  const taskQueue = `outage-${randomUUID()}`;
  worker = await spawnWorkerProcess({ taskQueue, temporalAddress: requireEnv('TEMPORAL_ADDRESS'), databaseUrl, llmBaseUrl: h.model.url });

  const config = { iterations: 2, batch_size: 1, group_size: 8, max_parallel: 2, seed: 5 };
  const { jobId } = await startTrainingJob(h.client, repos, jobRequest({ config }), { taskQueue });
  // Stop the database while the first group is part-written.
  let written = 0;
  for (let i = 0; i < 3000 && (written < 2 || written > 6); i++) {
    written = await repos.trajectories.countForJob(jobId);
    await new Promise((r) => setTimeout(r, 10));
  }
  expect(written).toBeGreaterThanOrEqual(2);
  expect(written).toBeLessThanOrEqual(6);
  stopPostgres(port);
  const stoppedAt = Date.now();
  await new Promise((r) => setTimeout(r, OUTAGE_SECONDS * 1000));
  const handle = h.client.workflow.getHandle(jobId);
  // The job is still running after the outage (it used to fail within ~15 s).
  expect((await handle.describe()).status.name).toBe('RUNNING');
  await ensurePostgres(port);

  const result: TrainingJobResult = await handle.result();
  expect(result.status).toBe('completed');
  expect(Date.now() - stoppedAt).toBeGreaterThan(OUTAGE_SECONDS * 1000);
  const rows = await repos.trajectories.listForJob(jobId);
  expect(rows).toHaveLength(16);
  expect(new Set(rows.map((r) => `${r.run}:${r.iteration}:${r.queryIndex}:${r.sampleIndex}`)).size).toBe(16);
  expect((await repos.jobs.get(jobId))!.status).toBe('completed');
  // Activities really did fail during the outage and were retried.
  const history = await handle.fetchHistory();
  const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  expect(retried.length).toBeGreaterThan(0);
}, 240_000);
