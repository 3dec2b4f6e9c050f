/**
 * Following a job from the command line (`flow status --watch`, `flow cancel --wait`): get_status
 * every interval until the job has ended. The request that mattered has been sent by then, so a
 * hiccup (the API restarting, a proxy's 502, a dropped connection) is waited out, up to
 * MAX_TRANSIENT_FAILURES in a row; any other error ends the wait.
 */
import { isTerminalJobStatus } from '../../training/jobStatus';
import type { FlowClient } from '../client/flowClient';
import type { JobStatusResult } from '../schemas';
import { isTransient } from './errors';
import { sleep } from './io';

const MAX_TRANSIENT_FAILURES = 5;

/**
 * Resolves with the job's status once it is terminal. Each answer after `latest` (the status the
 * caller already has, if any) goes to `onStatus`; with `latest`, the first poll waits an interval.
 */
export async function pollUntilEnded(
  api: FlowClient,
  jobId: string,
  intervalMs: number,
  onStatus: (status: JobStatusResult) => void = () => undefined,
  latest?: JobStatusResult,
): Promise<JobStatusResult> {
  let failures = 0;
  let waitFirst = latest !== undefined;
  for (;;) {
    if (latest && isTerminalJobStatus(latest.status)) return latest;
    if (waitFirst) await sleep(intervalMs);
    waitFirst = true;
    try {
      latest = await api.getStatus(jobId);
      failures = 0;
    } catch (error) {
      if (!isTransient(error) || ++failures > MAX_TRANSIENT_FAILURES) throw error;
      continue;
    }
    onStatus(latest);
  }
}
