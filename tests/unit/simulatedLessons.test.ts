/**
 * The simulated model with the lessons of issue 14 items 4 and 5: it follows argument lessons
 * ("call convert with currency=EUR") and avoid lessons ("do not call X first"), scoped by the
 * words a query shares with the lesson (no [family] tag), and its optimizer writes them: argument
 * values the positive evidence chose, "do not call" lessons from failure patterns. The ledger
 * families (argument-value and ordering rules, tools of their own, no tags) are in the environment.
 */
import { readFileSync } from 'fs';
import { join } from 'path';
import { renderSystemPrompt } from '../../training/policy';
import { type PolicyUpdateEvidence, renderPolicyUpdateEvidence } from '../../training/policyEvidence';
import {
  argumentLessonText,
  avoidLessonText,
  followUpLessonText,
  lessonText,
  parseLesson,
  scopeText,
  toolLessonText,
  verifyLessonText,
} from '../../training/simulation/lessonForms';
import { simulatedAgentTurn, simulatedOptimizerTurn, type AgentMessage, type OfferedTool } from '../../training/simulation/simulatedModel';
import { CURRENCIES, LEDGER_ARGUMENT_FAMILIES, LEDGER_ARGUMENT_FAMILY_RULES, LEDGER_FAMILIES, LEDGER_TOOLS } from '../../training/simulation/ledgerFamilies';
import { NO_RELEVANT_RESULT, SimulatedEnvironment, simulatedTaskSet } from '../../training/simulation/environment';
import { runSimulatedEpisode, runSimulatedTraining } from '../../training/simulation/simulatedTraining';
import { outcomeReward } from '../../training/rewards';
import { initialPolicy } from '../../training/policy';

const INVOICE = 'What is the total of invoice INV-48213 in the reporting currency?';
const SCOPE = { family: 'invoice_total', words: ['total', 'invoice', 'reporting', 'currency'] };
const TOOLS: OfferedTool[] = [...LEDGER_TOOLS.map(({ name, parameters }) => ({ name, parameters })), { name: 'verify_answer' }];
const TOOL_NAMES = TOOLS.map((tool) => tool.name);

const system = (lessons: [string, number][]) =>
  renderSystemPrompt({ base_prompt: 'Base.', version: 1, lessons: lessons.map(([text, weight], i) => ({ id: `L${i}`, text, weight })) });
const user = (content: string): AgentMessage => ({ role: 'user', content });

function firstCalls(lessons: [string, number][], query = INVOICE, seeds = 1500) {
  return Array.from({ length: seeds }, (_, seed) => {
    const action = simulatedAgentTurn({ system: system(lessons), messages: [user(query)], toolNames: TOOL_NAMES, tools: TOOLS, seed });
    if (action.type !== 'tool_call') throw new Error('expected a tool call');
    return action;
  });
}
const share = <T>(items: T[], test: (item: T) => boolean) => items.filter(test).length / items.length;

describe('lesson forms', () => {
  it('render and parse every form, with a family, words, both or neither', () => {
    const forms = [
      { kind: 'first', tool: 'convert' },
      { kind: 'after', after: 'fetch_statement', tool: 'reconcile' },
      { kind: 'verify' },
      { kind: 'argument', tool: 'convert', argument: 'currency', value: 'EUR' },
      { kind: 'avoid_first', tool: 'reconcile' },
      { kind: 'avoid_after', after: 'convert', tool: 'reconcile' },
    ] as const;
    for (const scope of [SCOPE, { family: null, words: ['expense', 'claim'] }, { family: 'ledger close', words: [] }]) {
      for (const form of forms) expect(parseLesson(lessonText(scope, form))).toEqual({ scope, form });
    }
    expect(scopeText({ family: null, words: [] })).toBe('tasks');
    expect(lessonText(SCOPE, { kind: 'argument', tool: 'convert', argument: 'currency', value: 'EUR' })).toBe(
      'For invoice_total tasks like "total invoice reporting currency", call convert with currency=EUR.',
    );
    expect(parseLesson('Always double-check.')).toBeNull();
    expect(parseLesson('For billing tasks, sing.')).toBeNull();
    expect(avoidLessonText('refund', 'calculator', 'lookup_docs')).toBe('For tasks like "refund", after lookup_docs, do not call calculator.');
  });
});

describe('the simulated agent follows argument and avoid lessons', () => {
  it('without lessons picks an enum argument uniformly; with an argument lesson of weight w it states the value with probability 0.5 + 0.5w (plus its share)', () => {
    const none = firstCalls([]).filter((call) => call.tool === 'convert');
    for (const currency of CURRENCIES) expect(share(none, (call) => call.arguments.currency === currency)).toBeCloseTo(1 / CURRENCIES.length, 1);
    const lessons: [string, number][] = [
      [argumentLessonText(SCOPE, 'convert', 'currency', 'EUR'), 0.6],
      [argumentLessonText(SCOPE, 'convert', 'currency', 'USD'), 0.2],
      [toolLessonText(SCOPE, 'convert'), 1],
    ];
    const calls = firstCalls(lessons);
    expect(share(calls, (call) => call.tool === 'convert')).toBe(1);
    expect(share(calls, (call) => call.arguments.currency === 'EUR')).toBeCloseTo(0.8 + 0.2 / 5, 1);
    // The query is still passed; a lesson for another tool or argument not in the schema is still stated when followed.
    expect(calls[0].arguments.query).toBe(INVOICE);
    const other = firstCalls([[toolLessonText(SCOPE, 'fetch_statement'), 1], [argumentLessonText(SCOPE, 'fetch_statement', 'period', 'Q1'), 1]], INVOICE, 20);
    expect(other.every((call) => call.tool === 'fetch_statement' && call.arguments.period === 'Q1')).toBe(true);
  });

  it('lessons apply by the words of the query, with no [family] tag: another kind of task ignores them', () => {
    const lessons: [string, number][] = [[toolLessonText(SCOPE, 'reconcile'), 1]];
    expect(share(firstCalls(lessons), (call) => call.tool === 'reconcile')).toBe(1);
    expect(share(firstCalls(lessons, 'How much is expense claim EC-1 worth once converted for the travel budget?'), (call) => call.tool === 'reconcile')).toBeCloseTo(1 / 3, 1);
  });

  it('never calls first a tool an avoid lesson of weight 1 names; at weight w keeps it out with probability 0.5 + 0.5w', () => {
    expect(share(firstCalls([[avoidLessonText(SCOPE, 'reconcile'), 1]]), (call) => call.tool === 'reconcile')).toBe(0);
    // w = 0: kept out half the time: 0.5 * 1/3.
    expect(share(firstCalls([[avoidLessonText(SCOPE, 'reconcile'), 0]]), (call) => call.tool === 'reconcile')).toBeCloseTo(1 / 6, 1);
    // Every search tool avoided: it still has to call one.
    const all: [string, number][] = ['convert', 'fetch_statement', 'reconcile'].map((tool) => [avoidLessonText(SCOPE, tool), 1]);
    expect(firstCalls(all, INVOICE, 30).length).toBe(30);
    // A positive lesson still wins over an avoid lesson for the same tool when followed.
    const both = firstCalls([[toolLessonText(SCOPE, 'reconcile'), 1], [avoidLessonText(SCOPE, 'reconcile'), 1]], INVOICE, 30);
    expect(both.every((call) => call.tool === 'reconcile' && call.probability === 1)).toBe(true);
  });

  it('after a lead, follows "after X" lessons and keeps out what "after X, do not call" names', () => {
    const lead = 'lead: reference R1-12345';
    const turn = (lessons: [string, number][], seed: number) =>
      simulatedAgentTurn({
        system: system(lessons),
        messages: [user(INVOICE), { role: 'assistant', content: null, tool_calls: [{ name: 'fetch_statement' }] }, { role: 'tool', content: lead }],
        toolNames: TOOL_NAMES,
        tools: TOOLS,
        seed,
      });
    const avoided = Array.from({ length: 300 }, (_, seed) => turn([[avoidLessonText(SCOPE, 'convert', 'fetch_statement'), 1]], seed));
    expect(avoided.some((action) => action.type === 'tool_call' && action.tool === 'convert')).toBe(false);
    const followed = turn([[followUpLessonText(SCOPE, 'fetch_statement', 'reconcile'), 1]], 0);
    expect(followed).toMatchObject({ type: 'tool_call', tool: 'reconcile', arguments: { query: lead }, probability: 1 });
  });
});

type Shown = PolicyUpdateEvidence['trajectories'][number];

function shown(ref: string, advantage: number, calls: [string, Record<string, unknown>, string | null][], query = INVOICE): Shown {
  return {
    ref,
    advantage,
    query,
    success: advantage > 0,
    steps: [
      ...calls.map(([tool, args, result]) => ({ action: 'tool_call' as const, tool, arguments: JSON.stringify(args), result })),
      { action: 'final_answer' as const, tool: null, arguments: null, result: null },
    ],
    final_answer: 'x',
  };
}

const optimize = (evidence: PolicyUpdateEvidence) => simulatedOptimizerTurn(`Lessons:\n\n${renderPolicyUpdateEvidence(evidence)}`).operations;
const KINDS = [{ id: 'K1', family: 'invoice_total', words: SCOPE.words, refs: ['T1', 'T2', 'T3'] }];

describe('the simulated optimizer writes argument and avoid lessons', () => {
  it('an argument value the positive evidence chose becomes a lesson; values copied from the query or a result do not; other values are lowered', () => {
    const operations = optimize({
      lessons: [{ id: 'L1', text: argumentLessonText(SCOPE, 'convert', 'currency', 'USD'), weight: 0.4 }],
      trajectories: [
        shown('T1', 1, [['convert', { query: INVOICE, currency: 'EUR', copied: '48213' }, '4821.37']]),
        shown('T2', 0.5, [['fetch_statement', { query: INVOICE }, 'lead: reference R1-1'], ['reconcile', { query: 'R1-1' }, null], ['convert', { query: 'lead', currency: 'EUR', echo: 'R1-1', flag: true, nested: { a: 1 } }, '1.00']]),
        shown('T3', -1, [['convert', { query: INVOICE, currency: 'JPY' }, '9.99']]),
        // Not in any listed kind: not learned from.
        shown('T4', 1, [['convert', { query: INVOICE, currency: 'CHF' }, '9.99']]),
      ],
      task_kinds: KINDS,
    });
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText(SCOPE, 'convert'), evidence: ['T1'] },
      { op: 'add', text: followUpLessonText(SCOPE, 'fetch_statement', 'reconcile'), evidence: ['T2'] },
      { op: 'add', text: followUpLessonText(SCOPE, 'reconcile', 'convert'), evidence: ['T2'] },
      { op: 'add', text: argumentLessonText(SCOPE, 'convert', 'currency', 'EUR'), evidence: ['T1', 'T2'] },
      { op: 'reweight', lesson_id: 'L1', direction: 'down', evidence: ['T1', 'T2'] },
      { op: 'add', text: argumentLessonText(SCOPE, 'convert', 'flag', 'true'), evidence: ['T2'] },
    ]);
  });

  it('failure patterns become "do not call" lessons after the others, cited by the successes; lessons prescribing the pattern are lowered, and positive evidence lowers an avoid lesson it contradicts', () => {
    const operations = optimize({
      lessons: [
        { id: 'L1', text: toolLessonText(SCOPE, 'reconcile'), weight: 0.3 },
        { id: 'L2', text: avoidLessonText(SCOPE, 'convert'), weight: 0.3 },
        { id: 'L3', text: avoidLessonText(SCOPE, 'fetch_statement'), weight: 0.3 },
      ],
      trajectories: [shown('T1', 1, [['convert', { query: INVOICE }, '1.00']])],
      task_kinds: [{ ...KINDS[0], refs: ['T1'] }, { id: 'K2', family: null, words: [], refs: [] }],
      failure_patterns: [
        { task_kind: 'K1', after: null, tool: 'reconcile', failures: 3, evidence: ['T1'] },
        { task_kind: 'K1', after: null, tool: 'fetch_statement', failures: 2, evidence: ['T1'] },
      ],
    });
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText(SCOPE, 'convert'), evidence: ['T1'] },
      { op: 'reweight', lesson_id: 'L1', direction: 'down', evidence: ['T1'] },
      { op: 'reweight', lesson_id: 'L2', direction: 'down', evidence: ['T1'] },
      { op: 'add', text: avoidLessonText(SCOPE, 'reconcile'), evidence: ['T1'] },
      { op: 'reweight', lesson_id: 'L3', direction: 'up', evidence: ['T1'] },
    ]);
  });

  it('a failure pattern after another tool becomes "after X, do not call Y"; positive evidence lowers an "after X, do not call" it contradicts', () => {
    const operations = optimize({
      lessons: [{ id: 'L1', text: avoidLessonText(SCOPE, 'reconcile', 'fetch_statement'), weight: 0.5 }],
      trajectories: [shown('T1', 1, [['fetch_statement', { query: INVOICE }, 'lead: x'], ['reconcile', { query: 'lead: x' }, '5.00']])],
      task_kinds: [{ ...KINDS[0], refs: ['T1'] }],
      failure_patterns: [{ task_kind: 'K1', after: 'fetch_statement', tool: 'convert', failures: 2, evidence: ['T1'] }],
    });
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText(SCOPE, 'fetch_statement'), evidence: ['T1'] },
      { op: 'add', text: followUpLessonText(SCOPE, 'fetch_statement', 'reconcile'), evidence: ['T1'] },
      { op: 'reweight', lesson_id: 'L1', direction: 'down', evidence: ['T1'] },
      { op: 'add', text: avoidLessonText(SCOPE, 'convert', 'fetch_statement'), evidence: ['T1'] },
    ]);
  });

  it('reads argument values in contrastive evidence from the best of each group; without task_kinds it groups by shared words', () => {
    const operations = optimize({
      lessons: [],
      trajectories: [
        shown('T1', 1, [['convert', { query: INVOICE, currency: 'EUR' }, '1.00']]),
        shown('T2', -1, [['reconcile', { query: INVOICE }, NO_RELEVANT_RESULT]]),
        shown('T3', 1, [['convert', { query: 'EC-5', currency: 'GBP' }, '2.00']], 'How much is expense claim EC-5 worth?'),
        shown('T4', -1, [['convert', { query: 'EC-5', currency: 'USD' }, '3.00']], 'How much is expense claim EC-5 worth?'),
      ],
      contrasts: [
        { query: INVOICE, best: ['T1'], worst: ['T2'], best_only: [{ after: null, tool: 'convert' }], worst_only: [{ after: null, tool: 'reconcile' }] },
        { query: 'How much is expense claim EC-5 worth?', best: ['T3', 'T9'], worst: ['T4'], best_only: [], worst_only: [] },
        { query: 'unseen', best: ['T8'], worst: [], best_only: [], worst_only: [] },
      ],
    });
    const words = (query: string) => ({ family: null, words: query === INVOICE ? ['total', 'invoice', 'reporting', 'currency'] : ['expense', 'claim', 'worth'] });
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText(words(INVOICE), 'convert'), evidence: ['T1'] },
      { op: 'add', text: argumentLessonText(words(INVOICE), 'convert', 'currency', 'EUR'), evidence: ['T1'] },
      { op: 'add', text: argumentLessonText(words('claim'), 'convert', 'currency', 'GBP'), evidence: ['T3'] },
    ]);
    expect(verifyLessonText(SCOPE)).toContain('verify_answer');
  });
});

describe('the ledger families: an argument-value rule and an ordering rule, tools of their own, no tags', () => {
  const env = new SimulatedEnvironment();
  const tasks = simulatedTaskSet({ queriesPerFamily: 1, seed: 3, families: LEDGER_FAMILIES });

  it('are untagged tasks with a family, offered the ledger tools and verification; the argument families name their tool', () => {
    expect(tasks.map((task) => task.family)).toEqual(['invoice_total', 'expense_claim', 'ledger_close']);
    for (const task of tasks) {
      expect(task.prompt.startsWith('[')).toBe(false);
      expect(env.tools(task).map((tool) => tool.name)).toEqual(['convert', 'fetch_statement', 'reconcile', 'verify_answer']);
    }
    expect(tasks.map((task) => task.expected_tool)).toEqual(['convert', 'convert', undefined]);
    expect(env.tools().map((tool) => tool.name)).not.toContain('convert');
    expect(env.tools({ id: 'x', prompt: 'no family' }).map((tool) => tool.name)).not.toContain('convert');
  });

  it('convert answers right only with the family currency; another currency gives a wrong amount, none an error', () => {
    for (const [i, family] of LEDGER_ARGUMENT_FAMILIES.entries()) {
      const task = tasks[i];
      const right = LEDGER_ARGUMENT_FAMILY_RULES[family].value;
      expect(env.executeTool(task, 'convert', { query: task.prompt, currency: right })).toEqual({ output: task.expected_answer, error: null });
      for (const currency of CURRENCIES.filter((c) => c !== right)) {
        const wrong = env.executeTool(task, 'convert', { query: task.prompt, currency });
        expect(wrong.error).toBeNull();
        expect(wrong.output).not.toBe(task.expected_answer);
      }
      expect(env.executeTool(task, 'convert', { query: task.prompt }).error).toContain('needs "currency", one of USD, EUR, GBP, JPY, CHF');
      expect(env.executeTool(task, 'reconcile', { query: task.prompt }).output).not.toBe(task.expected_answer);
    }
    expect(env.executeTool(tasks[0], 'calculator', { query: 'x' }).error).toContain('available tools: convert, fetch_statement, reconcile, verify_answer');
  });

  it('ledger_close needs fetch_statement, then reconcile with its lead', () => {
    const task = tasks[2];
    const lead = env.executeTool(task, 'fetch_statement', { query: task.prompt }).output;
    expect(lead.startsWith('lead: ')).toBe(true);
    expect(env.executeTool(task, 'reconcile', { query: lead }).output).toBe(task.expected_answer);
    expect(env.executeTool(task, 'reconcile', { query: task.prompt }).output).not.toBe(task.expected_answer);
  });

  it('finds the rules of a task with neither tag nor family from its id; tagged: false and withFamily: false shape the built-in tasks', () => {
    const bare = simulatedTaskSet({ queriesPerFamily: 1, seed: 4, tagged: false, withFamily: false });
    expect(bare.every((task) => task.family === undefined && !task.prompt.startsWith('['))).toBe(true);
    expect(env.judge(bare[0], { toolCalls: [{ name: 'verify_answer', arguments: {} }], finalAnswer: bare[0].expected_answer! }).success).toBe(true);
    const episode = runSimulatedEpisode(initialPolicy('Base.'), simulatedTaskSet({ queriesPerFamily: 1, seed: 4, families: ['invoice_total'], withFamily: false })[0], 1, 6);
    expect(episode.steps[0].tool_calls[0].name).toMatch(/^(convert|fetch_statement|reconcile)$/);
  });

  it('trains in process on tasks without a family, with failure patterns shown (avoid lessons on)', () => {
    const tasks = (seed: number) => simulatedTaskSet({ queriesPerFamily: 2, seed, families: LEDGER_FAMILIES, withFamily: false });
    const run = runSimulatedTraining(
      {
        trainingTasks: tasks(1),
        heldOutTasks: tasks(2),
        iterations: 3,
        groupSize: 8,
        batchSize: 3,
        maxTurns: 6,
        seed: 1,
        gamma: 0.99,
        creditAssignment: false,
        policyUpdate: 'positive_only',
        reward: outcomeReward,
        update: { learningRate: 0.5, clip: 0.2, maxLessons: 20 },
        evalSamples: 1,
        avoidLessons: true,
      },
      initialPolicy('Base.'),
    );
    expect(run.heldOutSuccess).toHaveLength(4);
    // Lessons are scoped by words (no family was given) and some say what not to do.
    const parsed = run.policy.lessons.map((lesson) => parseLesson(lesson.text)!);
    expect(parsed.every((lesson) => lesson.scope.family === null && lesson.scope.words.length > 0)).toBe(true);
    expect(parsed.some((lesson) => lesson.form.kind === 'avoid_first' || lesson.form.kind === 'avoid_after')).toBe(true);
  });
});

describe('the simulated model stays blind to the ledger rules', () => {
  it('its sources name no ledger tool, argument or value, and never import the families', () => {
    for (const file of ['simulatedModel.ts', 'lessonForms.ts']) {
      const source = readFileSync(join(__dirname, '../../training/simulation', file), 'utf8');
      expect(source).not.toMatch(/from\s+['"][^'"]*(environment|ledgerFamilies)['"]/);
      for (const word of ['convert', 'fetch_statement', 'reconcile', 'currency', 'EUR', 'GBP']) expect(source).not.toContain(word);
    }
  });
});
