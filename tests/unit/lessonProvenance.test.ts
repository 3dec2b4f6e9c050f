import fc from 'fast-check';
import {
  boundedOrigins,
  countLessonOutcomes,
  DEFAULT_HARM_RULE,
  harmReason,
  LESSON_ORIGIN_OPERATIONS,
  LessonCountersSchema,
  type LessonObservation,
  LessonOriginSchema,
  MAX_LESSON_ORIGINS,
  MAX_ORIGIN_TRAJECTORIES,
  mostHarmful,
  originOf,
  prescribedTools,
  scopeWords,
  FUNCTION_WORDS,
  trajectoryOfRef,
  withOrigin,
} from '../../training/lessonProvenance';
import { LessonSchema, PolicySchema, type Lesson } from '../../training/policy';

const CONTEXT = { job_id: 'job-1', run: 1, iteration: 3 };

describe('provenance', () => {
  it('reduces step refs to their trajectory, dedupes and caps the ids', () => {
    expect(trajectoryOfRef('t-1.s2')).toBe('t-1');
    expect(trajectoryOfRef('t-1')).toBe('t-1');
    const ids = Array.from({ length: 12 }, (_, i) => `t-${i}`);
    const origin = originOf(CONTEXT, 'add', ['t-0.s1', 't-0', ...ids]);
    expect(origin).toEqual({ job_id: 'job-1', run: 1, iteration: 3, operation: 'add', trajectory_ids: ids.slice(0, MAX_ORIGIN_TRAJECTORIES) });
    expect(LessonOriginSchema.parse(origin)).toEqual(origin);
    expect(LESSON_ORIGIN_OPERATIONS).toEqual(['add', 'edit', 'merge']);
    expect(LessonCountersSchema.safeParse({ helpful: -1, harmful: 0, counted_run: 1, counted_iteration: 1 }).success).toBe(false);
  });

  it('keeps the first origin and the latest ones', () => {
    const origins = Array.from({ length: 9 }, (_, i) => originOf({ ...CONTEXT, iteration: i }, 'edit', [`t${i}`]));
    const kept = boundedOrigins(origins);
    expect(kept).toHaveLength(MAX_LESSON_ORIGINS);
    expect(kept.map((o) => o.iteration)).toEqual([0, 4, 5, 6, 7, 8]);
    expect(boundedOrigins(origins.slice(0, 2))).toEqual(origins.slice(0, 2));
    const lesson = withOrigin<Lesson>({ id: 'a', text: 'x', weight: 0.5 }, origins[0]);
    expect(withOrigin(lesson, origins[1]).provenance).toEqual(origins.slice(0, 2));
    expect(lesson).toEqual({ id: 'a', text: 'x', weight: 0.5, provenance: [origins[0]] });
  });

  it('rides on lessons through the policy schema (older lessons have none)', () => {
    const lesson: Lesson = {
      id: 'L1-1',
      text: 'Use lookup.',
      weight: 0.4,
      provenance: [originOf(CONTEXT, 'add', ['t1'])],
      counters: { helpful: 2, harmful: 1, counted_run: 1, counted_iteration: 3 },
    };
    expect(PolicySchema.parse({ base_prompt: 'B', lessons: [lesson], version: 1 }).lessons[0]).toEqual(lesson);
    expect(LessonSchema.parse({ id: 'a', text: 'x', weight: 0 })).toEqual({ id: 'a', text: 'x', weight: 0 });
  });
});

describe('which tools a lesson prescribes', () => {
  const tools = ['search', 'lookup_invoice', 'verify_answer', 'lookup'];
  it('names whole tool names, not those after "instead of"', () => {
    expect(prescribedTools('For billing tasks, call lookup_invoice first.', tools)).toEqual(['lookup_invoice']);
    expect(prescribedTools('Use lookup_invoice instead of search.', tools)).toEqual(['lookup_invoice']);
    expect(prescribedTools('After search, call lookup_invoice.', tools)).toEqual(['lookup_invoice', 'search']);
    expect(prescribedTools('Check your answer.', tools)).toEqual([]);
    // "lookup" inside "lookup_invoice" and "xsearch" are not the tools "lookup" and "search".
    expect(prescribedTools('xsearch then lookup_invoice', ['lookup', 'search'])).toEqual([]);
    expect(prescribedTools('lookup_invoice or lookup', ['lookup'])).toEqual(['lookup']);
  });
});

describe('the scope of a lesson', () => {
  it('is its words other than tool names, function words and numbers', () => {
    expect(scopeWords('For billing tasks, call lookup_invoice first.', new Set(['lookup_invoice']))).toEqual(['billing']);
    expect(scopeWords('For tasks like "billing outstanding balance", call LOOKUP first.', new Set(['lookup']))).toEqual(['balance', 'billing', 'outstanding']);
    expect(scopeWords('Call verify_answer before answering, 2 times.', new Set(['verify_answer']))).toEqual(['times']);
    expect(scopeWords('Always call the tool first.', new Set())).toEqual([]);
    expect(scopeWords('!!!', new Set())).toEqual([]);
    expect(FUNCTION_WORDS.has('instead')).toBe(true);
  });

  it('limits the counters to the queries the lesson speaks of', () => {
    const scoped: Lesson[] = [
      { id: 's', text: 'For billing tasks, call lookup first.', weight: 0.5 },
      { id: 'g', text: 'Always call lookup first.', weight: 0.5 },
    ];
    const counted = countLessonOutcomes(
      scoped,
      [
        { trajectory_id: 'b', success: true, tools: ['lookup'], query: '[billing] What is my balance?' },
        { trajectory_id: 'w', success: false, tools: ['lookup'], query: '[weather] Rain tomorrow?' },
        { trajectory_id: 'n', success: false, tools: ['lookup'] },
      ],
      CONTEXT,
    );
    expect(counted.map((l) => [l.id, l.counters!.helpful, l.counters!.harmful])).toEqual([
      ['s', 1, 1],
      ['g', 1, 2],
    ]);
  });
});

describe('helpful/harmful counters', () => {
  const lessons: Lesson[] = [
    { id: 'a', text: 'Call lookup first.', weight: 0.5 },
    { id: 'b', text: 'Be brief.', weight: 0.5 },
  ];
  const observations: LessonObservation[] = [
    { trajectory_id: 't1', success: true, tools: ['lookup'] },
    { trajectory_id: 't2', success: false, tools: ['lookup', 'search'] },
    { trajectory_id: 't3', success: false, tools: ['search'] },
  ];

  it('count the trajectories that followed a lesson; a lesson naming no called tool gets zeros', () => {
    const counted = countLessonOutcomes(lessons, observations, CONTEXT);
    expect(counted[0].counters).toEqual({ helpful: 1, harmful: 1, counted_run: 1, counted_iteration: 3 });
    expect(counted[1].counters).toEqual({ helpful: 0, harmful: 0, counted_run: 1, counted_iteration: 3 });
    expect(lessons[0].counters).toBeUndefined();
  });

  it('count each trajectory once per iteration, however often it is listed or the update retried', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 12 }), fc.integer({ min: 1, max: 4 }), (picks, retries) => {
        const listed = picks.map((i) => observations[i]);
        let current = lessons;
        for (let attempt = 0; attempt < retries; attempt++) current = countLessonOutcomes(current, listed, CONTEXT);
        const once = countLessonOutcomes(lessons, [...new Map(listed.map((o) => [o.trajectory_id, o])).values()], CONTEXT);
        expect(current).toEqual(once);
        // An earlier iteration of the same run, or of an earlier run, is not counted either.
        expect(countLessonOutcomes(current, observations, { ...CONTEXT, iteration: 2 })).toEqual(current);
        expect(countLessonOutcomes(current, observations, { ...CONTEXT, run: 0, iteration: 9 })).toEqual(current);
      }),
      { seed: 16, numRuns: 100 },
    );
  });

  it('add up over later iterations and runs', () => {
    const first = countLessonOutcomes(lessons, observations, CONTEXT);
    const second = countLessonOutcomes(first, observations, { ...CONTEXT, iteration: 4 });
    expect(second[0].counters).toEqual({ helpful: 2, harmful: 2, counted_run: 1, counted_iteration: 4 });
    const resumed = countLessonOutcomes(second, observations, { ...CONTEXT, run: 2, iteration: 1 });
    expect(resumed[0].counters).toMatchObject({ helpful: 3, harmful: 3, counted_run: 2, counted_iteration: 1 });
  });
});

describe('lessons that keep hurting', () => {
  const counted = (id: string, helpful: number, harmful: number): Lesson => ({
    id,
    text: id,
    weight: 0.5,
    counters: { helpful, harmful, counted_run: 1, counted_iteration: 1 },
  });

  it('need enough followers and too few successes', () => {
    expect(DEFAULT_HARM_RULE).toEqual({ minFollowed: 8, minHelpfulShare: 0.25 });
    expect(harmReason({ id: 'x', text: 'x' })).toBeNull();
    expect(harmReason(counted('a', 0, 7))).toBeNull();
    expect(harmReason(counted('a', 2, 6))).toBeNull();
    expect(harmReason(counted('a', 1, 7))).toBe('keeps hurting: of 8 trajectories that followed it, 7 failed and 1 succeeded (under 25% helpful)');
  });

  it('the worst first: lowest helpful share, then most followed, then id', () => {
    expect(mostHarmful([counted('ok', 5, 5)])).toBeNull();
    expect(mostHarmful([counted('b', 1, 9), counted('a', 0, 8)])!.lesson.id).toBe('a');
    expect(mostHarmful([counted('b', 0, 8), counted('a', 0, 9)])!.lesson.id).toBe('a');
    expect(mostHarmful([counted('a', 0, 12), counted('b', 0, 9)])!.lesson.id).toBe('a');
    expect(mostHarmful([counted('b', 0, 9), counted('a', 0, 9)])!.lesson.id).toBe('a');
    expect(mostHarmful([counted('a', 0, 9), counted('b', 0, 9)])!.lesson.id).toBe('a');
    expect(mostHarmful([counted('a', 1, 9), counted('b', 0, 8)], { minFollowed: 8, minHelpfulShare: 0.5 })!.lesson.id).toBe('b');
  });
});
