import { JobStatus as PrismaJobStatus } from '../../generated/prisma/enums';
import { JOB_STATUSES } from '../../training/jobStatus';

test('the database enum job_status has exactly the vocabulary of training/jobStatus.ts', () => {
  expect(Object.values(PrismaJobStatus)).toEqual([...JOB_STATUSES]);
});
