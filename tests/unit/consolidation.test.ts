import fc from 'fast-check';
import { tokenCounterFor } from '../../adapters/llm/tokenCounter';
import { consolidateProposals, type GroupProposal } from '../../training/consolidation';
import { creditsByTrajectory, evidenceSources, toTrajectoryRef, withTrajectoryRefs, type IdentifiedCandidate } from '../../training/groupProposals';
import type { LessonOperation } from '../../training/lessonOperations';
import { buildPolicyUpdateEvidence } from '../../training/policyEvidence';
import { renderSystemPrompt, type Lesson, type Policy } from '../../training/policy';
import { revisePolicy, type HygieneInput } from '../../training/policyHygiene';
import { GATE_ALPHA, gateMinibatch, gateVerdict } from '../../training/updateGate';
import type { TrajectoryStep } from '../../training/trajectory';

const count = tokenCounterFor('gpt-4o').count;
const CONTEXT = { job_id: 'job-1', run: 1, iteration: 4 };
const UPDATE = { learningRate: 0.5, clip: 0.2, maxLessons: 20 };
const HYGIENE = { maxPolicyTokens: 2000, maxUpdateRemovalShare: 0.3, mergeSimilarity: 0.8 };

const lesson = (id: string, text: string, weight: number, extra: Partial<Lesson> = {}): Lesson => ({ id, text, weight, ...extra });

describe('consolidating the groups\' proposals', () => {
  it('makes one add of the same lesson proposed by several groups, citing all their evidence', () => {
    const { operations } = consolidateProposals([
      { operations: [{ op: 'add', text: 'Call lookup first.', evidence: ['t2', 't1'] }] },
      { operations: [{ op: 'add', text: '  call   LOOKUP first. ', evidence: ['t3', 't1'] }, { op: 'none' }] },
    ]);
    expect(operations).toEqual([{ op: 'add', text: 'Call lookup first.', evidence: ['t1', 't2', 't3'] }]);
  });

  it('decides each lesson by majority of groups; a tie changes nothing and is reported', () => {
    const { operations, conflicts } = consolidateProposals([
      { operations: [{ op: 'reweight', lesson_id: 'a', direction: 'up', evidence: ['t1'] }, { op: 'drop', lesson_id: 'b', reason: 'wrong' }] },
      { operations: [{ op: 'reweight', lesson_id: 'a', direction: 'down', evidence: ['t2'] }, { op: 'drop', lesson_id: 'b', reason: 'stale' }] },
      { operations: [{ op: 'reweight', lesson_id: 'c', direction: 'down', evidence: ['t3'] }, { op: 'drop', lesson_id: 'd' }] },
      { operations: [{ op: 'edit', lesson_id: 'e', text: 'Longer text.', evidence: ['t4'] }, { op: 'edit', lesson_id: 'e', text: 'Alt text.', evidence: ['t5', 't6'] }] },
      { operations: [{ op: 'reweight', lesson_id: 'e', direction: 'up', evidence: ['t7'] }, { op: 'drop', lesson_id: 'e' }] },
    ]);
    expect(conflicts).toEqual(['lesson "a": 1 group(s) for it, 1 against: left as it was']);
    expect(operations).toEqual([
      { op: 'drop', lesson_id: 'b', reason: 'stale; wrong' },
      { op: 'drop', lesson_id: 'd' },
      { op: 'edit', lesson_id: 'e', text: 'Alt text.', evidence: ['t4', 't5', 't6'] },
      { op: 'reweight', lesson_id: 'c', direction: 'down', evidence: ['t3'] },
      { op: 'reweight', lesson_id: 'e', direction: 'up', evidence: ['t7'] },
    ]);
  });

  it('reports malformed proposals and ties between edits go to the smaller text', () => {
    const { operations, malformed } = consolidateProposals([
      { operations: [{ op: 'rename', lesson_id: 'x' }, { op: 'edit', lesson_id: 'e', text: 'B.', evidence: ['t1'] }, { op: 'edit', lesson_id: 'e', text: 'A.', evidence: ['t2'] }] },
    ]);
    expect(malformed).toHaveLength(1);
    expect(malformed[0]).toMatch(/^malformed operation: /);
    expect(operations).toEqual([{ op: 'edit', lesson_id: 'e', text: 'A.', evidence: ['t1', 't2'] }]);
  });
});

/** Random proposals over a small library and a pool of trajectories. */
const refArb = fc.constantFrom('t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't2.s0');
const evidenceArb = fc.array(refArb, { minLength: 1, maxLength: 3 });
const idArb = fc.constantFrom('a', 'b', 'c', 'zz');
const textArb = fc.constantFrom('Call lookup first.', 'call lookup first.', 'Verify before answering.', 'Use search then lookup.', 'Call lookup_invoice first.');
const opArb: fc.Arbitrary<LessonOperation> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), text: textArb, evidence: evidenceArb }),
  fc.record({ op: fc.constant('edit' as const), lesson_id: idArb, text: textArb, evidence: evidenceArb }),
  fc.record({ op: fc.constant('reweight' as const), lesson_id: idArb, direction: fc.constantFrom('up' as const, 'down' as const), evidence: evidenceArb }),
  fc.record({ op: fc.constant('drop' as const), lesson_id: idArb }),
  fc.constant({ op: 'none' as const }),
);
const proposalsArb = fc.array(fc.record({ operations: fc.array(opArb, { maxLength: 4 }) }), { minLength: 1, maxLength: 6 });
const CREDITS: Record<string, number> = { t1: 1.2, t2: 0.8, t3: 0.5, t4: -0.4, t5: 0.9, t6: 1.5, t7: 0.3, t8: -1.1, 't2.s0': 0.7 };
const PARENT: Policy = {
  base_prompt: 'You are careful.',
  lessons: [lesson('a', 'Call search first.', 0.5), lesson('b', 'Verify the total.', 0.3), lesson('c', 'Use lookup for refunds.', 0.9)],
  version: 3,
};
const OBSERVATIONS = [
  { trajectory_id: 't1', success: true, tools: ['lookup'] },
  { trajectory_id: 't4', success: false, tools: ['search'] },
];

function hygieneInput(proposals: GroupProposal[]): HygieneInput {
  return { parent: PARENT, proposals, credits: CREDITS, observations: OBSERVATIONS, context: CONTEXT, update: UPDATE, hygiene: HYGIENE };
}

describe('consolidation does not depend on the order of groups (property)', () => {
  it('any permutation of the proposals gives the same operations and the same policy', () => {
    fc.assert(
      fc.property(proposalsArb, fc.array(fc.nat(), { minLength: 6, maxLength: 6 }), (proposals, keys) => {
        const permuted = proposals.map((p, i) => ({ p, k: keys[i] })).sort((x, y) => x.k - y.k).map(({ p }) => p);
        expect(consolidateProposals(permuted)).toEqual(consolidateProposals(proposals));
        const a = revisePolicy(hygieneInput(proposals), count);
        const b = revisePolicy(hygieneInput([...permuted].reverse()), count);
        expect(b).toEqual(a);
        expect(a.tokens).toBeLessThanOrEqual(HYGIENE.maxPolicyTokens);
      }),
      { seed: 16, numRuns: 300 },
    );
  });
});

describe('revisePolicy', () => {
  it('applies the consolidated update with provenance, counts the parent\'s lessons and bumps the version', () => {
    const report = revisePolicy(
      hygieneInput([
        { operations: [{ op: 'add', text: 'Call lookup first.', evidence: ['t1', 't2.s0'] }] },
        { operations: [{ op: 'edit', lesson_id: 'b', text: 'Verify the total twice.', evidence: ['t6'] }] },
      ]),
      count,
    );
    expect(report.collapse_refusal).toBeNull();
    expect(report.policy.version).toBe(4);
    const added = report.policy.lessons.find((l) => l.text === 'Call lookup first.')!;
    expect(added.provenance).toEqual([{ ...CONTEXT, operation: 'add', trajectory_ids: ['t1', 't2'] }]);
    expect(added.counters).toBeUndefined();
    const edited = report.policy.lessons.find((l) => l.id === 'b')!;
    expect(edited.provenance).toEqual([{ ...CONTEXT, operation: 'edit', trajectory_ids: ['t6'] }]);
    expect(edited.counters).toEqual({ helpful: 0, harmful: 0, counted_run: 1, counted_iteration: 4 });
    expect(report.policy.lessons.find((l) => l.id === 'a')!.counters).toMatchObject({ helpful: 0, harmful: 1 });
    expect(report.churn).toEqual({ added: 1, edited: 1, reweighted: 0, dropped: 0 });
    expect(report.tokens).toBe(count(renderSystemPrompt(report.policy)));
  });

  it('refuses an update that removes too much, keeps the parent (counted) and reports it', () => {
    const report = revisePolicy(hygieneInput([{ operations: [{ op: 'drop', lesson_id: 'a' }, { op: 'drop', lesson_id: 'c' }] }]), count);
    expect(report.collapse_refusal).toMatch(/^the update would remove \d+ of the library's \d+ lesson tokens \(\d+\.\d%, 2 lessons\)/);
    expect(report.removal_share).toBeGreaterThan(0.3);
    expect(report.applied).toEqual([]);
    expect(report.churn).toEqual({ added: 0, edited: 0, reweighted: 0, dropped: 0 });
    expect(report.policy.lessons.map((l) => l.id)).toEqual(['a', 'b', 'c']);
    // Only the counters changed: same version.
    expect(report.policy.version).toBe(3);
  });

  it('drops the lesson that keeps hurting with its reason, merges duplicates and fits the budget', () => {
    const hurting = lesson('h', 'Call search first for refunds.', 0.8, { counters: { helpful: 0, harmful: 9, counted_run: 1, counted_iteration: 3 } });
    const twinA = lesson('x', 'Verify the total before you answer.', 0.4);
    const twinB = lesson('y', 'verify the total before you answer', 0.2);
    const parent: Policy = { ...PARENT, lessons: [hurting, twinA, twinB, lesson('z', 'A very long lesson '.repeat(20).trim(), 0.1)] };
    const tight = count(`${PARENT.base_prompt}\n\nLessons learned (weight = confidence):\n- [0.40] ${twinA.text}`) + 2;
    const report = revisePolicy({ ...hygieneInput([]), parent, observations: [], hygiene: { ...HYGIENE, maxPolicyTokens: tight } }, count);
    expect(report.harmful_dropped).toEqual([{ lesson_id: 'h', text: hurting.text, reason: expect.stringMatching(/^keeps hurting: of 9 trajectories/) }]);
    expect(report.merged).toEqual([{ kept: 'x', merged: 'y', similarity: 1 }]);
    expect(report.trimmed).toEqual([{ lesson_id: 'z', text: parent.lessons[3].text }]);
    expect(report.policy.lessons.map((l) => l.id)).toEqual(['x']);
    expect(report.tokens).toBeLessThanOrEqual(tight);
    expect(report.churn.dropped).toBe(3);
    expect(report.policy.version).toBe(4);
  });

  it('leaves a policy with nothing to do at its version', () => {
    const parent: Policy = { ...PARENT, lessons: [] };
    const report = revisePolicy({ ...hygieneInput([{ operations: [{ op: 'none' }] }]), parent }, count);
    expect(report.policy).toEqual(parent);
    expect(report.rejected).toEqual([]);
  });

  it('reports rejected operations; an add that fell to the lesson cap gets no provenance', () => {
    const report = revisePolicy(
      {
        ...hygieneInput([{ operations: [{ op: 'add', text: 'Weak new lesson.', evidence: ['t7'] }, { op: 'reweight', lesson_id: 'a', direction: 'up', evidence: ['t4'] }] }]),
        update: { ...UPDATE, maxLessons: 3 },
      },
      count,
    );
    expect(report.rejected).toEqual([expect.stringMatching(/^reweight: evidence "t4" has advantage -0.4/)]);
    // The new lesson (weight 0.15) was the weakest of four under a cap of three.
    expect(report.policy.lessons.map((l) => l.id)).toEqual(['a', 'b', 'c']);
    expect(report.policy.lessons.every((l) => l.provenance === undefined)).toBe(true);
    expect(report.policy.version).toBe(3);
  });
});

const step = (index: number, tool: string | null): TrajectoryStep => ({
  index,
  state: '',
  action: tool ? { type: 'tool_call', content: null } : { type: 'final_answer', content: 'done' },
  tool_calls: tool ? [{ id: `c${index}`, name: tool, arguments: {} }] : [],
  result: tool ? 'ok' : null,
  error: null,
  started_at: '2024-01-01T00:00:00.000Z',
  ended_at: '2024-01-01T00:00:00.000Z',
  usage: { prompt_tokens: 0, completion_tokens: 0 },
  cost_usd: 0,
  logprob: null,
});

describe('group proposals cite trajectory ids', () => {
  const candidate = (id: string, tool: string, advantage: number, credits: number[] | null = null): IdentifiedCandidate => ({
    trajectory_id: id,
    trajectory: { steps: [step(0, tool), step(1, null)], success: advantage > 0, final_answer: 'done' },
    advantage,
    query: '[billing] q',
    stepCredits: credits,
  });

  it('maps each shown ref to its trajectory and rewrites evidence and credits', () => {
    const candidates = [candidate('job:1:1:0:0', 'search', -1), candidate('job:1:1:0:1', 'lookup', 1.5), candidate('job:1:1:0:2', 'lookup', 0.5), candidate('job:1:1:0:3', 'lookup', 0.5)];
    const evidence = buildPolicyUpdateEvidence([], candidates, 'positive_only');
    const sources = evidenceSources(evidence, candidates);
    expect([...sources]).toEqual([
      ['T1', 'job:1:1:0:1'],
      ['T2', 'job:1:1:0:2'],
      ['T3', 'job:1:1:0:3'],
    ]);
    expect(toTrajectoryRef('T2.s0', sources)).toBe('job:1:1:0:2.s0');
    expect(toTrajectoryRef('T9', sources)).toBe('T9');
    expect(withTrajectoryRefs([{ op: 'add', text: 'x', evidence: ['T1', 'T3.s1'] }, { op: 'none' }], sources)).toEqual([
      { op: 'add', text: 'x', evidence: ['job:1:1:0:1', 'job:1:1:0:3.s1'] },
      { op: 'none' },
    ]);
    expect(creditsByTrajectory(evidence, sources)).toEqual({ 'job:1:1:0:1': 1.5, 'job:1:1:0:2': 0.5, 'job:1:1:0:3': 0.5 });
    const credited = [candidate('a', 'lookup', 1, [1, 0.5])];
    const withSteps = buildPolicyUpdateEvidence([], credited, 'positive_only');
    expect(creditsByTrajectory(withSteps, evidenceSources(withSteps, credited))).toEqual({ a: 1, 'a.s0': 1, 'a.s1': 0.5 });
  });

  it('refuses evidence no candidate reads as', () => {
    const evidence = buildPolicyUpdateEvidence([], [candidate('a', 'lookup', 1)], 'positive_only');
    expect(() => evidenceSources(evidence, [candidate('b', 'search', 1)])).toThrow('evidenceSources: no candidate reads as evidence T1');
  });
});

describe('the cheap gate', () => {
  it('refuses a candidate only when it is worse beyond chance (one-sided sign test on the episodes where they differ)', () => {
    // Lost 1 of 1 differing episode: p = 0.5, noise; the first rule ("not fewer successes") refused it.
    expect(gateVerdict([true, true], [true, false])).toMatchObject({ accepted: true, losses: 1, wins: 0, p_worse: expect.closeTo(0.5, 12), reason: null });
    expect(gateVerdict([true, false, false], [false, true, false])).toMatchObject({ accepted: true, parent_successes: 1, candidate_successes: 1, episodes: 3, losses: 1, wins: 1, p_worse: expect.closeTo(0.75, 12) });
    // Lost 3 of 3: p = 1/8, not below 0.1.
    expect(gateVerdict([true, true, true, false], [false, false, false, false])).toMatchObject({ accepted: true, p_worse: expect.closeTo(0.125, 12) });
    // Lost 4 of 4: p = 1/16.
    const refused = gateVerdict([true, true, true, true, false, true, true, true], [false, false, false, false, false, true, true, true]);
    expect(refused).toMatchObject({ accepted: false, parent_successes: 7, candidate_successes: 3, episodes: 8, losses: 4, wins: 0 });
    expect(refused.p_worse).toBeCloseTo(1 / 16, 12);
    // The declared level sits between the two: 1/16 < GATE_ALPHA <= 7/64 < 1/8.
    expect(GATE_ALPHA).toBeGreaterThan(1 / 16);
    expect(GATE_ALPHA).toBeLessThanOrEqual(7 / 64);
    expect(refused.reason).toBe(
      "the update did worse than its parent on the gate's minibatch beyond chance: 3 of 8 episodes succeeded against 7 (lost 4, won 0 of the episodes where they differ; sign test p = 0.063 < 0.1); the parent was kept",
    );
    // Lost 5, won 1 of 6: p = 7/64 ≈ 0.109, kept; no difference at all: p = 1.
    expect(gateVerdict([true, true, true, true, true, false], [false, false, false, false, false, true]).accepted).toBe(true);
    expect(gateVerdict([true, false], [true, false])).toMatchObject({ accepted: true, losses: 0, wins: 0, p_worse: 1 });
    expect(() => gateVerdict([true], [])).toThrow('the parent ran 1 episodes and the candidate 0');
  });

  it('keeps the first rule for jobs that started with it: any loss in successes refuses', () => {
    expect(gateVerdict([true, true], [true, false], 'not_fewer')).toMatchObject({
      accepted: false,
      reason: "the update did worse than its parent on the gate's minibatch: 1 of 2 episodes succeeded against 2; the parent was kept",
    });
    expect(gateVerdict([true, false, false], [false, true, false], 'not_fewer').accepted).toBe(true);
  });

  it('draws a minibatch of distinct validation queries, fresh per iteration, reproducible', () => {
    const batch = gateMinibatch(10, 4, 3, 7);
    expect(batch).toHaveLength(4);
    expect(new Set(batch).size).toBe(4);
    expect(batch.every((i) => i >= 0 && i < 10)).toBe(true);
    expect(gateMinibatch(10, 4, 3, 7)).toEqual(batch);
    expect(gateMinibatch(3, 5, 1, 1)).toEqual([0, 1, 2]);
    const draws = new Set(Array.from({ length: 5 }, (_, it) => JSON.stringify(gateMinibatch(10, 4, it, 7))));
    expect(draws.size).toBeGreaterThan(1);
    expect(() => gateMinibatch(3, 0, 1, 1)).toThrow('gateMinibatch: size must be a positive integer, got 0');
  });
});
