/**
 * A job row written `queued` whose workflow never started (the API was killed between the two
 * steps of a start without an idempotency key) does not stay `queued` forever: the reconciler
 * ends it `failed` with a reason after the grace period, a cancel ends it `cancelled` at once,
 * and rows with a running workflow, or too young to judge, are left alone.
 */
import { randomUUID } from 'node:crypto';
import { reconcileOrphanedJobs } from '../../api/orphanedJobs';
import { startTrainingJob } from '../../api/trainingJobs';
import { startHarness, jobRequest, type Harness } from '../support/harness';
import { startApiHarness, type ApiHarness } from '../support/apiHarness';

let h: Harness;
let api: ApiHarness;

beforeAll(async () => {
  h = await startHarness();
  api = await startApiHarness({ harness: h });
});
afterAll(async () => {
  await api?.close();
  await h?.close();
});

/** What a killed API leaves behind: the row, and no workflow. */
async function orphanRow(ageMs: number): Promise<string> {
  const request = jobRequest();
  const id = request.job_id!;
  await h.repos.jobs.create({
    id,
    agentId: request.agent_id,
    tenantId: 'tenant-a',
    ownerId: 'alice',
    priority: 'P1',
    config: request.config as object,
    budgetUsd: 10,
  });
  await h.prisma.trainingJob.update({ where: { id }, data: { updatedAt: new Date(Date.now() - ageMs) } });
  return id;
}

test('an orphaned queued row is failed with a reason after the grace period; young rows and running jobs are left alone', async () => {
  const orphan = await orphanRow(120_000);
  const young = await orphanRow(1_000);
  // A real job whose workflow runs (no worker polls its queue, so it stays queued).
  const { jobId: running } = await startTrainingJob(h.client, h.repos, jobRequest(), { taskQueue: `idle-${randomUUID()}` });
  await h.prisma.trainingJob.update({ where: { id: running }, data: { updatedAt: new Date(Date.now() - 120_000) } });

  const ended = await reconcileOrphanedJobs(h.client, h.repos, 60_000);
  expect(ended).toContain(orphan);
  expect(ended).not.toContain(young);
  expect(ended).not.toContain(running);
  expect(await h.repos.jobs.get(orphan)).toMatchObject({ status: 'failed', reason: expect.stringMatching(/workflow was never started/) });
  expect((await h.repos.jobs.get(young))!.status).toBe('queued');
  expect((await h.repos.jobs.get(running))!.status).toBe('queued');
  // A second pass finds nothing more to do.
  expect(await reconcileOrphanedJobs(h.client, h.repos, 60_000)).not.toContain(orphan);
  await h.client.workflow.getHandle(running).terminate('test over');
});

test('cancel ends an orphaned queued row at once; the row says cancelled and why', async () => {
  const orphan = await orphanRow(0);
  const client = await api.client();
  expect(await client.cancel(orphan, 'never mind')).toEqual({ job_id: orphan, status: 'cancelled' });
  expect(await h.repos.jobs.get(orphan)).toMatchObject({ status: 'cancelled', reason: 'never mind (its workflow had never started)' });
  expect((await client.getStatus(orphan)).status).toBe('cancelled');
  // It is over: a second cancel is refused as already finished.
  await expect(client.cancel(orphan)).rejects.toMatchObject({ code: -32021 });
});
