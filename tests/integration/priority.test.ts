/**
 * FLOW-016 on the real Temporal dev server (priority and fairness matching on, one partition per
 * task queue: tests/support/globalSetup.ts). A backlog is queued while no worker polls, then a
 * worker with a single poller takes it: the order tasks were handed out is the order of the
 * first WorkflowTaskStarted / ActivityTaskStarted events in each job's history.
 */
import { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { startTrainingJob } from '../../api/trainingJobs';
import type { Priority } from '../../training/priority';
import { PRIORITY_KEYS, taskPriority } from '../../training/priority';
import { createTrainingWorker, type TrainingWorker } from '../../workers/trainingWorker';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/apiHarness';

jest.setTimeout(240_000);

const EventType = temporal.api.enums.v1.EventType;

let h: Harness;
let nativeConnection: NativeConnection;
const groups: TrainingWorker[] = [];

beforeAll(async () => {
  h = await startHarness({ model: { latencyMs: 1 } });
  nativeConnection = await NativeConnection.connect({ address: requireEnv('TEMPORAL_ADDRESS') });
});

afterAll(async () => {
  for (const group of groups) group.shutdown();
  await Promise.all(groups.map((g) => waitFor(async () => g.getState(), (s) => s === 'STOPPED' || s === 'FAILED', 60_000).catch(() => undefined)));
  await nativeConnection?.close();
  await h?.close();
});

/** A worker on `taskQueue` whose pools hand out one task at a time, in the server's order. */
async function singlePollerWorker(taskQueue: string, pools: ('workflow' | 'trajectory' | 'cpu')[]): Promise<TrainingWorker> {
  const group = await createTrainingWorker({
    connection: nativeConnection,
    taskQueue,
    pools,
    prisma: h.prisma,
    llm: { baseURL: h.model.url },
    workflowBundle: { codePath: requireEnv('FLOW_TEST_WORKFLOW_BUNDLE') },
    poolSettings: {
      // Two pollers is the SDK's minimum with a sticky queue: one polls the task queue, one the
      // worker's sticky queue (where a job's later workflow tasks go), so first tasks come one by one.
      workflow: { maxConcurrentWorkflowTaskExecutions: 2, workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: 2 } },
      cpu: { maxConcurrentActivityTaskExecutions: 1, activityTaskPollerBehavior: { type: 'simple-maximum', maximum: 1 } },
      trajectory: { maxConcurrentActivityTaskExecutions: 16 },
    },
  });
  groups.push(group);
  return group;
}

const tinyJob = (priority: Priority, tenant = 'tenant-a') =>
  jobRequest({ tenant_id: tenant, config: { iterations: 1, batch_size: 1, group_size: 2, seed: 5, priority } });

async function startJobs(client: Client, taskQueue: string, priority: Priority, count: number, tenant?: string): Promise<string[]> {
  const ids: string[] = [];
  // One after another, so the backlog's arrival order is known.
  for (let i = 0; i < count; i++) ids.push((await startTrainingJob(client, h.repos, tinyJob(priority, tenant), { taskQueue })).jobId);
  return ids;
}

const toMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

/** When the job's first workflow task was handed to a worker (null: not yet). */
async function firstWorkflowTaskStarted(jobId: string): Promise<number | null> {
  const history = await h.client.workflow.getHandle(jobId).fetchHistory();
  const started = history.events?.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
  return started ? toMs(started.eventTime) : null;
}

/** When the job's `activity` was scheduled and handed to a worker (null: not yet). */
async function activityTimes(jobId: string, activity: string): Promise<{ scheduled: number | null; started: number | null }> {
  const events = (await h.client.workflow.getHandle(jobId).fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && e.activityTaskScheduledEventAttributes?.activityType?.name === activity);
  if (!scheduled) return { scheduled: null, started: null };
  const started = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED && Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(scheduled.eventId));
  return { scheduled: toMs(scheduled.eventTime), started: started ? toMs(started.eventTime) : null };
}

async function untilAllCompleted(jobIds: string[]): Promise<void> {
  const results = await Promise.all(jobIds.map((id) => h.client.workflow.getHandle(id).result()));
  expect(results.map((r) => r.status)).toEqual(jobIds.map(() => 'completed'));
}

/** Job ids ordered by a time, earliest first. */
async function orderBy(jobIds: string[], time: (id: string) => Promise<number | null>): Promise<string[]> {
  const timed = await Promise.all(jobIds.map(async (id) => ({ id, at: await time(id) })));
  for (const t of timed) if (t.at === null) throw new Error(`job ${t.id} has no dispatch time in its history`);
  return timed.sort((a, b) => a.at! - b.at!).map((t) => t.id);
}

test('the priority maps P0 → 1, P1 → 3, P2 → 5 with the tenant as fairness key, and the job carries it', async () => {
  expect(PRIORITY_KEYS).toEqual({ P0: 1, P1: 3, P2: 5 });
  expect(taskPriority('P0', 'tenant-a')).toEqual({ priorityKey: 1, fairnessKey: 'tenant-a' });
  // Fairness keys are at most 64 bytes: cut at a character boundary, never inside one.
  expect(Buffer.byteLength(taskPriority('P1', 'é'.repeat(40)).fairnessKey)).toBe(64);
  expect(taskPriority('P1', `${'a'.repeat(63)}é`).fairnessKey).toBe('a'.repeat(63));

  const taskQueue = `${h.taskQueue}-carried`;
  const [jobId] = await startJobs(h.client, taskQueue, 'P0', 1, 'tenant-z');
  const description = await h.client.workflow.getHandle(jobId).describe();
  expect(description.raw.workflowExecutionInfo?.priority).toMatchObject({ priorityKey: 1, fairnessKey: 'tenant-z' });
  await h.client.workflow.getHandle(jobId).terminate('only the start options were under test');
});

test('workflow tasks: a P2 backlog queued first, then P0 work; a worker that starts then takes every P0 job first', async () => {
  const taskQueue = `${h.taskQueue}-wf`;
  const p2 = await startJobs(h.client, taskQueue, 'P2', 5);
  const p0 = await startJobs(h.client, taskQueue, 'P0', 5);
  // Nothing has been dispatched: there is no worker yet.
  expect(await Promise.all([...p2, ...p0].map(firstWorkflowTaskStarted))).toEqual([...p2, ...p0].map(() => null));

  const worker = await singlePollerWorker(taskQueue, ['workflow', 'trajectory', 'cpu']);
  await worker.runUntil(() => untilAllCompleted([...p2, ...p0]));

  const order = await orderBy([...p2, ...p0], firstWorkflowTaskStarted);
  expect(order.slice(0, p0.length).sort()).toEqual([...p0].sort());
  expect(order.slice(p0.length).sort()).toEqual([...p2].sort());
});

test('activity tasks inherit the priority: P2 activities queued first, then P0; the CPU pool, started later, runs the P0 ones first', async () => {
  const taskQueue = `${h.taskQueue}-act`;
  // Only the workflow pool runs: jobs schedule their first activity (startJobRun, CPU pool) and wait.
  const workflows = await singlePollerWorker(taskQueue, ['workflow']);
  const workflowRun = workflows.run();
  const scheduled = async (ids: string[]) =>
    waitFor(async () => (await Promise.all(ids.map((id) => activityTimes(id, 'startJobRun')))).every((t) => t.scheduled !== null), Boolean, 60_000);
  const p2 = await startJobs(h.client, taskQueue, 'P2', 5);
  await scheduled(p2);
  const p0 = await startJobs(h.client, taskQueue, 'P0', 5);
  await scheduled(p0);
  expect((await Promise.all([...p2, ...p0].map((id) => activityTimes(id, 'startJobRun')))).map((t) => t.started)).toEqual([...p2, ...p0].map(() => null));

  const activities = await singlePollerWorker(taskQueue, ['trajectory', 'cpu']);
  await activities.runUntil(() => untilAllCompleted([...p2, ...p0]));
  workflows.shutdown();
  await workflowRun;

  const order = await orderBy([...p2, ...p0], async (id) => (await activityTimes(id, 'startJobRun')).started);
  expect(order.slice(0, p0.length).sort()).toEqual([...p0].sort());
});

test('fairness: at one priority, a tenant that queued after a large backlog of another is served alongside it, not after it', async () => {
  const taskQueue = `${h.taskQueue}-fair`;
  const busy = await startJobs(h.client, taskQueue, 'P1', 8, 'tenant-busy');
  const quiet = await startJobs(h.client, taskQueue, 'P1', 2, 'tenant-quiet');

  const worker = await singlePollerWorker(taskQueue, ['workflow', 'trajectory', 'cpu']);
  await worker.runUntil(() => untilAllCompleted([...busy, ...quiet]));

  const order = await orderBy([...busy, ...quiet], firstWorkflowTaskStarted);
  // First in, first out would put the quiet tenant at positions 9 and 10; fair dispatch
  // alternates tenants, so both of its jobs are among the first four.
  const positions = quiet.map((id) => order.indexOf(id) + 1);
  expect(Math.max(...positions)).toBeLessThanOrEqual(4);
});
