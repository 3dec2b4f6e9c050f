/**
 * Steering running jobs through the JSON-RPC facade: training.update_budget raises a running
 * job's budget through the workflow's Update (its validator's refusals come back as -32602), and
 * the global kill switch (admin only) pauses running jobs at their next batch boundary, starts
 * new jobs paused, and lets both go on when it is turned off.
 *
 * The kill switch reaches every running training job of an install (its namespace and its
 * database), so this file has an install of its own; the switch is on only inside
 * `withOwnKillSwitch`, and always turned off again, because the file's other tests share it.
 *
 * @suiteLock isolated (it turns the kill switch on, which reaches every job of an install; tests/support/suiteEnvironment.ts)
 */
import type { FlowClient } from '../../api/client/flowClient';
import { FLOW_JOB_STATUS } from '../../workflows/searchAttributes';
import { statusQuery } from '../../workflows/trainingJob';
import { startHarness, type Harness } from '../support/harness';
import { rpcError, startApiHarness, waitFor, withOwnKillSwitch, type ApiHarness } from '../support/apiHarness';
import { onBudgetChange } from '../support/budgetTrigger';

let h: Harness;
let api: ApiHarness;
let admin: FlowClient;

beforeAll(async () => {
  // A little model latency, so a job is still running while the test steers it.
  h = await startHarness({ model: { latencyMs: 20 } });
  api = await startApiHarness({ harness: h });
  admin = await api.client({ subject: 'root', roles: ['admin'] });
});
afterAll(async () => {
  // Whatever happened above, the switch is off for every other test file.
  if (admin && (await admin.getKillSwitch().catch(() => ({ on: true }))).on) await admin.killSwitch(false, 'apiSteering cleanup');
  await api?.close();
  await h?.close();
});

const job = (agent: string, iterations: number) => ({
  agent_id: agent,
  task_set: 'simulated-small' as const,
  config: { iterations, batch_size: 1, group_size: 2, seed: 9 },
});

test('update_budget raises a running job budget; lower, negative, unauthorised and finished are refused', async () => {
  const client = await api.client();
  const { job_id: jobId } = await client.startGrpo(job('steer-budget', 200));
  const worker = await api.startWorker();
  try {
    await waitFor(() => client.getStatus(jobId), (s) => s.status === 'running');
    expect(await client.updateBudget(jobId, 25)).toEqual({ job_id: jobId, budget_usd: 25, status: 'applied' });
    const raised = await client.getStatus(jobId);
    expect(raised).toMatchObject({ budget_usd: 25, budget_alerts: [] });
    expect(raised.budget_used_ratio).toBeCloseTo(raised.spend_usd / 25, 10);

    const lower = await rpcError(client.updateBudget(jobId, 20));
    expect(lower.code).toBe(-32602);
    expect(lower.message).toBe('Invalid params: budget_usd must be greater than the current budget of $25.00 (got 20)');
    // A retry of the raise that was applied gets the same answer, not a refusal.
    expect(await client.updateBudget(jobId, 25)).toEqual({ job_id: jobId, budget_usd: 25, status: 'applied' });
    const lowerStill = await rpcError(client.updateBudget(jobId, 24.5));
    expect(lowerStill.message).toMatch(/greater than the current budget of \$25\.00/);
    const negative = await rpcError(client.updateBudget(jobId, -5));
    expect(negative.code).toBe(-32602);
    expect(negative.message).toMatch(/budget_usd/);

    const viewer = await rpcError((await api.client({ roles: ['viewer'] })).updateBudget(jobId, 50));
    expect(viewer).toMatchObject({ code: -32010, reason: 'permission_denied' });
    expect(viewer.message).toMatch(/training:budget/);
    expect(await rpcError((await api.client({ tenant: 'tenant-b' })).updateBudget(jobId, 50))).toMatchObject({ code: -32020 });
    expect((await client.getStatus(jobId)).budget_usd).toBe(25);

    await client.cancel(jobId, 'budget test over');
    await waitFor(() => client.getStatus(jobId), (s) => s.status === 'cancelled');
  } finally {
    await worker.stop();
  }
  const finished = await rpcError(client.updateBudget(jobId, 100));
  expect(finished).toMatchObject({ code: -32021, reason: 'job_already_finished' });
  expect((await h.repos.jobs.get(jobId))!.budgetUsd).toBe(25);
}, 120_000);

test('update_budget with no worker running is reported pending, a retry joins it, and it applies once a worker runs the job', async () => {
  const client = await api.client();
  // No worker polls this job's queue yet, so no workflow task (and no update) can run.
  const { job_id: jobId } = await client.startGrpo(job('steer-budget-pending', 200));
  const pending = await client.updateBudget(jobId, 40);
  expect(pending).toEqual({ job_id: jobId, budget_usd: 40, status: 'pending' });
  // Not applied: the row still has the old budget.
  const before = (await h.repos.jobs.get(jobId))!.budgetUsd;
  expect(before).toBeLessThan(40);
  // The same request again joins the same update (one update id per raise): pending, not an error.
  expect(await client.updateBudget(jobId, 40)).toEqual({ job_id: jobId, budget_usd: 40, status: 'pending' });
  const worker = await api.startWorker();
  try {
    await waitFor(() => h.repos.jobs.get(jobId), (row) => row!.budgetUsd === 40, 60_000);
    expect((await client.getStatus(jobId)).budget_usd).toBe(40);
    // A retry after it applied gets the applied answer.
    expect(await client.updateBudget(jobId, 40)).toEqual({ job_id: jobId, budget_usd: 40, status: 'applied' });
    // One update reached the workflow, though it was asked for twice.
    const history = await h.client.workflow.getHandle(jobId).fetchHistory();
    const accepted = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    expect(accepted).toHaveLength(1);
    await client.cancel(jobId, 'pending budget test over');
    await waitFor(() => client.getStatus(jobId), (s) => s.status === 'cancelled');
  } finally {
    await worker.stop();
  }
}, 120_000);

test('update_budget whose record in PostgreSQL fails for good is not applied and says so; a retry sends it again and applies it', async () => {
  const client = await api.client();
  // Infrastructure retries for 6 s, so the record gives up within the update's deadline.
  const { job_id: jobId } = await client.startGrpo({ ...job('steer-budget-unrecorded', 200), config: { ...job('x', 200).config, infrastructure_retry_minutes: 0.1 } });
  const worker = await api.startWorker();
  const handle = h.client.workflow.getHandle(jobId);
  let refusing: { drop(): Promise<void> } | undefined;
  try {
    await waitFor(() => client.getStatus(jobId), (s) => s.status === 'running');
    const before = (await h.repos.jobs.get(jobId))!.budgetUsd;
    // PostgreSQL refuses any change of this job's budget (and only that).
    refusing = await onBudgetChange(h.prisma, jobId, "RAISE EXCEPTION 'budget record refused by the test';");
    const refused = await rpcError(client.updateBudget(jobId, 30));
    expect(refused.code).toBe(-32050);
    expect(refused.message).toMatch(new RegExp(`job "${jobId}" could not record the raise to \\$30\\.00 in PostgreSQL \\(.+\\), so it was not applied; retry later`));
    // Not applied anywhere: neither the row nor the workflow (whose plans must match what the
    // spend ledger admits against the row); the job goes on.
    expect((await h.repos.jobs.get(jobId))!.budgetUsd).toBe(before);
    expect((await handle.query(statusQuery)).budget_usd).toBe(before);
    expect((await client.getStatus(jobId)).status).toBe('running');

    await refusing.drop();
    // The same request again is sent again (Temporal's memory of the failed one does not answer it).
    expect(await client.updateBudget(jobId, 30)).toEqual({ job_id: jobId, budget_usd: 30, status: 'applied' });
    expect((await h.repos.jobs.get(jobId))!.budgetUsd).toBe(30);
    expect((await handle.query(statusQuery)).budget_usd).toBe(30);
    const completed = ((await handle.fetchHistory()).events ?? []).flatMap((e) => (e.workflowExecutionUpdateCompletedEventAttributes ? [e.workflowExecutionUpdateCompletedEventAttributes] : []));
    expect(completed.map((c) => (c.outcome?.failure ? 'failed' : 'succeeded'))).toEqual(['failed', 'succeeded']);
    await client.cancel(jobId, 'unrecorded budget test over');
    await waitFor(() => client.getStatus(jobId), (s) => s.status === 'cancelled');
  } finally {
    await refusing?.drop();
    await worker.stop();
  }
}, 120_000);

test('update_budget sends a raise again when the row holds it but the workflow does not (a record that committed and was reported failed), under the first raise\'s ids; a lower amount is refused', async () => {
  const client = await api.client();
  // Infrastructure retries for 6 s, so the record gives up within the update's deadline.
  const { job_id: jobId } = await client.startGrpo({ ...job('steer-budget-row-ahead', 200), config: { ...job('x', 200).config, infrastructure_retry_minutes: 0.1 } });
  const worker = await api.startWorker();
  const handle = h.client.workflow.getHandle(jobId);
  let refusing: { drop(): Promise<void> } | undefined;
  try {
    await waitFor(() => client.getStatus(jobId), (s) => s.status === 'running');
    const before = (await handle.query(statusQuery)).budget_usd;
    const raised = before + 20;
    refusing = await onBudgetChange(h.prisma, jobId, "RAISE EXCEPTION 'budget record refused by the test';");
    expect((await rpcError(client.updateBudget(jobId, raised))).code).toBe(-32050);
    await refusing.drop();
    // The row has the raise, the workflow never took it: what a record attempt that committed,
    // then lost its worker (so the update failed and said "not applied"), leaves behind.
    await h.prisma.$executeRawUnsafe(`UPDATE training_jobs SET budget_usd = $1 WHERE id = $2`, raised, jobId);
    // Before, the retry answered "applied" from the row alone and the workflow kept planning on the old budget.
    expect(await client.updateBudget(jobId, raised)).toEqual({ job_id: jobId, budget_usd: raised, status: 'applied' });
    expect((await handle.query(statusQuery)).budget_usd).toBe(raised);
    // Now both hold it: a further retry is answered without another update.
    expect(await client.updateBudget(jobId, raised)).toEqual({ job_id: jobId, budget_usd: raised, status: 'applied' });
    // The retry is the first raise's, sent again under its next id: one still in flight (its row
    // written, the workflow not yet told) is joined under the same ids, not refused as a second raise.
    const accepted = ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
      const update = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId;
      return update ? [update] : [];
    });
    expect(accepted).toEqual([`update_budget:${raised}`, `update_budget:${raised}:resend-1`]);
    // A higher raise, then the earlier amount again: refused against the budget in force (not the
    // earlier raise's stored answer).
    expect(await client.updateBudget(jobId, raised + 10)).toEqual({ job_id: jobId, budget_usd: raised + 10, status: 'applied' });
    const lower = await rpcError(client.updateBudget(jobId, raised));
    expect({ code: lower.code, message: lower.message }).toEqual({ code: -32602, message: expect.stringContaining(`greater than the current budget of $${(raised + 10).toFixed(2)}`) });
    await client.cancel(jobId, 'row-ahead test over');
    await waitFor(() => client.getStatus(jobId), (s) => s.status === 'cancelled');
  } finally {
    await refusing?.drop();
    await worker.stop();
  }
}, 120_000);

test('a job out of budget at an iteration boundary while a raise is being recorded waits for the raise and goes on', async () => {
  const client = await api.client();
  // Too little for one model call: without the raise, iteration 1 is refused at once.
  const { job_id: jobId } = await client.startGrpo({ ...job('steer-budget-in-flight', 3), config: { ...job('x', 3).config, budget_usd: 0.000001 } });
  // No worker yet: the raise is held by Temporal and reaches the workflow with its start.
  expect(await client.updateBudget(jobId, 5)).toEqual({ job_id: jobId, budget_usd: 5, status: 'pending' });
  // Recording the raise takes 3 s, so the workflow reaches iteration 1's budget check first.
  const slow = await onBudgetChange(h.prisma, jobId, 'PERFORM pg_sleep(3); RETURN NEW;');
  const worker = await api.startWorker();
  try {
    const done = await waitFor(() => client.getStatus(jobId), (s) => ['completed', 'budget_exceeded', 'failed'].includes(s.status), 90_000);
    expect({ status: done.status, reason: done.reason ?? null, budget_usd: done.budget_usd }).toEqual({ status: 'completed', reason: null, budget_usd: 5 });
  } finally {
    await slow.drop();
    await worker.stop();
  }
}, 150_000);

test('the kill switch needs an admin token and training:budget; anyone who may view can read it', async () => {
  // The refused callers use subjects no other test file uses: the switch is global, and were this
  // file run beside another without the suite lock, that one could turn it on as the default subject.
  const trainer = await rpcError((await api.client({ subject: 'ks-refused-trainer' })).killSwitch(true, 'not mine to pull'));
  expect(trainer).toMatchObject({ code: -32010 });
  expect(trainer.message).toMatch(/admin/);
  const viewer = await rpcError((await api.client({ subject: 'ks-refused-viewer', roles: ['viewer'] })).killSwitch(true));
  expect(viewer.message).toMatch(/training:budget/);
  const state = await (await api.client({ roles: ['viewer'] })).getKillSwitch();
  expect(Object.keys(state).sort()).toEqual(['at', 'by', 'on', 'reason']);
  expect(typeof state.on).toBe('boolean');
  // Refused calls stored nothing.
  expect(['ks-refused-trainer', 'ks-refused-viewer']).not.toContain(state.by);
});

test('kill switch on pauses a running job and starts a new one paused; off lets both complete', async () => {
  const client = await api.client();
  const { job_id: running } = await client.startGrpo(job('steer-kill', 6));
  const worker = await api.startWorker();
  let paused: string | undefined;
  try {
    await withOwnKillSwitch(async () => {
      expect((await admin.getKillSwitch()).on).toBe(false);
      await waitFor(() => client.getStatus(running), (s) => s.status === 'running' && s.iteration >= 1 && s.iteration < 5, 60_000, 20);
      try {
        const on = await admin.killSwitch(true, 'provider outage');
        expect(on).toMatchObject({ on: true, reason: 'provider outage' });
        expect(on.signalled).toBeGreaterThanOrEqual(1);
        expect(await client.getKillSwitch()).toMatchObject({ on: true, reason: 'provider outage', by: 'root', at: expect.any(String) });

        // A job started now starts paused.
        paused = (await client.startGrpo(job('steer-kill-new', 2))).job_id;
        const [first, second] = await Promise.all([
          waitFor(() => client.getStatus(running), (s) => s.status === 'paused', 30_000, 20),
          waitFor(() => client.getStatus(paused!), (s) => s.status === 'paused', 30_000, 20),
        ]);
        expect(first).toMatchObject({ status: 'paused', phase: 'paused' });
        expect(first.iteration).toBeLessThan(6);
        expect(second).toMatchObject({ status: 'paused', iteration: 0 });
        const attribute = async (id: string) => (await h.client.workflow.getHandle(id).describe()).typedSearchAttributes.get(FLOW_JOB_STATUS);
        expect(await attribute(running)).toBe('paused');
        expect(await attribute(paused)).toBe('paused');
        // Nothing is spent (or written) while paused: the ledger, the status and the trajectories stand still.
        const spent = async () => ({
          ledger: (await h.repos.ledger.totalForJob(running)).costUsd,
          status: (await client.getStatus(running)).spend_usd,
          trajectories: await h.repos.trajectories.countForJob(running),
        });
        const before = await spent();
        await new Promise((r) => setTimeout(r, 1000));
        expect(await spent()).toEqual(before);
      } finally {
        const off = await admin.killSwitch(false);
        expect(off).toMatchObject({ on: false, reason: null });
      }
      // Read under the lock: once it is released another kill-switch file may pull the switch.
      expect(await client.getKillSwitch()).toMatchObject({ on: false, by: 'root' });
    });
    const [a, b] = await Promise.all([
      waitFor(() => client.getStatus(running), (s) => s.status === 'completed', 60_000),
      waitFor(() => client.getStatus(paused!), (s) => s.status === 'completed', 60_000),
    ]);
    expect(a.iteration).toBe(6);
    expect(b.iteration).toBe(2);
  } finally {
    await worker.stop();
  }
}, 180_000);
