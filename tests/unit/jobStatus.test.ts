import { JobStatus as PrismaJobStatus } from '../../generated/prisma/enums';
import { JobStatusResultSchema, JobSummarySchema } from '../../api/schemas';
import { JOB_PHASES, JOB_STATUSES, JobPhaseSchema, JobStatusReportSchema, TrainingJobStatusSchema } from '../../training/jobStatus';

test('the database enum job_status has exactly the vocabulary of training/jobStatus.ts', () => {
  expect(Object.values(PrismaJobStatus)).toEqual([...JOB_STATUSES]);
});

test('one status report: the workflow status query and the API results carry all of its fields', () => {
  expect(JobPhaseSchema.options).toEqual([...JOB_PHASES]);
  const report = Object.keys(JobStatusReportSchema.shape);
  expect(Object.keys(TrainingJobStatusSchema.shape)).toEqual(expect.arrayContaining(report));
  expect(Object.keys(JobStatusResultSchema.shape)).toEqual(expect.arrayContaining(report));
  // list_jobs leaves out what a list does not need: the metrics and the evaluation.
  expect(report.filter((key) => !(key in JobSummarySchema.shape))).toEqual(['last_metrics', 'evaluation']);
});
