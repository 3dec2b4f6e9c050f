/**
 * FLOW-011 against real local servers: the budget guard stops a trajectory (and a policy update)
 * before the LLM call that could cross its allowance, so the model server never receives it;
 * the run becomes a failed trajectory with the reason and its cost is still reported. A start
 * request with an unpriced model is refused before anything is written, and budget alerts are
 * POSTed to a real local webhook.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { InvalidTrainingJobError, startTrainingJob, validateTrainingJob } from '../../api/trainingJobs';
import { createActivities } from '../../activities';
import { LlmAgent } from '../../activities/agents/llmAgent';
import { createBudgetActivities } from '../../activities/budget';
import { BudgetAllowanceExceededError, GuardedChatFactory, promptTokenUpperBound } from '../../activities/budgetGuard';
import { createPrismaClient, createRepositories, type PrismaClient, type Repositories } from '../../adapters/db';
import { ChatClient } from '../../adapters/llm/chatClient';
import { StoredCallLookup, storedCallsFromEnv } from '../../adapters/llm/storedCalls';
import { createPolicyUpdateActivities } from '../../activities/policyUpdate';
import { createTrajectoryActivities, type RunTrajectoryInput, type TrajectorySummary } from '../../activities/trajectories';
import { callWorstCaseUsd } from '../../training/budget';
import { initialPolicy } from '../../training/policy';
import { SimulatedEnvironment, simulatedTaskSet } from '../../training/simulation/environment';
import { startSimulatedModelServer, type ChatCompletionRequestBody, type ScriptedResponse, type SimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { jobRequest, requireEnv } from '../support/harness';

let prisma: PrismaClient;
let repos: Repositories;
let server: SimulatedModelServer;
let script: (body: ChatCompletionRequestBody) => ScriptedResponse = () => undefined;
const received: ChatCompletionRequestBody[] = [];

beforeAll(async () => {
  prisma = createPrismaClient(requireEnv('DATABASE_URL'));
  repos = createRepositories(prisma);
  server = await startSimulatedModelServer({
    respond: (body) => {
      received.push(body);
      return script(body);
    },
  });
});
afterAll(async () => {
  await server.close();
  await prisma.$disconnect();
});
beforeEach(() => {
  received.length = 0;
  script = () => undefined;
});

// Failed attempts are what these tests expect: keep the activity logger to errors.
const quietLogger = new DefaultLogger('ERROR');
/** Runs an activity function in a mock activity context (heartbeats, cancellation signal). */
const inActivity = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> =>
  new MockActivityEnvironment(undefined, { logger: quietLogger }).run(fn as never, ...(args as unknown as never[])) as Promise<R>;

const chats = () => new GuardedChatFactory(new ChatClient({ baseURL: server.url }));
const environment = new SimulatedEnvironment();
const trajectoryActivities = () =>
  createTrajectoryActivities({ chats: chats(), agentFor: (chat) => new LlmAgent(chat, environment), trajectories: repos.trajectories });
const [task] = simulatedTaskSet({ queriesPerFamily: 1, seed: 7 });

async function newJob(budgetUsd = 1): Promise<string> {
  const jobId = `budget-${randomUUID()}`;
  await repos.jobs.create({ id: jobId, agentId: 'a', tenantId: 't', ownerId: 'o', priority: 'P1', config: {}, budgetUsd });
  return jobId;
}

const trajectoryInput = (jobId: string, overrides: Partial<RunTrajectoryInput> = {}): RunTrajectoryInput => ({
  job_id: jobId,
  agent_id: 'a',
  run: 1,
  iteration: 1,
  query_index: 0,
  sample_index: 0,
  task,
  system_prompt: 'You are a careful assistant.',
  model: 'flow-sim-1',
  max_steps: 6,
  max_tokens: 100,
  timeout_seconds: 30,
  seed: 1,
  ...overrides,
});

/** Every agent turn is a tool call, so only max_steps or the guard ends the run. */
const alwaysToolCall = (usage: ScriptedResponse extends infer R ? (R extends { usage?: infer U } ? U : never) : never): typeof script => () => ({
  kind: 'tool_call',
  name: 'lookup_docs',
  arguments: { query: 'refund policy' },
  usage,
});

describe('the budget guard in a trajectory', () => {
  // Input tokens free, output $10 per million: a call's worst case is max_tokens × $10/M =
  // $0.001 whatever its prompt, so the guard's decisions can be computed by hand.
  const prices = { 'flow-sim-1': { input_usd_per_mtok: 0, output_usd_per_mtok: 10 } };

  test('stops the run before the call that could cross its allowance; the trajectory fails with the reason and its cost is reported', async () => {
    const jobId = await newJob();
    // Each call reports 30 completion tokens ($0.0003 at the job's price) and the gateway's own
    // figure of its cost, which is preferred: $0.0004.
    script = alwaysToolCall({ prompt_tokens: 300, completion_tokens: 30, cost: 0.0004 });
    // spent before a call + $0.001 worst case ≤ $0.0019 holds for calls 1-3 (0, 0.0004, 0.0008)
    // and fails for call 4 (0.0012 + 0.001 = 0.0022).
    const summary = await inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { allowance_usd: 0.0019, prices }));

    expect(received).toHaveLength(3);
    expect(summary.success).toBe(false);
    expect(summary.allowance_exceeded).toBe(true);
    expect(summary.error).toMatch(/^budget allowance exceeded: a flow-sim-1 call could cost up to \$0\.001000, and \$0\.001200 of this activity's \$0\.00 allowance \(\$0\.001900\) is spent$/);
    expect(summary.cost_usd).toBeCloseTo(0.0012, 12);
    expect(summary.usage).toEqual({ prompt_tokens: 900, completion_tokens: 90 });

    const row = await prisma.trajectory.findUniqueOrThrow({ where: { id: summary.trajectory_id } });
    expect(row.success).toBe(false);
    expect(row.error).toBe(summary.error);
    expect(row.costUsd).toBeCloseTo(0.0012, 12);
    expect((row.steps as unknown[]).length).toBe(3);
  });

  test('an allowance smaller than the first call’s worst case: no call at all, a failed trajectory costing nothing', async () => {
    const jobId = await newJob();
    const summary = await inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { allowance_usd: 0.0009, prices }));
    expect(received).toHaveLength(0);
    expect(summary).toMatchObject({ success: false, allowance_exceeded: true, cost_usd: 0, usage: { prompt_tokens: 0, completion_tokens: 0 } });
    expect(summary.error).toContain('budget allowance exceeded');
  });

  test('at the price table’s price the worst case bounds the whole prompt; every call that started fitted', async () => {
    const jobId = await newJob();
    script = alwaysToolCall({ prompt_tokens: 500, completion_tokens: 80 });
    const allowance = 0.0015;
    const summary = await inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { allowance_usd: allowance }));
    expect(summary.allowance_exceeded).toBe(true);
    expect(received.length).toBeGreaterThan(0);
    expect(received.length).toBeLessThan(6);
    // flow-sim-1 at $0.5/$1.5 per M: each call cost (500×0.5 + 80×1.5)/1e6.
    expect(summary.cost_usd).toBeCloseTo(received.length * 0.00037, 12);
    // Each call that reached the server had room for its worst case (bound from what was sent).
    let spent = 0;
    for (const body of received) {
      const bound = promptTokenUpperBound({ messages: body.messages as never, tools: body.tools as never });
      expect(spent + callWorstCaseUsd({ input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 }, 100, bound)).toBeLessThanOrEqual(allowance);
      spent += 0.00037;
    }
  });

  test('with no allowance there is no cap: the run goes on to max_steps', async () => {
    const jobId = await newJob();
    script = alwaysToolCall({ prompt_tokens: 10, completion_tokens: 10 });
    const summary = await inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { max_steps: 4 }));
    expect(received).toHaveLength(4);
    expect(summary).toMatchObject({ success: false, allowance_exceeded: false, error: 'ran out of steps (max_steps=4) without a final answer' });
    expect(summary.cost_usd).toBeCloseTo(4 * (10 * 0.5 + 10 * 1.5) / 1e6, 12);
  });

  test('the worker’s activities are guarded: runTrajectory from createActivities honours allowance_usd', async () => {
    const jobId = await newJob();
    script = alwaysToolCall({ prompt_tokens: 300, completion_tokens: 30, cost: 0.0004 });
    const activities = createActivities({ prisma, llm: { baseURL: server.url } });
    const summary = await inActivity(activities.runTrajectory, trajectoryInput(jobId, { allowance_usd: 0.0019, prices }));
    expect(received).toHaveLength(3);
    expect(summary).toMatchObject({ allowance_exceeded: true, success: false });
    expect(summary.cost_usd).toBeCloseTo(0.0012, 12);
  });

  test('an invalid allowance is a non-retryable failure, not an uncapped run', async () => {
    const jobId = await newJob();
    const run = inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { allowance_usd: Number.NaN }));
    await expect(run).rejects.toMatchObject({ type: 'InvalidAllowance', nonRetryable: true });
    expect(received).toHaveLength(0);
  });

  test('a model with no price is refused before any call', async () => {
    const jobId = await newJob();
    const summary = await inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { model: 'acme-ft-1', allowance_usd: 1 }));
    expect(received).toHaveLength(0);
    expect(summary.error).toBe('agent error: no known price for model acme-ft-1; give config.prices["acme-ft-1"]');
  });
});

describe('what a trajectory reports as billed is what the spend ledger holds for it', () => {
  const prices = { 'flow-sim-1': { input_usd_per_mtok: 0, output_usd_per_mtok: 10 } };
  /** An attempt of one trajectory activity, on a run of its own (the ledger keys calls by run, activity and attempt). */
  const attemptOf = (jobId: string, attempt: number) => ({ attempt, activityId: 'trajectory', workflowExecution: { workflowId: jobId, runId: randomUUID() } });
  const inAttempt = <R>(info: ReturnType<typeof attemptOf>, fn: (input: RunTrajectoryInput) => Promise<R>, input: RunTrajectoryInput): Promise<R> =>
    new MockActivityEnvironment(info, { logger: quietLogger }).run(fn as never, input as never) as Promise<R>;
  const ledgered = (agentFor: Parameters<typeof createTrajectoryActivities>[0]['agentFor']) =>
    createTrajectoryActivities({ chats: new GuardedChatFactory(new ChatClient({ baseURL: server.url }), repos.ledger), agentFor, trajectories: repos.trajectories });

  /** An agent that makes one model call (max_tokens 50) and answers. */
  const oneCall = (chat: ChatClient) => ({
    async run(request: { model: string; signal: AbortSignal }) {
      await chat.complete({ model: request.model, messages: [{ role: 'user', content: 'refunds?' }], max_tokens: 50, seed: 1 }, request.signal);
      return { finalAnswer: 'done', success: true, verified: false, error: null };
    },
  });

  test('a step cut short after its call (the tool crashed) still bills the call', async () => {
    const jobId = await newJob();
    script = () => ({ kind: 'tool_call', name: 'lookup_docs', arguments: { query: 'refunds' }, usage: { prompt_tokens: 100, completion_tokens: 40 } });
    // An agent whose tool throws after the model answered: no step is recorded, the call was billed.
    const crashing = (chat: ChatClient) => ({
      async run(request: { model: string; signal: AbortSignal }) {
        await chat.complete({ model: request.model, messages: [{ role: 'user', content: 'refunds?' }], max_tokens: 50, seed: 1 }, request.signal);
        throw new Error('the tool crashed');
      },
    });
    const summary = await inAttempt(attemptOf(jobId, 1), ledgered(crashing as never).runTrajectory, trajectoryInput(jobId, { prices }));
    expect(summary.error).toBe('agent error: the tool crashed');
    expect(summary.cost_usd).toBe(0); // no step was recorded
    expect(summary.billed_usd).toBeCloseTo(40 * 10 / 1e6, 12);
    expect((await repos.ledger.totalForJob(jobId)).costUsd).toBeCloseTo(summary.billed_usd!, 12);
  });

  test('a provider at fault fails the attempt retryably; the ledger keeps what it billed: its usage, nothing, or (broken off) the worst case', async () => {
    const cases: [ScriptedResponse, (total: { unsettled: number; costUsd: number }) => void][] = [
      [{ kind: 'raw', body: JSON.stringify({ choices: [], usage: { prompt_tokens: 100, completion_tokens: 40 } }) }, (t) => expect(t).toMatchObject({ unsettled: 0, costUsd: expect.closeTo(40 * 10 / 1e6, 12) })],
      [{ kind: 'http_error', status: 503 }, (t) => expect(t).toMatchObject({ unsettled: 0, costUsd: 0 })],
      [{ kind: 'raw', body: '{"choices": [' }, (t) => expect(t).toMatchObject({ unsettled: 1, costUsd: expect.any(Number) })],
    ];
    for (const [scripted, ledger] of cases) {
      const jobId = await newJob();
      script = () => scripted;
      const error = await inAttempt(attemptOf(jobId, 1), ledgered(oneCall as never).runTrajectory, trajectoryInput(jobId, { prices })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ApplicationFailure);
      expect((error as ApplicationFailure).type).toBe('ProviderUnavailable');
      expect((error as ApplicationFailure).nonRetryable).toBe(false);
      const total = await repos.ledger.totalForJob(jobId);
      ledger(total);
      if (total.unsettled === 1) expect(total.costUsd).toBeGreaterThan(0); // held at its worst case
    }
  });

  test('a provider 5xx or a connection closed at once is sent once more, as a call of its own in the ledger; a 504, a late close or a gateway\u2019s 5xx is not', async () => {
    const answer: ScriptedResponse = { kind: 'content', content: 'done', usage: { prompt_tokens: 100, completion_tokens: 30 } };
    const answerUsd = 30 * 10 / 1e6;
    /** One trajectory whose first request gets `first` and any later one the answer: the requests made, the outcome, the job's ledger. */
    const afterFirst = async (first: ScriptedResponse, overrides: Partial<RunTrajectoryInput> = {}, job: { budgetUsd?: number } = {}) => {
      const jobId = await newJob(job.budgetUsd);
      let requests = 0;
      script = () => (requests++ === 0 ? first : answer);
      // A training job's activity: its calls are admitted against the job's budget in the ledger.
      const info = { ...attemptOf(jobId, 1), workflowType: 'trainingJob' };
      const outcome = await inAttempt(info, ledgered(oneCall as never).runTrajectory, trajectoryInput(jobId, { prices, ...overrides })).catch((e: unknown) => e);
      return { requests, outcome, total: await repos.ledger.totalForJob(jobId) };
    };
    // The first request's billing decides what its ledger row holds: nothing (a 503), or its worst
    // case until the provider's record settles it (a connection closed under it: it may have been
    // received and generated).
    for (const [first, held] of [[{ kind: 'http_error', status: 503 }, 'nothing'], [{ kind: 'reset' }, 'worst case']] as const) {
      const { requests, outcome, total } = await afterFirst(first);
      const summary = outcome as TrajectorySummary;
      expect({ requests, error: summary.error }).toEqual({ requests: 2, error: null });
      if (held === 'nothing') expect(total).toMatchObject({ calls: 2, unsettled: 0, costUsd: expect.closeTo(answerUsd, 12) });
      else expect(total).toMatchObject({ calls: 2, unsettled: 1, costUsd: expect.any(Number) });
      if (held === 'worst case') expect(total.costUsd).toBeGreaterThan(answerUsd + 50 * 10 / 1e6 - 1e-12); // the first's worst case: max_tokens at $10/Mtok
      // What the trajectory reports as billed is what the ledger holds, the first's worst case included.
      expect(summary.billed_usd).toBeCloseTo(total.costUsd, 12);
    }
    // Not sent again: a 504 (whatever timed out waiting, the provider may have generated and billed
    // the answer), and a connection closed long after the request went out (a proxy's idle timeout
    // cutting a long generation looks like that). Each stays one row at its worst case.
    for (const first of [{ kind: 'http_error', status: 504 }, { kind: 'reset', afterMs: 2_500 }] as const) {
      const { requests, outcome, total } = await afterFirst(first);
      expect({ first: first.kind, type: (outcome as ApplicationFailure).type, requests }).toEqual({ first: first.kind, type: 'ProviderUnavailable', requests: 1 });
      expect(total).toMatchObject({ calls: 1, unsettled: 1 });
    }
    // An allowance with room for one worst case ($0.0005) but not two: the first request's is held,
    // so the call is not sent again, and the provider's failure is the answer (retryable), not a budget refusal.
    {
      const { requests, outcome, total } = await afterFirst({ kind: 'reset' }, { allowance_usd: 0.0008 });
      expect({ type: (outcome as ApplicationFailure).type, nonRetryable: (outcome as ApplicationFailure).nonRetryable, requests }).toEqual({ type: 'ProviderUnavailable', nonRetryable: false, requests: 1 });
      expect(total).toMatchObject({ calls: 1, unsettled: 1 });
    }
    // The same with the job's budget as the limit (the ledger's admission): sent again only if it
    // fits at once beside the first's held worst case; here it does not, and the failure is the provider's.
    {
      const { requests, outcome, total } = await afterFirst({ kind: 'reset' }, {}, { budgetUsd: 0.0008 });
      expect({ type: (outcome as ApplicationFailure).type, nonRetryable: (outcome as ApplicationFailure).nonRetryable, requests }).toEqual({ type: 'ProviderUnavailable', nonRetryable: false, requests: 1 });
      expect(total).toMatchObject({ calls: 1, unsettled: 1 });
    }
    // A first request that held nothing (a 503) leaves the job's budget whole: sent again within it.
    {
      const { requests, outcome, total } = await afterFirst({ kind: 'http_error', status: 503 }, {}, { budgetUsd: 0.0008 });
      expect({ requests, error: (outcome as TrajectorySummary).error }).toEqual({ requests: 2, error: null });
      expect(total).toMatchObject({ calls: 2, unsettled: 0, costUsd: expect.closeTo(answerUsd, 12) });
    }
    // A Portkey gateway's 5xx comes after its own retries: sent once, and the attempt fails retryably.
    const { requests, outcome, total } = await afterFirst({ kind: 'http_error', status: 503, headers: { 'x-portkey-request-id': 'gw-1' } });
    expect({ type: (outcome as ApplicationFailure).type, requests }).toEqual({ type: 'ProviderUnavailable', requests: 1 });
    expect(total).toMatchObject({ calls: 1, unsettled: 0, costUsd: 0 });
  });

  test('a retry counts the calls an earlier attempt went on making after the retry started', async () => {
    const jobId = await newJob();
    const info = attemptOf(jobId, 2);
    const activity = `${info.workflowExecution.runId}/${info.activityId}`;
    const earlierCall = async (costUsd: number) => {
      const callKey = randomUUID();
      await repos.ledger.open({ callKey, jobId, activity, attempt: 1, model: 'flow-sim-1', costUsd: 0.01 });
      await repos.ledger.settle(callKey, { promptTokens: 10, completionTokens: 10, costUsd });
    };
    // Attempt 1 was billed $0.0005 before attempt 2 started...
    await earlierCall(0.0005);
    script = () => ({ kind: 'content', content: 'done', usage: { prompt_tokens: 100, completion_tokens: 30 } });
    // Attempt 2 reads the ledger before its first call; attempt 1, timed out but still running,
    // is billed another $0.0007 after that.
    const overlapped = (chat: ChatClient) => ({
      async run(request: { model: string; signal: AbortSignal }) {
        await chat.complete({ model: request.model, messages: [{ role: 'user', content: 'refunds?' }], max_tokens: 50, seed: 1 }, request.signal);
        await earlierCall(0.0007);
        return { finalAnswer: 'done', success: true, verified: false, error: null };
      },
    });
    const summary = await inAttempt(info, ledgered(overlapped as never).runTrajectory, trajectoryInput(jobId, { prices }));
    expect(summary.billed_usd).toBeCloseTo(30 * 10 / 1e6 + 0.0005 + 0.0007, 12);
    expect((await repos.ledger.totalForJob(jobId)).costUsd).toBeCloseTo(summary.billed_usd!, 12);
  });
});

describe('calls a killed attempt left open, settled at what the provider stored (FLOW_LLM_STORED_CALLS_URL)', () => {
  const prices = { 'flow-sim-1': { input_usd_per_mtok: 0, output_usd_per_mtok: 10 } };
  const WORST_CASE = 0.01;

  test('a retry settles a call the provider stored at its real cost, one it never got at $0 once no call could still be running there, and leaves a recent one at its worst case', async () => {
    const jobId = await newJob();
    const info = { attempt: 2, activityId: 'trajectory', workflowExecution: { workflowId: jobId, runId: randomUUID() } };
    const activity = `${info.workflowExecution.runId}/${info.activityId}`;
    script = () => ({ kind: 'content', content: 'done', usage: { prompt_tokens: 100, completion_tokens: 30 } });
    const storedCalls = { url: server.url, unbilledAfterMs: 600_000 };
    const chat = new ChatClient({ baseURL: server.url, storedCalls });
    // Attempt 1 opened three calls and was killed: the provider answered the first (its answer was
    // lost with the process); the others never left the worker, one of them 11 minutes ago
    // (longer than any call can run at this provider), one just now (it might still be running).
    const answered = randomUUID();
    const neverSent = randomUUID();
    const neverSentLongAgo = randomUUID();
    for (const callKey of [answered, neverSent, neverSentLongAgo]) await repos.ledger.open({ callKey, jobId, activity, attempt: 1, model: 'flow-sim-1', costUsd: WORST_CASE });
    await prisma.$executeRaw`UPDATE llm_calls SET created_at = now() - interval '11 minutes' WHERE call_key = ${neverSentLongAgo}`;
    await chat.complete({ model: 'flow-sim-1', messages: [{ role: 'user', content: 'refunds?' }], max_tokens: 50 }, undefined, { price: prices['flow-sim-1'], callKey: answered });
    expect(received.at(-1)).toMatchObject({ store: true, metadata: { flow_call_key: answered } });

    const activities = createTrajectoryActivities({
      chats: new GuardedChatFactory(chat, repos.ledger, new StoredCallLookup(storedCalls)),
      agentFor: (guarded) => new LlmAgent(guarded, environment),
      trajectories: repos.trajectories,
    });
    const summary = await new MockActivityEnvironment(info, { logger: quietLogger }).run(activities.runTrajectory as never, trajectoryInput(jobId, { prices }) as never) as Awaited<ReturnType<typeof activities.runTrajectory>>;

    const calls = await prisma.llmCall.findMany({ where: { callKey: { in: [answered, neverSent, neverSentLongAgo] } } });
    const byKey = new Map(calls.map((call) => [call.callKey, call]));
    expect(byKey.get(answered)).toMatchObject({ settled: true, promptTokens: 100, completionTokens: 30 });
    expect(byKey.get(answered)!.costUsd).toBeCloseTo(30 * 10 / 1e6, 12);
    expect(byKey.get(neverSent)).toMatchObject({ settled: false, costUsd: WORST_CASE });
    expect(byKey.get(neverSentLongAgo)).toMatchObject({ settled: true, promptTokens: 0, completionTokens: 0, costUsd: 0 });
    // This attempt's one call (30 completion tokens) and what the ledger now holds for attempt 1.
    expect(summary.billed_usd).toBeCloseTo(30 * 10 / 1e6 + 30 * 10 / 1e6 + WORST_CASE, 12);
    expect((await repos.ledger.totalForJob(jobId)).costUsd).toBeCloseTo(summary.billed_usd!, 12);
  });

  test('without stored calls, requests carry no store or metadata, and an open call stays at its worst case', async () => {
    const jobId = await newJob();
    const info = { attempt: 2, activityId: 'trajectory', workflowExecution: { workflowId: jobId, runId: randomUUID() } };
    const callKey = randomUUID();
    await repos.ledger.open({ callKey, jobId, activity: `${info.workflowExecution.runId}/${info.activityId}`, attempt: 1, model: 'flow-sim-1', costUsd: WORST_CASE });
    script = () => ({ kind: 'content', content: 'done', usage: { prompt_tokens: 100, completion_tokens: 30 } });
    const activities = createTrajectoryActivities({
      chats: new GuardedChatFactory(new ChatClient({ baseURL: server.url }), repos.ledger),
      agentFor: (guarded) => new LlmAgent(guarded, environment),
      trajectories: repos.trajectories,
    });
    await new MockActivityEnvironment(info, { logger: quietLogger }).run(activities.runTrajectory as never, trajectoryInput(jobId, { prices }) as never);
    expect(received.at(-1)).not.toHaveProperty('store');
    expect(received.at(-1)).not.toHaveProperty('metadata');
    expect(await prisma.llmCall.findUniqueOrThrow({ where: { callKey } })).toMatchObject({ settled: false, costUsd: WORST_CASE });
  });

  test('FLOW_LLM_STORED_CALLS_URL must be an http(s) URL', () => {
    expect(storedCallsFromEnv({})).toBeUndefined();
    expect(storedCallsFromEnv({ FLOW_LLM_STORED_CALLS_URL: 'https://api.openai.com/v1', FLOW_LLM_STORED_CALLS_KEY: 'sk-x' })).toEqual({ url: 'https://api.openai.com/v1', apiKey: 'sk-x', unbilledAfterMs: 600_000 });
    expect(storedCallsFromEnv({ FLOW_LLM_STORED_CALLS_URL: 'http://127.0.0.1:1/v1', FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S: '2.5' })).toEqual({ url: 'http://127.0.0.1:1/v1', apiKey: undefined, unbilledAfterMs: 2_500 });
    expect(() => storedCallsFromEnv({ FLOW_LLM_STORED_CALLS_URL: 'api.openai.com' })).toThrow('FLOW_LLM_STORED_CALLS_URL must be an http(s) URL, not "api.openai.com"');
    expect(() => storedCallsFromEnv({ FLOW_LLM_STORED_CALLS_URL: 'https://x/v1', FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S: '0' })).toThrow('FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S must be a number of seconds above 0, not "0"');
  });
});

describe('the budget guard in a policy update', () => {
  test('the update that reaches its allowance returns the policy unchanged with the cost spent', async () => {
    const jobId = await newJob();
    script = alwaysToolCall({ prompt_tokens: 20, completion_tokens: 20 });
    const first = await inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { max_steps: 1 }));
    const second = await inActivity(trajectoryActivities().runTrajectory, trajectoryInput(jobId, { max_steps: 1, sample_index: 1 }));
    received.length = 0;
    // A malformed answer makes the updater ask again; the second attempt could cross the allowance.
    script = () => ({ kind: 'content', content: 'not json', usage: { prompt_tokens: 1000, completion_tokens: 50, cost: 0.0006 } });
    const policy = initialPolicy('base');
    const updater = createPolicyUpdateActivities({ chat: chats(), trajectories: repos.trajectories });
    const result = await updater.updatePolicy({
      policy,
      candidates: [
        { trajectory_id: first.trajectory_id, advantage: 1, query: task.prompt },
        { trajectory_id: second.trajectory_id, advantage: -1, query: task.prompt },
      ],
      learning_rate: 0.5,
      clip: 0.2,
      max_lessons: 10,
      optimizer_model: 'gpt-4o-mini',
      max_tokens: 200,
      seed: 1,
      // gpt-4o-mini from the table ($0.15/$0.6 per M): the first call's worst case (a prompt of a
      // few thousand bytes, 200 tokens out) is about $0.0005; after it the gateway reports $0.0006
      // spent, which leaves too little of $0.001 for a second.
      allowance_usd: 0.001,
    });
    expect(received).toHaveLength(1);
    expect(result.policy).toBe(policy);
    expect(result).toMatchObject({ applied: 0, allowance_exceeded: true, cost_usd: 0.0006, usage: { prompt_tokens: 1000, completion_tokens: 50 } });
    expect(result.skipped_reason).toMatch(/^budget allowance exceeded: a gpt-4o-mini call/);
  });

  test('the guard’s error, if an activity lets it escape, is a non-retryable ApplicationFailure of its own type', async () => {
    const chat = chats().open({ allowanceUsd: 0 });
    const error = await chat.complete({ model: 'flow-sim-1', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BudgetAllowanceExceededError);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'BudgetAllowanceExceeded', nonRetryable: true, name: 'BudgetAllowanceExceededError', allowanceUsd: 0, spentUsd: 0 });
    expect(chat.calls).toBe(0);
    expect(chat.spentUsd).toBe(0);
    expect(received).toHaveLength(0);
  });
});

describe('starting a job', () => {
  test('a model or optimizer model with no price and no config price is refused, naming the model; nothing is written', async () => {
    expect(() => validateTrainingJob(jobRequest({ config: { model: 'acme-ft-1' } }))).toThrow(
      new InvalidTrainingJobError('config.model: no known price for model acme-ft-1; give config.prices["acme-ft-1"]'),
    );
    expect(() => validateTrainingJob(jobRequest({ config: { optimizer_model: 'acme-opt' } }))).toThrow(/^config\.optimizer_model: no known price for model acme-opt/);

    const request = jobRequest({ config: { model: 'acme-ft-1' } });
    await expect(startTrainingJob(null as never, repos, request)).rejects.toBeInstanceOf(InvalidTrainingJobError);
    expect(await repos.jobs.get(request.job_id!)).toBeNull();
  });

  test('a config price, or a table price, is enough', () => {
    const priced = validateTrainingJob(jobRequest({ config: { model: 'acme-ft-1', prices: { 'acme-ft-1': { input_usd_per_mtok: 1, output_usd_per_mtok: 2 } } } }));
    expect(priced.config.prices).toEqual({ 'acme-ft-1': { input_usd_per_mtok: 1, output_usd_per_mtok: 2 } });
    expect(validateTrainingJob(jobRequest({ config: { model: 'gpt-4o-mini', optimizer_model: 'claude-3-5-haiku-latest' } })).config.model).toBe('gpt-4o-mini');
  });
});

describe('budget activities', () => {
  interface Received {
    method: string;
    headers: http.IncomingHttpHeaders;
    body: unknown;
  }
  let webhook: http.Server;
  let webhookUrl: string;
  const hooks: Received[] = [];
  let answer: { status: number; delayMs?: number } = { status: 204 };

  beforeAll(async () => {
    webhook = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        hooks.push({ method: req.method!, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        setTimeout(() => res.writeHead(answer.status).end(answer.status >= 400 ? 'nope' : ''), answer.delayMs ?? 0);
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hooks/budget`;
  });
  afterAll(async () => {
    webhook.closeAllConnections();
    await new Promise<void>((resolve) => webhook.close(() => resolve()));
  });
  beforeEach(() => {
    hooks.length = 0;
    answer = { status: 204 };
  });

  const alert = { job_id: 'job-1', agent_id: 'support-agent', threshold: 0.75, spend_usd: 7.5, budget_usd: 10 };

  test('sendBudgetAlert POSTs the alert as JSON to the webhook', async () => {
    const result = await inActivity(createBudgetActivities({ webhookUrl }).sendBudgetAlert, alert);
    expect(result).toEqual({ delivered: true, status: 204 });
    expect(hooks).toHaveLength(1);
    expect(hooks[0].method).toBe('POST');
    expect(hooks[0].headers['content-type']).toBe('application/json');
    expect(hooks[0].headers['idempotency-key']).toBe('job-1:budget-alert:0.75');
    expect(hooks[0].body).toEqual({
      type: 'flow.budget_alert',
      ...alert,
      message: 'job job-1 (agent support-agent) has spent $7.50 of its $10.00 budget (crossed 75%)',
    });
  });

  test('the URL comes from FLOW_BUDGET_WEBHOOK_URL; unset, the alert is only logged', async () => {
    const saved = process.env.FLOW_BUDGET_WEBHOOK_URL;
    try {
      process.env.FLOW_BUDGET_WEBHOOK_URL = webhookUrl;
      expect(await inActivity(createBudgetActivities().sendBudgetAlert, alert)).toEqual({ delivered: true, status: 204 });
      delete process.env.FLOW_BUDGET_WEBHOOK_URL;
      expect(await inActivity(createBudgetActivities().sendBudgetAlert, alert)).toEqual({ delivered: false, status: null });
      expect(hooks).toHaveLength(1);
    } finally {
      if (saved === undefined) delete process.env.FLOW_BUDGET_WEBHOOK_URL;
      else process.env.FLOW_BUDGET_WEBHOOK_URL = saved;
    }
  });

  test.each([
    [500, false],
    [429, false],
    [400, true],
    [404, true],
  ])('HTTP %p fails the attempt; non-retryable: %p', async (status, nonRetryable) => {
    answer = { status };
    const error = await inActivity(createBudgetActivities({ webhookUrl }).sendBudgetAlert, alert).catch((e: unknown) => e);
    expect((error as Error).message).toBe(`budget webhook ${webhookUrl} answered HTTP ${status}: nope`);
    if (nonRetryable) expect(error).toMatchObject({ type: 'BudgetWebhookRejected', nonRetryable: true });
    else expect(error).not.toBeInstanceOf(ApplicationFailure);
  });

  test('a webhook that does not answer in time fails the attempt (retried by Temporal)', async () => {
    answer = { status: 204, delayMs: 2_000 };
    const error = await inActivity(createBudgetActivities({ webhookUrl, timeoutMs: 200 }).sendBudgetAlert, alert).catch((e: unknown) => e);
    expect((error as Error).message).toBe(`budget webhook ${webhookUrl}: timed out`);
    expect(error).not.toBeInstanceOf(ApplicationFailure);
  });

  test('an unreachable webhook fails the attempt; a URL that is not http(s) is non-retryable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = await inActivity(createBudgetActivities({ webhookUrl: `http://127.0.0.1:${port}/x` }).sendBudgetAlert, alert).catch((e: unknown) => e);
    expect((unreachable as Error).message).toMatch(/^budget webhook http:\/\/127\.0\.0\.1:\d+\/x: /);
    expect(unreachable).not.toBeInstanceOf(ApplicationFailure);

    const misconfigured = inActivity(createBudgetActivities({ webhookUrl: 'ftp://example/x' }).sendBudgetAlert, alert);
    await expect(misconfigured).rejects.toMatchObject({ type: 'BudgetWebhookMisconfigured', nonRetryable: true });
  });

  test('resolvePrices gives the agent’s and the optimizer’s prices; an unpriced model is a non-retryable failure', async () => {
    const { resolvePrices } = createBudgetActivities();
    expect(await resolvePrices({ model: 'flow-sim-1', optimizer_model: 'gpt-4o', prices: null })).toEqual({
      agent: { input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5 },
      optimizer: { input_usd_per_mtok: 2.5, output_usd_per_mtok: 10 },
    });
    const prices = { 'acme-ft-1': { input_usd_per_mtok: 1, output_usd_per_mtok: 2 } };
    expect(await resolvePrices({ model: 'acme-ft-1', optimizer_model: 'flow-sim-1', prices })).toMatchObject({ agent: prices['acme-ft-1'] });
    await expect(resolvePrices({ model: 'flow-sim-1', optimizer_model: 'acme-opt' })).rejects.toMatchObject({
      type: 'UnknownModelPrice',
      nonRetryable: true,
      message: 'no known price for model acme-opt; give config.prices["acme-opt"]',
    });
  });
});
