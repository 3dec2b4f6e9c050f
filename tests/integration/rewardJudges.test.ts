/**
 * FLOW-017 on real servers: the LLM judge and the group-relative judge (RULER) through
 * portkey-ai against the local OpenAI-compatible server, the reward activity marking
 * trajectories on PostgreSQL, and whole training jobs on Temporal: one whose custom reward
 * returns NaN for some trajectories (it completes; those rows carry reward_error and are left
 * out of the advantages) and one scored by 'ruler' (it completes and its spend includes the
 * judge's calls). The API refuses an unknown strategy at the start (-32602).
 */
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { GuardedChatFactory } from '../../activities/budgetGuard';
import { ChatClient } from '../../adapters/llm/chatClient';
import { GROUP_JUDGE_MARKER, JUDGE_MARKER, JUDGE_MAX_ATTEMPTS, LlmJudge } from '../../activities/llm/judge';
import { resolveModelPrice } from '../../adapters/llm/pricing';
import { createGrpoActivities } from '../../activities/grpo';
import { createRewardActivities } from '../../activities/rewards';
import { excludingMarkedTrajectories } from '../../activities/markedTrajectories';
import { startTrainingJob } from '../../api/trainingJobs';
import { groupAdvantages } from '../../training/advantages';
import type { Trajectory, TrajectoryStep } from '../../training/trajectory';
import { RewardFailure, createDefaultRewardRegistry, type JudgeVerdict, type RewardInput } from '../../training/rewards';
import type { ChatCompletionRequestBody, ScriptedResponse, ScriptedUsage } from '../../workers/dev/simulatedModelServer';
import { WorkflowCoverage } from '@temporalio/nyc-test-coverage';
import { createTrainingWorker } from '../../workers/trainingWorker';
import { rpcError, startApiHarness, waitFor, type ApiHarness } from '../support/apiHarness';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';
import { saveWorkflowCoverage } from '../support/workflowCoverage';

/** Every call reports this usage, so each one's cost is known and spend can be checked by count. */
const CALL_USAGE: ScriptedUsage = { prompt_tokens: 200, completion_tokens: 20 };
const requests: ChatCompletionRequestBody[] = [];
let scripted: ((body: ChatCompletionRequestBody) => ScriptedResponse) | null = null;

let h: Harness;
let native: NativeConnection;
beforeAll(async () => {
  h = await startHarness({
    model: {
      respond: (body) => {
        requests.push(body);
        return scripted?.(body);
      },
      usage: () => CALL_USAGE,
    },
  });
  native = await NativeConnection.connect({ address: requireEnv('TEMPORAL_ADDRESS') });
});
afterAll(async () => {
  await native?.close();
  await h?.close();
});
beforeEach(() => {
  requests.length = 0;
  scripted = null;
});

const systemOf = (body: ChatCompletionRequestBody) => body.messages.find((m) => m.role === 'system')?.content ?? '';
const isJudgeCall = (body: ChatCompletionRequestBody) => systemOf(body).startsWith(JUDGE_MARKER) || systemOf(body).startsWith(GROUP_JUDGE_MARKER);
const price = resolveModelPrice('flow-sim-1');
const CALL_COST = (CALL_USAGE.prompt_tokens! * price.input_usd_per_mtok + CALL_USAGE.completion_tokens! * price.output_usd_per_mtok) / 1e6;

const T0 = '2026-01-01T00:00:00.000Z';
function step(type: 'tool_call' | 'final_answer', content: string | null = null): TrajectoryStep {
  return {
    index: 0, state: 'task', action: { type, content }, tool_calls: type === 'tool_call' ? [{ id: 'c', name: 'lookup', arguments: { q: 'x' } }] : [],
    result: type === 'tool_call' ? 'found' : null, started_at: T0, ended_at: T0, usage: { prompt_tokens: 1, completion_tokens: 1 }, cost_usd: 0, logprob: null, error: null,
  };
}
const task = { prompt: 'What is the capital of France?', expected_answer: 'Paris' };
const trajectory = (finalAnswer: string | null, toolSteps = 1): RewardInput => ({
  success: finalAnswer === 'Paris', verified: false, error: null, final_answer: finalAnswer, task,
  steps: [...Array.from({ length: toolSteps }, () => step('tool_call')), ...(finalAnswer === null ? [] : [step('final_answer', finalAnswer)])],
});

const judgeWith = (rubric?: string) => {
  const chat = new GuardedChatFactory(new ChatClient({ baseURL: h.model.url })).open({ allowanceUsd: 1 });
  return { chat, judge: new LlmJudge(chat, { model: 'flow-sim-1', rubric, max_tokens: 256, seed: 1 }) };
};

describe('the LLM judge through portkey-ai', () => {
  test('scores one trajectory against the rubric: {score, reason}, with the task and reference answer shown', async () => {
    const { chat, judge } = judgeWith('Correct answers score 1.');
    const right = (await judge.one(trajectory('Paris'))) as JudgeVerdict;
    const wrong = (await judge.one(trajectory('Lyon'))) as JudgeVerdict;
    expect(right).toEqual({ score: 1, reason: 'the final answer matches the reference answer' });
    expect(wrong).toEqual({ score: 0, reason: 'the final answer does not match the reference answer' });
    expect(requests).toHaveLength(2);
    const [system, user] = requests[0].messages.map((m) => m.content!);
    expect(system.startsWith(JUDGE_MARKER)).toBe(true);
    expect(system).toContain('Correct answers score 1.');
    expect(user).toContain('Task: What is the capital of France?');
    expect(user).toContain('Reference answer: Paris');
    expect(user).toContain('called lookup({"q":"x"}) -> found');
    expect(user).toContain('Final answer: Paris');
    // The budget guard counted both calls.
    expect(chat.calls).toBe(2);
    expect(chat.spentUsd).toBeCloseTo(2 * CALL_COST, 12);
  });

  test('a malformed answer is asked for again once; then the trajectory is marked, never scored', async () => {
    const once = await judgeWith('[sim:malformed-once]').judge.one(trajectory('Paris'));
    expect(once).toEqual({ score: 1, reason: 'the final answer matches the reference answer' });
    expect(requests).toHaveLength(2);
    // The second request shows the model its answer and what was wrong with it.
    expect(requests[1].messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(requests[1].messages[3].content).toMatch(/^That answer was not valid \(not JSON: "I think these look fine overall\."\)/);

    requests.length = 0;
    const never = await judgeWith('[sim:malformed]').judge.one(trajectory('Paris'));
    expect(never).toBeInstanceOf(RewardFailure);
    expect((never as RewardFailure).reason).toBe(`the judge's answer was malformed after ${JUDGE_MAX_ATTEMPTS} attempts: not JSON: "I think these look fine overall."`);
    expect(requests).toHaveLength(JUDGE_MAX_ATTEMPTS);

    // zod refuses a score outside [0, 1] the same way.
    const outOfRange = await judgeWith('[sim:out-of-range]').judge.one(trajectory('Paris'));
    expect((outOfRange as RewardFailure).reason).toMatch(/malformed after 2 attempts: score: Too big: expected number to be <=1/);
  });

  test('RULER scores the whole group in one call, relative to each other', async () => {
    const { chat, judge } = judgeWith();
    const verdicts = (await judge.group([trajectory('Paris', 1), trajectory('Lyon', 1), trajectory('Paris', 3), trajectory(null, 2)])) as JudgeVerdict[];
    expect(requests).toHaveLength(1);
    expect(chat.calls).toBe(1);
    expect(systemOf(requests[0]).startsWith(GROUP_JUDGE_MARKER)).toBe(true);
    const user = requests[0].messages[1].content!;
    for (const id of ['T1', 'T2', 'T3', 'T4']) expect(user).toContain(`Trajectory ${id}`);
    // Right in fewest steps best, right but slower lower, wrong or unfinished 0.
    expect(verdicts.map((v) => v.score)).toEqual([1, 0, 0.8, 0]);
    expect(verdicts[0].reason).toBe('right, in 2 steps');
    expect(await judge.group([])).toEqual([]);
  });

  test('shows what the trajectory shows: errors, long results clipped, the expected tool; no reference, no right answer', async () => {
    const failing: RewardInput = {
      success: false, verified: false, error: 'ran out of steps (max_steps=2) without a final answer', final_answer: null,
      task: { prompt: 'Fetch the report.', expected_tool: 'http_fetch' },
      steps: [{ ...step('tool_call'), result: 'x'.repeat(1000) }, { ...step('tool_call'), tool_calls: [], error: 'no tool named fetch' }],
    };
    const verdict = await judgeWith().judge.one(failing);
    expect(verdict).toEqual({ score: 0, reason: 'the final answer does not match the reference answer' });
    const user = requests[0].messages[1].content!;
    expect(user).toContain('Expected tool: http_fetch');
    expect(user).not.toContain('Reference answer');
    expect(user).toContain(`-> ${'x'.repeat(400)}…`);
    expect(user).toContain('2. called (no tool) -> error: no tool named fetch');
    expect(user).toContain('Final answer: (none)');
    expect(user).toContain('Error: ran out of steps (max_steps=2) without a final answer');

    requests.length = 0;
    const untasked = await judgeWith().judge.one({ ...trajectory('Paris'), task: undefined });
    expect(untasked).toMatchObject({ score: 0 });
    expect(requests[0].messages[1].content).toContain('Task: (not given)');

    // A group score outside [0, 1] is refused by zod too: asked again, then the group is marked.
    requests.length = 0;
    const group = await judgeWith('[sim:out-of-range]').judge.group([trajectory('Paris'), trajectory('Lyon')]);
    expect(requests).toHaveLength(2);
    expect((group[0] as RewardFailure).reason).toMatch(/^the group judge's answer was malformed after 2 attempts: scores\.0\.score: Too big/);
  });

  test('a judge call the budget guard refuses marks the trajectories, and no request is sent', async () => {
    const chat = new GuardedChatFactory(new ChatClient({ baseURL: h.model.url })).open({ allowanceUsd: 0 });
    const judge = new LlmJudge(chat, { model: 'flow-sim-1', max_tokens: 256 });
    const one = await judge.one(trajectory('Paris'));
    expect((one as RewardFailure).reason).toMatch(/^the judge was not asked: budget allowance exceeded: a flow-sim-1 call could cost up to \$/);
    const group = await judge.group([trajectory('Paris'), trajectory('Lyon')]);
    expect(group.every((v) => v instanceof RewardFailure && v.reason.startsWith('the judge was not asked: budget allowance exceeded'))).toBe(true);
    expect(requests).toHaveLength(0);
    expect(chat.spentUsd).toBe(0);
  });

  test('RULER: an answer that leaves out or repeats a trajectory is asked again, then the group is marked', async () => {
    scripted = (body) =>
      isJudgeCall(body) ? { kind: 'content', content: JSON.stringify({ scores: [{ id: 'T1', score: 1, reason: 'ok' }, { id: 'T1', score: 0, reason: 'again' }, { id: 'T9', score: 0, reason: '?' }] }) } : undefined;
    const verdicts = await judgeWith().judge.group([trajectory('Paris'), trajectory('Lyon')]);
    expect(requests).toHaveLength(JUDGE_MAX_ATTEMPTS);
    expect(verdicts).toHaveLength(2);
    for (const verdict of verdicts) {
      expect((verdict as RewardFailure).reason).toBe(
        "the group judge's answer was malformed after 2 attempts: scores must name each of T1, T2 once (missing: T2; unknown or repeated: T1, T9)",
      );
    }
  });
});

/** Trajectory rows of a fresh job, for the activity tests. */
async function recordedGroup(answers: (string | null)[]): Promise<string[]> {
  const jobId = `rj-${randomUUID()}`;
  await h.repos.jobs.create({ id: jobId, agentId: 'a', tenantId: 't', ownerId: 'o', priority: 'P1', config: {}, budgetUsd: 1 });
  const ids: string[] = [];
  for (const [i, answer] of answers.entries()) {
    const input = trajectory(answer);
    const row: Trajectory = {
      job_id: jobId, run: 1, iteration: 1, query_index: 0, sample_index: i, query_id: 'q', agent_id: 'a', steps: input.steps, final_answer: answer,
      success: input.success, verified: false, error: null, usage: { prompt_tokens: 1, completion_tokens: 1 }, cost_usd: 0, log_prob: null, started_at: T0, ended_at: T0,
    };
    ids.push((await h.repos.trajectories.record(row)).id);
  }
  return ids;
}

describe('the rewardGroup activity', () => {
  const activities = () =>
    createRewardActivities({ rewards: createDefaultRewardRegistry(), trajectories: h.repos.trajectories, chats: new GuardedChatFactory(new ChatClient({ baseURL: h.model.url })) });
  const judge = (rubric?: string) => ({ model: 'flow-sim-1', ...(rubric ? { rubric } : {}) });

  test("'ruler' scores the group from the rows and returns what the judge cost", async () => {
    const ids = await recordedGroup(['Paris', 'Lyon', 'Paris']);
    const scored = await activities().rewardGroup({ trajectory_ids: ids, reward_strategy: 'ruler', agent_type: 'llm', task, judge: judge(), max_tokens: 256, allowance_usd: 0.01 });
    expect(scored.reward_strategy).toBe('ruler');
    expect(scored.rewards).toEqual([1, 0, 1]);
    expect(scored.reward_errors).toEqual([null, null, null]);
    expect(scored.cost_usd).toBeCloseTo(CALL_COST, 12);
    expect((await h.repos.trajectories.findByIds(ids)).every((row) => row.rewardError === null)).toBe(true);
  });

  test("a judge that never answers validly marks the rows; a retry that scores them clears the marks", async () => {
    const ids = await recordedGroup(['Paris', 'Lyon']);
    const failed = await activities().rewardGroup({ trajectory_ids: ids, reward_strategy: 'llm_judge', task, judge: judge('[sim:malformed]'), max_tokens: 256 });
    expect(failed.rewards).toEqual([0, 0]);
    expect(failed.reward_errors).toEqual([
      expect.stringMatching(/^reward function "llm_judge" could not score this trajectory: the judge's answer was malformed after 2 attempts/),
      expect.stringMatching(/^reward function "llm_judge" could not score this trajectory/),
    ]);
    expect(failed.cost_usd).toBeCloseTo(4 * CALL_COST, 12);
    const marked = await h.repos.trajectories.findByIds(ids);
    expect(marked.map((row) => row.rewardError)).toEqual(expect.arrayContaining(failed.reward_errors));

    const retried = await activities().rewardGroup({ trajectory_ids: ids, reward_strategy: 'llm_judge', task, judge: judge(), max_tokens: 256 });
    expect(retried.rewards).toEqual([1, 0]);
    expect((await h.repos.trajectories.findByIds(ids)).map((row) => row.rewardError)).toEqual([null, null]);
  });

  test('a judge call that fails (HTTP 500) fails the attempt retryably: Temporal tries again', async () => {
    const ids = await recordedGroup(['Paris']);
    scripted = (body) => (isJudgeCall(body) ? { kind: 'http_error', status: 500 } : undefined);
    const error = await activities().rewardGroup({ trajectory_ids: ids, reward_strategy: 'llm_judge', task, judge: judge(), max_tokens: 256 }).catch((e: unknown) => e);
    // A provider outage, as for the agent's calls: retryable, typed, after the provider's Retry-After when it sends one.
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect({ type: (error as ApplicationFailure).type, nonRetryable: (error as ApplicationFailure).nonRetryable }).toEqual({ type: 'ProviderUnavailable', nonRetryable: false });
    expect((error as Error).message).toMatch(/^flow-sim-1: HTTP 500/);
    expect((await h.repos.trajectories.findByIds(ids))[0].rewardError).toBeNull();
  });

  test("a cancelled reward activity stops waiting for the judge: its call is given up and the connection closed", async () => {
    const ids = await recordedGroup(['Paris']);
    scripted = (body) => (isJudgeCall(body) ? { kind: 'hang' } : undefined);
    const env = new MockActivityEnvironment();
    const running = env.run(activities().rewardGroup, { trajectory_ids: ids, reward_strategy: 'llm_judge', task, judge: judge(), max_tokens: 256 }).catch((error: unknown) => error);
    await waitFor(async () => h.model.hanging(), (open) => open === 1, 10_000, 20);
    const cancelledAt = Date.now();
    env.cancel();
    expect(await running).toBeInstanceOf(CancelledFailure);
    expect(Date.now() - cancelledAt).toBeLessThan(5_000); // the call hangs for ever unless given up
    await waitFor(async () => h.model.hanging(), (open) => open === 0, 5_000, 20);
    expect((await h.repos.trajectories.findByIds(ids))[0].rewardError).toBeNull();
  });

  test('a trajectory id with no row is a non-retryable MissingTrajectory failure', async () => {
    const missing = randomUUID();
    const error = await activities().rewardGroup({ trajectory_ids: [missing] }).catch((e: unknown) => e);
    expect((error as ApplicationFailure).type).toBe('MissingTrajectory');
    expect((error as Error).message).toBe(`trajectory ${missing} is not in the database`);
  });

  test('the GRPO step leaves marked trajectories out: advantages over the rest, 0 and a null reward for them', async () => {
    const grpo = excludingMarkedTrajectories(createGrpoActivities({ trajectories: h.repos.trajectories }), h.repos.trajectories);
    const ids = await recordedGroup(['Paris', 'Lyon', 'Paris', 'Nice']);
    const input = { trajectory_ids: ids, rewards: [1, 0, 0.5, 0], step_counts: [2, 2, 2, 2], gamma: 0.99, credit_assignment: false };
    const { advantages } = await grpo.computeGroupAdvantages({ ...input, reward_errors: [null, null, null, 'reward function "x" returned NaN; …'] });
    const expected = groupAdvantages([1, 0, 0.5]);
    expect(advantages).toEqual([...expected, 0]);
    const rows = await h.repos.trajectories.findByIds(ids);
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(ids.map((id) => byId.get(id)!.reward)).toEqual([1, 0, 0.5, null]);
    expect(ids.map((id) => byId.get(id)!.advantage)).toEqual([...expected, 0]);

    // Every one marked: all advantages 0, nothing learnt; none marked: the plain GRPO step.
    expect((await grpo.computeGroupAdvantages({ ...input, reward_errors: ['a', 'b', 'c', 'd'] })).advantages).toEqual([0, 0, 0, 0]);
    expect((await h.repos.trajectories.findByIds(ids)).every((row) => row.reward === null && row.advantage === 0)).toBe(true);
    expect((await grpo.computeGroupAdvantages(input)).advantages).toEqual(groupAdvantages([1, 0, 0.5, 0]));
  });

  test('the agent type picks the default strategy; an unknown one is a non-retryable failure naming the registered ones', async () => {
    const ids = await recordedGroup(['Paris']);
    expect((await activities().rewardGroup({ trajectory_ids: ids, agent_type: 'http' })).reward_strategy).toBe('outcome');
    expect((await activities().rewardGroup({ trajectory_ids: ids })).reward_strategy).toBe('outcome');
    const error = await activities()
      .rewardGroup({ trajectory_ids: ids, reward_strategy: 'no-such-reward' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect((error as ApplicationFailure).nonRetryable).toBe(true);
    expect((error as ApplicationFailure).type).toBe('UnknownRewardStrategy');
    expect((error as Error).message).toContain('registered: outcome, shaped, outcome_shaped, exact_answer, tool_efficiency, code_tests, llm_judge, ruler');
    // A judge strategy on a worker without LLM access is a contract error, not retried.
    const noChats = createRewardActivities({ rewards: createDefaultRewardRegistry(), trajectories: h.repos.trajectories });
    const contract = await noChats.rewardGroup({ trajectory_ids: ids, reward_strategy: 'ruler', judge: judge() }).catch((e: unknown) => e);
    expect((contract as ApplicationFailure).nonRetryable).toBe(true);
    expect((contract as Error).message).toBe("reward \"ruler\" needs the worker's judge; score it through the reward activity");
  });
});

/** Workflow coverage from this file's own workers, like the harness's. */
const coverage = new WorkflowCoverage();

/** A worker on the harness's queue with `rewards` as its registry, running until `fn` settles. */
async function withWorker<T>(rewards: ReturnType<typeof createDefaultRewardRegistry>, fn: () => Promise<T>): Promise<T> {
  const worker = await createTrainingWorker({
    connection: native,
    taskQueue: h.taskQueue,
    prisma: h.prisma,
    llm: { baseURL: h.model.url },
    rewards,
    workflowBundle: { codePath: requireEnv('FLOW_TEST_WORKFLOW_BUNDLE') },
    workerOptionsHook: (options) => coverage.augmentWorkerOptionsWithBundle(options as never),
  });
  try {
    return await worker.runUntil(fn());
  } finally {
    saveWorkflowCoverage(coverage.coverageMapsData);
    coverage.coverageMapsData = [];
  }
}

describe('whole training jobs', () => {
  test('a custom reward returning NaN for some trajectories: the job completes, those rows carry reward_error and are left out of the advantages', async () => {
    // Failures with an odd number of steps get NaN: a broken custom reward, on some rows only.
    const rewards = createDefaultRewardRegistry().register('sometimes_nan', (t) => (t.success ? 1 - 0.05 * t.steps.length : t.steps.length % 2 === 1 ? Number.NaN : 0.1));
    const request = jobRequest({ config: { iterations: 2, batch_size: 2, group_size: 8, reward_strategy: 'sometimes_nan', checkpoint_interval: 10 } });
    const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
    const result = await withWorker(rewards, () => h.client.workflow.getHandle(jobId).result());
    expect(result.status).toBe('completed');

    const rows = await h.repos.trajectories.listForJob(jobId);
    expect(rows).toHaveLength(2 * 2 * 8);
    const marked = rows.filter((row) => row.rewardError !== null);
    expect(marked.length).toBeGreaterThan(0);
    expect(marked.length).toBeLessThan(rows.length);
    for (const row of marked) {
      expect(row.rewardError).toBe('reward function "sometimes_nan" returned NaN; a reward must be a finite number in [0, 1]');
      expect(row.reward).toBeNull();
      expect(row.advantage).toBe(0);
      expect(row.success).toBe(false);
    }
    const groups = new Map<string, typeof rows>();
    for (const row of rows) groups.set(`${row.iteration}/${row.queryIndex}`, [...(groups.get(`${row.iteration}/${row.queryIndex}`) ?? []), row]);
    for (const group of groups.values()) {
      const valid = group.filter((row) => row.rewardError === null).sort((a, b) => a.sampleIndex - b.sampleIndex);
      // The advantages of the validly scored rows are those of their rewards alone.
      const expected = groupAdvantages(valid.map((row) => row.reward!));
      valid.forEach((row, i) => expect(row.advantage).toBeCloseTo(expected[i], 9));
    }
  });

  test("a job scored by 'ruler' completes, its rewards are the judge's, and its spend includes the judge's calls", async () => {
    const request = jobRequest({ config: { iterations: 2, batch_size: 2, group_size: 4, reward_strategy: 'ruler', checkpoint_interval: 10 } });
    const { jobId, input } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
    const result = await withWorker(createDefaultRewardRegistry(), () => h.client.workflow.getHandle(jobId).result());
    expect(result.status).toBe('completed');

    const judgeCalls = requests.filter(isJudgeCall);
    // One RULER call per group: 2 iterations x 2 queries.
    expect(judgeCalls).toHaveLength(4);
    expect(judgeCalls.every((body) => systemOf(body).startsWith(GROUP_JUDGE_MARKER))).toBe(true);
    // Every call the job made cost CALL_COST; the spend is all of them, the judge's included.
    expect(result.spend_usd).toBeCloseTo(requests.length * CALL_COST, 10);
    expect(result.spend_usd).toBeGreaterThan((requests.length - judgeCalls.length) * CALL_COST + 3.5 * CALL_COST);
    expect((await h.repos.jobs.get(jobId))!.spendUsd).toBeCloseTo(result.spend_usd, 10);

    const rows = await h.repos.trajectories.listForJob(jobId);
    expect(rows).toHaveLength(2 * 2 * 4);
    for (const row of rows) {
      expect(row.rewardError).toBeNull();
      const expectedAnswer = input.training_queries[row.queryIndex].expected_answer!;
      const right = row.finalAnswer !== null && row.finalAnswer.trim() === expectedAnswer;
      // The simulated judge: a right answer scores at least 0.5, a wrong one 0.
      if (right) expect(row.reward!).toBeGreaterThanOrEqual(0.5);
      else expect(row.reward).toBe(0);
    }
  });
});

describe('the API', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiHarness({ harness: h });
  });
  afterAll(async () => {
    await api?.app.close();
  });

  test('refuses an unknown reward strategy at the start with -32602 naming the registered ones', async () => {
    const client = await api.client();
    const error = await rpcError(client.startGrpo({ agent_id: 'reward-agent', task_set: 'simulated-small', config: { reward_strategy: 'no-such-reward' } }));
    expect(error.code).toBe(-32602);
    expect(error.message).toContain('config.reward_strategy: unknown reward strategy; registered: outcome, shaped, outcome_shaped, exact_answer, tool_efficiency, code_tests, llm_judge, ruler');
    expect(error.message).toContain('(got "no-such-reward")');
  });

  test("refuses a judge model with no price: the judge's spend could not be counted", async () => {
    const client = await api.client();
    const error = await rpcError(client.startGrpo({ agent_id: 'reward-agent', task_set: 'simulated-small', config: { reward_strategy: 'ruler', judge: { model: 'judge-without-price' } } }));
    expect(error.code).toBe(-32602);
    expect(error.message).toContain('config.judge.model: no known price for model judge-without-price; give config.prices["judge-without-price"]');
  });
});
