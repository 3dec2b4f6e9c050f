/**
 * Flow's training metrics (FLOW-013), as OpenTelemetry instruments. Activities and the API
 * record through the functions here (never workflow code: replays would count twice); the
 * process entry points (api/telemetry.ts, workers/telemetry.ts) export them on a Prometheus
 * endpoint. Without a meter provider (tests, tools) every call here is a no-op.
 *
 * Labels are bounded: agent, priority, final status or outcome — never a job id.
 * docs/monitoring/training_metrics.md documents every metric, its buckets and example PromQL.
 */
import { metrics, type Counter, type Histogram, type Meter } from '@opentelemetry/api';
import { LRUCache } from 'lru-cache';

export const METER_NAME = 'flow';

/** Histogram buckets in seconds (the OTel defaults are meant for milliseconds). */
export const TRAJECTORY_DURATION_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
export const POLICY_UPDATE_DURATION_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What a job row says about a job, as far as metrics care (the training_jobs row shape). */
export interface JobLabels {
  agentId: string;
  priority: string;
}

interface Instruments {
  jobsCreated: Counter;
  jobsCompleted: Counter;
  jobsFailed: Counter;
  spendUsd: Counter;
  trajectoryDuration: Histogram;
  policyUpdateDuration: Histogram;
}

/**
 * Budget usage of the jobs this process reported on recently, by job id (kept here only; the
 * exported series is the max per agent and priority). Finished jobs leave at once; a job whose
 * progress moved to another worker ages out.
 */
const budgetUsage = new LRUCache<string, { agent: string; priority: string; ratio: number }>({ max: 10_000, ttl: 15 * 60_000 });

/** Every agent/priority pair the gauge has shown (bounded like the labels themselves). */
const budgetLabelSets = new Map<string, { agent: string; priority: string }>();

let current: { meter: Meter; instruments: Instruments } | null = null;

/**
 * The instruments of the global meter provider. The metrics API has no proxy provider: a meter
 * taken before the SDK starts stays a no-op, so instruments are (re)made when the meter changes.
 */
function instruments(): Instruments {
  const meter = metrics.getMeter(METER_NAME);
  if (current?.meter === meter) return current.instruments;
  const made: Instruments = {
    jobsCreated: meter.createCounter('training_jobs_created', { description: 'Training jobs started through the API' }),
    jobsCompleted: meter.createCounter('training_jobs_completed', { description: 'Training jobs that ended completed' }),
    jobsFailed: meter.createCounter('training_jobs_failed', {
      description: 'Training jobs that ended without completing (status: failed, cancelled or budget_exceeded)',
    }),
    spendUsd: meter.createCounter('training_spend_usd', { description: 'USD spent on LLM calls by training jobs', unit: 'USD' }),
    trajectoryDuration: meter.createHistogram('trajectory_generation_duration_seconds', {
      description: 'Wall time of one trajectory activity (agent run and its write)',
      unit: 's',
      advice: { explicitBucketBoundaries: TRAJECTORY_DURATION_BUCKETS_SECONDS },
    }),
    policyUpdateDuration: meter.createHistogram('policy_update_duration_seconds', {
      description: 'Wall time of one policy-update activity (the optimizer LLM call and applying its operations)',
      unit: 's',
      advice: { explicitBucketBoundaries: POLICY_UPDATE_DURATION_BUCKETS_SECONDS },
    }),
  };
  meter
    .createObservableGauge('training_budget_usage_ratio', {
      description: 'Highest spend / budget among running jobs of this agent and priority (1 = budget spent; 0 = none running)',
    })
    .addCallback((result) => {
      // The SDK repeats an attribute set's last value once it is no longer observed, so label sets
      // whose jobs all ended report 0 instead of their last job's ratio.
      const highest = new Map<string, { agent: string; priority: string; ratio: number }>();
      for (const [key, labels] of budgetLabelSets) highest.set(key, { ...labels, ratio: 0 });
      for (const usage of budgetUsage.values()) {
        const key = `${usage.agent}\u0000${usage.priority}`;
        budgetLabelSets.set(key, { agent: usage.agent, priority: usage.priority });
        if ((highest.get(key)?.ratio ?? -1) < usage.ratio) highest.set(key, usage);
      }
      for (const { agent, priority, ratio } of highest.values()) result.observe(ratio, { agent, priority });
    });
  current = { meter, instruments: made };
  return made;
}

/** The API started a new job (not an idempotent retry that found one). */
export function countJobCreated(agent: string, priority: string): void {
  instruments().jobsCreated.add(1, { agent, priority });
}

/** A job ended; `row` is its training_jobs row after the final write. */
export function countJobFinished(row: JobLabels & { id: string; status: string }): void {
  budgetUsage.delete(row.id);
  const labels = { agent: row.agentId, priority: row.priority, status: row.status };
  if (row.status === 'completed') instruments().jobsCompleted.add(1, labels);
  else instruments().jobsFailed.add(1, labels);
}

/**
 * A progress report: the spend added since the previous report (`spentBeforeUsd`, the row's
 * spend before this write, returned by the same locking statement, so two workers never count
 * the same dollars) and the job's budget usage now.
 */
export function recordBudgetUsage(row: JobLabels & { id: string; spendUsd: number; budgetUsd: number }, spentBeforeUsd: number): void {
  const labels = { agent: row.agentId, priority: row.priority };
  const added = row.spendUsd - spentBeforeUsd;
  const { spendUsd } = instruments(); // also registers the budget gauge's callback
  if (added > 0) spendUsd.add(added, labels);
  const ratio = row.budgetUsd > 0 ? row.spendUsd / row.budgetUsd : 0;
  budgetUsage.set(row.id, { agent: row.agentId, priority: row.priority, ratio });
}

export function recordTrajectoryDuration(seconds: number, labels: { agent: string; priority: string; outcome: string }): void {
  instruments().trajectoryDuration.record(seconds, labels);
}

export function recordPolicyUpdateDuration(seconds: number, labels: { priority: string; outcome: string }): void {
  instruments().policyUpdateDuration.record(seconds, labels);
}
