/**
 * The activity stubs of a training job, grouped by what they need from Temporal (task queue,
 * timeouts, retries, cancellation), and the context every step of the job works with.
 */
import { ActivityCancellationType, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { TrainingActivities } from '../activities';
import type { TrainingJobInput } from '../training/jobInput';
import type { ConcurrencyLimit } from './concurrencyLimit';
import { cpuTaskQueue, trajectoryTaskQueue } from './taskQueues';
import { evaluationEpisodeOptions, HEARTBEAT_TIMEOUT, infrastructureRetry } from './activityOptions';
import type { TrainingJobState } from './trainingJobState';

export type TrainingJobActivities = ReturnType<typeof activitiesFor>;

/** One job's run: its validated input, its state, its activity stubs and its limit of calls in flight. */
export interface Job {
  input: TrainingJobInput;
  state: TrainingJobState;
  acts: TrainingJobActivities;
  limit: ConcurrencyLimit;
}

/** Activity stubs grouped by what they need from Temporal. */
export function activitiesFor(input: TrainingJobInput) {
  const retried = infrastructureRetry(input);
  const trajectories = proxyActivities<Pick<TrainingActivities, 'runTrajectory'>>({
    // Worker pools (workflows/taskQueues.ts); task priority is inherited from the workflow.
    taskQueue: trajectoryTaskQueue(workflowInfo().taskQueue),
    // The agent's own timeout ends a run as a failed trajectory; this bound is for lost workers.
    startToCloseTimeout: `${input.config.trajectory_timeout_seconds + 60}s`,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    // Wait for in-flight trajectories to stop before the job is recorded cancelled.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    ...retried,
  });
  const scoring = proxyActivities<Pick<TrainingActivities, 'rewardGroup' | 'computeGroupAdvantages'>>({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    // An LLM judge makes one call per trajectory (RULER one per group) with a slow model.
    startToCloseTimeout: '5m',
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    ...retried,
  });
  const policy = proxyActivities<Pick<TrainingActivities, 'updatePolicy' | 'proposeLessonOperations'>>({
    // LLM-bound (the optimizer model distils lessons), so with the trajectories.
    taskQueue: trajectoryTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '5m',
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    ...retried,
  });
  const records = proxyActivities<
    Pick<
      TrainingActivities,
      | 'startJobRun'
      | 'recordJobProgress'
      | 'recordIteration'
      | 'saveCheckpoint'
      | 'loadCheckpoint'
      | 'finishJob'
      | 'setJobStatus'
      | 'recordBudget'
      | 'recordBudgetAlert'
      | 'recordEvaluation'
    >
  >({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    // Single writes: a lost worker is noticed after this, not minutes later.
    startToCloseTimeout: '10s',
    ...retried,
  });
  const budget = proxyActivities<Pick<TrainingActivities, 'resolvePrices' | 'sendBudgetAlert'>>({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '30s',
    // A webhook that is down is retried for a while, never forever: the job goes on regardless.
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 8 },
  });
  const evaluation = proxyActivities<Pick<TrainingActivities, 'runEvaluationEpisodes'>>(evaluationEpisodeOptions(input));
  // Policy hygiene's consolidation: pure arithmetic and a tokenizer over one iteration's rows.
  const consolidation = proxyActivities<Pick<TrainingActivities, 'consolidatePolicy'>>({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '2m',
    ...retried,
  });
  return { trajectories, scoring, policy, records, budget, evaluation, consolidation };
}
