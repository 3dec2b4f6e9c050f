/**
 * FLOW-006 against a real local OpenAI-compatible server (programmed answers over HTTP) and
 * real PostgreSQL: edits only from positive-advantage trajectories, weight changes scaled by
 * advantage and clipped, malformed answers retried then skipped with the policy unchanged.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { MAX_OPTIMIZER_ATTEMPTS, type UpdatePolicyInput } from '../../activities/policyUpdate';
import type { Trajectory } from '../../training/trajectory';
import { initialPolicy, type Policy } from '../../training/policy';
import type { ChatCompletionRequestBody } from '../../workers/dev/simulatedModelServer';
import { scriptedContent as content, useScriptedUpdater } from '../support/scriptedUpdater';
import { waitFor } from '../support/apiHarness';

const scripted = useScriptedUpdater();
const updater = () => scripted.updater();

async function groupWithAdvantages(advantages: number[]): Promise<UpdatePolicyInput['candidates']> {
  const jobId = `pu-${randomUUID()}`;
  await scripted.repos.jobs.create({ id: jobId, agentId: 'a', tenantId: 't', ownerId: 'o', priority: 'P1', config: {}, budgetUsd: 1 });
  const now = new Date().toISOString();
  const candidates = [];
  for (const [i, advantage] of advantages.entries()) {
    const t: Trajectory = {
      job_id: jobId, run: 1, iteration: 1, query_index: 0, sample_index: i, query_id: 'q', agent_id: 'a',
      steps: [
        { index: 0, state: '[billing] balance?', action: { type: 'tool_call', content: null }, tool_calls: [{ id: 'c', name: `tool_${i}`, arguments: {} }], result: `result ${i}`, started_at: now, ended_at: now, usage: { prompt_tokens: 5, completion_tokens: 1 }, cost_usd: 0, logprob: -1, error: null },
        { index: 1, state: `result ${i}`, action: { type: 'final_answer', content: `answer ${i}` }, tool_calls: [], result: null, started_at: now, ended_at: now, usage: { prompt_tokens: 5, completion_tokens: 1 }, cost_usd: 0, logprob: -1, error: null },
      ],
      final_answer: `answer ${i}`, success: advantage > 0, verified: false, error: null,
      usage: { prompt_tokens: 10, completion_tokens: 2 }, cost_usd: 0, log_prob: -2, started_at: now, ended_at: now,
    };
    const { id } = await scripted.repos.trajectories.record(t);
    candidates.push({ trajectory_id: id, advantage, query: '[billing] What is the balance?' });
  }
  return candidates;
}

const input = (policy: Policy, candidates: UpdatePolicyInput['candidates'], overrides: Partial<UpdatePolicyInput> = {}): UpdatePolicyInput => ({
  policy, candidates, learning_rate: 0.5, clip: 0.2, max_lessons: 10, optimizer_model: 'flow-sim-1', max_tokens: 256, seed: 1, ...overrides,
});
const evidenceIn = (body: ChatCompletionRequestBody) => {
  const user = body.messages.find((m) => m.role === 'user')!.content!;
  return JSON.parse(/```json\n([\s\S]*?)\n```/.exec(user)![1]) as { trajectories: { ref: string; advantage: number; steps: { tool: string | null }[] }[] };
};

test('the optimizer sees only positive-advantage trajectories, and an edit citing anything else is rejected', async () => {
  const candidates = await groupWithAdvantages([1.2, -0.8, 0.4, -0.8]);
  scripted.answers = [content({ operations: [
    { op: 'add', text: 'For billing tasks, call tool_0 first.', evidence: ['T1'] },
    { op: 'add', text: 'For billing tasks, call tool_1 first.', evidence: ['T3'] },
  ] })];
  const result = await updater().updatePolicy(input(initialPolicy('base'), candidates));

  const shown = evidenceIn(scripted.requests[0]).trajectories;
  expect(shown.map((t) => [t.ref, t.advantage, t.steps[0].tool])).toEqual([['T1', 1.2, 'tool_0'], ['T2', 0.4, 'tool_2']]);
  expect(result.applied).toBe(1);
  expect(result.rejected).toHaveLength(1);
  expect(result.rejected[0]).toMatch(/T3/);
  expect(result.policy.lessons.map((l) => l.text)).toEqual(['For billing tasks, call tool_0 first.']);
  expect(result.policy.version).toBe(1);
  expect(result.usage.prompt_tokens).toBeGreaterThan(0);
});

test('a larger advantage gives a larger weight change, never beyond the clip', async () => {
  const weightFor = async (advantage: number) => {
    const candidates = await groupWithAdvantages([advantage, -advantage]);
    scripted.answers = [content({ operations: [{ op: 'add', text: 'Check the account first.', evidence: ['T1'] }] })];
    const result = await updater().updatePolicy(input(initialPolicy('base'), candidates));
    return result.policy.lessons[0].weight;
  };
  const small = await weightFor(0.1);
  const medium = await weightFor(0.3);
  const large = await weightFor(5);
  expect(small).toBeCloseTo(0.5 * 0.1, 9);
  expect(medium).toBeCloseTo(0.5 * 0.3, 9);
  expect(medium).toBeGreaterThan(small);
  expect(large).toBe(0.2);
});

test('a malformed answer is asked again, then skipped: the policy stays byte-identical', async () => {
  const candidates = await groupWithAdvantages([1, -1]);
  const policy: Policy = { base_prompt: 'base', version: 4, lessons: [{ id: 'L1-1', text: 'Be careful.', weight: 0.3 }] };
  const before = JSON.stringify(policy);
  scripted.answers = [content('not json at all'), content({ operations: [{ op: 'teleport' }] }), content('```json\n{"operations": "nope"}\n```')];
  const result = await updater().updatePolicy(input(policy, candidates));

  expect(scripted.requests).toHaveLength(MAX_OPTIMIZER_ATTEMPTS);
  expect(JSON.stringify(result.policy)).toBe(before);
  expect(result.skipped_reason).toMatch(/^malformed optimizer answer after 3 attempts: .*operations/);
  expect(result.churn).toEqual({ added: 0, edited: 0, reweighted: 0, dropped: 0 });
  // The retry tells the model what was wrong.
  expect(scripted.requests[1].messages.at(-1)?.content).toMatch(/not valid: not JSON/);
});

test('a malformed answer followed by a valid one is applied', async () => {
  const candidates = await groupWithAdvantages([1, -1]);
  scripted.answers = [content('{"operations": [{"op": "add"}]}'), content('```json\n{"operations": [{"op": "add", "text": "Verify before answering.", "evidence": ["T1"]}]}\n```')];
  const result = await updater().updatePolicy(input(initialPolicy('base'), candidates));
  expect(scripted.requests).toHaveLength(2);
  expect(result.policy.lessons.map((l) => l.text)).toEqual(['Verify before answering.']);
});

test('with no positive advantage the LLM is not called and the policy is unchanged', async () => {
  const candidates = await groupWithAdvantages([0, 0, 0]);
  const policy = initialPolicy('base');
  const result = await updater().updatePolicy(input(policy, candidates));
  expect(scripted.requests).toHaveLength(0);
  expect(result.policy).toBe(policy);
  expect(result.skipped_reason).toBe('no positive-advantage trajectories');
});

test('a cancelled update stops waiting for the optimizer: its call is given up and the connection closed', async () => {
  const candidates = await groupWithAdvantages([1, -1]);
  scripted.answers = [{ kind: 'hang' }];
  const env = new MockActivityEnvironment();
  const running = env.run(updater().updatePolicy, input(initialPolicy('base'), candidates)).catch((error: unknown) => error);
  await waitFor(async () => scripted.hanging(), (open) => open === 1, 10_000, 20);
  const cancelledAt = Date.now();
  env.cancel();
  expect(await running).toBeInstanceOf(CancelledFailure);
  expect(Date.now() - cancelledAt).toBeLessThan(5_000); // the call hangs for ever unless given up
  await waitFor(async () => scripted.hanging(), (open) => open === 0, 5_000, 20);
});
