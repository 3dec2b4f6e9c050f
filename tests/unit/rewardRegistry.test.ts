/**
 * FLOW-017, the reward registry (training/rewards.ts): registration, per-agent-type choice,
 * validation of every value to [0, 1] (a failure marks the trajectory, naming the function),
 * the worked examples on good and bad inputs, and the group rewards' contract. The code
 * example runs in the real node:vm sandbox of activities/codeSandbox.ts.
 */
import { runCodeTests } from '../../activities/codeSandbox';
import { evaluationRewardOf } from '../../activities/evaluationReward';
import type { TrajectoryStep } from '../../training/trajectory';
import {
  CodeTestsSpecSchema,
  DEFAULT_REWARD_STRATEGY,
  RewardContractError,
  RewardFailure,
  RewardRegistry,
  RewardValidationError,
  UnknownRewardError,
  codeTestsReward,
  codeTestsSpecOf,
  createDefaultRewardRegistry,
  exactAnswerReward,
  extractCode,
  normaliseAnswer,
  outcomeReward,
  shapedReward,
  toolEfficiencyReward,
  validateReward,
  type JudgeVerdict,
  type RewardInput,
  type RewardJudge,
} from '../../training/rewards';

const T0 = '2026-01-01T00:00:00.000Z';

function toolStep(...names: string[]): TrajectoryStep {
  return {
    index: 0,
    state: 'task',
    action: { type: 'tool_call', content: null },
    tool_calls: names.map((name, i) => ({ id: `c${i}`, name, arguments: {} })),
    result: 'ok',
    started_at: T0,
    ended_at: T0,
    usage: { prompt_tokens: 1, completion_tokens: 1 },
    cost_usd: 0,
    logprob: null,
    error: null,
  };
}

function answerStep(content: string): TrajectoryStep {
  return { ...toolStep(), action: { type: 'final_answer', content }, result: null };
}

function run(overrides: Partial<RewardInput> = {}): RewardInput {
  return { success: false, verified: false, error: null, steps: [], ...overrides };
}

const ADD_TESTS = JSON.stringify({
  function: 'add',
  cases: [
    { args: [1, 2], expected: 3 },
    { args: [-1, 1], expected: 0 },
    { args: [0.5, 0.25], expected: 0.75 },
    { args: [10, 5], expected: 15 },
  ],
});
const codeTask = { prompt: 'Write add(a, b) in JavaScript.', expected_answer: ADD_TESTS };

/** A judge answering from a table, standing in for activities/llm/judge.ts's LLM judge. */
function tableJudge(scores: (number | RewardFailure)[]): RewardJudge & { calls: string[] } {
  const calls: string[] = [];
  const verdict = (s: number | RewardFailure): JudgeVerdict | RewardFailure => (s instanceof RewardFailure ? s : { score: s, reason: `scored ${s}` });
  let next = 0;
  return {
    calls,
    async one() {
      calls.push('one');
      return verdict(scores[next++]);
    },
    async group(trajectories) {
      calls.push(`group of ${trajectories.length}`);
      return scores.map(verdict);
    },
  };
}

describe('registration', () => {
  it('registers per-trajectory and group rewards with descriptions and agent types, in order', () => {
    const registry = new RewardRegistry()
      .register('plain', () => 0.5)
      .register('described', () => 0.5, 'a description')
      .register('llm-only', () => 0.5, { description: 'reads LLM tool calls', agent_types: ['llm'] })
      .registerGroup('together', (group) => group.map(() => 0.5), { agent_types: ['http'] })
      .registerGroup('group-described', (group) => group.map(() => 0.5), 'scores all at once');
    expect(registry.list()).toEqual([
      { name: 'plain', description: '', kind: 'trajectory', agent_types: null },
      { name: 'described', description: 'a description', kind: 'trajectory', agent_types: null },
      { name: 'llm-only', description: 'reads LLM tool calls', kind: 'trajectory', agent_types: ['llm'] },
      { name: 'together', description: '', kind: 'group', agent_types: ['http'] },
      { name: 'group-described', description: 'scores all at once', kind: 'group', agent_types: null },
    ]);
    expect(registry.names()).toEqual(['plain', 'described', 'llm-only', 'together', 'group-described']);
    expect(registry.namesFor('llm')).toEqual(['plain', 'described', 'llm-only', 'group-described']);
    expect(registry.namesFor('http')).toEqual(['plain', 'described', 'together', 'group-described']);
    expect(registry.has('together')).toBe(true);
    expect(registry.has('missing')).toBe(false);
  });

  it('refuses duplicate names of either kind and blank names', () => {
    const registry = createDefaultRewardRegistry();
    expect(() => registry.register('shaped', () => 0)).toThrow('reward "shaped" is already registered; pick another name');
    expect(() => registry.registerGroup('ruler', () => [])).toThrow('reward "ruler" is already registered');
    expect(() => registry.register('', () => 0)).toThrow('reward name must not be blank, got ""');
    expect(() => registry.registerGroup(' \t', () => [])).toThrow('reward name must not be blank, got " \\t"');
  });

  it('the default registry holds the built-ins, the three examples and the two judges', () => {
    const registry = createDefaultRewardRegistry();
    expect(registry.names()).toEqual(['outcome', 'shaped', 'outcome_shaped', 'exact_answer', 'tool_efficiency', 'code_tests', 'llm_judge', 'ruler']);
    expect(registry.list().every((entry) => entry.description.length > 0)).toBe(true);
    expect(registry.get('shaped')).toBe(shapedReward);
  });

  it('get() refuses a group reward and names unknown ones', () => {
    const registry = createDefaultRewardRegistry();
    expect(() => registry.get('ruler')).toThrow(new RewardContractError('reward "ruler" scores whole groups; use scoreGroup'));
    expect(() => registry.get('typo')).toThrow(UnknownRewardError);
    expect(() => registry.get('typo')).toThrow(
      'unknown reward "typo"; known rewards: outcome, shaped, outcome_shaped, exact_answer, tool_efficiency, code_tests, llm_judge, ruler',
    );
    expect(() => new RewardRegistry().get('x')).toThrow('unknown reward "x"; known rewards: (none)');
  });
});

describe('choice per agent type', () => {
  it("gives 'outcome' to both agent types by default, and whatever the job names when it names one", () => {
    const registry = createDefaultRewardRegistry();
    expect(DEFAULT_REWARD_STRATEGY).toBe('outcome');
    expect(registry.resolve(undefined, 'llm')).toBe('outcome');
    expect(registry.resolve(undefined, 'http')).toBe('outcome');
    expect(registry.resolve('exact_answer', 'http')).toBe('exact_answer');
    expect(registry.resolve('shaped', 'http')).toBe('shaped');
    // A registry nobody set defaults on still falls back to 'outcome' (when it has one).
    expect(new RewardRegistry().register('outcome', outcomeReward).defaultFor('http')).toBe('outcome');
  });

  it('lets code set a different default per agent type', () => {
    const registry = createDefaultRewardRegistry().setDefault('http', 'exact_answer').setDefault('llm', 'tool_efficiency');
    expect(registry.resolve(undefined, 'http')).toBe('exact_answer');
    expect(registry.resolve(undefined, 'llm')).toBe('tool_efficiency');
    expect(registry.defaultFor('http')).toBe('exact_answer');
  });

  it('refuses a reward meant for another agent type, as a choice and as a default, naming the allowed ones', () => {
    const registry = new RewardRegistry().register('any', () => 1).register('llm-tools', () => 1, { agent_types: ['llm'] });
    expect(registry.resolve('llm-tools', 'llm')).toBe('llm-tools');
    expect(() => registry.resolve('llm-tools', 'http')).toThrow(
      new UnknownRewardError('reward "llm-tools" is for llm agents, not http; rewards for http agents: any'),
    );
    expect(() => registry.setDefault('http', 'llm-tools')).toThrow('reward "llm-tools" is for llm agents, not http');
    expect(() => registry.setDefault('http', 'nope')).toThrow('unknown reward "nope"; known rewards: any, llm-tools');
  });

  it('names the registered rewards for an unknown choice, and when no default is registered', () => {
    expect(() => createDefaultRewardRegistry().resolve('no-such-reward', 'llm')).toThrow(/unknown reward "no-such-reward"; known rewards: outcome, shaped/);
    expect(() => new RewardRegistry().register('only', () => 1).resolve(undefined, 'llm')).toThrow(
      'unknown reward "outcome"; known rewards: only',
    );
  });
});

describe('validation of every value to [0, 1]', () => {
  const invalid: [string, unknown, string][] = [
    ['NaN', Number.NaN, 'returned NaN'],
    ['Infinity', Infinity, 'returned Infinity'],
    ['-Infinity', -Infinity, 'returned -Infinity'],
    ['-0.1', -0.1, 'returned -0.1'],
    ['1.1', 1.1, 'returned 1.1'],
    ['a string', '0.5', 'returned the string "0.5"'],
    ['undefined', undefined, 'returned undefined (undefined)'],
    ['null', null, 'returned null (object)'],
  ];

  it.each(invalid)('score() throws RewardValidationError naming the function for %s', (_label, value, message) => {
    const registry = new RewardRegistry().register('broken', () => value as number);
    let caught: unknown;
    try {
      registry.score('broken', run());
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RewardValidationError);
    const error = caught as RewardValidationError;
    expect(error.rewardName).toBe('broken');
    expect(Object.is(error.value, value)).toBe(true);
    expect(error.message).toBe(`reward function "broken" ${message}; a reward must be a finite number in [0, 1]`);
  });

  it.each(invalid)('scoreGroup() marks only the trajectory whose value is %s, never clipping it', async (_label, value, message) => {
    const registry = new RewardRegistry().register('sometimes', (t) => (t.success ? (value as number) : 0.25));
    const outcomes = await registry.scoreGroup('sometimes', [run(), run({ success: true }), run()]);
    expect(outcomes).toEqual([
      { reward: 0.25, error: null },
      { reward: null, error: `reward function "sometimes" ${message}; a reward must be a finite number in [0, 1]` },
      { reward: 0.25, error: null },
    ]);
  });

  it.each(invalid)('a group reward returning %s marks that trajectory too', async (_label, value, message) => {
    const registry = new RewardRegistry().registerGroup('group-broken', () => [1, value]);
    const outcomes = await registry.scoreGroup('group-broken', [run(), run()]);
    expect(outcomes[0]).toEqual({ reward: 1, error: null });
    expect(outcomes[1]).toEqual({ reward: null, error: `reward function "group-broken" ${message}; a reward must be a finite number in [0, 1]` });
  });

  it('accepts the boundaries 0 and 1 (and -0 as 0)', async () => {
    expect(validateReward('r', 0)).toBe(0);
    expect(validateReward('r', 1)).toBe(1);
    expect(validateReward('r', -0)).toBe(-0);
    const registry = new RewardRegistry().register('edges', (t) => (t.success ? 1 : 0));
    expect(await registry.scoreGroup('edges', [run({ success: true }), run()])).toEqual([
      { reward: 1, error: null },
      { reward: 0, error: null },
    ]);
  });

  it('a function that throws marks the trajectory with its message; a thrown non-Error too', async () => {
    const registry = new RewardRegistry()
      .register('throws', () => {
        throw new Error('lookup table missing');
      })
      .register('throws-string', () => {
        throw 'plain string';
      });
    expect(await registry.scoreGroup('throws', [run()])).toEqual([{ reward: null, error: 'reward function "throws" failed: lookup table missing' }]);
    expect(await registry.scoreGroup('throws-string', [run()])).toEqual([{ reward: null, error: 'reward function "throws-string" failed: plain string' }]);
  });

  it('the built-in shaped reward keeps its defined clamp: never marked, always in [0, 1]', async () => {
    const registry = createDefaultRewardRegistry();
    const manySteps = run({ steps: Array.from({ length: 40 }, () => toolStep('lookup')) });
    const everything = run({ success: true, verified: true, steps: [toolStep('lookup'), answerStep('x')] });
    expect(await registry.scoreGroup('shaped', [manySteps, everything])).toEqual([
      { reward: 0, error: null },
      { reward: 1, error: null },
    ]);
  });

  it('a group reward must return one value per trajectory: anything else is a contract error naming it', async () => {
    const registry = new RewardRegistry()
      .registerGroup('short', () => [1])
      .registerGroup('not-a-list', () => 0.5 as unknown as number[]);
    await expect(registry.scoreGroup('short', [run(), run()])).rejects.toThrow(
      new RewardContractError('reward function "short" returned 1 values for a group of 2; it must return one per trajectory'),
    );
    await expect(registry.scoreGroup('not-a-list', [run()])).rejects.toThrow(
      'reward function "not-a-list" returned 0.5 for a group of 1; it must return one per trajectory',
    );
    await expect(registry.scoreGroup('missing', [run()])).rejects.toThrow(UnknownRewardError);
  });

  it('a RewardFailure marks the trajectory with its reason', async () => {
    const registry = new RewardRegistry().registerGroup('half', async (group) => group.map((_, i) => (i === 0 ? new RewardFailure('no verdict') : 0.5)));
    expect(await registry.scoreGroup('half', [run(), run()])).toEqual([
      { reward: null, error: 'reward function "half" could not score this trajectory: no verdict' },
      { reward: 0.5, error: null },
    ]);
  });
});

describe('example: exact_answer (question answering)', () => {
  const task = { prompt: 'How many moons has Mars?', expected_answer: '2' };

  it('normalises before comparing', () => {
    expect(normaliseAnswer('  "Paris."  ')).toBe('paris');
    expect(normaliseAnswer('New   York!')).toBe('new york');
    expect(normaliseAnswer('2.0')).toBe('2');
    expect(normaliseAnswer('1,000')).toBe('1000');
    expect(normaliseAnswer('.5')).toBe('0.5');
    expect(normaliseAnswer('1e3')).toBe('1000');
    expect(normaliseAnswer('2 moons')).toBe('2 moons');
  });

  it('is 1 for the expected answer in any normalised form', async () => {
    expect(exactAnswerReward(run({ task, final_answer: '2' }))).toBe(1);
    expect(exactAnswerReward(run({ task, final_answer: ' 2.00. ' }))).toBe(1);
    expect(await createDefaultRewardRegistry().scoreGroup('exact_answer', [run({ task, final_answer: '"2"' })])).toEqual([{ reward: 1, error: null }]);
  });

  it('is 0 for a wrong or missing answer', () => {
    expect(exactAnswerReward(run({ task, final_answer: '3' }))).toBe(0);
    expect(exactAnswerReward(run({ task, final_answer: 'two' }))).toBe(0);
    expect(exactAnswerReward(run({ task, final_answer: null }))).toBe(0);
    expect(exactAnswerReward(run({ task }))).toBe(0);
  });

  it('marks the trajectory when the task has no expected answer', async () => {
    expect(await createDefaultRewardRegistry().scoreGroup('exact_answer', [run({ task: { prompt: 'q' }, final_answer: '2' }), run({ final_answer: '2' })])).toEqual([
      { reward: null, error: 'reward function "exact_answer" failed: the task has no expected_answer to compare the final answer with' },
      { reward: null, error: 'reward function "exact_answer" failed: the task has no expected_answer to compare the final answer with' },
    ]);
  });
});

describe('example: tool_efficiency (tool use)', () => {
  const task = { prompt: 'What is the balance of account 7?', expected_tool: 'lookup_account' };

  it('is 1 for the right tool in one call, less for each extra call', () => {
    expect(toolEfficiencyReward(run({ task, steps: [toolStep('lookup_account'), answerStep('12')] }))).toBe(1);
    expect(toolEfficiencyReward(run({ task, steps: [toolStep('search'), toolStep('lookup_account')] }))).toBeCloseTo(2 / 3, 12);
    expect(toolEfficiencyReward(run({ task, steps: [toolStep('search', 'search', 'lookup_account')] }))).toBe(0.5);
  });

  it('is 0 when the right tool was never called', () => {
    expect(toolEfficiencyReward(run({ task, steps: [toolStep('search'), answerStep('12')] }))).toBe(0);
    expect(toolEfficiencyReward(run({ task, steps: [answerStep('12')] }))).toBe(0);
  });

  it('marks the trajectory when the task names no expected tool', async () => {
    expect(await createDefaultRewardRegistry().scoreGroup('tool_efficiency', [run({ task: { prompt: 'q' }, steps: [toolStep('x')] })])).toEqual([
      { reward: null, error: 'reward function "tool_efficiency" failed: the task has no expected_tool to check the tool calls against' },
    ]);
  });
});

describe('example: code_tests (coding)', () => {
  const context = { runCode: runCodeTests };
  const score = (finalAnswer: string | null, task: RewardInput['task'] | 'none' = codeTask) =>
    createDefaultRewardRegistry().scoreGroup('code_tests', [run({ task: task === 'none' ? undefined : task, final_answer: finalAnswer })], context);

  it('extracts the code from a fenced block, or takes the whole answer', () => {
    expect(extractCode('Here:\n```js\nconst add = (a, b) => a + b;\n```\nDone.')).toBe('const add = (a, b) => a + b;');
    expect(extractCode('  function add(a, b) { return a + b; }  ')).toBe('function add(a, b) { return a + b; }');
  });

  it('is 1 when every test passes, in a fence or not', async () => {
    expect(await score('```javascript\nfunction add(a, b) { return a + b; }\n```')).toEqual([{ reward: 1, error: null }]);
    expect(await score('const add = (a, b) => a + b;')).toEqual([{ reward: 1, error: null }]);
  });

  it('is the fraction of tests passed', async () => {
    // Wrong when a is negative: cases 1, 3 and 4 pass.
    expect(await score('function add(a, b) { return a < 0 ? a - b : a + b; }')).toEqual([{ reward: 0.75, error: null }]);
    expect(await score('function add(a, b) { if (a === 1) throw new Error("no"); return a + b; }')).toEqual([{ reward: 0.75, error: null }]);
  });

  it('is 0 for wrong, missing, non-compiling, misnamed, looping or escaping code', async () => {
    for (const answer of [
      'function add(a, b) { return a * b; }',
      null,
      '   ',
      'function add(a, b) { return a + ',
      'function plus(a, b) { return a + b; }',
      'const add = 3;',
      'throw new Error("top level");',
      'function add(a, b) { while (true) {} }',
      // No require, no process, no eval: each attempt throws inside the sandbox, so every test fails.
      'function add(a, b) { return require("fs") && a + b; }',
      'function add(a, b) { return process.exit(1); }',
      'function add(a, b) { return this.constructor.constructor("return process")().pid; }',
      'function add(a, b) { return eval("a + b"); }',
    ]) {
      expect(await score(answer)).toEqual([{ reward: 0, error: null }]);
    }
  });

  it('compares results deeply (objects, arrays), not by reference', () => {
    const spec = CodeTestsSpecSchema.parse({ function: 'pair', cases: [{ args: [1, 2], expected: { sum: 3, items: [1, 2] } }, { args: [1, 1], expected: { sum: 3 } }] });
    expect(runCodeTests('function pair(a, b) { return { items: [a, b], sum: a + b }; }', spec)).toEqual([true, false]);
    // A spec that bypassed the schema cannot inject code through the function name.
    expect(runCodeTests('function ok() { return 1; }', { function: 'ok; process', cases: [{ args: [], expected: 1 }] })).toEqual([false]);
    // A candidate that overrides JSON still gets a string back, or no test passes.
    expect(runCodeTests('JSON.stringify = () => 5; function ok() { return 1; }', { function: 'ok', cases: [{ args: [], expected: 1 }] })).toEqual([false]);
  });

  it('codeTestsReward uses the runner it is given', () => {
    const calls: string[] = [];
    const runner = (source: string) => {
      calls.push(source);
      return [true, false, false, false];
    };
    expect(codeTestsReward(run({ task: codeTask, final_answer: '```\nx\n```' }), runner)).toBe(0.25);
    expect(calls).toEqual(['x']);
    expect(codeTestsReward(run({ task: codeTask }), runner)).toBe(0);
  });

  it("marks the trajectory when the task's test cases are missing or invalid", async () => {
    const cases: [RewardInput['task'], string][] = [
      [undefined, 'the task has no expected_answer holding its test cases as JSON {"function", "cases"}'],
      [{ prompt: 'p' }, 'the task has no expected_answer holding its test cases as JSON {"function", "cases"}'],
      [{ prompt: 'p', expected_answer: 'add(1,2) = 3' }, "the task's expected_answer is not JSON test cases {\"function\", \"cases\"}: add(1,2) = 3"],
      [{ prompt: 'p', expected_answer: '42' }, "the task's test cases are invalid: (spec):"],
      [{ prompt: 'p', expected_answer: JSON.stringify({ function: 'a b', cases: [{ args: [], expected: 1 }] }) }, "the task's test cases are invalid: function: a JavaScript identifier"],
      [{ prompt: 'p', expected_answer: JSON.stringify({ function: 'f', cases: [] }) }, "the task's test cases are invalid: cases:"],
    ];
    for (const [task, message] of cases) {
      expect(() => codeTestsSpecOf(task)).toThrow(message);
      const [outcome] = await score('function add(a, b) { return a + b; }', task ?? 'none');
      expect(outcome.reward).toBeNull();
      expect(outcome.error).toContain(`reward function "code_tests" could not score this trajectory: ${message}`);
    }
  });

  it('needs the worker\'s sandbox: scoring it without one is a contract error', async () => {
    await expect(createDefaultRewardRegistry().scoreGroup('code_tests', [run({ task: codeTask, final_answer: 'x' })])).rejects.toThrow(
      new RewardContractError("reward \"code_tests\" needs the worker's runCode; score it through the reward activity"),
    );
  });
});

describe('the judges: llm_judge scores one at a time, ruler the whole group at once', () => {
  it('llm_judge asks the judge once per trajectory and validates each score', async () => {
    const judge = tableJudge([0.9, new RewardFailure('malformed twice'), 1.2]);
    const outcomes = await createDefaultRewardRegistry().scoreGroup('llm_judge', [run(), run(), run()], { judge });
    expect(judge.calls).toEqual(['one', 'one', 'one']);
    expect(outcomes).toEqual([
      { reward: 0.9, error: null },
      { reward: null, error: 'reward function "llm_judge" could not score this trajectory: malformed twice' },
      { reward: null, error: 'reward function "llm_judge" returned 1.2; a reward must be a finite number in [0, 1]' },
    ]);
  });

  it('ruler asks the judge once for the whole group', async () => {
    const judge = tableJudge([1, 0.5, new RewardFailure('no verdict'), Number.NaN]);
    const outcomes = await createDefaultRewardRegistry().scoreGroup('ruler', [run(), run(), run(), run()], { judge });
    expect(judge.calls).toEqual(['group of 4']);
    expect(outcomes.map((o) => o.reward)).toEqual([1, 0.5, null, null]);
    expect(outcomes[2].error).toBe('reward function "ruler" could not score this trajectory: no verdict');
    expect(outcomes[3].error).toBe('reward function "ruler" returned NaN; a reward must be a finite number in [0, 1]');
  });

  it('both need the worker\'s judge', async () => {
    for (const name of ['llm_judge', 'ruler']) {
      await expect(createDefaultRewardRegistry().scoreGroup(name, [run()], {})).rejects.toThrow(
        `reward "${name}" needs the worker's judge; score it through the reward activity`,
      );
    }
  });
});

describe('evaluationRewardOf: held-out episodes, one at a time, no judge', () => {
  const solved = run({ success: true, task: { prompt: 'q', expected_answer: '2' }, final_answer: '2', steps: [answerStep('2')] });

  it("uses the job's per-trajectory strategy, or the agent type's default", () => {
    const rewardOf = evaluationRewardOf(createDefaultRewardRegistry());
    expect(rewardOf('exact_answer', solved)).toBe(1);
    expect(rewardOf(undefined, solved)).toBe(outcomeReward(solved));
    expect(rewardOf('shaped', solved)).toBe(shapedReward(solved));
    expect(evaluationRewardOf(createDefaultRewardRegistry().setDefault('http', 'shaped'), 'http')(undefined, solved)).toBe(shapedReward(solved));
  });

  it("scores judge and group strategies with the default ('outcome'), and an invalid value as 0", () => {
    const registry = createDefaultRewardRegistry().register('nan', () => Number.NaN);
    const rewardOf = evaluationRewardOf(registry);
    for (const name of ['llm_judge', 'ruler', 'code_tests']) expect(rewardOf(name, solved)).toBe(outcomeReward(solved));
    expect(rewardOf('nan', solved)).toBe(0);
    expect(() => rewardOf('no-such-reward', solved)).toThrow(UnknownRewardError);
  });
});
