/**
 * The full life of a job driven only through the JSON-RPC facade, with the typed client and
 * with raw HTTP: start → status while running → list → export; and start → cancel → cancelled.
 */
import { simulatedTaskSet } from '../../training/simulation/environment';
import { startApiHarness, type ApiHarness, waitFor } from '../support/apiHarness';

let api: ApiHarness;
beforeAll(async () => {
  // Every get_status reads the row: the first test watches for a moment of the job ("running",
  // phase "collecting") that lasts a few hundred milliseconds on a fast machine, and the API's
  // 250 ms copy of the row (api/jobStatusCache.ts) could show the moments before and after it only
  // (seen on the Temporal cluster: the job completed in 1.7 s and the poll never saw it collecting).
  api = await startApiHarness({ statusCacheTtlMs: 0 });
});
afterAll(async () => {
  await api?.close();
});

const queries = simulatedTaskSet({ queriesPerFamily: 1, seed: 5 }).slice(0, 2);


test('start → status while running → list → complete → export, through the typed client', async () => {
  const client = await api.client();
  const started = await client.startGrpo({
    agent_id: 'api-agent',
    training_queries: queries,
    // Given explicitly, so both training queries are trained on (none is held out).
    evaluation_queries: simulatedTaskSet({ queriesPerFamily: 1, seed: 5 }).slice(2, 3),
    config: { iterations: 2, batch_size: 2, group_size: 8, seed: 4, checkpoint_interval: 1 },
  });
  expect(started).toEqual({ job_id: expect.stringMatching(/^job-/), status: 'queued', created: true });
  const queued = await client.getStatus(started.job_id);
  expect(queued).toMatchObject({ status: 'queued', iteration: 0, iterations: 2, tenant_id: 'tenant-a', owner_id: 'alice', best_checkpoint: null });

  const worker = await api.startWorker();
  try {
    const running = await waitFor(() => client.getStatus(started.job_id), (s) => s.status === 'running' && s.phase === 'collecting');
    expect(running.spend_usd).toBeGreaterThanOrEqual(0);
    const listed = await client.listJobs({ agent_id: 'api-agent', status: 'running' });
    // Still running after the list was read, so running when it was read (it may have finished in between).
    if ((await client.getStatus(started.job_id)).status === 'running') expect(listed.jobs.map((j) => j.job_id)).toContain(started.job_id);
    const done = await waitFor(() => client.getStatus(started.job_id), (s) => s.status === 'completed');
    expect(done.iteration).toBe(2);
    expect(done.last_metrics).toMatchObject({ trajectories: 16 });
    expect(done.spend_usd).toBeGreaterThan(0);
    expect(done.budget_used_ratio).toBeCloseTo(done.spend_usd / done.budget_usd, 10);
    // Every call settled: what the budget is held against is what was spent.
    expect(done.committed_usd).toBeCloseTo(done.spend_usd, 9);
    expect((await client.listJobs({ agent_id: 'api-agent', status: 'completed' })).jobs.find((j) => j.job_id === started.job_id)).toMatchObject({ committed_usd: done.committed_usd });
    expect(done.best_checkpoint).toMatchObject({ run: 1 });
    expect(done.finished_at).not.toBeNull();
  } finally {
    await worker.stop();
  }

  const all = await client.exportTrajectories({ job_id: started.job_id, limit: 100 });
  expect(all.total).toBe(32);
  expect(all.trajectories).toHaveLength(32);
  const first = all.trajectories![0];
  expect(first.steps.length).toBeGreaterThan(0);
  expect(first).toMatchObject({ reward: expect.any(Number), advantage: expect.any(Number), prompt_tokens: expect.any(Number), cost_usd: expect.any(Number) });
  const successes = all.trajectories!.filter((t) => t.success).length;
  expect(successes).toBeGreaterThan(0); // else the success-only and chat exports below would check nothing
  const onlySuccess = await client.exportTrajectories({ job_id: started.job_id, success_only: true, limit: 100 });
  expect(onlySuccess.total).toBe(successes);
  const secondIteration = await client.exportTrajectories({ job_id: started.job_id, iteration_from: 1, iteration_to: 1 });
  expect(secondIteration.total).toBe(16);
  expect(secondIteration.trajectories!.every((t) => t.iteration === 1)).toBe(true);
  const paged = await client.exportTrajectories({ job_id: started.job_id, limit: 10, offset: 30 });
  expect(paged).toMatchObject({ total: 32, offset: 30, count: 2 });
  const minReward = Math.max(...all.trajectories!.map((t) => t.reward!));
  const best = await client.exportTrajectories({ job_id: started.job_id, min_reward: minReward });
  expect(best.trajectories!.every((t) => t.reward! >= minReward)).toBe(true);
  // Exactly the trajectories that reach it: the best ones are not dropped at the boundary.
  expect(best.total).toBe(all.trajectories!.filter((t) => t.reward! >= minReward).length);
  expect(best.total).toBeGreaterThan(0);

  const chat = await client.exportTrajectories({ job_id: started.job_id, format: 'jsonl_chat', limit: 100 });
  expect(chat.count).toBe(successes);
  for (const line of chat.lines!) {
    const { messages } = JSON.parse(line);
    expect(messages[0].role).toBe('user');
    expect(messages[messages.length - 1].role).toBe('assistant');
  }
});

test('start → cancel through raw HTTP; the job ends cancelled with the reason recorded', async () => {
  const start = await api.post({
    jsonrpc: '2.0',
    id: 'start-1',
    method: 'training.start_grpo',
    params: { agent_id: 'api-agent', task_set: 'simulated-small', config: { iterations: 50, batch_size: 2, group_size: 8 } },
  });
  expect(start.status).toBe(200);
  expect(start.body).toMatchObject({ jsonrpc: '2.0', id: 'start-1', result: { status: 'queued', created: true } });
  const jobId: string = start.body.result.job_id;
  const worker = await api.startWorker();
  try {
    const status = () => api.post({ jsonrpc: '2.0', id: 2, method: 'training.get_status', params: { job_id: jobId } });
    await waitFor(status, (r) => r.body.result?.status === 'running');
    const cancel = await api.post({ jsonrpc: '2.0', id: 3, method: 'training.cancel', params: { job_id: jobId, reason: 'enough for today' } });
    expect(cancel.body).toEqual({ jsonrpc: '2.0', id: 3, result: { job_id: jobId, status: 'cancelling' } });
    const ended = await waitFor(status, (r) => r.body.result?.status === 'cancelled');
    expect(ended.body.result.reason).toContain('enough for today');
    const again = await api.post({ jsonrpc: '2.0', id: 4, method: 'training.cancel', params: { job_id: jobId } });
    expect(again.body.error).toMatchObject({ code: -32021, data: { reason: 'job_already_finished', status: 'cancelled' } });
    const listed = await api.post({ jsonrpc: '2.0', id: 5, method: 'training.list_jobs', params: { agent_id: 'api-agent', status: 'cancelled' } });
    expect(listed.body.result.jobs.map((j: { job_id: string }) => j.job_id)).toContain(jobId);
    // What the cancelled job wrote stays exportable.
    const exported = await api.post({ jsonrpc: '2.0', id: 6, method: 'training.export_trajectories', params: { job_id: jobId, limit: 10_000 } });
    const written = await api.h.repos.trajectories.countForJob(jobId);
    expect(exported.body.result).toMatchObject({ total: written, count: written });
    const discovered = await api.post({ jsonrpc: '2.0', id: 7, method: 'rpc.discover' });
    expect(discovered.body.result.openrpc).toBe('1.3.2');
  } finally {
    await worker.stop();
  }
});
