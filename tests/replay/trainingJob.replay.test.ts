/**
 * Replay tests: running jobs survive workflow deploys only if today's `trainingJob` code makes
 * the same decisions, in the same order, as the code that wrote their histories. These replay
 * histories recorded from real jobs (tests/replay/histories/) against the current workflows;
 * no server is needed.
 *
 * If a test here fails after a workflow change, the change would break running jobs: put it
 * behind `patched('<change-id>')` from @temporalio/workflow (old branch for old histories, new
 * branch for new ones) and keep the old histories. Re-record (`npm run record-histories`, which
 * starts its own PostgreSQL database and Temporal dev server) only to add coverage of new
 * behaviour — never to make an incompatible change pass — and keep the old files too if
 * workflows started before the change may still be running.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON, type History } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { PATCHED_HISTORIES_DIR, RECORDED_HISTORIES } from './recordedHistories';

interface HistoryJSON {
  events: { eventType: string; activityTaskScheduledEventAttributes?: { activityType: { name: string } } }[];
}

const loadJSON = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as HistoryJSON;
const eventTypes = (json: HistoryJSON) => json.events.map((event) => event.eventType);
const scheduledActivities = (json: HistoryJSON) =>
  json.events.flatMap((event) => (event.activityTaskScheduledEventAttributes ? [event.activityTaskScheduledEventAttributes.activityType.name] : []));

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
const bundle = (workflowsPath: string) => bundleWorkflowCode({ workflowsPath, logger: quietLogger });

const completedJSON = loadJSON(RECORDED_HISTORIES.completed.file);
const cancelledJSON = loadJSON(RECORDED_HISTORIES.cancelled.file);
let completed: History;
let cancelled: History;
let workflowBundle: WorkflowBundle;
let incompatibleBundle: WorkflowBundle;

beforeAll(async () => {
  // Replay workers log every state change at INFO, and Core warns about the expected
  // nondeterminism below; errors the tests care about are thrown, not logged.
  Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  completed = historyFromJSON(completedJSON);
  cancelled = historyFromJSON(cancelledJSON);
  [workflowBundle, incompatibleBundle] = await Promise.all([
    bundle(require.resolve('../../workflows')),
    bundle(require.resolve('./fixtures/incompatibleWorkflows')),
  ]);
});

describe('the recorded histories are what they claim to be', () => {
  test('completed-job: a trainingJob that ran every iteration and completed', () => {
    const types = eventTypes(completedJSON);
    expect(types[0]).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
    expect(types[types.length - 1]).toBe(RECORDED_HISTORIES.completed.lastEvent);
    expect(completedJSON.events[0]).toMatchObject({ workflowExecutionStartedEventAttributes: { workflowType: { name: 'trainingJob' } } });
    const activities = scheduledActivities(completedJSON);
    expect(activities[0]).toBe('startJobRun');
    expect(activities[activities.length - 1]).toBe('finishJob');
    // 2 iterations × 2 queries × group of 4, a policy update and a checkpoint per iteration.
    expect(activities.filter((name) => name === 'runTrajectory')).toHaveLength(16);
    expect(activities.filter((name) => name === 'updatePolicy')).toHaveLength(2);
    expect(activities.filter((name) => name === 'saveCheckpoint')).toHaveLength(2);
  });

  test('cancelled-job: a trainingJob cancelled while trajectories were in flight', () => {
    const types = eventTypes(cancelledJSON);
    expect(types[0]).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
    expect(types[types.length - 1]).toBe(RECORDED_HISTORIES.cancelled.lastEvent);
    expect(cancelledJSON.events[0]).toMatchObject({ workflowExecutionStartedEventAttributes: { workflowType: { name: 'trainingJob' } } });
    expect(types).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED'); // cancel_reason
    expect(types).toContain('EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED');
    expect(types).toContain('EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED');
    const activities = scheduledActivities(cancelledJSON);
    expect(activities).toContain('updatePolicy'); // at least one iteration finished first
    expect(activities[activities.length - 1]).toBe('finishJob');
  });
});

describe('the current trainingJob workflow replays', () => {
  test('the completed job', async () => {
    await Worker.runReplayHistory({ workflowBundle }, completed, RECORDED_HISTORIES.completed.workflowId);
  });

  test('the cancelled job', async () => {
    await Worker.runReplayHistory({ workflowBundle }, cancelled, RECORDED_HISTORIES.cancelled.workflowId);
  });
});

test('an incompatible change (dropping startJobRun) is reported as a DeterminismViolationError', async () => {
  const replay = Worker.runReplayHistory({ workflowBundle: incompatibleBundle }, completed, RECORDED_HISTORIES.completed.workflowId);
  await expect(replay).rejects.toBeInstanceOf(DeterminismViolationError);
  // Caught for the intended reason: the first activity differs, not some other mismatch.
  await expect(replay).rejects.toThrow(/scheduled event 'startJobRun' does not match .*'runTrajectory'/);
});

/** A patch marker's id (`patched()` records one per patch a run takes). */
const patchIds = (json: HistoryJSON) =>
  (json.events as { markerRecordedEventAttributes?: { markerName: string; details: Record<string, { payloads: { data: string }[] }> } }[]).flatMap((event) => {
    const marker = event.markerRecordedEventAttributes;
    if (marker?.markerName !== 'core_patch') return [];
    return [(JSON.parse(Buffer.from(marker.details['patch-data'].payloads[0].data, 'base64').toString('utf8')) as { id: string }).id];
  });

/**
 * Histories recorded at 0e215a2 (tests/replay/recordPatchedHistories.ts) that took every patch of
 * today's workflow, on the paths the two histories above (older than every patch) never reach:
 * evaluation with a test split, a resumed run, a budget that runs out mid-iteration, the kill
 * switch with a budget raise, the no_policy_update control, a cancel. budget-raised.json, recorded
 * at fd6d724, and budget-raised-in-flight.json take the later budget-raise-recorded-first-v1 (raises
 * recorded before they apply; two in flight while a budget check waits for them).
 */
describe('histories that took every patch replay', () => {
  const files = readdirSync(PATCHED_HISTORIES_DIR).filter((file) => file.endsWith('.json')).sort();

  test('there are nine, each with the call-admission patch', () => {
    expect(files).toHaveLength(9);
    for (const file of files) expect(patchIds(loadJSON(path.join(PATCHED_HISTORIES_DIR, file)))).toEqual(expect.arrayContaining(['budget-preflight-v1', 'heldout-evaluation-v1', 'budget-call-admission-v1']));
  });

  test('budget-raised took budget-raise-recorded-first-v1 with three raises recorded (paused.json took the old order)', () => {
    const raised = loadJSON(path.join(PATCHED_HISTORIES_DIR, 'budget-raised.json'));
    expect(patchIds(raised)).toContain('budget-raise-recorded-first-v1');
    expect(patchIds(loadJSON(path.join(PATCHED_HISTORIES_DIR, 'paused.json')))).not.toContain('budget-raise-recorded-first-v1');
    expect(eventTypes(raised).filter((type) => type === 'EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED')).toHaveLength(3);
    expect(scheduledActivities(raised).filter((name) => name === 'recordBudget')).toHaveLength(3);
  });

  test('budget-raised-in-flight had two raises in flight at once and waited for them at a budget check', () => {
    const json = loadJSON(path.join(PATCHED_HISTORIES_DIR, 'budget-raised-in-flight.json'));
    expect(patchIds(json)).toContain('budget-raise-recorded-first-v1');
    const { events } = json;
    const types = eventTypes(json);
    const firstCompleted = types.indexOf('EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED');
    expect(types.slice(0, firstCompleted).filter((t) => t === 'EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED')).toHaveLength(2);
    // The job reached its budget checks (the call-admission patch marker comes before the loop)
    // before either raise was in force, and no trajectory ran until both were: it waited for them.
    const admission = events.findIndex((e) => patchIds({ events: [e] }).includes('budget-call-admission-v1'));
    expect(admission).toBeGreaterThan(-1);
    expect(admission).toBeLessThan(firstCompleted);
    const firstTrajectory = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType.name === 'runTrajectory');
    expect(firstTrajectory).toBeGreaterThan(types.lastIndexOf('EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED'));
    expect(types.at(-1)).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
  });

  test.each(files)('%s', async (file) => {
    const json = loadJSON(path.join(PATCHED_HISTORIES_DIR, file));
    await Worker.runReplayHistory({ workflowBundle }, historyFromJSON(json), `patched-${file}`);
  });
});
