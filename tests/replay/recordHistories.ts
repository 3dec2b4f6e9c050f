/**
 * Records the workflow histories the replay tests (tests/replay/*.test.ts) replay against the
 * current workflow code. Run with `npm run record-histories`; it starts its own PostgreSQL
 * database and headless Temporal dev server (workers/dev/devStack.ts), runs two small jobs through
 * the real training worker on the simulated model, writes
 *
 *   tests/replay/histories/completed-job.json   a job that runs to completion
 *   tests/replay/histories/cancelled-job.json   a job cancelled mid-iteration via cancelTrainingJob
 *
 * and tears everything down again. Re-record only when a workflow change is meant to be
 * incompatible with running jobs; otherwise keep old histories and put the change behind patched().
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode } from '@temporalio/worker';
import { cancelTrainingJob, startTrainingJob } from '../../api/trainingJobs';
import { statusQuery } from '../../workflows/trainingJob';
import { createDatabase, dropDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, sleep, startTemporal, type TemporalServer } from '../../workers/dev/devStack';
import { jobRequest, startHarness, type Harness } from '../support/harness';
import { HISTORIES_DIR, RECORDED_HISTORIES } from './recordedHistories';

const MAX_HISTORY_BYTES = 1024 * 1024;

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

async function main(): Promise<void> {
  const workDir = path.join(PROJECT_ROOT, '.flow', 'record');
  mkdirSync(workDir, { recursive: true });
  mkdirSync(HISTORIES_DIR, { recursive: true });

  const postgres = await ensurePostgres();
  const databaseName = `flow_record_${process.pid}`;
  const bundlePath = path.join(workDir, `workflow-bundle-${process.pid}.js`);
  let temporal: TemporalServer | undefined;
  let h: Harness | undefined;
  try {
    const databaseUrl = await createDatabase(postgres.adminUrl, databaseName, { fresh: true });
    migrateDatabase(databaseUrl);
    temporal = await startTemporal({ headless: true, logFile: path.join(workDir, 'temporal.log') });
    const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietLogger });
    writeFileSync(bundlePath, bundle.code);

    // What tests/support/globalSetup.ts sets for the harness.
    process.env.DATABASE_URL = databaseUrl;
    process.env.TEMPORAL_ADDRESS = temporal.address;
    process.env.FLOW_TEST_WORKFLOW_BUNDLE = bundlePath;
    h = await startHarness();

    await recordCompletedJob(h);
    await recordCancelledJob(h);
  } finally {
    await h?.close().catch((error) => console.error('closing the harness failed:', error));
    await temporal?.stop();
    await dropDatabase(postgres.adminUrl, databaseName).catch((error) => console.error(`dropping ${databaseName} failed:`, error));
    rmSync(bundlePath, { force: true });
  }
}

async function recordCompletedJob(h: Harness): Promise<void> {
  const request = jobRequest({
    job_id: RECORDED_HISTORIES.completed.workflowId,
    config: { iterations: 2, batch_size: 2, group_size: 4, checkpoint_interval: 1, seed: 3 },
  });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  const result = await h.run(h.client.workflow.getHandle(jobId).result());
  if (result.status !== 'completed') throw new Error(`expected the job to complete, it ended ${result.status}`);
  await saveHistory(h.client, jobId, RECORDED_HISTORIES.completed);
}

async function recordCancelledJob(h: Harness): Promise<void> {
  // Slow model calls keep the second iteration's trajectories in flight when the cancel arrives.
  h.model.setLatency(100);
  const request = jobRequest({
    job_id: RECORDED_HISTORIES.cancelled.workflowId,
    config: { iterations: 3, batch_size: 2, group_size: 4, checkpoint_interval: 1, seed: 5 },
  });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  const handle = h.client.workflow.getHandle(jobId);
  await h.run(async () => {
    // Cancel once iteration 1 is done and iteration 2 is collecting trajectories.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = await handle.query(statusQuery);
      if (status.status !== 'running') throw new Error(`the job ended ${status.status} before it could be cancelled`);
      if (status.iteration >= 1 && status.phase === 'collecting') break;
      if (Date.now() > deadline) throw new Error('the job did not reach iteration 2 within 60 s');
      await sleep(20);
    }
    await cancelTrainingJob(h.client, jobId, 'recorded for replay tests');
    try {
      await handle.result();
      throw new Error('expected the cancelled job to fail with a cancellation');
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) throw error;
    }
  });
  h.model.setLatency(0);
  const job = await h.repos.jobs.get(jobId);
  if (job?.status !== 'cancelled') throw new Error(`expected the job row to be cancelled, it is ${job?.status}`);
  await saveHistory(h.client, jobId, RECORDED_HISTORIES.cancelled);
}

async function saveHistory(
  client: Client,
  jobId: string,
  { workflowId, file, lastEvent }: { workflowId: string; file: string; lastEvent: string },
): Promise<void> {
  if (jobId !== workflowId) throw new Error(`expected job ${workflowId}, started ${jobId}`);
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const json = historyToJSON(history);
  const events = (JSON.parse(json) as { events: { eventType: string }[] }).events;
  const last = events[events.length - 1]?.eventType;
  if (last !== lastEvent) throw new Error(`${workflowId}: expected the history to end with ${lastEvent}, it ends with ${last}`);
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_HISTORY_BYTES) throw new Error(`${workflowId}: history is ${bytes} bytes, more than ${MAX_HISTORY_BYTES}`);
  writeFileSync(file, `${json}\n`);
  console.log(`wrote ${path.relative(PROJECT_ROOT, file)}: ${events.length} events, ${(bytes / 1024).toFixed(1)} KiB`);
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
