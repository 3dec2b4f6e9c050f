/**
 * Crash recovery with real processes: a worker process is killed with SIGKILL while a group is
 * part-written, a new worker process takes over, and the job completes — with a retried activity
 * in its history, exactly the expected trajectories (no duplicate, no gap), and the same final
 * policy as a job with the same seed that never crashed.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { startTrainingJob } from '../../api/trainingJobs';
import type { TrainingJobResult } from '../../workflows/trainingJobState';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';

const { PendingActivityState } = temporal.api.enums.v1;

let h: Harness;
const children: ChildProcess[] = [];

beforeAll(async () => {
  // Slow enough calls that a group is caught part-written.
  h = await startHarness({ model: { latencyMs: 120 } });
});
afterAll(async () => {
  for (const child of children) await stopProcess(child, 'SIGKILL');
  await h?.close();
});

async function workerProcess(taskQueue: string) {
  const child = await spawnWorkerProcess({ taskQueue, temporalAddress: requireEnv('TEMPORAL_ADDRESS'), databaseUrl: requireEnv('DATABASE_URL'), llmBaseUrl: h.model.url });
  children.push(child);
  return child;
}

test('a worker killed mid-group is replaced and the job completes as if nothing happened', async () => {
  const taskQueue = `crash-${randomUUID()}`;
  const config = { iterations: 2, batch_size: 1, group_size: 8, max_parallel: 2, seed: 21 };
  const request = jobRequest({ config });

  const first = await workerProcess(taskQueue);
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue });
  // Kill while the first group is part-written (between 1 and 7 of its 8 trajectories) and a
  // trajectory activity is running on the worker, so that one is certainly retried. Two
  // parallel trajectories can finish within milliseconds, so the row count alone may catch a
  // moment when nothing runs.
  const handle = h.client.workflow.getHandle(jobId);
  const runningTrajectory = async () =>
    ((await handle.describe()).raw.pendingActivities ?? []).some(
      (activity) =>
        activity.activityType?.name === 'runTrajectory' &&
        [PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, 'PENDING_ACTIVITY_STATE_STARTED'].includes(activity.state as never),
    );
  let written = 0;
  for (let i = 0; i < 1500; i++) {
    written = await h.repos.trajectories.countForJob(jobId);
    if (written >= 1 && written <= 7 && (await runningTrajectory())) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await stopProcess(first, 'SIGKILL');
  const atKill = await h.repos.trajectories.countForJob(jobId);
  expect(written).toBeGreaterThanOrEqual(1);
  expect(written).toBeLessThanOrEqual(7);

  const second = await workerProcess(taskQueue);
  const result: TrainingJobResult = await handle.result();
  expect(await stopProcess(second)).toBe(0);

  expect(result.status).toBe('completed');
  expect(atKill).toBeLessThan(16);
  const rows = await h.repos.trajectories.listForJob(jobId);
  expect(rows).toHaveLength(16);
  const keys = new Set(rows.map((r) => `${r.run}:${r.iteration}:${r.queryIndex}:${r.sampleIndex}`));
  expect(keys.size).toBe(16);
  for (const iteration of [1, 2]) {
    expect(rows.filter((r) => r.iteration === iteration).map((r) => r.sampleIndex).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  }
  const history = await handle.fetchHistory();
  const retried = (history.events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  expect(retried.length).toBeGreaterThan(0);

  // The same job, same seed, on an in-process worker that never crashes.
  const reference = jobRequest({ config });
  const { jobId: referenceId } = await startTrainingJob(h.client, h.repos, reference, { taskQueue: h.taskQueue });
  const expected: TrainingJobResult = await h.run(h.client.workflow.getHandle(referenceId).result());
  expect(result.policy).toEqual(expected.policy);
  expect(result.success_rates).toEqual(expected.success_rates);
}, 180_000);
