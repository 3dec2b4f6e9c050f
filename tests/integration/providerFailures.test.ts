/**
 * A model provider that cannot answer, against a real local OpenAI-compatible server: the chat
 * client tells a provider at fault (5xx, 429 with its Retry-After, a refused connection, an
 * answer broken off, not JSON or without a message) from a request the provider refuses (other
 * 4xx), says what each was billed, and closes the connection of a call it stops waiting for. On
 * Temporal, an outage is retried until the provider is back: the job completes with every
 * trajectory run, instead of recording the outage as failed trajectories.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChatClient, ProviderUnavailableError } from '../../adapters/llm/chatClient';
import { JUDGE_MARKER } from '../../activities/llm/judge';
import { costOf } from '../../adapters/llm/pricing';
import { startTrainingJob } from '../../api/trainingJobs';
import type { Task } from '../../training/task';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { startSimulatedModelServer, type ScriptedResponse, type SimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { jobRequest, startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/apiHarness';

const MODEL = 'flow-sim-1';
const request = { model: MODEL, messages: [{ role: 'user' as const, content: 'What is the capital of France?' }], max_tokens: 32 };
const NO_CHOICES_USAGE = { prompt_tokens: 10, completion_tokens: 1 };

describe('the chat client against a provider at fault', () => {
  let server: SimulatedModelServer;
  let next: ScriptedResponse;
  let requests = 0;
  beforeAll(async () => {
    server = await startSimulatedModelServer({
      respond: () => {
        requests += 1;
        return next;
      },
    });
  });
  afterAll(async () => {
    await server.close();
  });
  const failure = async (scripted: ScriptedResponse, signal?: AbortSignal) => {
    next = scripted;
    return new ChatClient({ baseURL: server.url }).complete(request, signal).then(
      () => undefined,
      (error: unknown) => error as Error,
    );
  };

  // 5xx refusals billed nothing (a bad gateway mostly never reached the provider); a gateway or
  // server that gave up waiting (504, 408) while the provider behind it may have gone on
  // generating leaves the billing unknown.
  test.each([
    [500, 'none'],
    [503, 'none'],
    [502, 'none'],
    [504, 'unknown'],
    [408, 'unknown'],
  ] as const)('HTTP %i: the provider is unavailable; billed: %s', async (status, billing) => {
    requests = 0;
    const error = await failure({ kind: 'http_error', status });
    // Sent once: portkey-ai's own retry is off (its second request was invisible to the spend
    // ledger); the budget guard sends a 5xx call again itself, as a call of its own.
    expect(requests).toBe(1);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect(error!.message).toMatch(new RegExp(`^${MODEL}: HTTP ${status}: `));
    expect((error as ProviderUnavailableError).billing).toBe(billing);
    // Sent again at once by the budget guard: a 5xx, but not a 504 (something timed out waiting: the provider may have billed it).
    expect((error as ProviderUnavailableError).sendAgain).toBe(status >= 500 && status !== 504);
  });

  test('a 5xx with Retry-After asks for patience: not sent again at once, the wait passed on', async () => {
    const error = await failure({ kind: 'http_error', status: 503, headers: { 'retry-after': '2' } });
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect({ sendAgain: (error as ProviderUnavailableError).sendAgain, retryAfterMs: (error as ProviderUnavailableError).retryAfterMs }).toEqual({ sendAgain: false, retryAfterMs: 2000 });
  });

  test('a connection reset after the request went out: unavailable, billing unknown', async () => {
    const resetting = http.createServer((req) => req.on('data', () => undefined).on('end', () => req.socket.destroy()));
    await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
    try {
      const error = await new ChatClient({ baseURL: `http://127.0.0.1:${(resetting.address() as AddressInfo).port}/v1` }).complete(request).catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect((error as ProviderUnavailableError).billing).toBe('unknown');
      expect((error as ProviderUnavailableError).sendAgain).toBe(true);
      expect((error as Error).message).toMatch(new RegExp(`^${MODEL}: no answer: `));
    } finally {
      await new Promise((resolve) => resetting.close(resolve));
    }
  });

  test('HTTP 429 carries the provider\'s Retry-After, in seconds or as a date', async () => {
    const seconds = await failure({ kind: 'http_error', status: 429, headers: { 'retry-after': '3' } });
    expect(seconds).toBeInstanceOf(ProviderUnavailableError);
    expect((seconds as ProviderUnavailableError).retryAfterMs).toBe(3000);
    const date = await failure({ kind: 'http_error', status: 429, headers: { 'retry-after': new Date(Date.now() + 20_000).toUTCString() } });
    expect((date as ProviderUnavailableError).retryAfterMs).toBeGreaterThan(15_000);
    expect((date as ProviderUnavailableError).retryAfterMs).toBeLessThanOrEqual(20_000);
  });

  test("a 429's Retry-After is its own, even when another call's answer arrives while its body is read", async () => {
    // A provider that answers the first request 429 at once but sends its body 300 ms later, and
    // the second request 200 with no Retry-After in between (portkey-ai keeps one set of
    // response headers per client object, shared by concurrent calls).
    let requests = 0;
    const provider = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        requests += 1;
        if (requests === 1) {
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
          res.flushHeaders();
          setTimeout(() => res.end(JSON.stringify({ error: { message: 'slow down' } })), 300);
          return;
        }
        const completion = { id: 'c', object: 'chat.completion', created: 0, model: MODEL, choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion));
      });
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    try {
      const client = new ChatClient({ baseURL: `http://127.0.0.1:${(provider.address() as AddressInfo).port}/v1` });
      const limited = client.complete(request).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await client.complete(request)).message.content).toBe('ok');
      const error = await limited;
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect((error as ProviderUnavailableError).retryAfterMs).toBe(7000);
    } finally {
      await new Promise((resolve) => provider.close(resolve));
    }
  });

  test('HTTP 400 is a request the provider refuses: the agent\'s error, not an outage', async () => {
    const error = await failure({ kind: 'http_error', status: 400, body: '{"error":{"message":"context too long"}}' });
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ProviderUnavailableError);
    expect(error!.message).toMatch(new RegExp(`^${MODEL}: HTTP 400: `));
  });

  test('an answer that is not JSON, or breaks off, is an outage whose billing is unknown', async () => {
    for (const scripted of [{ kind: 'raw', body: '{"choices": [' }, { kind: 'raw', body: JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'Paris' } }] }), cut: true }] as const) {
      const error = await failure(scripted);
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect((error as ProviderUnavailableError).billing).toBe('unknown');
    }
  });

  test('an answer with usage and no message is an outage billed that usage', async () => {
    const error = await failure({ kind: 'raw', body: JSON.stringify({ choices: [], usage: NO_CHOICES_USAGE }) });
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect(error!.message).toBe(`${MODEL}: the answer has no message`);
    expect((error as ProviderUnavailableError).billing).toEqual({ usage: NO_CHOICES_USAGE, costUsd: costOf(MODEL, NO_CHOICES_USAGE) });
  });

  test('a provider nothing listens for is an outage that billed nothing, named by its cause', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await new ChatClient({ baseURL: `http://127.0.0.1:${port}/v1` }).complete(request).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).billing).toBe('none');
    expect((error as Error).message).toMatch(new RegExp(`^${MODEL}: no answer: .*ECONNREFUSED`));
  });

  test('a call given up on (its signal aborted) closes its connection: a hung provider holds no socket', async () => {
    const error = await failure({ kind: 'hang' }, AbortSignal.timeout(300));
    expect(error?.name).toBe('TimeoutError');
    // The server sees the client close the connection (before: it stayed open until the server closed).
    await waitFor(async () => server.hanging(), (open) => open === 0, 5_000, 20);
  });
});

describe('a training job during a provider outage', () => {
  let h: Harness;
  const calls = new Map<string, number>();
  let judgedOutage = false;
  /** When each of the optimizer's calls arrived while judgedOutage held. */
  const optimizerCallsAt: number[] = [];
  // The first calls of the outage query fail, each in its own way; the provider then recovers.
  const OUTAGE: ScriptedResponse[] = [
    { kind: 'http_error', status: 500 },
    { kind: 'http_error', status: 429, headers: { 'retry-after': '1' } },
    { kind: 'raw', body: '{"choices": [' },
    { kind: 'raw', body: JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'x' } }] }), cut: true },
    { kind: 'raw', body: JSON.stringify({ choices: [], usage: NO_CHOICES_USAGE }) },
    { kind: 'http_error', status: 503 },
  ];
  beforeAll(async () => {
    h = await startHarness({
      model: {
        respond: (body) => {
          const system = body.messages.find((m) => m.role === 'system')?.content ?? '';
          const user = body.messages.find((m) => m.role === 'user')?.content ?? '';
          // The judge's and the optimizer's first calls of that job fail: the judge's first four with
          // 503 (two trajectories, each call sent once more by the budget guard on a 5xx: the whole
          // first attempt), the optimizer's first with 429.
          if (judgedOutage && !body.tools?.length) {
            const role = system.startsWith(JUDGE_MARKER) ? 'judge' : 'optimizer';
            const n = calls.get(role) ?? 0;
            calls.set(role, n + 1);
            if (role === 'optimizer') optimizerCallsAt.push(Date.now());
            if (role === 'judge' && n < 4) return { kind: 'http_error', status: 503 };
            if (role === 'optimizer' && n === 0) return { kind: 'http_error', status: 429, headers: { 'retry-after': '1' } };
            return undefined;
          }
          if (!user.includes('PROVIDER-OUTAGE')) return undefined;
          const n = calls.get('outage') ?? 0;
          calls.set('outage', n + 1);
          return OUTAGE[n];
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  test('is retried until the provider answers: the job completes and no trajectory records the outage', async () => {
    const [normal] = simulatedTaskSet({ queriesPerFamily: 1, seed: 5 });
    const outage: Task = { ...normal, id: 'outage', prompt: `${normal.prompt} PROVIDER-OUTAGE` };
    const job = jobRequest({ training_queries: [outage], evaluation_queries: [normal], config: { iterations: 1, batch_size: 1, group_size: 4 } });
    const { jobId } = await startTrainingJob(h.client, h.repos, job, { taskQueue: h.taskQueue });
    const result = await h.run(h.client.workflow.getHandle(jobId).result());

    expect(result.status).toBe('completed');
    expect(calls.get('outage')).toBeGreaterThan(OUTAGE.length);
    const rows = await h.repos.trajectories.listForJob(jobId);
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row.error).toBeNull();
    // Temporal retried the trajectories, each retry starting after a provider failure.
    const { events } = await h.client.workflow.getHandle(jobId).fetchHistory();
    const retried = (events ?? []).filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
    expect(retried.length).toBeGreaterThan(0);
    for (const event of retried) expect(event.activityTaskStartedEventAttributes!.lastFailure?.applicationFailureInfo?.type).toBe('ProviderUnavailable');
  }, 120_000);

  test("the judge's and the optimizer's calls are retried the same way, after the provider's Retry-After", async () => {
    judgedOutage = true;
    try {
      const [normal] = simulatedTaskSet({ queriesPerFamily: 1, seed: 6 });
      const job = jobRequest({
        training_queries: [normal],
        evaluation_queries: [normal],
        config: { iterations: 1, batch_size: 1, group_size: 2, reward_strategy: 'llm_judge', judge: { model: MODEL } },
      });
      const { jobId } = await startTrainingJob(h.client, h.repos, job, { taskQueue: h.taskQueue });
      const result = await h.run(h.client.workflow.getHandle(jobId).result());
      expect(result.status).toBe('completed');
      expect({ judge: calls.get('judge')! > 4, optimizer: calls.get('optimizer')! > 1 }).toEqual({ judge: true, optimizer: true });
      // The reward step and the policy update each ran a second attempt after a ProviderUnavailable failure.
      const { events } = await h.client.workflow.getHandle(jobId).fetchHistory();
      const scheduled = new Map((events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!]));
      const retried = (events ?? [])
        .filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)
        .map((e) => [scheduled.get(String(e.activityTaskStartedEventAttributes!.scheduledEventId)), e.activityTaskStartedEventAttributes!.lastFailure?.applicationFailureInfo?.type]);
      expect(retried).toEqual(expect.arrayContaining([
        ['rewardGroup', 'ProviderUnavailable'],
        ['updatePolicy', 'ProviderUnavailable'],
      ]));
      // The optimizer's second call waited out the first answer's Retry-After (1 s).
      expect(optimizerCallsAt.length).toBeGreaterThanOrEqual(2);
      expect(optimizerCallsAt[1] - optimizerCallsAt[0]).toBeGreaterThanOrEqual(1000);
    } finally {
      judgedOutage = false;
    }
  }, 120_000);
});
