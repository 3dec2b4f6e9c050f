/**
 * Failures and cancellation on the real dev server: a request the provider refuses and a hung model call
 * become failed trajectories while the job goes on; a cancelled job ends cancelled in
 * Temporal and in the database, and writes nothing afterwards.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { cancelTrainingJob, startTrainingJob } from '../../api/trainingJobs';
import type { Task } from '../../training/task';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { FLOW_JOB_STATUS } from '../../workflows/searchAttributes';
import { jobRequest, startHarness, type Harness } from '../support/harness';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const userPrompt = (body: { messages: { role: string; content: string | null }[] }) => body.messages.find((m) => m.role === 'user')?.content ?? '';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    model: {
      respond: (body) => {
        if (userPrompt(body).includes('PROVIDER-ERROR')) return { kind: 'http_error', status: 400, body: '{"error":{"message":"bad request"}}' };
        if (userPrompt(body).includes('NEVER-ANSWERS')) return { kind: 'hang' };
        return undefined;
      },
    },
  });
});
afterAll(async () => {
  await h.close();
});

test('an agent run that throws and one that times out become failed trajectories, and the job completes', async () => {
  const [normal] = simulatedTaskSet({ queriesPerFamily: 1, seed: 5 });
  const throws: Task = { ...normal, id: 'throws', prompt: `${normal.prompt} PROVIDER-ERROR` };
  const hangs: Task = { ...normal, id: 'hangs', prompt: `${normal.prompt} NEVER-ANSWERS` };
  const request = jobRequest({
    training_queries: [normal, throws, hangs],
    // Evaluated on the normal query, so none of the three is held out of training.
    evaluation_queries: [normal],
    config: { iterations: 1, batch_size: 3, group_size: 4, trajectory_timeout_seconds: 2 },
  });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  const result = await h.run(h.client.workflow.getHandle(jobId).result());

  expect(result.status).toBe('completed');
  const rows = await h.repos.trajectories.listForJob(jobId);
  expect(rows).toHaveLength(12);
  const byQuery = (id: string) => rows.filter((r) => r.queryId === id);
  // A group of 4 per query (else the loops below could check nothing).
  for (const id of ['throws', 'hangs', normal.id]) expect({ id, rows: byQuery(id).length }).toEqual({ id, rows: 4 });
  for (const row of byQuery('throws')) {
    expect(row.success).toBe(false);
    expect(row.error).toMatch(/^agent error: .*HTTP 400/);
    expect(row.reward).toBe(0);
    // A group that all failed has std 0: zero advantages, never NaN.
    expect(row.advantage).toBe(0);
  }
  for (const row of byQuery('hangs')) {
    expect(row.success).toBe(false);
    expect(row.error).toBe('timed out after 2s');
    expect(row.endedAt.getTime() - row.startedAt.getTime()).toBeGreaterThanOrEqual(1900);
  }
  expect(byQuery(normal.id).every((row) => row.error === null)).toBe(true);
  expect((await h.repos.jobs.get(jobId))?.status).toBe('completed');
});

test('cancel a running job: Temporal shows it cancelled, the row says cancelled with the reason, no further trajectories are written', async () => {
  h.model.setLatency(150);
  const request = jobRequest({ config: { iterations: 50, batch_size: 2, group_size: 8 } });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  const handle = h.client.workflow.getHandle(jobId);

  const outcome = await h.run(async () => {
    while ((await h.repos.trajectories.countForJob(jobId)) < 3) await sleep(50);
    await cancelTrainingJob(h.client, jobId, 'operator stopped it');
    return handle.result().then(
      () => 'completed',
      (error: unknown) => error,
    );
  });
  h.model.setLatency(0);

  expect(outcome).toBeInstanceOf(WorkflowFailedError);
  expect((outcome as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  const description = await handle.describe();
  expect(description.status.name).toBe('CANCELLED');
  expect(description.typedSearchAttributes.get(FLOW_JOB_STATUS)).toBe('cancelled');

  const job = await h.repos.jobs.get(jobId);
  expect(job).toMatchObject({ status: 'cancelled', reason: 'operator stopped it' });
  const written = await h.repos.trajectories.listForJob(jobId);
  expect(written.length).toBeGreaterThan(0);
  expect(written.length).toBeLessThan(50 * 2 * 8);
  for (const row of written) expect(row.createdAt.getTime()).toBeLessThanOrEqual(job!.finishedAt!.getTime());
  await sleep(1500);
  expect(await h.repos.trajectories.countForJob(jobId)).toBe(written.length);
});

test('a reward strategy the worker does not know fails the job with a reason naming it', async () => {
  const request = jobRequest({ config: { iterations: 1, reward_strategy: 'no-such-reward' } });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  const failure = await h.run(h.client.workflow.getHandle(jobId).result().catch((e: unknown) => e));
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  const row = (await h.repos.jobs.get(jobId))!;
  expect(row.status).toBe('failed');
  expect(row.reason).toMatch(/no-such-reward/);
  expect(row.finishedAt).not.toBeNull();
});
