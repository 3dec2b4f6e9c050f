import {
  LESSONS_HEADER,
  LESSON_TEXT_MAX_CHARS,
  LessonSchema,
  PolicySchema,
  initialPolicy,
  renderSystemPrompt,
  type Policy,
} from '../../training/policy';
import {
  MAX_EVIDENCE_REFS,
  MAX_OPERATIONS_PER_UPDATE,
  LessonOperationSchema,
  LessonOperationsAnswerSchema,
  applyLessonOperations,
  type LessonOperation,
} from '../../training/lessonOperations';
import {
  PolicyUpdateEvidenceSchema,
  parsePolicyUpdateEvidence,
  renderPolicyUpdateEvidence,
  toEvidenceTrajectory,
  type PolicyUpdateEvidence,
} from '../../training/policyEvidence';

const OPTS = { learningRate: 0.5, clip: 0.3, maxLessons: 20 };

function policyWith(lessons: Policy['lessons'], version = 3): Policy {
  return { base_prompt: 'Base.', lessons, version };
}

const twoLessons = (): Policy =>
  policyWith([
    { id: 'L1-1', text: 'Use the calculator for sums.', weight: 0.4 },
    { id: 'L2-1', text: 'Check answers.', weight: 0.1 },
  ]);

describe('schemas', () => {
  it('validate lessons, policies and the optimizer answer', () => {
    expect(PolicySchema.parse(initialPolicy('Be careful.'))).toEqual({ base_prompt: 'Be careful.', lessons: [], version: 0 });
    expect(LESSON_TEXT_MAX_CHARS).toBe(500);
    expect(LessonSchema.safeParse({ id: 'a', text: 'x'.repeat(500), weight: 0 }).success).toBe(true);
    expect(PolicySchema.safeParse(policyWith([{ id: 'a', text: 'x'.repeat(501), weight: 0.5 }])).success).toBe(false);
    expect(LessonOperationSchema.safeParse({ op: 'add', text: 'x', evidence: Array(MAX_EVIDENCE_REFS + 1).fill('t') }).success).toBe(false);
    expect(MAX_OPERATIONS_PER_UPDATE).toBe(20);
    expect(PolicyUpdateEvidenceSchema.safeParse({ lessons: [], trajectories: [{ ref: 't', advantage: Infinity }] }).success).toBe(false);
    expect(PolicySchema.safeParse(policyWith([{ id: 'a', text: 'x', weight: 1.1 }])).success).toBe(false);
    expect(
      PolicySchema.safeParse(
        policyWith([
          { id: 'a', text: 'x', weight: 0.1 },
          { id: 'a', text: 'y', weight: 0.2 },
        ]),
      ).success,
    ).toBe(false);
    expect(LessonOperationSchema.safeParse({ op: 'add', text: 'x', evidence: [] }).success).toBe(false);
    expect(LessonOperationSchema.safeParse({ op: 'rename', lesson_id: 'a' }).success).toBe(false);
    expect(LessonOperationSchema.parse({ op: 'drop', lesson_id: 'a' })).toEqual({ op: 'drop', lesson_id: 'a' });
    const tooMany = Array.from({ length: 21 }, () => ({ op: 'none' }));
    expect(LessonOperationsAnswerSchema.safeParse({ operations: tooMany }).success).toBe(false);
    expect(LessonOperationsAnswerSchema.safeParse({ operations: tooMany.slice(0, 20) }).success).toBe(true);
  });

  it('initialPolicy refuses a blank base prompt', () => {
    expect(() => initialPolicy('  ')).toThrow('initialPolicy: base prompt must not be blank, got "  "');
  });
});

describe('renderSystemPrompt', () => {
  it('is the base prompt alone when there are no lessons', () => {
    expect(renderSystemPrompt(initialPolicy('Base.'))).toBe('Base.');
  });

  it('lists lessons by weight, then id, with two-decimal weights on one line each', () => {
    const policy = policyWith([
      { id: 'b', text: 'Second tie.', weight: 0.5 },
      { id: 'c', text: 'Weak\nlesson  text.', weight: 0.125 },
      { id: 'a', text: 'First tie.', weight: 0.5 },
      { id: 'd', text: 'Strong.', weight: 0.62 },
      { id: 'e', text: 'Another tie.', weight: 0.5 },
    ]);
    expect(renderSystemPrompt(policy)).toBe(
      [
        'Base.',
        '',
        LESSONS_HEADER,
        '- [0.62] Strong.',
        '- [0.50] First tie.',
        '- [0.50] Second tie.',
        '- [0.50] Another tie.',
        '- [0.13] Weak lesson text.',
      ].join('\n'),
    );
    expect(LESSONS_HEADER).toBe('Lessons learned (weight = confidence):');
  });
});

describe('policy-update evidence block', () => {
  const evidence: PolicyUpdateEvidence = {
    lessons: [{ id: 'L1-1', text: 'A lesson.', weight: 0.3 }],
    trajectories: [
      {
        ref: 't1',
        advantage: 1.5,
        query: '[billing] What is the balance? ```',
        success: true,
        steps: [
          { action: 'tool_call', tool: 'query_database', result: '$1.00' },
          { action: 'final_answer', tool: null, result: null },
        ],
        final_answer: '$1.00',
      },
    ],
  };

  it('round-trips through a fenced json block inside a longer message', () => {
    const block = renderPolicyUpdateEvidence(evidence);
    expect(block.startsWith('```json\n')).toBe(true);
    expect(block.endsWith('\n```')).toBe(true);
    expect(parsePolicyUpdateEvidence(`Here is the evidence:\n\n${block}\n\nPropose operations.`)).toEqual(evidence);
  });

  it('explains what is wrong with a bad message', () => {
    expect(() => parsePolicyUpdateEvidence('no block here')).toThrow('no fenced ```json block found');
    expect(() => parsePolicyUpdateEvidence('```json\n{not json\n```')).toThrow('the json block is not valid JSON');
    expect(() => parsePolicyUpdateEvidence('```json\n{"lessons": [], "trajectories": [{"ref": ""}]}\n```')).toThrow(
      /policy-update evidence: trajectories\.0\.ref/,
    );
  });
});

describe('toEvidenceTrajectory', () => {
  it('keeps what each step did and saw', () => {
    const step = (type: 'tool_call' | 'final_answer', names: string[], result: string | null) => ({
      index: 0,
      state: '',
      action: { type, content: null },
      tool_calls: names.map((name, i) => ({ id: `c${i}`, name, arguments: {} })),
      result,
      started_at: '',
      ended_at: '',
      usage: { prompt_tokens: 0, completion_tokens: 0 },
      cost_usd: 0,
      logprob: null,
      error: null,
    });
    const evidence = toEvidenceTrajectory(
      {
        success: true,
        final_answer: '$1.00',
        steps: [step('tool_call', ['query_database'], '$1.00'), step('tool_call', [], null), step('final_answer', [], null)],
      },
      'i1-q0-s2',
      0.8,
      '[billing] What?',
    );
    expect(evidence).toEqual({
      ref: 'i1-q0-s2',
      advantage: 0.8,
      query: '[billing] What?',
      success: true,
      steps: [
        { action: 'tool_call', tool: 'query_database', arguments: '{}', result: '$1.00' },
        { action: 'tool_call', tool: null, arguments: null, result: null },
        { action: 'final_answer', tool: null, arguments: null, result: null },
      ],
      final_answer: '$1.00',
    });
    expect(PolicyUpdateEvidenceSchema.parse({ lessons: [], trajectories: [evidence] }).trajectories[0]).toEqual(evidence);
  });
});

describe('applyLessonOperations', () => {
  it('adds a lesson with weight min(clip, learningRate * mean advantage) and a deterministic id', () => {
    const policy = twoLessons();
    const result = applyLessonOperations(
      policy,
      [{ op: 'add', text: '  Look up the docs first.  ', evidence: ['t1', 't2'] }],
      { t1: 0.2, t2: 0.4 },
      OPTS,
    );
    // 0.5 * mean(0.2, 0.4) = 0.15 < clip 0.3
    expect(result.policy.version).toBe(4);
    expect(result.policy.lessons[2]).toEqual({ id: 'L4-1', text: 'Look up the docs first.', weight: 0.15 });
    expect(result.churn).toEqual({ added: 1, edited: 0, reweighted: 0, dropped: 0 });
    expect(result.rejected).toEqual([]);
    expect(policy).toEqual(twoLessons());
  });

  it('never moves a weight by more than clip, however large the advantage', () => {
    for (const advantage of [0.7, 1, 3, 50, 1e9]) {
      const result = applyLessonOperations(
        twoLessons(),
        [
          { op: 'add', text: 'New.', evidence: ['t'] },
          { op: 'reweight', lesson_id: 'L2-1', direction: 'up', evidence: ['t'] },
          { op: 'reweight', lesson_id: 'L1-1', direction: 'down', evidence: ['t'] },
        ],
        { t: advantage },
        { learningRate: 0.5, clip: 0.2, maxLessons: 20 },
      );
      const weights = Object.fromEntries(result.policy.lessons.map((lesson) => [lesson.id, lesson.weight]));
      expect(weights['L4-1']).toBeLessThanOrEqual(0.2);
      expect(weights['L2-1'] - 0.1).toBeLessThanOrEqual(0.2 + 1e-12);
      expect(0.4 - weights['L1-1']).toBeLessThanOrEqual(0.2 + 1e-12);
    }
  });

  it('moves a weight further for a larger advantage (below the clip)', () => {
    const change = (advantage: number): number => {
      const result = applyLessonOperations(
        twoLessons(),
        [{ op: 'reweight', lesson_id: 'L2-1', direction: 'up', evidence: ['t'] }],
        { t: advantage },
        OPTS,
      );
      return result.policy.lessons[1].weight - 0.1;
    };
    expect(change(0.1)).toBeCloseTo(0.05, 9);
    expect(change(0.3)).toBeCloseTo(0.15, 9);
    expect(change(0.3)).toBeGreaterThan(change(0.1));
    expect(change(5)).toBeCloseTo(0.3, 9);
  });

  it('turns an add of an existing text (trimmed, any case) into a reweight up', () => {
    const result = applyLessonOperations(
      twoLessons(),
      [{ op: 'add', text: '  CHECK answers. ', evidence: ['t'] }],
      { t: 0.4 },
      OPTS,
    );
    expect(result.applied).toEqual([{ op: 'reweight', lesson_id: 'L2-1', direction: 'up', evidence: ['t'] }]);
    expect(result.policy.lessons).toHaveLength(2);
    expect(result.policy.lessons[1].weight).toBeCloseTo(0.3, 9);
    expect(result.churn).toEqual({ added: 0, edited: 0, reweighted: 1, dropped: 0 });
  });

  it('edits text and raises the weight; reweights within [0, 1]; drops a lesson that reaches 0', () => {
    const result = applyLessonOperations(
      policyWith([
        { id: 'a', text: 'Old text.', weight: 0.2 },
        { id: 'b', text: 'Nearly certain.', weight: 0.95 },
        { id: 'c', text: 'Weak.', weight: 0.1 },
      ]),
      [
        { op: 'edit', lesson_id: 'a', text: 'New text.', evidence: ['t'] },
        { op: 'reweight', lesson_id: 'b', direction: 'up', evidence: ['t'] },
        { op: 'reweight', lesson_id: 'c', direction: 'down', evidence: ['t'] },
      ],
      { t: 2 },
      OPTS,
    );
    expect(result.policy.lessons).toEqual([
      { id: 'a', text: 'New text.', weight: 0.5 },
      { id: 'b', text: 'Nearly certain.', weight: 1 },
    ]);
    expect(result.churn).toEqual({ added: 0, edited: 1, reweighted: 1, dropped: 1 });
  });

  it('lands exactly on 0 after equal steps up and down (no float dust)', () => {
    let policy = policyWith([]);
    policy = applyLessonOperations(policy, [{ op: 'add', text: 'X.', evidence: ['t'] }], { t: 0.2 }, OPTS).policy;
    for (let i = 0; i < 2; i++) {
      policy = applyLessonOperations(
        policy,
        [{ op: 'reweight', lesson_id: 'L4-1', direction: 'up', evidence: ['t'] }],
        { t: 0.2 },
        OPTS,
      ).policy;
    }
    expect(policy.lessons[0].weight).toBeCloseTo(0.3, 12);
    for (let i = 0; i < 2; i++) {
      policy = applyLessonOperations(
        policy,
        [{ op: 'reweight', lesson_id: 'L4-1', direction: 'down', evidence: ['t'] }],
        { t: 0.2 },
        OPTS,
      ).policy;
    }
    expect(policy.lessons[0].weight).toBe(0.1);
    const last = applyLessonOperations(
      policy,
      [{ op: 'reweight', lesson_id: 'L4-1', direction: 'down', evidence: ['t'] }],
      { t: 0.2 },
      OPTS,
    );
    expect(last.policy.lessons).toEqual([]);
    expect(last.churn.dropped).toBe(1);
  });

  it('drops by id and records the drop', () => {
    const result = applyLessonOperations(twoLessons(), [{ op: 'drop', lesson_id: 'L1-1', reason: 'misleading' }], {}, OPTS);
    expect(result.policy.lessons.map((lesson) => lesson.id)).toEqual(['L2-1']);
    expect(result.applied).toEqual([{ op: 'drop', lesson_id: 'L1-1', reason: 'misleading' }]);
    expect(result.churn.dropped).toBe(1);
  });

  it('skips ids already taken when numbering new lessons', () => {
    const result = applyLessonOperations(
      policyWith([{ id: 'L4-1', text: 'Taken.', weight: 0.5 }]),
      [
        { op: 'add', text: 'First new.', evidence: ['t'] },
        { op: 'add', text: 'Second new.', evidence: ['t'] },
      ],
      { t: 1 },
      OPTS,
    );
    expect(result.policy.lessons.map((lesson) => lesson.id)).toEqual(['L4-1', 'L4-2', 'L4-3']);
  });

  it('keeps only maxLessons, dropping the lowest weights (newest first among ties)', () => {
    const result = applyLessonOperations(
      policyWith([
        { id: 'a', text: 'A.', weight: 0.9 },
        { id: 'b', text: 'B.', weight: 0.1 },
        { id: 'c', text: 'C.', weight: 0.3 },
      ]),
      [
        { op: 'add', text: 'D.', evidence: ['t'] },
        { op: 'add', text: 'E.', evidence: ['t'] },
      ],
      { t: 0.6 },
      { learningRate: 0.5, clip: 0.3, maxLessons: 3 },
    );
    // D and E arrive at 0.3, tying with C; B (0.1) goes first, then the newest of the 0.3s (E).
    expect(result.policy.lessons.map((lesson) => lesson.id)).toEqual(['a', 'c', 'L4-1']);
    expect(result.churn).toEqual({ added: 2, edited: 0, reweighted: 0, dropped: 2 });
  });

  describe('rejections leave the policy byte-identical', () => {
    const cases: [string, unknown[], Record<string, number>, RegExp][] = [
      ['malformed op', [{ op: 'add', text: '', evidence: ['t'] }], { t: 1 }, /malformed operation: text/],
      ['unknown op kind', [{ op: 'rename', lesson_id: 'L1-1' }], { t: 1 }, /malformed operation/],
      ['not an object', ['add a lesson'], {}, /malformed operation/],
      ['unknown lesson id', [{ op: 'drop', lesson_id: 'L9-9' }], {}, /unknown lesson_id "L9-9"; known ids: L1-1, L2-1/],
      [
        'unknown lesson id on edit',
        [{ op: 'edit', lesson_id: 'zz', text: 'x', evidence: ['t'] }],
        { t: 1 },
        /unknown lesson_id "zz"/,
      ],
      [
        'unknown lesson id on reweight',
        [{ op: 'reweight', lesson_id: 'zz', direction: 'up', evidence: ['t'] }],
        { t: 1 },
        /unknown lesson_id "zz"/,
      ],
      ['evidence not in this update', [{ op: 'add', text: 'x', evidence: ['ghost'] }], { t: 1 }, /"ghost" is not a trajectory/],
      [
        'inherited property name as evidence',
        [{ op: 'add', text: 'x', evidence: ['toString'] }],
        {},
        /"toString" is not a trajectory/,
      ],
      [
        'negative-advantage evidence',
        [{ op: 'add', text: 'x', evidence: ['good', 'bad'] }],
        { good: 1, bad: -0.5 },
        /"bad" has advantage -0.5; lessons may change only on positive-advantage/,
      ],
      ['zero-advantage evidence', [{ op: 'reweight', lesson_id: 'L1-1', direction: 'up', evidence: ['t'] }], { t: 0 }, /advantage 0/],
      ['non-finite evidence', [{ op: 'edit', lesson_id: 'L1-1', text: 'y', evidence: ['t'] }], { t: Infinity }, /advantage Infinity/],
      ['advantage too small to move', [{ op: 'add', text: 'x', evidence: ['t'] }], { t: 1e-12 }, /too small to move a weight/],
      [
        'edit duplicating another lesson',
        [{ op: 'edit', lesson_id: 'L1-1', text: 'check ANSWERS.', evidence: ['t'] }],
        { t: 1 },
        /would duplicate lesson "L2-1"/,
      ],
    ];

    it.each(cases)('%s', (_name, operations, advantages, reason) => {
      const policy = twoLessons();
      const before = JSON.stringify(policy);
      const result = applyLessonOperations(policy, operations as LessonOperation[], advantages, OPTS);
      expect(result.policy).toBe(policy);
      expect(JSON.stringify(result.policy)).toBe(before);
      expect(result.applied).toEqual([]);
      expect(result.rejected).toHaveLength(1);
      expect(result.rejected[0].operation).toBe(operations[0]);
      expect(result.rejected[0].reason).toMatch(reason);
      expect(result.churn).toEqual({ added: 0, edited: 0, reweighted: 0, dropped: 0 });
    });

    it('for no operations, or only "none"', () => {
      const policy = twoLessons();
      expect(applyLessonOperations(policy, [], {}, OPTS).policy).toBe(policy);
      const result = applyLessonOperations(policy, [{ op: 'none' }], {}, OPTS);
      expect(result.policy).toBe(policy);
      expect(result.applied).toEqual([{ op: 'none' }]);
    });

    it('lists "(none)" as the known ids of an empty policy', () => {
      const result = applyLessonOperations(policyWith([]), [{ op: 'drop', lesson_id: 'x' }], {}, OPTS);
      expect(result.rejected[0].reason).toBe('unknown lesson_id "x"; known ids: (none)');
    });
  });

  it('applies the good operations of a mixed batch and reports the bad ones', () => {
    const policy = twoLessons();
    const before = JSON.stringify(policy);
    const result = applyLessonOperations(
      policy,
      [
        { op: 'add', text: 'Good lesson.', evidence: ['t'] },
        { op: 'add', text: 'Bad lesson.', evidence: ['loser'] },
      ],
      { t: 1, loser: -1 },
      OPTS,
    );
    expect(result.policy.lessons.map((lesson) => lesson.text)).toEqual([
      'Use the calculator for sums.',
      'Check answers.',
      'Good lesson.',
    ]);
    expect(result.rejected.map((r) => r.operation)).toEqual([{ op: 'add', text: 'Bad lesson.', evidence: ['loser'] }]);
    expect(JSON.stringify(policy)).toBe(before);
  });

  it('refuses bad options and an invalid policy, naming the value', () => {
    const policy = twoLessons();
    expect(() => applyLessonOperations(policy, [], {}, { ...OPTS, learningRate: 0 })).toThrow(
      'learningRate must be a positive number, got 0',
    );
    expect(() => applyLessonOperations(policy, [], {}, { ...OPTS, learningRate: Infinity })).toThrow('got Infinity');
    expect(() => applyLessonOperations(policy, [], {}, { ...OPTS, clip: 1.5 })).toThrow('clip must be in (0, 1], got 1.5');
    expect(() => applyLessonOperations(policy, [], {}, { ...OPTS, maxLessons: 0 })).toThrow(
      'maxLessons must be a positive integer, got 0',
    );
    expect(() => applyLessonOperations({ ...policy, version: -1 }, [], {}, OPTS)).toThrow(
      'applyLessonOperations: invalid policy: version',
    );
  });
});
