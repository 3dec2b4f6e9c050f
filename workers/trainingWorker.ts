/**
 * A training worker: one Temporal Worker per pool (workflows/taskQueues.ts) on one connection,
 * run together as a WorkerGroup. By default a process polls all three queues; `pools` picks
 * some. Its dependencies (database, LLM endpoint, agent) are passed in, so tests, the demo and
 * `workers/main.ts` wire the same worker.
 */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDependencies } from '../activities';
import { poolTaskQueue, TRAINING_TASK_QUEUE } from '../workflows/taskQueues';
import { DEFAULT_POOL_SETTINGS, WORKER_POOLS, WorkerGroup, type PoolSettings, type WorkerPoolName } from './pools';
import { workerTelemetryOptions } from './telemetry';

export interface TrainingWorkerOptions extends ActivityDependencies {
  connection: NativeConnection;
  namespace?: string;
  /** The workflow task queue; the activity pools poll the queues named after it. */
  taskQueue?: string;
  /** The pools this process polls (default all three). */
  pools?: readonly WorkerPoolName[];
  /** Per-pool concurrency, over DEFAULT_POOL_SETTINGS. */
  poolSettings?: Partial<Record<WorkerPoolName, PoolSettings>>;
  /** A prebuilt bundle (tests bundle once per suite); else the workflows are bundled now. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Activity slots of both activity pools (overrides poolSettings for them). */
  maxConcurrentActivityTaskExecutions?: number;
  /** Last word on the workflow pool's options (tests add coverage sinks here). */
  workerOptionsHook?: (options: WorkerOptions) => WorkerOptions;
  /** Identity shown in the Temporal Web UI, e.g. `worker-<pid>`; the pool name is appended. */
  identity?: string;
  /** How long in-flight tasks get to finish on shutdown (SIGTERM) before they are handed back; default 20 s. */
  shutdownGraceMs?: number;
}

export const DEFAULT_SHUTDOWN_GRACE_S = 20;

export const WORKFLOWS_PATH = require.resolve('../workflows');

export type TrainingWorker = WorkerGroup;

export async function createTrainingWorker(options: TrainingWorkerOptions): Promise<TrainingWorker> {
  const pools = options.pools ?? WORKER_POOLS;
  const baseQueue = options.taskQueue ?? TRAINING_TASK_QUEUE;
  const namespace = options.namespace ?? 'default';
  // Worker.create checks the namespace too, but only after the workflow pool has started its
  // sandbox threads, which then keep the process alive: check first, with a clear message.
  try {
    await options.connection.workflowService.describeNamespace({ namespace });
  } catch (error) {
    throw new Error(`namespace ${JSON.stringify(namespace)} cannot be used: ${(error as Error).message} (TEMPORAL_NAMESPACE names it; create it first)`);
  }
  const activities = pools.some((pool) => pool !== 'workflow') ? createActivities(options) : undefined;
  const members = [];
  // Created one after another: the workflow pool bundles (or loads) the workflow code first.
  for (const pool of WORKER_POOLS.filter((p) => pools.includes(p))) {
    const common: WorkerOptions = {
      connection: options.connection,
      namespace,
      taskQueue: poolTaskQueue(pool, baseQueue),
      ...(options.identity ? { identity: `${options.identity}-${pool}` } : {}),
      // In-flight tasks get this long to finish on shutdown (SIGTERM) before they are handed back.
      shutdownGraceTime: options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_S * 1000,
      // Tracing interceptors, the workflow-span sink and Flow's activity duration metrics.
      ...workerTelemetryOptions(pool === 'workflow' && !options.workflowBundle),
      ...DEFAULT_POOL_SETTINGS[pool],
      ...options.poolSettings?.[pool],
    };
    let workerOptions: WorkerOptions;
    if (pool === 'workflow') {
      workerOptions = {
        ...common,
        ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
      };
      if (options.workerOptionsHook) workerOptions = options.workerOptionsHook(workerOptions);
    } else {
      workerOptions = {
        ...common,
        activities,
        ...(options.maxConcurrentActivityTaskExecutions ? { maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions } : {}),
        // Cancellation reaches an activity only with a heartbeat the worker sends; without this the
        // SDK throttles heartbeats to 80% of the heartbeat timeout, and a cancelled job's running
        // trajectories would finish and be written instead of stopping.
        maxHeartbeatThrottleInterval: '2s',
        defaultHeartbeatThrottleInterval: '2s',
      };
    }
    members.push({ pool, worker: await Worker.create(workerOptions) });
  }
  return new WorkerGroup(members);
}
