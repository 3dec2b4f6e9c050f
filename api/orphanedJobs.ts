/**
 * A job row is written `queued` before its workflow starts. If the API dies in between (a start
 * without an idempotency key), no workflow will ever move the row: the reconciler ends such rows
 * as `failed` with a reason once they are older than a grace period, and a cancel ends one at once.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Repositories } from '../adapters/db';
import type { JobStatus } from '../training/jobStatus';

/** A row is written milliseconds before its workflow starts; one still alone after this is orphaned. */
export const ORPHAN_GRACE_MS = 60_000;
/** How often the API process looks for orphaned rows. */
export const ORPHAN_SCAN_INTERVAL_MS = 30_000;

/** True when no run of the job's workflow is running (none was ever started, or the last one ended). */
export async function hasNoRunningWorkflow(client: Client, jobId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(jobId).describe()).status.name !== 'RUNNING';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return true;
    throw error;
  }
}

/** Ends a `queued` row with no running workflow; false when it is not one (or moved on meanwhile). */
export async function endOrphanedJob(client: Client, repos: Repositories, jobId: string, status: JobStatus, reason: string): Promise<boolean> {
  if (!(await hasNoRunningWorkflow(client, jobId))) return false;
  return repos.jobs.finishIfQueued(jobId, status, reason);
}

/** One pass: the ids of the rows it ended. */
export async function reconcileOrphanedJobs(client: Client, repos: Repositories, graceMs = ORPHAN_GRACE_MS): Promise<string[]> {
  const ended: string[] = [];
  for (const jobId of await repos.jobs.queuedSince(new Date(Date.now() - graceMs))) {
    const reason = `its workflow was never started (the API stopped between recording the job and starting it); found after ${Math.round(graceMs / 1000)} s`;
    if (await endOrphanedJob(client, repos, jobId, 'failed', reason)) ended.push(jobId);
  }
  return ended;
}

/** Runs a pass every `intervalMs` until stopped; a pass that fails is logged and the next one tries again. */
export function startOrphanReconciler(client: Client, repos: Repositories, log: (message: string) => void, intervalMs = ORPHAN_SCAN_INTERVAL_MS) {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = reconcileOrphanedJobs(client, repos).then(
      (ended) => ended.forEach((jobId) => log(`job ${jobId}: queued with no workflow, marked failed`)),
      (error: Error) => log(`orphaned-job reconciliation failed (retried in ${intervalMs / 1000} s): ${error.message}`),
    );
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
