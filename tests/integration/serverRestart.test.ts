/**
 * The Temporal dev server (with a database file) is stopped and started again while a job
 * runs; the worker process reconnects and the job completes with the same guarantees as an
 * undisturbed one: every trajectory exactly once, and the same final policy for the same seed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { startTrainingJob } from '../../api/trainingJobs';
import { startTemporal, type TemporalServer } from '../../workers/dev/devStack';
import type { TrainingJobResult } from '../../workflows/trainingJobState';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';
import { freeRestartPort } from '../support/restartPort';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';

let h: Harness;
let server: TemporalServer | undefined;
let worker: ChildProcess | undefined;

beforeAll(async () => {
  h = await startHarness({ model: { latencyMs: 120 } });
});
afterAll(async () => {
  if (worker) await stopProcess(worker, 'SIGKILL');
  await server?.stop();
  await h?.close();
});

test('a job survives a restart of the Temporal server', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flow-restart-'));
  // Restarted on the same port.
  const port = await freeRestartPort();
  const serverOptions = { port, headless: true, dbFile: path.join(dir, 'temporal.db'), logFile: path.join(dir, 'temporal.log') };
  server = await startTemporal(serverOptions);
  const taskQueue = `restart-${randomUUID()}`;
  worker = await spawnWorkerProcess({ taskQueue, temporalAddress: server.address, databaseUrl: requireEnv('DATABASE_URL'), llmBaseUrl: h.model.url });
  const config = { iterations: 3, batch_size: 1, group_size: 8, max_parallel: 2, seed: 33 };

  const before = new Client({ connection: await Connection.connect({ address: server.address }) });
  const { jobId } = await startTrainingJob(before, h.repos, jobRequest({ config }), { taskQueue });
  let written = 0;
  for (let i = 0; i < 1000 && written < 4; i++) {
    await new Promise((r) => setTimeout(r, 20));
    written = await h.repos.trajectories.countForJob(jobId);
  }
  expect(written).toBeGreaterThanOrEqual(4);
  await before.connection.close();

  await server.stop();
  const whileDown = await h.repos.trajectories.countForJob(jobId);
  server = await startTemporal(serverOptions);

  const after = new Client({ connection: await Connection.connect({ address: server.address }) });
  const result: TrainingJobResult = await after.workflow.getHandle(jobId).result();
  await after.connection.close();
  expect(await stopProcess(worker)).toBe(0);

  expect(result.status).toBe('completed');
  expect(whileDown).toBeLessThan(24);
  const rows = await h.repos.trajectories.listForJob(jobId);
  expect(rows).toHaveLength(24);
  expect(new Set(rows.map((r) => `${r.iteration}:${r.queryIndex}:${r.sampleIndex}`)).size).toBe(24);
  expect((await h.repos.jobs.get(jobId))!.status).toBe('completed');

  const { jobId: referenceId } = await startTrainingJob(h.client, h.repos, jobRequest({ config }), { taskQueue: h.taskQueue });
  const expected: TrainingJobResult = await h.run(h.client.workflow.getHandle(referenceId).result());
  expect(result.policy).toEqual(expected.policy);
}, 240_000);
