/**
 * The demo's progress lines (workers/dev/demoJob.ts followJob) poll the job's status query every
 * 250 ms. Temporal's connection adds an abort listener to the signal of every call it makes under
 * `withAbortSignal` and never removes it; a signal shared by every poll piled them up (Node's
 * MaxListenersExceededWarning in `npm start` after 11 polls). The fake connection below does
 * what the SDK does, so the test sees what a long demo would.
 */
import { getEventListeners } from 'node:events';
import type { Client, Connection } from '@temporalio/client';
import type { FlowClient } from '../../api/client/flowClient';
import { followJob } from '../../workers/dev/demoJob';
import type { Interrupt } from '../../workers/dev/demoStack';

test('each status poll gets a signal of its own, so no abort listener outlives its query', async () => {
  const statuses = [0, 0.25, 0.5, 0.5, 0.5].map((rate, i, all) => ({
    status: i === all.length - 1 ? 'completed' : 'running',
    success_rates: all.slice(0, i + 1).map(() => rate),
    lessons: i,
    spend_usd: 0,
  }));
  let polls = 0;
  const signals = new Set<AbortSignal>();
  let mostListeners = 0;
  const connection = {
    async withAbortSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
      // As @temporalio/client's unary calls do: a listener per call, never removed.
      signal.addEventListener('abort', () => undefined);
      signals.add(signal);
      mostListeners = Math.max(mostListeners, getEventListeners(signal, 'abort').length);
      return fn();
    },
  } as unknown as Connection;
  const client = { workflow: { getHandle: () => ({ query: async () => statuses[Math.min(polls++, statuses.length - 1)] }) } } as unknown as Client;
  const lines: string[] = [];
  const interrupt: Interrupt = { signalled: new Promise<void>(() => undefined), interrupted: false, dispose: () => undefined };

  await followJob({ jobId: 'job-1', iterations: 5, localModel: false, client, connection, flow: {} as FlowClient }, interrupt, (line) => lines.push(line));

  expect(polls).toBe(statuses.length);
  expect(lines.filter((line) => line.startsWith('iteration'))).toHaveLength(5);
  // One signal per poll, each holding only its own query's listener.
  expect(signals.size).toBe(polls);
  expect(mostListeners).toBe(1);
}, 20_000);
