/**
 * The API when Temporal and the job rows disagree or Temporal refuses: a start Temporal refuses
 * (the row records why the job never ran), an idempotent retry after the job's workflow ended,
 * a row that says queued while its workflow is gone (cancel, update_budget and the kill switch),
 * an update no worker takes (pending), the kill switch flipped while a start is in flight, a resume whose
 * row says ended while the workflow is still open, and Temporal that cannot be reached.
 *
 * Failures are made with real clients: one on a namespace the server does not have (Temporal
 * answers NOT_FOUND), one on an address nothing listens on, and workflows terminated with the
 * harness's client.
 *
 * @suiteLock isolated (it turns the kill switch on, which reaches every job of an install; tests/support/suiteEnvironment.ts)
 */
import { Client, Connection } from '@temporalio/client';
import { Client as PgClient } from 'pg';
import { JobNotFoundError, resumeTrainingJob } from '../../api/trainingJobs';
import { UPDATE_BUDGET_TIMEOUT_MS } from '../../api/methods';
import { startHarness, type Harness } from '../support/harness';
import { rpcError, startApiHarness, tinyJob, waitFor, withOwnKillSwitch, type ApiHarness } from '../support/apiHarness';

let h: Harness;
let api: ApiHarness;

beforeAll(async () => {
  h = await startHarness({ model: { latencyMs: 50 } });
  api = await startApiHarness({ harness: h });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

/** An API server like `api`, but whose Temporal client is `client`. */
async function apiWithClient(client: Client): Promise<ApiHarness> {
  return startApiHarness({ harness: { ...h, client } });
}

/** A job started through the API with no worker: its workflow is open and the row says queued. */
async function queuedJob(agent: string): Promise<string> {
  const started = await (await api.client()).startGrpo(tinyJob(agent));
  expect(started.status).toBe('queued');
  return started.job_id;
}

async function terminate(jobId: string) {
  await h.client.workflow.getHandle(jobId).terminate('edge-case test');
}

/** A job that trained to its first checkpoint; the worker is then stopped, the workflow stays open. */
async function jobWithCheckpointAndNoWorker(agent: string): Promise<string> {
  const jobId = await queuedJob(agent);
  const worker = await api.startWorker();
  try {
    await waitFor(() => h.repos.progress.checkpoints(jobId), (rows) => rows.length > 0, 60_000, 20);
  } finally {
    await worker.stop();
  }
  const description = await h.client.workflow.getHandle(jobId).describe();
  expect(description.status.name).toBe('RUNNING');
  return jobId;
}

describe('Temporal refuses or cannot be reached', () => {
  let wrongNamespace: ApiHarness;
  let unreachable: ApiHarness;
  let unreachableConnection: Connection;
  let droppedOut: ApiHarness;
  let droppedOutConnection: Connection;
  beforeAll(async () => {
    // The real server, a namespace it does not have: every call is answered NOT_FOUND.
    wrongNamespace = await apiWithClient(new Client({ connection: h.client.connection, namespace: 'flow-no-such-namespace' }));
    // Nothing listens on port 1; no retries, so calls fail at once.
    unreachableConnection = await Connection.lazy({ address: '127.0.0.1:1', interceptors: [] });
    unreachable = await apiWithClient(new Client({ connection: unreachableConnection }));
    // The same address with the client's default retries, as the API runs: a Temporal that has
    // dropped out, whose calls are retried until the caller's deadline passes.
    droppedOutConnection = await Connection.lazy({ address: '127.0.0.1:1' });
    droppedOut = await apiWithClient(new Client({ connection: droppedOutConnection }));
  });
  afterAll(async () => {
    await droppedOut?.close();
    await droppedOutConnection?.close();
    await wrongNamespace?.close();
    await unreachable?.close();
    await unreachableConnection?.close();
  });

  test('a start on a namespace Temporal does not have is refused as NAMESPACE_NOT_READY, naming it, before anything is written', async () => {
    for (const idempotency_key of [undefined, `refused-${Date.now()}`]) {
      const before = Date.now();
      const error = await rpcError((await wrongNamespace.client()).startGrpo({ ...tinyJob('refused-agent'), ...(idempotency_key ? { idempotency_key } : {}) }));
      expect(error.code).toBe(-32051);
      expect(error.message).toMatch(/flow-no-such-namespace/);
      const rows = (await h.repos.jobs.list({ tenantId: 'tenant-a', agentId: 'refused-agent' }, { limit: 10 }))!.filter((r) => r.createdAt.getTime() >= before - 1000);
      expect(rows).toEqual([]);
    }
  });

  test('a resume on a namespace Temporal does not have is refused as NAMESPACE_NOT_READY and leaves the job as it was', async () => {
    const jobId = await jobWithCheckpointAndNoWorker('refused-resume-agent');
    await terminate(jobId);
    const error = await rpcError((await wrongNamespace.client()).resume(jobId, 'latest'));
    expect(error.code).toBe(-32051);
    const row = (await h.repos.jobs.get(jobId))!;
    expect(row.currentRun).toBe(1);
    expect((await h.client.workflow.getHandle(jobId).describe()).status.name).toBe('TERMINATED');
  });

  // The Temporal client's ServiceError says only "Failed to describe workflow"; the gRPC
  // "14 UNAVAILABLE" is in its cause, which server.ts reads, so callers get UNAVAILABLE.
  test('resume, cancel and update_budget fail without touching the job when Temporal cannot be reached', async () => {
    const jobId = await queuedJob('unreachable-agent');
    try {
      const client = await unreachable.client();
      for (const call of [() => client.resume(jobId), () => client.cancel(jobId), () => client.updateBudget(jobId, 100)]) {
        const error = await rpcError(call());
        expect(error.code).toBe(-32050);
        expect(error.data).toMatchObject({ request_id: expect.any(String) });
      }
      // Nothing happened to the job.
      expect((await h.repos.jobs.get(jobId))!).toMatchObject({ status: 'queued', currentRun: 1 });
      expect((await h.client.workflow.getHandle(jobId).describe()).status.name).toBe('RUNNING');
    } finally {
      await terminate(jobId);
    }
  });
  test('update_budget past its deadline with Temporal gone is unavailable and not applied, not reported pending', async () => {
    const jobId = await queuedJob('dropped-out-agent');
    try {
      const before = Date.now();
      const error = await rpcError((await droppedOut.client()).updateBudget(jobId, 1000));
      expect(Date.now() - before).toBeGreaterThanOrEqual(UPDATE_BUDGET_TIMEOUT_MS - 1000);
      expect(error.code).toBe(-32050);
      expect(error.message).toContain('Temporal did not confirm that it took the raise, so it may not be applied');
      // Temporal never had it: no worker can apply it later.
      expect((await h.repos.jobs.get(jobId))!.budgetUsd).not.toBe(1000);
      const events = (await h.client.workflow.getHandle(jobId).fetchHistory()).events ?? [];
      expect(events.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateAdmittedEventAttributes)).toHaveLength(0);
    } finally {
      await terminate(jobId);
    }
  }, 60_000);
});

test('an idempotent retry after the job ended answers the same job, created false, and starts nothing', async () => {
  const client = await api.client();
  const request = { ...tinyJob('idem-ended-agent'), idempotency_key: `ended-${Date.now()}` };
  const first = await client.startGrpo(request);
  expect(first.created).toBe(true);
  const { runId } = await h.client.workflow.getHandle(first.job_id).describe();
  await terminate(first.job_id);
  const retry = await client.startGrpo(request);
  expect(retry).toMatchObject({ job_id: first.job_id, created: false });
  const after = await h.client.workflow.getHandle(first.job_id).describe();
  expect(after).toMatchObject({ runId, status: { name: 'TERMINATED' } });
});

test('a row that says queued while its workflow is gone: update_budget answers job_already_finished; cancel ends the row at once', async () => {
  const jobId = await queuedJob('gone-agent');
  await terminate(jobId);
  const client = await api.client();
  const update = await rpcError(client.updateBudget(jobId, 1000));
  expect(update.code).toBe(-32021);
  expect(update.message).toBe(`Job already finished: job "${jobId}" has no running workflow`);
  // No workflow will ever move the row (api/orphanedJobs.ts): cancel records it cancelled itself.
  expect(await client.cancel(jobId, 'gone')).toEqual({ job_id: jobId, status: 'cancelled' });
  expect(await h.repos.jobs.get(jobId)).toMatchObject({ status: 'cancelled', reason: 'gone (its workflow had never started)' });
});

test('update_budget that no worker takes in time is reported pending, and not applied meanwhile', async () => {
  const jobId = await queuedJob('no-worker-agent');
  try {
    const before = Date.now();
    expect(await (await api.client()).updateBudget(jobId, 1000)).toEqual({ job_id: jobId, budget_usd: 1000, status: 'pending' });
    expect(Date.now() - before).toBeGreaterThanOrEqual(UPDATE_BUDGET_TIMEOUT_MS - 1000);
    expect((await h.repos.jobs.get(jobId))!.budgetUsd).not.toBe(1000);
  } finally {
    await terminate(jobId);
  }
}, 60_000);

test('update_budget overtaken by a cancel answers that the job is being cancelled, not invalid params', async () => {
  const jobId = (await (await api.client()).startGrpo(tinyJob('budget-cancel-race-agent', 50))).job_id;
  const worker = await api.startWorker();
  // The job's row held locked: the update's handler stays in its recordBudget activity until the cancel lands.
  const lock = new PgClient({ connectionString: process.env.DATABASE_URL });
  await lock.connect();
  try {
    await waitFor(() => h.repos.jobs.get(jobId), (row) => row?.status === 'running', 30_000, 20);
    await lock.query('BEGIN');
    await lock.query('SELECT 1 FROM training_jobs WHERE id = $1 FOR UPDATE', [jobId]);
    const handle = h.client.workflow.getHandle(jobId);
    const raise = rpcError((await api.client()).updateBudget(jobId, 1000));
    await waitFor(() => handle.describe(), (d) => (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'recordBudget'), 30_000, 20);
    await handle.cancel();
    const error = await raise;
    expect(error.code).toBe(-32021);
    expect(error.message).toBe(`Job already finished: job "${jobId}" is being cancelled: the raise was not applied`);
    expect(error.data).toMatchObject({ status: 'cancelling' });
  } finally {
    await lock.query('ROLLBACK').catch(() => undefined);
    await lock.end();
    await waitFor(() => h.repos.jobs.get(jobId), (row) => row?.status === 'cancelled', 60_000, 50);
    await worker.stop();
  }
}, 90_000);

test('resumeTrainingJob refuses a job id with no row', async () => {
  await expect(resumeTrainingJob(h.client, h.repos, 'job-no-such-row')).rejects.toThrow(new JobNotFoundError('job-no-such-row'));
  await expect(resumeTrainingJob(h.client, h.repos, 'job-no-such-row')).rejects.toBeInstanceOf(JobNotFoundError);
});

describe('a resume whose row says ended while the workflow is still open', () => {
  test('answers job_still_running after waiting if the workflow never closes', async () => {
    const jobId = await jobWithCheckpointAndNoWorker('open-after-end-agent');
    try {
      // What the workflow's last activity writes; the worker is gone before the workflow closes.
      await h.repos.jobs.finish(jobId, 'cancelled', 'cancelled by test');
      const before = Date.now();
      const error = await rpcError((await api.client()).resume(jobId));
      expect(Date.now() - before).toBeGreaterThanOrEqual(9_000);
      expect(error.code).toBe(-32023);
      expect(error.message).toBe(`Job still running: job "${jobId}" ended cancelled but its workflow has not closed yet; retry in a moment`);
      expect((await h.repos.jobs.get(jobId))!).toMatchObject({ status: 'cancelled', currentRun: 1 });
    } finally {
      await terminate(jobId);
    }
  }, 60_000);

  test('starts run 2 once the workflow closes during the wait', async () => {
    const jobId = await jobWithCheckpointAndNoWorker('closes-during-wait-agent');
    await h.repos.jobs.finish(jobId, 'cancelled', 'cancelled by test');
    const closing = new Promise((resolve) => setTimeout(resolve, 1000)).then(() => terminate(jobId));
    const before = Date.now();
    const resumed = await (await api.client()).resume(jobId, 'latest');
    await closing;
    expect(Date.now() - before).toBeGreaterThanOrEqual(1000);
    expect(resumed).toMatchObject({ job_id: jobId, run: 2, from: { run: 1 } });
    const description = await h.client.workflow.getHandle(jobId).describe();
    expect(description.status.name).toBe('RUNNING');
    expect((await h.repos.jobs.get(jobId))!.currentRun).toBe(2);
    await terminate(jobId);
  }, 60_000);
});

test('the kill switch: a start it catches in flight starts paused-by-signal, and rows whose workflow is gone are skipped', async () => {
  const admin = await api.client({ subject: 'edge-admin', roles: ['admin'] });
  await withOwnKillSwitch(async () => {
    try {
      // The switch is turned on while the start is on its way to Temporal: the start read it off,
      // and the broadcast ran before the workflow existed.
      let flipped = false;
      const flipDuringStart = new Client({
        connection: h.client.connection,
        namespace: h.client.options.namespace,
        interceptors: {
          workflow: [
            {
              async startWithDetails(input, next) {
                if (!flipped) {
                  flipped = true;
                  await admin.killSwitch(true, 'edge-case test');
                }
                return next(input);
              },
            },
          ],
        },
      });
      const flipApi = await apiWithClient(flipDuringStart);
      let jobId: string;
      try {
        jobId = (await (await flipApi.client()).startGrpo(tinyJob('caught-in-flight-agent'))).job_id;
      } finally {
        await flipApi.close();
      }
      expect(flipped).toBe(true);
      const history = await h.client.workflow.getHandle(jobId).fetchHistory();
      const signals = history.events!.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName);
      expect(signals.map((e) => e.workflowExecutionSignaledEventAttributes!.signalName)).toContain('kill_switch');
      const worker = await api.startWorker();
      try {
        await waitFor(() => h.repos.jobs.get(jobId), (row) => row!.status === 'paused', 60_000, 50);
        expect((await h.repos.progress.checkpoints(jobId)).length).toBe(0);
      } finally {
        await worker.stop();
      }

      // A start whose workflow is terminated before the catch-up signal: the start still succeeds.
      await admin.killSwitch(false, 'edge-case test');
      let terminated = '';
      const gone = new Client({
        connection: h.client.connection,
        namespace: h.client.options.namespace,
        interceptors: {
          workflow: [
            {
              async startWithDetails(input, next) {
                await admin.killSwitch(true, 'edge-case test');
                const output = await next(input);
                terminated = input.options.workflowId;
                await h.client.workflow.getHandle(input.options.workflowId).terminate('edge-case test');
                return output;
              },
            },
          ],
        },
      });
      const goneApi = await apiWithClient(gone);
      try {
        const started = await (await goneApi.client()).startGrpo(tinyJob('gone-before-catch-up-agent'));
        expect(started).toMatchObject({ job_id: terminated, status: 'queued', created: true });
      } finally {
        await goneApi.close();
      }

      // Its row still says queued; the broadcast skips it instead of failing.
      const staleRow = (await h.repos.jobs.get(terminated))!;
      expect(staleRow.status).toBe('queued');
      const off = await admin.killSwitch(false, 'edge-case test');
      expect(off.on).toBe(false);
      expect((await h.repos.jobs.activeIds()).includes(terminated)).toBe(true);
      // The paused job got it (it is open); the terminated one was skipped.
      expect(off.signalled).toBeGreaterThanOrEqual(1);
      const worker2 = await api.startWorker();
      try {
        await waitFor(() => h.repos.jobs.get(jobId), (row) => row!.status !== 'paused' && row!.status !== 'queued', 60_000, 50);
      } finally {
        await worker2.stop();
        await terminate(jobId).catch(() => undefined);
      }
    } finally {
      await admin.killSwitch(false, 'edge-case test cleanup');
    }
  });
}, 120_000);
