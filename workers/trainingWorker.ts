/**
 * A training worker: polls the training task queue for workflow and activity tasks. Its
 * dependencies (database, LLM endpoint, agent) are passed in, so tests, the demo and
 * `workers/main.ts` wire the same worker.
 */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDependencies } from '../activities';
import { TRAINING_TASK_QUEUE } from '../workflows/taskQueues';
import { workerTelemetryOptions } from './telemetry';

export interface TrainingWorkerOptions extends ActivityDependencies {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  /** A prebuilt bundle (tests bundle once per suite); else the workflows are bundled now. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivityTaskExecutions?: number;
  /** Last word on the worker options (tests add coverage sinks here). */
  workerOptionsHook?: (options: WorkerOptions) => WorkerOptions;
  /** Identity shown in the Temporal Web UI, e.g. `worker-<pid>`. */
  identity?: string;
}

export const WORKFLOWS_PATH = require.resolve('../workflows');

export function createTrainingWorker(options: TrainingWorkerOptions): Promise<Worker> {
  const workerOptions: WorkerOptions = {
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? TRAINING_TASK_QUEUE,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities(options),
    ...(options.identity ? { identity: options.identity } : {}),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 100,
    // Cancellation reaches an activity only with a heartbeat the worker sends; without this the
    // SDK throttles heartbeats to 80% of the heartbeat timeout, and a cancelled job's running
    // trajectories would finish and be written instead of stopping.
    maxHeartbeatThrottleInterval: '2s',
    defaultHeartbeatThrottleInterval: '2s',
    // In-flight activities get this long to finish on shutdown before they are handed back.
    shutdownGraceTime: '20s',
    // Tracing interceptors, the workflow-span sink and Flow's activity duration metrics.
    ...workerTelemetryOptions(!options.workflowBundle),
  };
  return Worker.create(options.workerOptionsHook ? options.workerOptionsHook(workerOptions) : workerOptions);
}
