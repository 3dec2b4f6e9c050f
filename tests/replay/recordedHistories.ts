/** Where tests/replay/recordHistories.ts writes the histories the replay tests replay. */
import path from 'node:path';

export const HISTORIES_DIR = path.join(__dirname, 'histories');

/** Histories that took every patch of today's trainingJob (tests/replay/recordPatchedHistories.ts). */
export const PATCHED_HISTORIES_DIR = path.join(HISTORIES_DIR, 'patched');

export const RECORDED_HISTORIES = {
  completed: { workflowId: 'replay-completed-job', file: path.join(HISTORIES_DIR, 'completed-job.json'), lastEvent: 'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED' },
  cancelled: { workflowId: 'replay-cancelled-job', file: path.join(HISTORIES_DIR, 'cancelled-job.json'), lastEvent: 'EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED' },
} as const;
