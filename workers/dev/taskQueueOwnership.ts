/**
 * One Flow install per task queue: a worker polling a queue takes any job started on it, so two
 * installs (two databases) on one queue split a job's trajectories between them and fail it.
 * Before the demo polls, it asks Temporal who else polls its queues (pollers seen in the last
 * few minutes; a worker that shut down cleanly is forgotten at once where the server has
 * frontend.enableCancelWorkerPollsOnShutdown, as Flow's do) and refuses to share them unless told to.
 */
import { temporal } from '@temporalio/proto';
import type { Connection } from '@temporalio/client';
import { poolTaskQueue, WORKER_POOLS } from '../../workflows/taskQueues';

const { TaskQueueType } = temporal.api.enums.v1;

/** Identities polling `taskQueue`'s three queues (workflow, trajectories, cpu) that do not start with `ownPrefix`. */
export async function foreignPollers(connection: Pick<Connection, 'workflowService'>, namespace: string, taskQueue: string, ownPrefix: string): Promise<string[]> {
  const found = new Set<string>();
  for (const pool of WORKER_POOLS) {
    const name = poolTaskQueue(pool, taskQueue);
    const type = pool === 'workflow' ? TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW : TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY;
    const { pollers } = await connection.workflowService.describeTaskQueue({ namespace, taskQueue: { name }, taskQueueType: type });
    for (const poller of pollers ?? []) {
      if (poller.identity && !poller.identity.startsWith(ownPrefix)) found.add(`${poller.identity} on ${name}`);
    }
  }
  return [...found];
}

export class SharedTaskQueueError extends Error {
  constructor(namespace: string, taskQueue: string, pollers: string[]) {
    super(
      `task queue ${taskQueue} in namespace ${namespace} is polled by workers this demo did not start (${pollers.join('; ')}); ` +
        'another Flow install on it would take this install\'s jobs. Set FLOW_TASK_QUEUE to a queue of its own (or TEMPORAL_NAMESPACE to a namespace of its own), ' +
        'or FLOW_DEMO_SHARE_TASK_QUEUE=1 if those workers use this same database',
    );
    this.name = 'SharedTaskQueueError';
  }
}
