/**
 * Timeouts and retries shared by the workflows. An activity fails only for lack of its
 * infrastructure (the database, blob store or model provider unreachable, its worker lost):
 * agent errors, and requests the provider refuses, are recorded outcomes. So activities are retried until the job's infrastructure window
 * ends, not a fixed number of times, and a lost worker is noticed by a heartbeat timeout of
 * seconds instead of a start-to-close timeout of minutes.
 */
import { ActivityCancellationType, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { TrainingJobInput } from '../training/jobInput';
import { trajectoryTaskQueue } from './taskQueues';

/** A live activity heartbeats every second (activities/keepAlive.ts); one silent this long is lost. */
export const HEARTBEAT_TIMEOUT = '10s';

/** Retried with backoff (at most 10 s apart) until `config.infrastructure_retry_minutes` have passed. */
export function infrastructureRetry(input: TrainingJobInput) {
  return {
    scheduleToCloseTimeout: `${input.config.infrastructure_retry_minutes}m`,
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
  } as const;
}

/** The evaluation episodes of a held-out evaluation, scheduled or on demand. */
export function evaluationEpisodeOptions(input: TrainingJobInput): ActivityOptions {
  const { config } = input;
  return {
    taskQueue: trajectoryTaskQueue(workflowInfo().taskQueue),
    // One activity runs eval_samples episodes one after another, heartbeating every second.
    startToCloseTimeout: `${(config.trajectory_timeout_seconds + 10) * config.eval_samples + 60}s`,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    // Wait for running episodes to stop before the job is recorded cancelled.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    ...infrastructureRetry(input),
  };
}
