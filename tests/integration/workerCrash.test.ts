/**
 * Crash recovery with real processes: a worker process is killed with SIGKILL while a group is
 * part-written, a new worker process takes over, and the job completes — with a retried activity
 * in its history, exactly the expected trajectories (no duplicate, no gap), and the same final
 * policy as a job with the same seed that never crashed.
 */
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { startTrainingJob } from '../../api/trainingJobs';
import { costOf } from '../../adapters/llm/pricing';
import type { TrainingJobResult } from '../../workflows/trainingJobState';
import { jobRequest, startHarness, type Harness } from '../support/harness';
import { stopProcess, suiteWorkerProcesses } from '../support/workerProcess';

const { PendingActivityState } = temporal.api.enums.v1;

const MODEL_LATENCY_MS = 250;
let h: Harness;
const workers = suiteWorkerProcesses(() => h.model);

beforeAll(async () => {
  // Slow enough calls that a group is caught part-written.
  h = await startHarness({ model: { latencyMs: MODEL_LATENCY_MS } });
});
afterAll(async () => {
  await workers.killAll();
  await h?.close();
});

test('a worker killed mid-group is replaced and the job completes as if nothing happened', async () => {
  const taskQueue = `crash-${randomUUID()}`;
  const config = { iterations: 2, batch_size: 1, group_size: 8, max_parallel: 2, seed: 21 };
  const request = jobRequest({ config });

  const first = await workers.start(taskQueue);
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue });
  // Kill while the first group is part-written (between 1 and 7 of its 8 trajectories) and a
  // trajectory activity is running on the worker, waiting for a model call, so that one is
  // certainly retried. Two parallel trajectories can finish within milliseconds, so the row count
  // alone may catch a moment when nothing runs; and a trajectory the server still lists as
  // started may finish while describe answers (seen once on the Temporal cluster: no retry in the
  // history). A call the model server has not answered yet (250 ms) cannot finish before the kill,
  // which follows its check in the same tick.
  const handle = h.client.workflow.getHandle(jobId);
  // It must also have been running for longer than one model call, so the killed attempt leaves
  // billed calls that only the spend ledger knows of.
  const runningTrajectory = async () =>
    ((await handle.describe()).raw.pendingActivities ?? []).some(
      (activity) =>
        activity.activityType?.name === 'runTrajectory' &&
        [PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, 'PENDING_ACTIVITY_STATE_STARTED'].includes(activity.state as never) &&
        Date.now() - Number(activity.lastStartedTime?.seconds ?? 0) * 1000 - Math.floor((activity.lastStartedTime?.nanos ?? 0) / 1e6) > MODEL_LATENCY_MS * 2,
    );
  let written = 0;
  for (let i = 0; i < 1500; i++) {
    written = await h.repos.trajectories.countForJob(jobId);
    if (written >= 1 && written <= 7 && (await runningTrajectory()) && h.model.inFlight() > 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const callsInFlightAtKill = h.model.inFlight();
  await stopProcess(first, 'SIGKILL');
  const atKill = await h.repos.trajectories.countForJob(jobId);
  expect(written).toBeGreaterThanOrEqual(1);
  expect(written).toBeLessThanOrEqual(7);
  expect(callsInFlightAtKill).toBeGreaterThan(0);

  const second = await workers.start(taskQueue);
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

  // Spend: every call the provider billed is in the spend ledger, the killed attempt's included,
  // and the job's spend is the ledger's (it used to be only what surviving attempts reported).
  // Only this job has used the harness's model server so far.
  const invoice = h.model.billed();
  const ledger = await h.repos.ledger.totalForJob(jobId);
  const billedCalls = [...invoice.values()].reduce((sum, i) => sum + i.calls, 0);
  const billedUsd = [...invoice].reduce((sum, [model, i]) => sum + costOf(model, i), 0);
  // A call the kill caught in flight stays in the ledger, unsettled at its worst case: whether the
  // provider billed it or never received it, the ledger is never below the invoice, and equal to
  // it when the kill caught no call in flight.
  expect(ledger.calls).toBeGreaterThanOrEqual(billedCalls);
  expect(ledger.calls - ledger.unsettled).toBeLessThanOrEqual(billedCalls);
  expect(ledger.costUsd).toBeGreaterThanOrEqual(billedUsd - 1e-12);
  if (ledger.unsettled === 0) expect(ledger.costUsd).toBeCloseTo(billedUsd, 12);
  expect((await h.repos.jobs.get(jobId))!.spendUsd).toBeCloseTo(ledger.costUsd, 12);
  const stepsKept = rows.reduce((sum, row) => sum + (row.steps as unknown[]).length, 0);
  expect(ledger.calls).toBeGreaterThan(stepsKept);

  // The same job, same seed, on an in-process worker that never crashes.
  const reference = jobRequest({ config });
  const { jobId: referenceId } = await startTrainingJob(h.client, h.repos, reference, { taskQueue: h.taskQueue });
  const expected: TrainingJobResult = await h.run(h.client.workflow.getHandle(referenceId).result());
  expect(result.policy).toEqual(expected.policy);
  expect(result.success_rates).toEqual(expected.success_rates);
}, 180_000);
