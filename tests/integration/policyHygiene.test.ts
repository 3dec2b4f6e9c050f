/**
 * Issue 16 items 4-6 against a real local OpenAI-compatible server and real PostgreSQL: a group's
 * proposal cites trajectory ids, the consolidation applies every group's proposals with
 * provenance and counters, counts each trajectory once however often it is retried, refuses a
 * collapse with its reason, and the rendered policy never exceeds max_policy_tokens; the whole
 * updater shows the optimizer lessons' counters (not their provenance) and fits the budget too.
 */
import { randomUUID } from 'node:crypto';
import { tokenCounterFor } from '../../adapters/llm/tokenCounter';
import type { UpdatePolicyInput } from '../../activities/policyUpdate';
import { createPolicyConsolidationActivities, type ConsolidatePolicyInput } from '../../activities/policyConsolidation';
import type { Trajectory } from '../../training/trajectory';
import { initialPolicy, renderSystemPrompt, type Policy } from '../../training/policy';
import { jobRequest } from '../support/harness';
import { scriptedContent as content, useScriptedUpdater } from '../support/scriptedUpdater';
import { InvalidTrainingJobError, validateTrainingJob } from '../../api/trainingJobs';

const scripted = useScriptedUpdater();
const updater = () => scripted.updater();
const consolidation = () => createPolicyConsolidationActivities({ trajectories: scripted.repos.trajectories });
const count = tokenCounterFor('gpt-4o').count;

/** A group of trajectories on one query: trajectory i calls `tools[i]` and succeeds when its advantage is positive. */
async function group(jobId: string, queryIndex: number, advantages: number[], tools: string[]): Promise<UpdatePolicyInput['candidates']> {
  const now = new Date().toISOString();
  const candidates = [];
  for (const [i, advantage] of advantages.entries()) {
    const t: Trajectory = {
      job_id: jobId, run: 1, iteration: 1, query_index: queryIndex, sample_index: i, query_id: `q${queryIndex}`, agent_id: 'a',
      steps: [
        { index: 0, state: 'q', action: { type: 'tool_call', content: null }, tool_calls: [{ id: 'c', name: tools[i], arguments: {} }], result: `result ${i}`, started_at: now, ended_at: now, usage: { prompt_tokens: 5, completion_tokens: 1 }, cost_usd: 0, logprob: -1, error: null },
        { index: 1, state: `result ${i}`, action: { type: 'final_answer', content: `answer ${i}` }, tool_calls: [], result: null, started_at: now, ended_at: now, usage: { prompt_tokens: 5, completion_tokens: 1 }, cost_usd: 0, logprob: -1, error: null },
      ],
      final_answer: `answer ${i}`, success: advantage > 0, verified: false, error: null,
      usage: { prompt_tokens: 10, completion_tokens: 2 }, cost_usd: 0, log_prob: -2, started_at: now, ended_at: now,
    };
    const { id } = await scripted.repos.trajectories.record(t);
    candidates.push({ trajectory_id: id, advantage, query: `[billing] question ${queryIndex}` });
  }
  return candidates;
}

async function newJob(): Promise<string> {
  const jobId = `hy-${randomUUID()}`;
  await scripted.repos.jobs.create({ id: jobId, agentId: 'a', tenantId: 't', ownerId: 'o', priority: 'P1', config: {}, budgetUsd: 1 });
  return jobId;
}

const updateInput = (policy: Policy, candidates: UpdatePolicyInput['candidates'], overrides: Partial<UpdatePolicyInput> = {}): UpdatePolicyInput => ({
  policy, candidates, learning_rate: 0.5, clip: 0.2, max_lessons: 10, optimizer_model: 'flow-sim-1', max_tokens: 256, seed: 1, ...overrides,
});

const consolidateInput = (jobId: string, policy: Policy, proposals: ConsolidatePolicyInput['proposals'], credits: Record<string, number>, ids: string[]): ConsolidatePolicyInput => ({
  job_id: jobId, run: 1, iteration: 1, policy, proposals, credits, trajectory_ids: ids,
  learning_rate: 0.5, clip: 0.2, max_lessons: 10, model: 'gpt-4o', max_policy_tokens: 2000, lesson_merge_similarity: 0.8, max_update_removal_share: 0.3,
});

test('each group proposes against trajectory ids; one consolidation applies both in either order, with provenance', async () => {
  const jobId = await newJob();
  const first = await group(jobId, 0, [1, -1], ['lookup_invoice', 'search']);
  const second = await group(jobId, 1, [1.5, -1.5], ['lookup_invoice', 'search']);
  const lesson = { op: 'add', text: 'For billing tasks, call lookup_invoice first.', evidence: ['T1'] };
  scripted.answers = [content({ operations: [lesson] }), content({ operations: [lesson] })];
  const a = await updater().proposeLessonOperations(updateInput(initialPolicy('base'), first));
  const b = await updater().proposeLessonOperations(updateInput(initialPolicy('base'), second));
  expect(a.operations).toEqual([{ ...lesson, evidence: [first[0].trajectory_id] }]);
  expect(a.credits).toEqual({ [first[0].trajectory_id]: 1 });
  expect(a).toMatchObject({ skipped_reason: null, allowance_exceeded: false, invalid_outputs: 0, rejected: [] });

  const ids = [...first, ...second].map((c) => c.trajectory_id);
  const credits = { ...a.credits, ...b.credits };
  const forward = await consolidation().consolidatePolicy(consolidateInput(jobId, initialPolicy('base'), [a, b].map(({ operations }) => ({ operations })), credits, ids));
  const backward = await consolidation().consolidatePolicy(consolidateInput(jobId, initialPolicy('base'), [b, a].map(({ operations }) => ({ operations })), credits, ids));
  expect(backward).toEqual(forward);
  expect(forward.policy.lessons).toEqual([
    {
      id: 'L1-1',
      text: lesson.text,
      weight: 0.2,
      provenance: [{ job_id: jobId, run: 1, iteration: 1, operation: 'add', trajectory_ids: [first[0].trajectory_id, second[0].trajectory_id].sort() }],
    },
  ]);
  expect(forward.collapse_refusal).toBeNull();
  expect(forward.tokens).toBe(count(renderSystemPrompt(forward.policy)));
});

test('counters count each trajectory once, however often the consolidation is retried', async () => {
  const jobId = await newJob();
  const candidates = await group(jobId, 0, [1, 1, -1, -1], ['lookup_invoice', 'lookup_invoice', 'lookup_invoice', 'search']);
  const policy: Policy = { base_prompt: 'base', lessons: [{ id: 'L1-1', text: 'For billing tasks, call lookup_invoice first.', weight: 0.4 }], version: 1 };
  const ids = candidates.map((c) => c.trajectory_id);
  const input = { ...consolidateInput(jobId, policy, [], {}, [...ids, ids[0]]), iteration: 2, queries: [...ids, ids[0]].map(() => '[billing] question 0') };
  const once = await consolidation().consolidatePolicy(input);
  const retried = await consolidation().consolidatePolicy(input);
  expect(retried).toEqual(once);
  expect(once.policy.lessons[0].counters).toEqual({ helpful: 2, harmful: 1, counted_run: 1, counted_iteration: 2 });
  // The next attempt of the same iteration on the counted policy counts nothing again.
  const again = await consolidation().consolidatePolicy({ ...input, policy: once.policy });
  expect(again.policy.lessons[0].counters).toEqual(once.policy.lessons[0].counters);
});

test('a collapse is refused with its reason; the budget holds', async () => {
  const jobId = await newJob();
  const candidates = await group(jobId, 0, [1, -1], ['lookup_invoice', 'search']);
  const lessons = ['Verify the total.', 'Cite the invoice number.', 'Answer in one sentence.'].map((text, i) => ({ id: `L1-${i + 1}`, text, weight: 0.5 }));
  const policy: Policy = { base_prompt: 'base', lessons, version: 1 };
  const proposals = [{ operations: [{ op: 'drop' as const, lesson_id: 'L1-1' }, { op: 'drop' as const, lesson_id: 'L1-2' }] }];
  const report = await consolidation().consolidatePolicy(consolidateInput(jobId, policy, proposals, {}, candidates.map((c) => c.trajectory_id)));
  expect(report.collapse_refusal).toMatch(/^the update would remove \d+ of the library's \d+ lesson tokens/);
  expect(report.policy.lessons.map((l) => l.id)).toEqual(['L1-1', 'L1-2', 'L1-3']);

  const max = count(renderSystemPrompt({ ...policy, lessons: lessons.slice(0, 1) }));
  const tight = await consolidation().consolidatePolicy({ ...consolidateInput(jobId, policy, [], {}, []), max_policy_tokens: max });
  // Equal weights: the newest go first.
  expect(tight.trimmed.map((t) => t.lesson_id)).toEqual(['L1-3', 'L1-2']);
  expect(tight.tokens).toBe(count(renderSystemPrompt(tight.policy)));
  expect(tight.tokens).toBeLessThanOrEqual(max);
});

test('the updater is shown counters, not provenance, and fits its result to max_policy_tokens', async () => {
  const jobId = await newJob();
  const candidates = await group(jobId, 0, [1, -1], ['lookup_invoice', 'search']);
  const policy: Policy = {
    base_prompt: 'base',
    lessons: [
      {
        id: 'L1-1',
        text: 'Verify the total before you answer the question.',
        weight: 0.3,
        provenance: [{ job_id: jobId, run: 1, iteration: 1, operation: 'add', trajectory_ids: ['t-x'] }],
        counters: { helpful: 1, harmful: 7, counted_run: 1, counted_iteration: 1 },
      },
    ],
    version: 1,
  };
  scripted.answers = [content({ operations: [{ op: 'add', text: 'For billing tasks, call lookup_invoice first.', evidence: ['T1'] }] })];
  const budget = count(renderSystemPrompt(policy));
  const result = await updater().updatePolicy(updateInput(policy, candidates, { max_policy_tokens: budget, model: 'gpt-4o' }));
  const user = scripted.requests[0].messages.find((m) => m.role === 'user')!.content!;
  expect(user).toContain('"harmful": 7');
  expect(user).not.toContain('t-x');
  expect(scripted.requests[0].messages[0].content).toContain('"harmful" how many failed');
  // The new lesson (0.2) and the old one (0.3) do not both fit: the weaker goes.
  expect(result.policy.lessons.map((l) => l.id)).toEqual(['L1-1']);
  expect(result.policy.version).toBe(2);
  expect(result.churn).toEqual({ added: 1, edited: 0, reweighted: 0, dropped: 1 });
  expect(count(renderSystemPrompt(result.policy))).toBeLessThanOrEqual(budget);
});

test('a group with nothing to learn from proposes nothing, without asking', async () => {
  const jobId = await newJob();
  const candidates = await group(jobId, 0, [0, 0], ['search', 'search']);
  const proposal = await updater().proposeLessonOperations(updateInput(initialPolicy('base'), candidates));
  expect(proposal).toMatchObject({ operations: [], credits: {}, skipped_reason: 'no positive-advantage trajectories' });
  expect(scripted.requests).toHaveLength(0);
});

test('a job whose base prompt alone is over max_policy_tokens is refused at start, naming the numbers', () => {
  const request = jobRequest({ base_prompt: 'word '.repeat(40).trim(), config: { max_policy_tokens: 16 } });
  expect(() => validateTrainingJob(request)).toThrow(InvalidTrainingJobError);
  expect(() => validateTrainingJob(request)).toThrow('base_prompt: 44 tokens (o200k_base, approximate) alone exceed config.max_policy_tokens 16; raise max_policy_tokens or shorten the base prompt');
  expect(validateTrainingJob(jobRequest({ base_prompt: 'Be brief.', config: { max_policy_tokens: 16 } })).config.max_policy_tokens).toBe(16);
  // A starting policy from the registry must fit too.
  const lessons = Array.from({ length: 3 }, (_, i) => ({ id: `L${i}`, text: `Lesson number ${i} says check the balance first.`, weight: 0.5 }));
  const active = { version: 2, content_hash: 'a'.repeat(64), policy: { base_prompt: 'Be brief.', lessons, version: 0 } };
  expect(() => validateTrainingJob({ ...jobRequest({ base_prompt: 'Be brief.', config: { max_policy_tokens: 16 } }), initial_policy: active })).toThrow(
    /^base: the active policy version 2 renders to \d+ tokens \(o200k_base, approximate\), over config.max_policy_tokens 16; raise max_policy_tokens$/,
  );
  expect(validateTrainingJob({ ...jobRequest({ base_prompt: 'Be brief.' }), initial_policy: active }).initial_policy?.version).toBe(2);
  // Its base prompt alone over the limit names the version, not a base_prompt the caller never gave.
  const long = { ...active, policy: { ...active.policy, base_prompt: 'word '.repeat(40).trim() } };
  expect(() => validateTrainingJob({ ...jobRequest({ base_prompt: long.policy.base_prompt, config: { max_policy_tokens: 16 } }), initial_policy: long })).toThrow(
    "base: the active policy version 2's base prompt alone is 44 tokens (o200k_base, approximate), over config.max_policy_tokens 16; raise max_policy_tokens",
  );
});
