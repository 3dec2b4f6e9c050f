/**
 * What the policy updater sees (issue 14 items 4, 5): tool arguments, bounded; trajectories
 * grouped by Task.family or, without one, by the words their queries share; failure patterns
 * (choices common to a kind's failures and absent from its successes) when avoid lessons are on.
 */
import type { TrajectoryStep } from '../../training/trajectory';
import {
  buildPolicyUpdateEvidence,
  type EvidenceCandidate,
  FailurePatternSchema,
  PolicyUpdateEvidenceSchema,
  TaskKindEvidenceSchema,
} from '../../training/policyEvidence';
import { boundedArguments, MAX_ARGUMENT_CHARS, MAX_ARGUMENT_VALUE_CHARS, parseShownArguments } from '../../training/toolArguments';
import { groupTaskKinds, MAX_SCOPE_WORDS, queryWords, SAME_KIND_OVERLAP, scopeMatches } from '../../training/taskKinds';
import { failurePatterns, MAX_PATTERN_EVIDENCE, MIN_PATTERN_FAILURES } from '../../training/failurePatterns';

function step(tool: string | null, args: Record<string, unknown> = {}, result: string | null = 'r'): TrajectoryStep {
  return {
    index: 0,
    state: '',
    action: { type: tool === null ? 'final_answer' : 'tool_call', content: null },
    tool_calls: tool === null ? [] : [{ id: 'c', name: tool, arguments: args }],
    result: tool === null ? null : result,
    started_at: '',
    ended_at: '',
    usage: { prompt_tokens: 0, completion_tokens: 0 },
    cost_usd: 0,
    logprob: null,
    error: null,
  };
}

function candidate(query: string, advantage: number, tools: [string, Record<string, unknown>?][], family?: string): EvidenceCandidate {
  return {
    trajectory: { steps: [...tools.map(([tool, args]) => step(tool, args ?? { query })), step(null)], success: advantage > 0, final_answer: 'r' },
    advantage,
    query,
    stepCredits: null,
    ...(family !== undefined ? { family } : {}),
  };
}

describe('tool arguments in the evidence', () => {
  it('are shown as JSON of at most 200 characters; long strings are cut first, so a short value beside them survives', () => {
    // A nested string is not shortened on its own: the whole JSON is cut.
    const nested = boundedArguments({ currency: 'EUR', query: 'x', amount: 12.5, nested: { a: 'y'.repeat(300) } });
    expect(nested).toHaveLength(MAX_ARGUMENT_CHARS);
    expect(nested.startsWith('{"currency":"EUR","query":"x","amount":12.5,"nested":{"a":"yyy')).toBe(true);
    const long = boundedArguments({ query: 'q'.repeat(500), currency: 'EUR' });
    expect(long.length).toBeLessThanOrEqual(MAX_ARGUMENT_CHARS);
    expect(parseShownArguments(long)).toEqual({ query: `${'q'.repeat(MAX_ARGUMENT_VALUE_CHARS - 1)}…`, currency: 'EUR' });
    // Many values: the JSON as a whole is cut, ends with "…" and no longer parses.
    const many = boundedArguments(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(40)])));
    expect(many).toHaveLength(MAX_ARGUMENT_CHARS);
    expect(many.endsWith('…')).toBe(true);
    expect(parseShownArguments(many)).toBeNull();
    expect(parseShownArguments(null)).toBeNull();
    expect(parseShownArguments(undefined)).toBeNull();
    expect(parseShownArguments('[1]')).toBeNull();
    expect(parseShownArguments('null')).toBeNull();
  });

  it('every tool-call step carries its first call arguments, bounded; other steps none; the schema holds them to the bound', () => {
    const evidence = buildPolicyUpdateEvidence([], [candidate('What is the total of invoice INV-1?', 1, [['convert', { query: 'x'.repeat(300), currency: 'EUR' }]])], 'positive_only');
    const [call, answer] = evidence.trajectories[0].steps;
    expect(call.tool).toBe('convert');
    expect(call.arguments!.length).toBeLessThanOrEqual(MAX_ARGUMENT_CHARS);
    expect(parseShownArguments(call.arguments)).toMatchObject({ currency: 'EUR' });
    expect(answer.arguments).toBeNull();
    const tooLong = { ...evidence, trajectories: [{ ...evidence.trajectories[0], steps: [{ ...call, arguments: 'x'.repeat(MAX_ARGUMENT_CHARS + 1) }] }] };
    expect(PolicyUpdateEvidenceSchema.safeParse(tooLong).success).toBe(false);
  });
});

describe('task kinds', () => {
  it("a query's words: numbers and ids removed whole, stopwords and one-letter words dropped, each word once", () => {
    expect(queryWords('[billing] What is the outstanding balance on account 4821? Balance, please!')).toEqual(['billing', 'outstanding', 'balance', 'account']);
    expect(queryWords('How many business days for parcel class P-123 (x)?')).toEqual(['business', 'days', 'parcel', 'class']);
  });

  it('a scope applies to a query holding all its words; an empty scope applies to nothing', () => {
    expect(scopeMatches({ words: ['invoice', 'total'] }, 'What is the total of invoice INV-9?')).toBe(true);
    expect(scopeMatches({ words: ['invoice', 'total'] }, 'What is the total of claim C-9?')).toBe(false);
    expect(scopeMatches({ words: [] }, 'anything')).toBe(false);
  });

  it('groups by Task.family when there is one, else by shared words; a kind names the words all its queries share', () => {
    const kinds = groupTaskKinds([
      { query: 'What is the total of invoice INV-1 in the reporting currency?', family: 'invoice_total' },
      { query: 'How much is expense claim EC-2 worth?' },
      { query: 'Invoice INV-3 total, please', family: 'invoice_total' },
      { query: 'How much is expense claim EC-7 worth today?' },
      { query: 'What is the closing balance of ledger account LA-4?' },
      { query: 'How much is expense claim EC-9 worth?', family: null },
    ]);
    expect(kinds).toEqual([
      { family: 'invoice_total', words: ['total', 'invoice'], members: [0, 2] },
      { family: null, words: ['expense', 'claim', 'worth'], members: [1, 3, 5] },
      { family: null, words: ['closing', 'balance', 'ledger', 'account'], members: [4] },
    ]);
    const wordy = groupTaskKinds([{ query: 'alpha beta gamma delta epsilon zeta eta theta' }]);
    expect(wordy[0].words).toHaveLength(MAX_SCOPE_WORDS);
    expect(groupTaskKinds([{ query: '42' }, { query: '7' }])).toEqual([{ family: null, words: [], members: [0, 1] }]);
    // Half the words in common joins a kind; less starts another.
    expect(SAME_KIND_OVERLAP).toBe(0.5);
    expect(groupTaskKinds([{ query: 'alpha beta gamma' }, { query: 'alpha beta delta' }])).toHaveLength(1);
    expect(groupTaskKinds([{ query: 'alpha beta gamma' }, { query: 'alpha delta epsilon' }])).toHaveLength(2);
  });

  it('the evidence lists the kinds of what it shows, by family or by words, in both modes', () => {
    const candidates = [
      candidate('What is the total of invoice INV-1?', 1, [['convert']], 'invoice_total'),
      candidate('What is the total of invoice INV-1?', -1, [['reconcile']], 'invoice_total'),
      candidate('How much is expense claim EC-2 worth?', 0.5, [['convert']]),
      candidate('How much is expense claim EC-5 worth?', -0.5, [['fetch_statement']]),
    ];
    const positive = buildPolicyUpdateEvidence([], candidates, 'positive_only');
    expect(positive.task_kinds).toEqual([
      { id: 'K1', family: 'invoice_total', words: ['total', 'invoice'], refs: ['T1'] },
      { id: 'K2', family: null, words: ['expense', 'claim', 'worth'], refs: ['T2'] },
    ]);
    expect(positive.failure_patterns).toBeUndefined();
    const contrastive = buildPolicyUpdateEvidence([], candidates, 'contrastive');
    expect(contrastive.task_kinds).toEqual([{ id: 'K1', family: 'invoice_total', words: ['total', 'invoice'], refs: ['T1', 'T2'] }]);
    expect(buildPolicyUpdateEvidence([], [candidate('q', -1, [['a']])], 'positive_only').task_kinds).toEqual([]);
  });
});

describe('failure patterns (avoid lessons on)', () => {
  it('a choice made by at least two failures of a kind and by none of its successes, cited by the shown successes', () => {
    const q = 'How much is expense claim EC-2 worth?';
    const candidates = [
      candidate(q, 1, [['convert']]),
      candidate(q, 0.5, [['convert'], ['reconcile']]),
      candidate(q, -1, [['fetch_statement'], ['convert']]),
      candidate(q, -1, [['fetch_statement']]),
      candidate(q, -0.5, [['reconcile']]),
      candidate(q, -0.5, [['reconcile']]),
      candidate(q, 0, [['fetch_statement']]),
      // Another kind with no shown trajectory: its failures are not a pattern of anything shown.
      candidate('What is the closing balance of ledger LA-1?', -1, [['convert']]),
      candidate('What is the closing balance of ledger LA-1?', -1, [['convert']]),
    ];
    const evidence = buildPolicyUpdateEvidence([], candidates, 'positive_only', 16, { failurePatterns: true });
    // fetch_statement first: 2 failures, no success. reconcile first: 2 failures, no success
    // (a success called it, but after convert). convert after fetch_statement: one failure only.
    expect(evidence.failure_patterns).toEqual([
      { task_kind: 'K1', after: null, tool: 'fetch_statement', failures: 2, evidence: ['T1', 'T2'] },
      { task_kind: 'K1', after: null, tool: 'reconcile', failures: 2, evidence: ['T1', 'T2'] },
    ]);
    expect(PolicyUpdateEvidenceSchema.parse(evidence)).toEqual(evidence);
    expect(MIN_PATTERN_FAILURES).toBe(2);
    expect(TaskKindEvidenceSchema.array().parse(evidence.task_kinds)).toEqual(evidence.task_kinds);
    // A pattern must cite something.
    expect(FailurePatternSchema.safeParse({ ...evidence.failure_patterns![0], evidence: [] }).success).toBe(false);
    // At most MAX_PATTERN_EVIDENCE refs are cited.
    const many = Array.from({ length: 6 }, (_, i) => ({ kind: 'K1', advantage: 1, decisions: [], ref: `T${i + 1}` }));
    const failing = [0, 1].map(() => ({ kind: 'K1', advantage: -1, decisions: [{ after: null, tool: 'a' }], ref: null }));
    expect(failurePatterns(['K1'], [...many, ...failing])[0].evidence).toHaveLength(MAX_PATTERN_EVIDENCE);
  });

  it('a kind without a shown success has nothing to cite; ties go by tool, then by the tool before', () => {
    expect(failurePatterns(['K1'], [{ kind: 'K1', advantage: 1, decisions: [], ref: null }, { kind: 'K1', advantage: -1, decisions: [{ after: null, tool: 'a' }], ref: null }])).toEqual([]);
    const members = [
      { kind: 'K1', advantage: 1, decisions: [{ after: null, tool: 'z' }], ref: 'T1' },
      ...[0, 1].map(() => ({ kind: 'K1', advantage: -1, decisions: [{ after: 'y', tool: 'b' }, { after: 'x', tool: 'b' }, { after: null, tool: 'a' }, { after: null, tool: 'z' }], ref: null })),
      { kind: 'K2', advantage: -1, decisions: [{ after: null, tool: 'a' }], ref: null },
    ];
    expect(failurePatterns(['K1', 'K2'], members).map((p) => [p.after, p.tool])).toEqual([
      [null, 'a'],
      ['x', 'b'],
      ['y', 'b'],
    ]);
  });
});
