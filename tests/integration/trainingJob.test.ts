/**
 * The vertical slice on real servers: a training job created through api/trainingJobs.ts
 * runs as a Temporal workflow on the dev server, writes to PostgreSQL and completes.
 */
import { blobStoreFromEnv } from '../../adapters/checkpoints/blobStore';
import { CheckpointStore } from '../../adapters/checkpoints/checkpointStore';
import { TrajectoryStepSchema } from '../../training/trajectory';
import { PolicySchema } from '../../training/policy';
import { startTrainingJob } from '../../api/trainingJobs';
import { statusQuery, trainingJob } from '../../workflows/trainingJob';
import { jobRequest, startHarness, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

test('create → execute → complete: a 2-iteration job records 8 complete trajectories per group and ends completed', async () => {
  const request = jobRequest({ config: { iterations: 2, batch_size: 2, group_size: 8, checkpoint_interval: 10 } });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  expect((await h.repos.jobs.get(jobId))?.status).toBe('queued');

  const result = await h.run(h.client.workflow.getHandle(jobId).result());
  expect(result.status).toBe('completed');
  expect(result.iterations).toBe(2);
  expect(result.trajectories).toBe(2 * 2 * 8);

  const job = await h.repos.jobs.get(jobId);
  expect(job).toMatchObject({ status: 'completed', iteration: 2, agentId: 'support-agent', tenantId: 'tenant-a', ownerId: 'alice' });
  expect(job?.finishedAt).not.toBeNull();
  expect(job?.spendUsd).toBeCloseTo(result.spend_usd, 10);
  expect(job!.spendUsd).toBeGreaterThan(0);

  const rows = await h.repos.trajectories.listForJob(jobId);
  expect(rows).toHaveLength(32);
  const groups = new Map<string, typeof rows>();
  for (const row of rows) groups.set(`${row.iteration}/${row.queryIndex}`, [...(groups.get(`${row.iteration}/${row.queryIndex}`) ?? []), row]);
  expect(groups.size).toBe(4);
  for (const group of groups.values()) {
    expect(group.map((r) => r.sampleIndex).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Group-relative advantages sum to zero within a group.
    expect(group.reduce((sum, r) => sum + (r.advantage ?? NaN), 0)).toBeCloseTo(0, 9);
  }
  for (const row of rows) {
    expect(row.reward).not.toBeNull();
    expect(row.reward!).toBeGreaterThanOrEqual(0);
    expect(row.reward!).toBeLessThanOrEqual(1);
    const steps = TrajectoryStepSchema.array().min(1).parse(row.steps);
    // Complete state: what was seen, done and returned, with times, tokens and cost.
    for (const step of steps) {
      expect(step.state.length).toBeGreaterThan(0);
      expect(Date.parse(step.ended_at)).toBeGreaterThanOrEqual(Date.parse(step.started_at));
      expect(step.usage.prompt_tokens).toBeGreaterThan(0);
      expect(step.cost_usd).toBeGreaterThan(0);
      expect(step.logprob).not.toBeNull();
      if (step.action.type === 'tool_call') expect(step.result).not.toBeNull();
    }
    expect(row.promptTokens).toBe(steps.reduce((s, step) => s + step.usage.prompt_tokens, 0));
    expect(row.logProb).toBeCloseTo(steps.reduce((s, step) => s + (step.logprob ?? 0), 0), 9);
  }

  const iterations = await h.repos.progress.iterations(jobId);
  expect(iterations.map((i) => i.iteration)).toEqual([1, 2]);
  // The loss is −mean(log_prob × advantage) over the iteration's trajectories, recomputed from the rows.
  for (const it of iterations) {
    const its = rows.filter((r) => r.iteration === it.iteration);
    const expectedLoss = its.reduce((s, r) => s - r.logProb! * r.advantage!, 0) / its.length;
    expect((it.metrics as { loss: number }).loss).toBeCloseTo(expectedLoss, 9);
    expect((it.metrics as { success_rate: number }).success_rate).toBeCloseTo(its.filter((r) => r.success).length / its.length, 9);
  }
  // The payload is a blob in the store the worker used (the harness's worker takes it from the environment).
  const store = new CheckpointStore(h.repos.progress, blobStoreFromEnv());
  expect((await store.list(jobId)).map((c) => c.iteration)).toEqual([2]);
  const latest = await store.load(jobId, 'latest');
  expect(latest.iteration).toBe(2);
  expect(PolicySchema.parse(latest.policy)).toEqual(result.policy);
});

test('the status query reports progress while the job runs', async () => {
  h.model.setLatency(50);
  const request = jobRequest({ config: { iterations: 3, batch_size: 1, group_size: 4 } });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  const handle = h.client.workflow.getHandle(jobId);
  const seen: number[] = [];
  const final = await h.run(async () => {
    for (;;) {
      const status = await handle.query(statusQuery);
      expect(status.job_id).toBe(jobId);
      expect(status.iterations).toBe(3);
      seen.push(status.iteration);
      if (status.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await handle.result();
    // A finished workflow still answers queries while a worker can replay it.
    return handle.query(statusQuery);
  });
  h.model.setLatency(0);
  expect(seen[seen.length - 1]).toBe(3);
  expect(new Set(seen).size).toBeGreaterThan(1);
  expect(final).toMatchObject({ status: 'completed', iteration: 3, trajectories: 12, phase: 'finished' });
  expect(final.success_rates).toHaveLength(3);
});

test('a workflow started with invalid input fails at once with a message naming the field', async () => {
  const handle = await h.client.workflow.start(trainingJob, {
    taskQueue: h.taskQueue,
    workflowId: `bad-${Date.now()}`,
    args: [{ ...jobRequest(), config: { group_size: 1 } }],
  });
  await expect(h.run(handle.result())).rejects.toMatchObject({
    cause: expect.objectContaining({ message: expect.stringMatching(/config\.group_size: .*>=2 \(got 1\)/) }),
  });
});
