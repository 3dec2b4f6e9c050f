/** The repository layer against real PostgreSQL (FLOW-002). */
import { randomUUID } from 'node:crypto';
import { createPrismaClient, createRepositories, type PrismaClient, type Repositories } from '../../adapters/db';
import type { Trajectory } from '../../training/trajectory';
import { requireEnv } from '../support/harness';

let prisma: PrismaClient;
let repos: Repositories;
beforeAll(() => {
  prisma = createPrismaClient(requireEnv('DATABASE_URL'));
  repos = createRepositories(prisma);
});
afterAll(async () => {
  await prisma.$disconnect();
});

const newJob = (overrides: Partial<Parameters<Repositories['jobs']['create']>[0]> = {}) => ({
  id: `repo-${randomUUID()}`,
  agentId: 'agent-r',
  tenantId: 'tenant-r',
  ownerId: 'bob',
  priority: 'P1',
  config: { group_size: 8 },
  budgetUsd: 5,
  ...overrides,
});

function trajectory(jobId: string, sample: number, overrides: Partial<Trajectory> = {}): Trajectory {
  const now = new Date().toISOString();
  return {
    job_id: jobId, run: 1, iteration: 1, query_index: 0, sample_index: sample, query_id: 'q0', agent_id: 'agent-r',
    steps: [{ index: 0, state: 'task', action: { type: 'final_answer', content: '42' }, tool_calls: [], result: null, started_at: now, ended_at: now, usage: { prompt_tokens: 10, completion_tokens: 2 }, cost_usd: 0.001, logprob: -0.5, error: null }],
    final_answer: '42', success: sample % 2 === 0, verified: false, error: null,
    usage: { prompt_tokens: 10, completion_tokens: 2 }, cost_usd: 0.001, log_prob: -0.5, started_at: now, ended_at: now,
    ...overrides,
  };
}

test('jobs: create queued, start a run (idempotently), record progress, finish with a reason', async () => {
  const job = newJob();
  const created = await repos.jobs.create(job);
  expect(created).toMatchObject({ status: 'queued', iteration: 0, spendUsd: 0, currentRun: 1 });
  await expect(repos.jobs.create(job)).rejects.toThrow();

  const running = await repos.jobs.startRun(job, 1);
  const again = await repos.jobs.startRun(job, 1);
  expect(running.status).toBe('running');
  expect(again.startedAt).toEqual(running.startedAt);

  await repos.jobs.recordProgress(job.id, { iteration: 3, phase: 'collecting', spendUsd: 1.25, lastMetrics: { success_rate: 0.5 } });
  const finished = await repos.jobs.finish(job.id, 'cancelled', 'stopped by test');
  expect(finished).toMatchObject({ status: 'cancelled', reason: 'stopped by test', iteration: 3, spendUsd: 1.25, phase: null, lastMetrics: { success_rate: 0.5 } });
  expect(finished.finishedAt).not.toBeNull();
});

test('jobs: a progress report writes its columns in one statement and returns the spend before it', async () => {
  const job = newJob();
  await repos.jobs.create({ ...job, input: { training_queries: Array.from({ length: 50 }, (_, i) => ({ prompt: `q${i}` })) } });
  await repos.jobs.startRun(job, 1);
  const before = (await repos.jobs.get(job.id))!;
  const first = await repos.jobs.recordProgress(job.id, { iteration: 1, phase: 'iteration_done', spendUsd: 0.5, lastMetrics: { success_rate: 0.25 } });
  // What the spend metric needs, nothing more (no `input`).
  expect(first).toEqual({ id: job.id, agentId: 'agent-r', priority: 'P1', spendUsd: 0.5, budgetUsd: 5, spentBeforeUsd: 0 });
  const second = await repos.jobs.recordProgress(job.id, { iteration: 1, phase: 'collecting', spendUsd: 0.75 });
  expect(second.spentBeforeUsd).toBe(0.5);
  const row = (await repos.jobs.get(job.id))!;
  // A report without metrics keeps the last iteration's; the columns no report owns stay as they were.
  expect(row).toMatchObject({ iteration: 1, phase: 'collecting', spendUsd: 0.75, lastMetrics: { success_rate: 0.25 }, status: 'running', budgetUsd: 5, input: before.input });
  expect(row.updatedAt.getTime()).toBeGreaterThanOrEqual(before.updatedAt.getTime());
  await expect(repos.jobs.recordProgress(`repo-missing-${randomUUID()}`, { iteration: 1, phase: 'collecting', spendUsd: 1 })).rejects.toThrow(/no training_jobs row/);
});

test('jobs: concurrent progress reports each count the spend the other had not', async () => {
  const job = newJob();
  await repos.jobs.create(job);
  const spends = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
  const reports = await Promise.all(spends.map((spendUsd) => repos.jobs.recordProgress(job.id, { iteration: 1, phase: 'collecting', spendUsd })));
  // Serialised by the row lock: every report's "before" is some other report's value (or 0), each used once.
  const befores = reports.map((r) => r.spentBeforeUsd);
  const afters = [0, ...reports.map((r) => r.spendUsd)].sort((a, b) => a - b);
  const last = (await repos.jobs.get(job.id))!.spendUsd;
  expect([...befores, last].sort((a, b) => a - b)).toEqual(afters);
});

test('jobs: the API moves a row only between runs, by conditional updates', async () => {
  const job = newJob();
  await repos.jobs.create(job);
  await repos.jobs.startRun(job, 1);
  // A row a run has taken over is not ended as never started, nor re-queued for a run it has already passed.
  expect(await repos.jobs.finishIfQueued(job.id, 'failed', 'could not start the workflow: test')).toBe(false);
  await repos.jobs.markResumed(job.id, 1, 0);
  expect(await repos.jobs.get(job.id)).toMatchObject({ status: 'running', currentRun: 1, reason: null });
  await repos.jobs.finish(job.id, 'cancelled', 'stopped by test');
  await repos.jobs.markResumed(job.id, 2, 1);
  expect(await repos.jobs.get(job.id)).toMatchObject({ status: 'queued', currentRun: 2, iteration: 1, phase: null, reason: null, finishedAt: null });
  await repos.jobs.startRun(job, 2);
  await repos.jobs.markResumed(job.id, 2, 1);
  expect(await repos.jobs.get(job.id)).toMatchObject({ status: 'running', currentRun: 2 });
  const queued = newJob();
  await repos.jobs.create(queued);
  expect(await repos.jobs.finishIfQueued(queued.id, 'failed', 'could not start the workflow: test')).toBe(true);
  expect(await repos.jobs.get(queued.id)).toMatchObject({ status: 'failed', reason: 'could not start the workflow: test' });
});

test("jobs: a budget record never lowers the row, and one of an earlier run leaves the run that took the row over alone", async () => {
  const job = newJob({ budgetUsd: 5 });
  await repos.jobs.create(job);
  await repos.jobs.startRun(job, 1);
  // Two raises (to 9, then 12) whose records land in the other order: the higher stays.
  await repos.jobs.setBudget(job.id, 12, 1);
  await repos.jobs.setBudget(job.id, 9, 1);
  expect((await repos.jobs.get(job.id))!.budgetUsd).toBe(12);
  await repos.jobs.finish(job.id, 'cancelled', 'stopped');
  await repos.jobs.markResumed(job.id, 2, 1);
  // Resumed with a lower budget; a record of run 1 landing late does not raise run 2's.
  await repos.jobs.startRun({ ...job, budgetUsd: 4 }, 2);
  await repos.jobs.setBudget(job.id, 15, 1);
  expect((await repos.jobs.get(job.id))!.budgetUsd).toBe(4);
  await repos.jobs.setBudget(job.id, 6, 2);
  expect((await repos.jobs.get(job.id))!.budgetUsd).toBe(6);
  await expect(repos.jobs.setBudget(`repo-missing-${randomUUID()}`, 7)).rejects.toThrow(/no training_jobs row/);
});

test("jobs: a run that takes the row over writes its budget; a retried start keeps a raise", async () => {
  const job = newJob({ budgetUsd: 5 });
  await repos.jobs.create(job);
  await repos.jobs.startRun(job, 1);
  await repos.jobs.setBudget(job.id, 7);
  // A retried startJobRun of run 1 (its input still says 5) does not undo the raise.
  expect(await repos.jobs.startRun(job, 1)).toMatchObject({ status: 'running', currentRun: 1, budgetUsd: 7 });
  await repos.jobs.finish(job.id, 'budget_exceeded', 'spent');
  // training.resume with a new budget: whether the new run starts before or after the API's
  // hand-off, the row says the new run's budget.
  expect(await repos.jobs.startRun({ ...job, budgetUsd: 12 }, 2)).toMatchObject({ currentRun: 2, budgetUsd: 12 });
  await repos.jobs.finish(job.id, 'cancelled', 'stopped');
  await repos.jobs.markResumed(job.id, 3, 1);
  expect(await repos.jobs.startRun({ ...job, budgetUsd: 20 }, 3)).toMatchObject({ status: 'running', currentRun: 3, budgetUsd: 20 });
});

test('jobs: budget alerts are kept once each, in threshold order, whatever order they are recorded in', async () => {
  const job = newJob({ budgetUsd: 10 });
  await repos.jobs.create(job);
  const alert = (threshold: number) => ({ threshold, spend_usd: threshold * 10, budget_usd: 10, at: new Date().toISOString() });
  // Two groups crossed 75% and 90% together: the 90% alert's activity ran first.
  await repos.jobs.appendBudgetAlert(job.id, alert(0.9));
  await repos.jobs.appendBudgetAlert(job.id, alert(0.75));
  await repos.jobs.appendBudgetAlert(job.id, alert(0.9)); // a retried activity
  expect(((await repos.jobs.get(job.id))!.budgetAlerts as { threshold: number }[]).map((a) => a.threshold)).toEqual([0.75, 0.9]);
});

test('jobs: startRun creates the row of a job started outside the API', async () => {
  const job = newJob();
  const row = await repos.jobs.startRun(job, 2);
  expect(row).toMatchObject({ id: job.id, status: 'running', currentRun: 2 });
});

test('jobs: list filters by tenant, agent, status, priority and time, newest first, with a cursor', async () => {
  const agentId = `list-${randomUUID()}`;
  const ids: string[] = [];
  for (const priority of ['P0', 'P1', 'P0']) {
    const job = newJob({ agentId, priority });
    ids.push(job.id);
    await repos.jobs.create(job);
    // created_at is kept to the millisecond and ties go by id (random): one per millisecond keeps insertion order.
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const all = (await repos.jobs.list({ agentId }, { limit: 10 }))!;
  expect(all.map((j) => j.id)).toEqual([...ids].reverse());
  expect((await repos.jobs.list({ agentId, priority: 'P0' }, { limit: 10 }))!.map((j) => j.id)).toEqual([ids[2], ids[0]]);
  expect(await repos.jobs.list({ agentId, status: 'running' }, { limit: 10 })).toEqual([]);
  expect(await repos.jobs.list({ agentId, tenantId: 'someone-else' }, { limit: 10 })).toEqual([]);
  expect(await repos.jobs.list({ agentId, createdAfter: new Date(Date.now() + 60_000) }, { limit: 10 })).toEqual([]);
  const first = (await repos.jobs.list({ agentId }, { limit: 2 }))!;
  const second = (await repos.jobs.list({ agentId }, { limit: 2, cursor: first[1].id }))!;
  expect([...first, ...second].map((j) => j.id)).toEqual([...ids].reverse());
  expect(await repos.jobs.list({ agentId }, { limit: 2, cursor: 'no-such-job' })).toBeNull();
});

test('trajectories: a write is idempotent on (job, run, iteration, query, sample); the first write wins', async () => {
  const job = newJob();
  await repos.jobs.create(job);
  const first = await repos.trajectories.record(trajectory(job.id, 0));
  const retried = await repos.trajectories.record(trajectory(job.id, 0, { final_answer: 'different' }));
  expect(first.created).toBe(true);
  expect(retried).toEqual({ id: first.id, created: false });
  const otherRun = await repos.trajectories.record(trajectory(job.id, 0, { run: 2 }));
  expect(otherRun.created).toBe(true);
  expect(await repos.trajectories.countForJob(job.id)).toBe(2);
  expect(await repos.trajectories.countForJob(job.id, 1)).toBe(1);
  const [row] = await repos.trajectories.findByIds([first.id]);
  expect(row.finalAnswer).toBe('42');
});

test('trajectories: score sets rewards and advantages together; listForJob filters and pages', async () => {
  const job = newJob();
  await repos.jobs.create(job);
  const ids = [];
  for (let s = 0; s < 4; s++) ids.push((await repos.trajectories.record(trajectory(job.id, s))).id);
  await repos.trajectories.score(ids.map((id, i) => ({ id, reward: i / 4, advantage: i - 1.5, stepAdvantages: i === 0 ? [0.1] : null })));
  const rows = await repos.trajectories.listForJob(job.id);
  expect(rows.map((r) => [r.sampleIndex, r.reward, r.advantage])).toEqual([[0, 0, -1.5], [1, 0.25, -0.5], [2, 0.5, 0.5], [3, 0.75, 1.5]]);
  expect(rows[0].stepAdvantages).toEqual([0.1]);
  expect((await repos.trajectories.listForJob(job.id, { success: true })).map((r) => r.sampleIndex)).toEqual([0, 2]);
  expect((await repos.trajectories.listForJob(job.id, {}, { limit: 2, offset: 1 })).map((r) => r.sampleIndex)).toEqual([1, 2]);
});

test('progress: iterations and checkpoints are idempotent on (job, run, iteration)', async () => {
  const job = newJob();
  await repos.jobs.create(job);
  const base = { jobId: job.id, run: 1, iteration: 1, metrics: { mean_reward: 0.2 }, policyVersion: 1, spendUsd: 0.5 };
  await repos.progress.recordIteration(base);
  await repos.progress.recordIteration({ ...base, metrics: { mean_reward: 0.3 } });
  expect((await repos.progress.iterations(job.id)).map((i) => i.metrics)).toEqual([{ mean_reward: 0.3 }]);
  // The row records where the payload blob is (tests/integration/checkpoints.test.ts covers the store).
  const checkpoint = { jobId: job.id, run: 1, iteration: 1, blobKey: `checkpoints/${job.id}/1-1.json`, contentHash: 'a'.repeat(64), sizeBytes: 10, metrics: {}, score: 0.4 };
  await repos.progress.saveCheckpoint(checkpoint);
  await repos.progress.saveCheckpoint({ ...checkpoint, score: 0.6, contentHash: 'b'.repeat(64) });
  expect((await repos.progress.checkpoints(job.id)).map((c) => [c.score, c.contentHash])).toEqual([[0.6, 'b'.repeat(64)]]);

  await repos.progress.saveCheckpoint({ ...checkpoint, iteration: 2, blobKey: `checkpoints/${job.id}/1-2.json` });
  expect(await repos.progress.checkpoint(job.id, { run: 1, iteration: 2 })).toMatchObject({ blobKey: `checkpoints/${job.id}/1-2.json`, sizeBytes: 10 });
  expect(await repos.progress.checkpoint(job.id, { run: 2, iteration: 2 })).toBeNull();
  expect(await repos.progress.deleteCheckpoints(job.id, [])).toBe(0);
  // Deleting is idempotent: a row already gone is skipped.
  expect(await repos.progress.deleteCheckpoints(job.id, [{ run: 1, iteration: 1 }, { run: 9, iteration: 9 }])).toBe(1);
  expect(await repos.progress.deleteCheckpoints(job.id, [{ run: 1, iteration: 1 }])).toBe(0);
  expect((await repos.progress.checkpoints(job.id)).map((c) => c.iteration)).toEqual([2]);
});
