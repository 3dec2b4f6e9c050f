/**
 * training.resume through the JSON-RPC facade: a job cancelled after its first checkpoint is
 * resumed from that checkpoint as run 2 of the same job (same workflow id), which trains from the
 * next iteration on with the checkpoint's policy and completes; both runs' trajectories stay
 * exportable by run. And the refusals: a running job, an unknown checkpoint, another tenant's
 * job, a job with no stored input, a checkpoint with nothing left after it.
 */
import { FlowApiError } from '../../api/client/flowClient';
import { CheckpointStore } from '../../adapters/checkpoints/checkpointStore';
import { blobStoreFromEnv } from '../../adapters/checkpoints/blobStore';
import { renderSystemPrompt, type Policy } from '../../training/policy';
import { TrainingJobInputSchema } from '../../training/jobInput';
import { startHarness, type Harness } from '../support/harness';
import { rpcError, startApiHarness, tinyJob, waitFor, type ApiHarness } from '../support/apiHarness';

let h: Harness;
let api: ApiHarness;
/** The system prompt of every agent call the model server answered, in order. */
const agentPrompts: { at: number; system: string | null }[] = [];

beforeAll(async () => {
  h = await startHarness({
    model: {
      // Slow enough that the job is cancelled well before its last iteration.
      latencyMs: 50,
      respond: (body) => {
        if (body.tools?.length) agentPrompts.push({ at: Date.now(), system: body.messages.find((m) => m.role === 'system')?.content ?? null });
        return undefined;
      },
    },
  });
  api = await startApiHarness({ harness: h });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

test('a job cancelled after its first checkpoint resumes from it as run 2 and completes', async () => {
  const client = await api.client();
  // Seed 1 learns at iteration 1 (seed 7, tinyJob's, does not): the checkpoint's prompt is not the base prompt.
  const job = tinyJob('resume-agent');
  const started = await client.startGrpo({ ...job, config: { ...job.config, seed: 1 } });
  const jobId = started.job_id;
  const stored = (await h.repos.jobs.get(jobId))!.input;
  // The validated input is stored, without continue-as-new state.
  expect(TrainingJobInputSchema.parse(stored)).toMatchObject({ job_id: jobId, run: 1, config: { iterations: 4, batch_size: 1, group_size: 4 } });
  expect(stored).not.toHaveProperty('carry_over');

  const worker = await api.startWorker();
  let checkpoint: { run: number; iteration: number };
  try {
    const first = await waitFor(() => h.repos.progress.checkpoints(jobId), (rows) => rows.length > 0, 60_000, 20);
    checkpoint = { run: first[0].run, iteration: first[0].iteration };
    expect(checkpoint).toEqual({ run: 1, iteration: 1 });

    // Still running: refused, and nothing is started.
    const running = await rpcError(client.resume(jobId, checkpoint));
    expect(running).toMatchObject({ code: -32023, reason: 'job_still_running' });
    expect(running.message).toMatch(/only a job that has ended can be resumed/);

    await client.cancel(jobId, 'resume test').catch((error: FlowApiError) => {
      // It may have finished all four iterations first; a completed job can be resumed too.
      if (error.code !== -32021) throw error;
    });
    const ended = await waitFor(() => client.getStatus(jobId), (s) => s.status === 'cancelled' || s.status === 'completed');
    expect(ended.run).toBe(1);

    // The policy the checkpoint holds, read back through the checkpoint store.
    const payload = await new CheckpointStore(h.repos.progress, blobStoreFromEnv()).load(jobId, checkpoint);
    const checkpointPrompt = renderSystemPrompt(payload.policy as unknown as Policy);
    // The checkpoint learned something, so a resume that started from the base policy would show.
    expect((payload.policy as unknown as Policy).lessons.length).toBeGreaterThan(0);

    const unknown = await rpcError(client.resume(jobId, { run: 1, iteration: 99 }));
    expect(unknown).toMatchObject({ code: -32024, reason: 'no_checkpoint' });
    expect(unknown.message).toContain('has no checkpoint at run 1, iteration 99; it has 1:1');
    expect(await rpcError(client.resume(jobId, { run: 2, iteration: 1 }))).toMatchObject({ code: -32024 });
    const otherTenant = await api.client({ tenant: 'tenant-b' });
    expect(await rpcError(otherTenant.resume(jobId, checkpoint))).toMatchObject({ code: -32020, reason: 'job_not_found' });
    expect(await rpcError(client.resume(jobId, checkpoint, { budgetUsd: ended.spend_usd / 2 }))).toMatchObject({ code: -32602 });

    const resumedAt = Date.now();
    // With a new budget, which the row (status, the spend ledger's admission) says from the new run on.
    const resumed = await client.resume(jobId, checkpoint, { budgetUsd: 25 });
    expect(resumed).toEqual({ job_id: jobId, run: 2, from: checkpoint, status: expect.stringMatching(/^(queued|running)$/) });
    // A second resume while run 2 runs is refused.
    expect(await rpcError(client.resume(jobId, 'latest'))).toMatchObject({ code: -32023 });

    const done = await waitFor(() => client.getStatus(jobId), (s) => s.status === 'completed' && s.run === 2, 90_000);
    expect(done).toMatchObject({ run: 2, iteration: 4, iterations: 4, reason: null, budget_alerts: [], budget_usd: 25 });
    // Spend of run 1 still counts.
    expect(done.spend_usd).toBeGreaterThan(ended.spend_usd);

    // Run 2 started from the checkpoint's policy: its first agent calls carry that system prompt.
    const run2Prompts = agentPrompts.filter((p) => p.at >= resumedAt);
    expect(run2Prompts.length).toBeGreaterThanOrEqual(4);
    expect(run2Prompts.slice(0, 4).map((p) => p.system)).toEqual(Array(4).fill(checkpointPrompt));

    // Same workflow id; the new execution is a second one.
    const executions = async () => {
      const names: string[] = [];
      for await (const execution of h.client.workflow.list({ query: `WorkflowId = "${jobId}"` })) names.push(execution.status.name);
      return names.sort();
    };
    // Visibility is eventually consistent.
    const expected = [ended.status === 'cancelled' ? 'CANCELLED' : 'COMPLETED', 'COMPLETED'].sort();
    expect(await waitFor(executions, (names) => JSON.stringify(names) === JSON.stringify(expected), 10_000)).toEqual(expected);
  } finally {
    await worker.stop();
  }

  // Run 2 trained iterations k+1..4; both runs' trajectories are exportable by run.
  const run2 = await client.exportTrajectories({ job_id: jobId, run: 2, limit: 1000 });
  expect(run2.total).toBe((4 - checkpoint.iteration) * 4);
  expect(Math.min(...run2.trajectories!.map((t) => t.iteration))).toBe(checkpoint.iteration + 1);
  expect(run2.trajectories!.every((t) => t.run === 2)).toBe(true);
  const run1 = await client.exportTrajectories({ job_id: jobId, run: 1, limit: 1000 });
  expect(run1.total).toBeGreaterThanOrEqual(checkpoint.iteration * 4);
  expect(run1.trajectories!.every((t) => t.run === 1)).toBe(true);

  // From its last checkpoint there is nothing left to train.
  const nothingLeft = await rpcError(client.resume(jobId, 'latest'));
  expect(nothingLeft.code).toBe(-32602);
  expect(nothingLeft.message).toMatch(/last iteration/);
}, 180_000);

test('a job whose workflow was terminated (its row still says running) can be resumed, once', async () => {
  const client = await api.client();
  const { job_id: jobId } = await client.startGrpo(tinyJob('resume-terminated', 3));
  const worker = await api.startWorker();
  try {
    await waitFor(() => h.repos.progress.checkpoints(jobId), (rows) => rows.length > 0, 60_000, 20);
    await h.client.workflow.getHandle(jobId).terminate('operator pulled the plug');
    expect((await client.getStatus(jobId)).status).toMatch(/^(running|paused)$/);
    // Two resumes at once: one starts run 2, the other is told the job is running again.
    const outcomes = await Promise.allSettled([client.resume(jobId, 'best'), client.resume(jobId, 'latest')]);
    const resumed = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as FlowApiError] : []));
    expect(resumed).toEqual([expect.objectContaining({ job_id: jobId, run: 2 })]);
    expect(refused).toEqual([expect.objectContaining({ code: -32023 })]);
    const done = await waitFor(() => client.getStatus(jobId), (s) => s.status === 'completed' && s.run === 2, 90_000);
    expect(done.iteration).toBe(3);
  } finally {
    await worker.stop();
  }
}, 180_000);

test('a job with no stored input cannot be resumed', async () => {
  const jobId = `job-legacy-${Date.now()}`;
  await h.repos.jobs.create({ id: jobId, agentId: 'legacy', tenantId: 'tenant-a', ownerId: 'alice', priority: 'P1', config: { iterations: 2 }, budgetUsd: 10 });
  await h.repos.jobs.finish(jobId, 'cancelled', 'before inputs were stored');
  const error = await rpcError((await api.client()).resume(jobId));
  expect(error).toMatchObject({ code: -32025, reason: 'job_not_resumable' });
  expect(error.message).toMatch(/no stored input/);
});
