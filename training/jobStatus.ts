import { z } from 'zod';

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
