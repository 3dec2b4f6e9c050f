/**
 * Durations of the two LLM-bound activities, measured once around their execution by a
 * Temporal activity interceptor (every worker built by workers/trainingWorker.ts has it), so
 * the activity code itself stays free of timing.
 */
import type { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { PRIORITY_KEYS } from '../training/priority';
import type { RunTrajectoryInput, TrajectorySummary } from '../activities/trajectories';
import type { PolicyUpdateResult } from '../activities/policyUpdate';
import { recordPolicyUpdateDuration, recordTrajectoryDuration } from '../adapters/telemetry/metrics';

const PRIORITY_BY_KEY = new Map(Object.entries(PRIORITY_KEYS).map(([name, key]) => [key, name]));

/** The job's priority, read back from the Temporal task priority its activities inherit. */
export function priorityLabel(priorityKey: number | undefined): string {
  return (priorityKey !== undefined && PRIORITY_BY_KEY.get(priorityKey)) || 'unset';
}

function failureOutcome(error: unknown): string {
  return error instanceof CancelledFailure || (error as Error)?.name === 'AbortError' ? 'cancelled' : 'error';
}

/** success / failure (the agent answered wrong) / error (timeout, agent error, allowance). */
function trajectoryOutcome(summary: TrajectorySummary): string {
  if (summary.error) return 'error';
  return summary.success ? 'success' : 'failure';
}

/** applied (operations were applied) / skipped (policy left unchanged, e.g. no positive trajectories). */
function policyUpdateOutcome(result: PolicyUpdateResult): string {
  return result.skipped_reason ? 'skipped' : 'applied';
}

export class ActivityMetricsInterceptor implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const type = this.ctx.info.activityType;
    if (type !== 'runTrajectory' && type !== 'updatePolicy') return next(input);
    const priority = priorityLabel(this.ctx.info.priority?.priorityKey);
    const started = performance.now();
    let outcome = 'error';
    try {
      const result = await next(input);
      outcome = type === 'runTrajectory' ? trajectoryOutcome(result as TrajectorySummary) : policyUpdateOutcome(result as PolicyUpdateResult);
      return result;
    } catch (error) {
      outcome = failureOutcome(error);
      throw error;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      if (type === 'runTrajectory') {
        recordTrajectoryDuration(seconds, { agent: (input.args[0] as RunTrajectoryInput).agent_id, priority, outcome });
      } else {
        recordPolicyUpdateDuration(seconds, { priority, outcome });
      }
    }
  }
}

/** For WorkerOptions.interceptors.activity. */
export const activityMetricsInterceptor = (ctx: Context) => ({ inbound: new ActivityMetricsInterceptor(ctx) });
