/**
 * `flow status --watch` and `flow cancel --wait` follow a job through api/cli/jobPolling.ts: until
 * the job has ended, waiting out a short run of transient failures and nothing else.
 */
import { FlowApiError, type FlowClient } from '../../api/client/flowClient';
import { pollUntilEnded } from '../../api/cli/jobPolling';
import type { JobStatusResult } from '../../api/schemas';

const statusOf = (status: string, iteration = 0) => ({ job_id: 'j', status, iteration }) as unknown as JobStatusResult;
const unavailable = () => new FlowApiError(-32050, 'Temporal is unavailable, retry later');

/** A client whose get_status answers are `answers`, in order (an Error is thrown). */
function scripted(answers: Array<JobStatusResult | Error>) {
  const calls: string[] = [];
  const api = {
    async getStatus(jobId: string) {
      calls.push(jobId);
      const next = answers.shift();
      if (next === undefined) throw new Error('polled after the job ended');
      if (next instanceof Error) throw next;
      return next;
    },
  } as unknown as FlowClient;
  return { api, calls };
}

test('polls until a terminal status, handing each answer on, and resolves with the last', async () => {
  const { api, calls } = scripted([statusOf('running', 1), statusOf('running', 2), statusOf('completed', 2)]);
  const seen: number[] = [];
  const last = await pollUntilEnded(api, 'j', 1, (s) => seen.push(s.iteration));
  expect(last.status).toBe('completed');
  expect(seen).toEqual([1, 2, 2]);
  expect(calls).toEqual(['j', 'j', 'j']);
});

test('a status the caller already has is not polled again, and a terminal one ends at once', async () => {
  const ended = scripted([]);
  expect(await pollUntilEnded(ended.api, 'j', 1, undefined, statusOf('cancelled'))).toMatchObject({ status: 'cancelled' });
  expect(ended.calls).toEqual([]);
  const running = scripted([statusOf('failed')]);
  const seen: string[] = [];
  expect(await pollUntilEnded(running.api, 'j', 1, (s) => seen.push(s.status), statusOf('running'))).toMatchObject({ status: 'failed' });
  expect(seen).toEqual(['failed']);
});

test('five transient failures in a row are waited out; a sixth, or any other error, ends the wait', async () => {
  const fiveThenDone = scripted([...Array.from({ length: 5 }, unavailable), statusOf('completed')]);
  expect(await pollUntilEnded(fiveThenDone.api, 'j', 1)).toMatchObject({ status: 'completed' });
  // The count restarts after an answer.
  const apart = scripted([...Array.from({ length: 5 }, unavailable), statusOf('running'), ...Array.from({ length: 5 }, unavailable), statusOf('completed')]);
  expect(await pollUntilEnded(apart.api, 'j', 1)).toMatchObject({ status: 'completed' });
  const six = scripted([...Array.from({ length: 6 }, unavailable), statusOf('completed')]);
  await expect(pollUntilEnded(six.api, 'j', 1)).rejects.toMatchObject({ code: -32050 });
  const notFound = scripted([new FlowApiError(-32004, 'Job not found'), statusOf('completed')]);
  await expect(pollUntilEnded(notFound.api, 'j', 1)).rejects.toMatchObject({ code: -32004 });
  expect(notFound.calls).toHaveLength(1);
});
