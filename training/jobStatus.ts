import { z } from 'zod';
import { EvaluationSummarySchema } from './evaluation';
import { IterationMetricsSchema } from './iterationMetrics';

/**
 * The one job-status vocabulary. The database enum (`job_status` in prisma/schema.prisma),
 * the workflow's status query, the `FlowJobStatus` search attribute and the API all use
 * exactly these words; tests/unit/jobStatus.test.ts fails if the Prisma enum drifts.
 */
export const JOB_STATUSES = [
  'queued',
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
  'budget_exceeded',
] as const;

export const JobStatusSchema = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatusSchema>;

const TERMINAL: ReadonlySet<JobStatus> = new Set<JobStatus>(['completed', 'failed', 'cancelled', 'budget_exceeded']);

/** A terminal job has no workflow left running; its status comes from the database row. */
export function isTerminalJobStatus(status: JobStatus): boolean {
  return TERMINAL.has(status);
}

/** Where a job is inside its run: the workflow's status query and the row's `phase` column. */
export const JOB_PHASES = ['starting', 'collecting', 'updating_policy', 'evaluating', 'checkpointing', 'paused', 'finished'] as const;
export const JobPhaseSchema = z.enum(JOB_PHASES);
export type JobPhase = z.infer<typeof JobPhaseSchema>;

/**
 * A job's status report, the one shape of it: the workflow's status query extends it
 * (`TrainingJobStatusSchema`), and the API's training.get_status and training.list_jobs results
 * (api/schemas.ts) take their shared fields from it and add what the `training_jobs` row keeps.
 */
export const JobStatusReportSchema = z.object({
  job_id: z.string(),
  agent_id: z.string(),
  status: JobStatusSchema,
  run: z.number().int(),
  iteration: z.number().int().describe('Iterations finished.'),
  iterations: z.number().int().describe('Iterations configured.'),
  phase: JobPhaseSchema,
  last_metrics: IterationMetricsSchema.nullable(),
  spend_usd: z.number(),
  budget_usd: z.number(),
  /** The latest held-out evaluation: trained against baseline. */
  evaluation: EvaluationSummarySchema.nullable(),
  reason: z.string().nullable(),
});
export type JobStatusReport = z.infer<typeof JobStatusReportSchema>;

/** What the `trainingJob` workflow's status query answers: the report and the run's live counters. */
export const TrainingJobStatusSchema = JobStatusReportSchema.extend({
  /** Groups finished in the iteration under way. */
  groups_done: z.number().int(),
  groups_total: z.number().int(),
  trajectories: z.number().int(),
  /** Budget alert thresholds (fractions of the budget) raised so far, each once. */
  budget_alerts: z.array(z.number()),
  policy_version: z.number().int(),
  lessons: z.number().int(),
  /** Success rate per finished iteration, oldest first. */
  success_rates: z.array(z.number()),
});
export type TrainingJobStatus = z.infer<typeof TrainingJobStatusSchema>;
