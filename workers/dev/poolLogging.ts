/**
 * What each worker pool polls, said in words. Each pool's Temporal Worker polls one kind of task,
 * so the SDK warns at start-up, once per pool, "No activities registered, not polling for
 * activity tasks" (the workflow pool) or "No workflows registered…" (the activity pools): three
 * lines that read like errors but describe the design. `poolLogFunction` replaces those two
 * messages with a line naming the pool and what it polls, and passes every other entry on.
 */
import { inspect } from 'node:util';
import type { LogEntry } from '@temporalio/worker';
import { WORKER_POOLS, poolTaskQueue, type WorkerPoolName } from '../../workflows/taskQueues';

/** What each pool's worker runs (workflows/taskQueues.ts). */
export const POOL_WORK: Record<WorkerPoolName, string> = {
  workflow: "workflow tasks (the jobs' workflow code)",
  trajectory: 'LLM-bound activities (trajectories, evaluation episodes, the policy updater)',
  cpu: 'CPU and database activities (rewards, advantages, records, checkpoints)',
};

const ONE_KIND_ONLY = /^No (activities|workflows) registered, not polling for (activity|workflow) tasks$/;

/** The pool polling `taskQueue`, for jobs whose workflow task queue is `baseQueue` (null: not one of its pools). */
export function poolOfTaskQueue(taskQueue: string, baseQueue: string): WorkerPoolName | null {
  return WORKER_POOLS.find((pool) => poolTaskQueue(pool, baseQueue) === taskQueue) ?? null;
}

/** The line that says what a pool polls, e.g. `worker pool "cpu" polls task queue flow-training-cpu: CPU and database activities (…)`. */
export function poolLine(pool: WorkerPoolName, taskQueue: string): string {
  return `worker pool "${pool}" polls task queue ${taskQueue}: ${POOL_WORK[pool]}`;
}

/**
 * A Temporal Runtime log function: the SDK's one-kind-only warnings for the pools of `baseQueue()`
 * become `say(poolLine(…))`; everything else goes to `next` (default: the SDK's own format on stderr).
 * The getters are read at each entry, because a process installs its Runtime (and logger) only once.
 */
export function poolLogFunction(say: () => (line: string) => void, baseQueue: () => string, next: (entry: LogEntry) => void = sdkFormat): (entry: LogEntry) => void {
  return (entry) => {
    const taskQueue = typeof entry.meta?.taskQueue === 'string' ? entry.meta.taskQueue : null;
    const pool = taskQueue !== null && ONE_KIND_ONLY.test(entry.message) ? poolOfTaskQueue(taskQueue, baseQueue()) : null;
    if (pool && taskQueue) say()(poolLine(pool, taskQueue));
    else next(entry);
  };
}

/** The SDK's DefaultLogger format: `<ISO time> [LEVEL] message {meta}` on stderr. */
function sdkFormat(entry: LogEntry): void {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  process.stderr.write(`${time} [${entry.level}] ${entry.message}${entry.meta ? ` ${inspect(entry.meta)}` : ''}\n`);
}
