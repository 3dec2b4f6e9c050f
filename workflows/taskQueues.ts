/**
 * Task queues, one per worker pool. Workflow tasks go to the job's own queue (the one it was
 * started on, `flow-training` by default); its activities go to two queues named after it, so
 * every deployment (and every test, with a queue of its own) has its own set of three:
 *  - `<queue>`              workflow tasks: light, CPU-bound replay of histories;
 *  - `<queue>-trajectories` LLM-bound activities (agent runs, the policy updater's LLM call):
 *                           mostly waiting on the network, so high concurrency;
 *  - `<queue>-cpu`          CPU and database activities (rewards, advantages, records,
 *                           checkpoints, prices, budget alerts): bounded by cores and the DB pool.
 * Pure names only: imported by workflow code.
 */

/** The workflow task queue training jobs start on by default. */
export const TRAINING_TASK_QUEUE = 'flow-training';

export const WORKER_POOLS = ['workflow', 'trajectory', 'cpu'] as const;
export type WorkerPoolName = (typeof WORKER_POOLS)[number];

export function trajectoryTaskQueue(workflowTaskQueue: string): string {
  return `${workflowTaskQueue}-trajectories`;
}

export function cpuTaskQueue(workflowTaskQueue: string): string {
  return `${workflowTaskQueue}-cpu`;
}

/** The queue a pool polls, for jobs started on `workflowTaskQueue`. */
export function poolTaskQueue(pool: WorkerPoolName, workflowTaskQueue: string): string {
  if (pool === 'trajectory') return trajectoryTaskQueue(workflowTaskQueue);
  if (pool === 'cpu') return cpuTaskQueue(workflowTaskQueue);
  return workflowTaskQueue;
}
