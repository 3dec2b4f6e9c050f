import fc from 'fast-check';
import { INEXACT_MARGIN, tokenCounterFor, tokenEncodingFor } from '../../adapters/llm/tokenCounter';
import { renderSystemPrompt, type Lesson, type Policy } from '../../training/policy';
import {
  collapseRefusal,
  DEFAULT_MAX_POLICY_TOKENS,
  DEFAULT_MAX_UPDATE_REMOVAL_SHARE,
  fitToTokenBudget,
  lessonTokens,
  libraryTokens,
  measureRemoval,
  renderedPolicyTokens,
} from '../../training/tokenBudget';
import { DEFAULT_MERGE_SIMILARITY, lessonSimilarity, lessonWords, mergeNearDuplicates } from '../../training/lessonDedup';

const o200k = tokenCounterFor('gpt-4o-mini');
const count = o200k.count;
const CONTEXT = { job_id: 'job', run: 1, iteration: 2 };

describe('the token counter of a model family', () => {
  it('picks o200k for gpt-4o, 4.1, 5 and the o-series, cl100k for gpt-4 and 3.5, and o200k as an approximation otherwise', () => {
    for (const model of ['gpt-4o', 'openai/gpt-4o-mini', 'gpt-4.1-nano', 'gpt-5', 'o3-mini', 'o1', 'chatgpt-4o-latest', 'gpt-oss-20b']) {
      expect([model, tokenEncodingFor(model)]).toEqual([model, { encoding: 'o200k_base', exact: true }]);
    }
    for (const model of ['gpt-4', 'gpt-4-turbo', 'gpt-4-0613', 'gpt-3.5-turbo', 'text-embedding-3-small']) {
      expect([model, tokenEncodingFor(model)]).toEqual([model, { encoding: 'cl100k_base', exact: true }]);
    }
    for (const model of ['flow-sim-1', 'local/qwen2.5-coder-1.5b-instruct', 'claude-3-5-sonnet']) {
      expect([model, tokenEncodingFor(model)]).toEqual([model, { encoding: 'o200k_base', exact: false }]);
    }
  });

  it('counts real BPE tokens, not characters ÷ 4', () => {
    expect(count('hello world')).toBe(2);
    const cl100k = tokenCounterFor('gpt-4');
    expect(cl100k.encoding).toBe('cl100k_base');
    expect(cl100k.count('hello world')).toBe(2);
    // One rare word is several tokens; 40 spaces-separated "a" are 40.
    expect(count(Array(40).fill('a').join(' '))).toBe(40);
    expect(count('')).toBe(0);
  });

  it('adds a margin to an inexact count, so a budget holds for the families o200k only approximates', () => {
    expect(INEXACT_MARGIN).toBe(0.1);
    const qwen = tokenCounterFor('local:qwen2.5-coder-1.5b');
    expect(qwen.exact).toBe(false);
    expect(qwen.count('hello world')).toBe(Math.ceil(2 * 1.1));
    expect(qwen.count(Array(40).fill('a').join(' '))).toBe(44);
  });
});

const lesson = (id: string, text: string, weight: number, extra: Partial<Lesson> = {}): Lesson => ({ id, text, weight, ...extra });
const policyOf = (lessons: Lesson[], base = 'You are a careful assistant.'): Policy => ({ base_prompt: base, lessons, version: 1 });

/** Random lesson libraries: words from a small vocabulary, weights in [0, 1]. */
const WORDS = ['call', 'lookup_invoice', 'first', 'for', 'billing', 'tasks', 'verify', 'the', 'answer', 'before', 'search', 'weather', 'station', 'zzqx', 'Ω', '🙂'];
const lessonArb = fc.record({
  words: fc.array(fc.constantFrom(...WORDS), { minLength: 1, maxLength: 60 }),
  weight: fc.double({ min: 0, max: 1, noNaN: true }),
});
const libraryArb = fc.array(lessonArb, { maxLength: 40 }).map((drafts) => drafts.map((d, i) => lesson(`L${i}`, d.words.join(' '), d.weight)));

describe('the token budget', () => {
  it('defaults to 2,000 tokens and a 30% removal share', () => {
    expect(DEFAULT_MAX_POLICY_TOKENS).toBe(2000);
    expect(DEFAULT_MAX_UPDATE_REMOVAL_SHARE).toBe(0.3);
  });

  it('is never exceeded, for random libraries and budgets (property)', () => {
    fc.assert(
      fc.property(libraryArb, fc.integer({ min: 10, max: 800 }), (lessons, maxTokens) => {
        const fit = fitToTokenBudget(policyOf(lessons), maxTokens, count);
        expect(fit.tokens).toBe(count(renderSystemPrompt(fit.policy)));
        expect(fit.tokens).toBeLessThanOrEqual(maxTokens);
        // Only what had to go went: the kept lessons are the input's, and each trimmed one was weakest at its turn.
        expect(fit.policy.lessons.length + fit.trimmed.length).toBe(lessons.length);
        const keptMin = Math.min(...fit.policy.lessons.map((l) => l.weight));
        for (const gone of fit.trimmed) expect(gone.weight).toBeLessThanOrEqual(keptMin);
        if (fit.trimmed.length > 0) {
          // Putting back the last one trimmed would be over the budget.
          const last = fit.trimmed[fit.trimmed.length - 1];
          const back = lessons.filter((l) => fit.policy.lessons.includes(l) || l === last);
          expect(renderedPolicyTokens(policyOf(back), count)).toBeGreaterThan(maxTokens);
        }
      }),
      { seed: 5, numRuns: 200 },
    );
  });

  it('leaves a policy that fits untouched, and trims the newest of equal weights first', () => {
    const policy = policyOf([lesson('a', 'call lookup_invoice first', 0.5), lesson('b', 'verify the answer before answering', 0.5)]);
    expect(fitToTokenBudget(policy, 2000, count)).toEqual({ policy, trimmed: [], tokens: renderedPolicyTokens(policy, count) });
    const tight = renderedPolicyTokens(policy, count) - 1;
    expect(fitToTokenBudget(policy, tight, count).trimmed.map((l) => l.id)).toEqual(['b']);
  });

  it('refuses a base prompt over the budget on its own, and a budget that is not a positive integer', () => {
    expect(() => fitToTokenBudget(policyOf([], 'one two three four'), 3, count)).toThrow(
      'fitToTokenBudget: the base prompt alone is 4 tokens, over max_policy_tokens 3; raise max_policy_tokens or shorten the base prompt',
    );
    expect(() => fitToTokenBudget(policyOf([]), 0, count)).toThrow('maxTokens must be a positive integer, got 0');
    expect(() => fitToTokenBudget(policyOf([]), 1.5, count)).toThrow('got 1.5');
  });
});

describe('the collapse guard', () => {
  const library = [lesson('a', 'call lookup_invoice first for billing tasks', 0.5), lesson('b', 'verify the answer before answering', 0.4), lesson('c', 'search the weather station', 0.3)];
  const total = libraryTokens(library, count);

  it('measures the lesson tokens an update removes: drops and shortened edits, not merges or growth', () => {
    expect(lessonTokens(library[0], count)).toBe(count(library[0].text));
    expect(measureRemoval(library, library, count)).toEqual({ removedTokens: 0, libraryTokens: total, share: 0, lessonsRemoved: 0 });
    const dropped = measureRemoval(library, library.slice(1), count);
    expect(dropped).toMatchObject({ removedTokens: lessonTokens(library[0], count), lessonsRemoved: 1 });
    const shortened = measureRemoval(library, [{ ...library[0], text: 'call lookup_invoice' }, library[1], library[2]], count);
    expect(shortened.removedTokens).toBe(lessonTokens(library[0], count) - count('call lookup_invoice'));
    const longer = measureRemoval(library, [{ ...library[2], text: `${library[2].text} then answer with the result` }, library[0], library[1]], count);
    expect(longer.removedTokens).toBe(0);
    expect(measureRemoval(library, [library[0]], count, new Set(['b'])).lessonsRemoved).toBe(1);
    expect(measureRemoval([], [], count).share).toBe(0);
  });

  it('refuses an update removing over the share, unless it removes one lesson only', () => {
    expect(collapseRefusal(measureRemoval(library, [library[0]], count), 0.3)).toBe(
      `the update would remove ${total - lessonTokens(library[0], count)} of the library's ${total} lesson tokens (${((100 * (total - lessonTokens(library[0], count))) / total).toFixed(1)}%, 2 lessons), over the 30% one update may remove; the policy was kept as it was`,
    );
    // One lesson of a small library may always go.
    expect(collapseRefusal(measureRemoval(library, library.slice(1), count), 0.3)).toBeNull();
    expect(collapseRefusal(measureRemoval(library, [library[0]], count), 0.9)).toBeNull();
    expect(() => collapseRefusal(measureRemoval(library, library, count), 0)).toThrow('maxShare must be in (0, 1], got 0');
  });

  it('never lets a refused-or-not update shrink a large library by more than the share (property)', () => {
    fc.assert(
      fc.property(libraryArb, fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (lessons, keep) => {
        const candidate = lessons.filter((_, i) => keep[i]);
        const removal = measureRemoval(lessons, candidate, count);
        const refused = collapseRefusal(removal, 0.3) !== null;
        const after = refused ? lessons : candidate;
        const removedShare = measureRemoval(lessons, after, count).share;
        expect(removedShare <= 0.3 || measureRemoval(lessons, after, count).lessonsRemoved <= 1).toBe(true);
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe('near-duplicate lessons', () => {
  it('are similar by word-set Jaccard', () => {
    expect([...lessonWords('Call lookup_invoice, FIRST!')]).toEqual(['call', 'lookup_invoice', 'first']);
    expect(lessonSimilarity('a b c d', 'a b c e')).toBeCloseTo(3 / 5);
    expect(lessonSimilarity('!!', '...')).toBe(1);
    expect(lessonSimilarity('Same words here', 'here words same')).toBe(1);
    expect(DEFAULT_MERGE_SIMILARITY).toBe(0.8);
  });

  it('merge into the stronger lesson, keeping both provenances and counters', () => {
    const origin = (iteration: number) => ({ job_id: 'job', run: 1, iteration, operation: 'add' as const, trajectory_ids: [`t${iteration}`] });
    const strong = lesson('s', 'For billing tasks call lookup_invoice first and check the total', 0.6, {
      provenance: [origin(1)],
      counters: { helpful: 3, harmful: 1, counted_run: 1, counted_iteration: 1 },
    });
    const weak = lesson('w', 'for billing tasks, call lookup_invoice first and check the total.', 0.7, {
      provenance: [origin(2)],
      counters: { helpful: 1, harmful: 0, counted_run: 1, counted_iteration: 2 },
    });
    const distinct = lesson('d', 'Verify the answer before answering', 0.2);
    const { lessons, merges } = mergeNearDuplicates([strong, distinct, weak], 0.8, CONTEXT);
    // Ranked by weight: w (0.7) is kept, s folds into it; d stays.
    expect(merges).toEqual([{ kept: 'w', merged: 's', similarity: 1 }]);
    expect(lessons.map((l) => l.id)).toEqual(['d', 'w']);
    const kept = lessons[1];
    expect(kept.weight).toBe(0.7);
    expect(kept.text).toBe(weak.text);
    expect(kept.provenance).toEqual([origin(2), { ...CONTEXT, operation: 'merge', trajectory_ids: [], merged_lesson_id: 's' }, origin(1)]);
    expect(kept.counters).toEqual({ helpful: 4, harmful: 1, counted_run: 1, counted_iteration: 2 });
  });

  it('keep distinct lessons, and never merge lessons that differ in a tool name', () => {
    const a = lesson('a', 'For billing tasks, call lookup_invoice first, then verify the answer before answering.', 0.5);
    const b = lesson('b', 'For billing tasks, call search_docs first, then verify the answer before answering.', 0.5);
    expect(lessonSimilarity(a.text, b.text)).toBeGreaterThan(0.8);
    expect(mergeNearDuplicates([a, b], 0.8, CONTEXT, ['lookup_invoice', 'search_docs']).merges).toEqual([]);
    expect(mergeNearDuplicates([a, b], 0.8, CONTEXT).merges).toHaveLength(1);
    expect(mergeNearDuplicates([a, b], 0.8, CONTEXT, ['verify_answer']).merges).toHaveLength(1);
  });

  it('counters: either side may have none; provenance: none kept none', () => {
    const c = { helpful: 1, harmful: 2, counted_run: 2, counted_iteration: 1 };
    const a = lesson('a', 'check the total twice', 0.9);
    const b = lesson('b', 'check the total twice', 0.1, { counters: c });
    expect(mergeNearDuplicates([a, b], 0.8, CONTEXT).lessons[0].counters).toEqual(c);
    expect(mergeNearDuplicates([{ ...a, counters: c }, { ...b, counters: undefined }], 0.8, CONTEXT).lessons[0].counters).toEqual(c);
    const plain = mergeNearDuplicates([a, { ...b, counters: undefined }], 0.8, CONTEXT).lessons[0];
    expect(plain.counters).toBeUndefined();
    expect(plain.provenance).toEqual([{ ...CONTEXT, operation: 'merge', trajectory_ids: [], merged_lesson_id: 'b' }]);
    // Equal weights: the smaller id is kept, whatever the input order.
    expect(mergeNearDuplicates([{ ...b, weight: 0.9 }, a], 0.8, CONTEXT).merges).toEqual([{ kept: 'a', merged: 'b', similarity: 1 }]);
    expect(() => mergeNearDuplicates([a], 0, CONTEXT)).toThrow('threshold must be in (0, 1], got 0');
  });

  it('merge the same way whatever the library order (property)', () => {
    fc.assert(
      fc.property(libraryArb, fc.integer(), (lessons, salt) => {
        const shuffled = [...lessons].sort((x, y) => ((x.id.length * 31 + salt) % 7) - ((y.id.length * 31 + salt) % 7) || (x.id < y.id ? 1 : -1));
        const a = mergeNearDuplicates(lessons, 0.8, CONTEXT);
        const b = mergeNearDuplicates(shuffled, 0.8, CONTEXT);
        const byId = (ls: Lesson[]) => [...ls].sort((x, y) => (x.id < y.id ? -1 : 1));
        expect(byId(b.lessons)).toEqual(byId(a.lessons));
        // No two survivors are still near-duplicates.
        for (let i = 0; i < a.lessons.length; i++) {
          for (let j = i + 1; j < a.lessons.length; j++) expect(lessonSimilarity(a.lessons[i].text, a.lessons[j].text)).toBeLessThan(0.8);
        }
      }),
      { seed: 11, numRuns: 150 },
    );
  });
});
