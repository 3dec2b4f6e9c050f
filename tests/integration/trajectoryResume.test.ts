/**
 * A retried trajectory goes on from its last heartbeated step instead of paying for every step
 * again: a worker is killed while a trajectory has heartbeated a resume point of at least one
 * step; the retried attempt makes only the calls after it (the spend ledger shows each
 * attempt's calls), and the job's trajectories equal, step for step, those of the same job run
 * without a crash.
 */
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { startTrainingJob } from '../../api/trainingJobs';
import type { TrajectoryStep } from '../../training/trajectory';
import type { TrainingJobResult } from '../../workflows/trainingJobState';
import { jobRequest, startHarness, type Harness } from '../support/harness';
import { stopProcess, suiteWorkerProcesses } from '../support/workerProcess';

const { PendingActivityState } = temporal.api.enums.v1;
// Slow calls: a trajectory lasts seconds, so the worker's heartbeat (every 2 s at most) carries a
// resume point with steps before the trajectory ends.
const MODEL_LATENCY_MS = 700;

let h: Harness;
const workers = suiteWorkerProcesses(() => h.model);

beforeAll(async () => {
  h = await startHarness({ model: { latencyMs: MODEL_LATENCY_MS } });
});
afterAll(async () => {
  await workers.killAll();
  await h?.close();
});

function decodeJson(payloads: { data?: Uint8Array | null }[] | null | undefined): unknown {
  const data = payloads?.[0]?.data;
  return data ? JSON.parse(Buffer.from(data).toString('utf8')) : undefined;
}

/** A step as the model and tools produced it: without the wall-clock times. */
const content = (step: TrajectoryStep) => {
  const { started_at: _s, ended_at: _e, ...rest } = step;
  return rest;
};

test('a trajectory retried after a worker SIGKILL resumes from its heartbeat and equals an undisturbed one', async () => {
  const taskQueue = `resume-${randomUUID()}`;
  const config = { iterations: 1, batch_size: 1, group_size: 4, max_parallel: 4, seed: 17, max_steps: 6 };
  const request = jobRequest({ config });
  const first = await workers.start(taskQueue);
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue });
  const handle = h.client.workflow.getHandle(jobId);

  // Kill once a running trajectory's heartbeat holds a resume point with a step.
  type Resumable = { activityId: string; resumed: number };
  let target: Resumable | undefined;
  for (let i = 0; i < 600 && !target; i++) {
    for (const activity of (await handle.describe()).raw.pendingActivities ?? []) {
      const details = decodeJson(activity.heartbeatDetails?.payloads) as { resume?: { steps: unknown[] } } | undefined;
      const started = [PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, 'PENDING_ACTIVITY_STATE_STARTED'].includes(activity.state as never);
      if (activity.activityType?.name === 'runTrajectory' && started && (details?.resume?.steps.length ?? 0) >= 1) {
        target = { activityId: activity.activityId!, resumed: details!.resume!.steps.length };
        break;
      }
    }
    if (!target) await new Promise((r) => setTimeout(r, 50));
  }
  expect(target).toBeDefined();
  await stopProcess(first, 'SIGKILL');
  // What the server holds after the kill is what the retry gets: nothing more can arrive. The
  // trajectory seen may have finished between describe and the kill (its last heartbeat came with
  // its last step): then another one with a resume point is the one retried.
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  const hasResumePoint = (activity: (typeof pending)[number]) =>
    activity.activityType?.name === 'runTrajectory' && ((decodeJson(activity.heartbeatDetails?.payloads) as { resume?: { steps: unknown[] } } | undefined)?.resume?.steps.length ?? 0) >= 1;
  const atKill = pending.find((a) => a.activityId === target!.activityId) ?? pending.find(hasResumePoint);
  if (!atKill) throw new Error('every trajectory had finished when the worker was killed: nothing was left to resume');
  target = { activityId: atKill.activityId!, resumed: 0 };
  const resumePoint = decodeJson(atKill.heartbeatDetails?.payloads) as { resume: { steps: TrajectoryStep[] } };
  const resumedSteps = resumePoint.resume.steps.length;
  expect(resumedSteps).toBeGreaterThanOrEqual(1);

  const second = await workers.start(taskQueue);
  const result: TrainingJobResult = await handle.result();
  expect(await stopProcess(second)).toBe(0);
  expect(result.status).toBe('completed');

  // Which trajectory the killed activity was: its scheduled input names the sample.
  const history = await handle.fetchHistory();
  const scheduled = (history.events ?? []).find((e) => e.activityTaskScheduledEventAttributes?.activityId === target!.activityId)!;
  const input = decodeJson(scheduled.activityTaskScheduledEventAttributes!.input?.payloads) as { sample_index: number };
  const rows = await h.repos.trajectories.listForJob(jobId);
  expect(rows).toHaveLength(4);
  const retried = rows.find((row) => row.sampleIndex === input.sample_index)!;
  const retriedSteps = retried.steps as unknown as TrajectoryStep[];
  // The resumed steps are kept as they were taken...
  expect(retriedSteps.slice(0, resumedSteps)).toEqual(resumePoint.resume.steps);
  // ...and the retry paid only for the steps after them (the ledger counts each attempt's calls).
  const { runId } = await handle.describe();
  const calls = await h.prisma.llmCall.findMany({ where: { activity: `${runId}/${target!.activityId}` } });
  const retryCalls = calls.filter((call) => call.attempt > 1);
  expect(retryCalls).toHaveLength(retriedSteps.length - resumedSteps);

  // The same job without a crash, on an in-process worker: the same trajectories, step for step.
  const reference = jobRequest({ config });
  const { jobId: referenceId } = await startTrainingJob(h.client, h.repos, reference, { taskQueue: h.taskQueue });
  const expected: TrainingJobResult = await h.run(h.client.workflow.getHandle(referenceId).result());
  expect(result.policy).toEqual(expected.policy);
  const referenceRows = await h.repos.trajectories.listForJob(referenceId);
  const bySample = (list: typeof rows) =>
    [...list].sort((a, b) => a.sampleIndex - b.sampleIndex).map((row) => ({ success: row.success, steps: (row.steps as unknown as TrajectoryStep[]).map(content) }));
  expect(bySample(rows)).toEqual(bySample(referenceRows));
}, 240_000);
