import {
  NO_RELEVANT_RESULT,
  SIMULATED_FAMILIES,
  SIMULATED_FAMILY_RULES,
  SIMULATED_TOOLS,
  SIMULATED_VERIFICATION_TOOL,
  SimulatedEnvironment,
  VERIFIED_CORRECT,
  VERIFIED_INCORRECT,
  simulatedTaskSet,
} from '../../training/simulation/environment';
import { TaskSchema } from '../../training/task';

const env = new SimulatedEnvironment();
const SEARCH_TOOLS = ['lookup_docs', 'calculator', 'query_database', 'web_search'];

describe('simulated tools', () => {
  it('offers four search tools and verify_answer, each with a JSON schema', () => {
    expect(SIMULATED_VERIFICATION_TOOL).toBe('verify_answer');
    expect(env.tools().map((tool) => tool.name)).toEqual([...SEARCH_TOOLS, 'verify_answer']);
    for (const tool of SIMULATED_TOOLS) {
      expect(tool.parameters).toMatchObject({ type: 'object' });
      expect(tool.description.length).toBeGreaterThan(0);
    }
    expect(SIMULATED_TOOLS[4].parameters).toMatchObject({ required: ['answer'] });
  });

  it('hides rules over six families, each needing one search tool, about half needing verification', () => {
    expect(SIMULATED_FAMILIES).toEqual(['billing', 'geography', 'arithmetic', 'shipping', 'inventory', 'weather']);
    for (const family of SIMULATED_FAMILIES) {
      expect(SEARCH_TOOLS).toContain(SIMULATED_FAMILY_RULES[family].requiredTool);
    }
    expect(SIMULATED_FAMILIES.filter((family) => SIMULATED_FAMILY_RULES[family].needsVerification)).toHaveLength(3);
  });
});

describe('simulatedTaskSet', () => {
  it('makes valid, tagged, interleaved tasks fixed by the seed', () => {
    const tasks = simulatedTaskSet({ queriesPerFamily: 2, seed: 5 });
    expect(tasks).toHaveLength(12);
    for (const task of tasks) {
      TaskSchema.parse(task);
      expect(task.prompt.startsWith(`[${task.family}] `)).toBe(true);
      expect(task.expected_answer).toBeTruthy();
    }
    expect(tasks.slice(0, 6).map((task) => task.family)).toEqual(SIMULATED_FAMILIES);
    expect(new Set(tasks.map((task) => task.id)).size).toBe(12);
    expect(simulatedTaskSet({ queriesPerFamily: 2, seed: 5 })).toEqual(tasks);
    expect(simulatedTaskSet({ queriesPerFamily: 2, seed: 6 })).not.toEqual(tasks);
    expect(tasks[0].prompt).toMatch(/^\[billing\] What is the outstanding balance on account \d{4}\?$/);
    expect(tasks[0].expected_answer).toMatch(/^\$\d+\.\d{2}$/);
  });

  it('can be limited to some families, and names bad options', () => {
    const tasks = simulatedTaskSet({ queriesPerFamily: 3, seed: 1, families: ['weather'] });
    expect(tasks.map((task) => task.family)).toEqual(['weather', 'weather', 'weather']);
    expect(() => simulatedTaskSet({ queriesPerFamily: 1, seed: 1, families: ['cooking'] })).toThrow(
      'unknown simulated task family "cooking"; known families: billing, geography',
    );
    expect(() => simulatedTaskSet({ queriesPerFamily: 0, seed: 1 })).toThrow(
      'simulatedTaskSet: queriesPerFamily must be a positive integer, got 0',
    );
  });
});

describe('SimulatedEnvironment.executeTool', () => {
  const tasks = simulatedTaskSet({ queriesPerFamily: 20, seed: 3 });

  it('answers correctly only from the family\'s required tool', () => {
    for (const task of tasks) {
      const rule = SIMULATED_FAMILY_RULES[task.family!];
      expect(env.executeTool(task, rule.requiredTool, { query: task.prompt })).toEqual({
        output: task.expected_answer,
        error: null,
      });
      for (const tool of SEARCH_TOOLS.filter((name) => name !== rule.requiredTool)) {
        const result = env.executeTool(task, tool, { query: task.prompt });
        expect(result.error).toBeNull();
        expect(result.output).not.toBe(task.expected_answer);
        // Fixed per task and tool, so reruns agree.
        expect(env.executeTool(task, tool, {})).toEqual(result);
      }
    }
  });

  it('gives plausible wrong values as well as "no relevant result"', () => {
    const outputs = tasks.flatMap((task) =>
      SEARCH_TOOLS.filter((tool) => tool !== SIMULATED_FAMILY_RULES[task.family!].requiredTool).map(
        (tool) => env.executeTool(task, tool, {}).output,
      ),
    );
    expect(outputs).toContain(NO_RELEVANT_RESULT);
    expect(outputs.some((output) => /^\$\d+\.\d{2}$/.test(output))).toBe(true);
  });

  it('never hands out the right answer from a wrong tool, even when a wrong draw collides', () => {
    // Shipping answers have only 14 values, so some wrong draws equal the expected answer.
    const shipping = simulatedTaskSet({ queriesPerFamily: 200, seed: 9, families: ['shipping'] });
    const outputs = shipping.flatMap((task) => ['calculator', 'web_search', 'query_database'].map((tool) => env.executeTool(task, tool, {}).output));
    expect(outputs.every((output, i) => output !== shipping[Math.floor(i / 3)].expected_answer)).toBe(true);
  });

  it('verifies answers and reports bad calls as errors', () => {
    const task = tasks[0];
    expect(env.executeTool(task, 'verify_answer', { answer: ` ${task.expected_answer} ` })).toEqual({
      output: VERIFIED_CORRECT,
      error: null,
    });
    expect(env.executeTool(task, 'verify_answer', { answer: 'wrong' }).output).toBe(VERIFIED_INCORRECT);
    expect(env.executeTool(task, 'verify_answer', { text: 'x' })).toEqual({
      output: '',
      error: 'verify_answer needs {"answer": string}, got {"text":"x"}',
    });
    expect(env.executeTool(task, 'send_email', {}).error).toBe(
      'unknown tool "send_email"; available tools: lookup_docs, calculator, query_database, web_search, verify_answer',
    );
  });

  it('reads the family from the prompt tag when the task has none, and refuses non-simulated tasks', () => {
    const task = { ...tasks[0], family: undefined };
    expect(env.executeTool(task, 'query_database', {}).output).toBe(tasks[0].expected_answer);
    expect(() => env.executeTool({ id: 'q1', prompt: 'no tag', expected_answer: 'x' }, 'calculator', {})).toThrow(
      'task "q1" is not a simulated task',
    );
    expect(() => env.executeTool({ id: 'q2', prompt: '[billing] x' }, 'calculator', {})).toThrow(
      'task "q2" is not a simulated task',
    );
    expect(() => env.judge({ id: 'q3', prompt: '[cooking] x', expected_answer: 'y' }, { toolCalls: [], finalAnswer: 'y' })).toThrow(
      'unknown simulated task family "cooking"',
    );
  });
});

describe('SimulatedEnvironment.judge', () => {
  const [billing, geography] = simulatedTaskSet({ queriesPerFamily: 1, seed: 3, families: ['billing', 'geography'] });
  const verify = { name: 'verify_answer', arguments: { answer: 'x' } };

  it('needs the right answer, and verification for families that demand it', () => {
    expect(SIMULATED_FAMILY_RULES.billing.needsVerification).toBe(true);
    expect(env.judge(billing, { toolCalls: [verify], finalAnswer: billing.expected_answer! })).toEqual({
      success: true,
      verified: true,
    });
    expect(env.judge(billing, { toolCalls: [], finalAnswer: billing.expected_answer! })).toEqual({
      success: false,
      verified: false,
    });
    expect(env.judge(billing, { toolCalls: [verify], finalAnswer: 'wrong' })).toEqual({ success: false, verified: true });
    expect(env.judge(billing, { toolCalls: [verify], finalAnswer: null }).success).toBe(false);
  });

  it('does not demand verification where the hidden rule does not', () => {
    expect(SIMULATED_FAMILY_RULES.geography.needsVerification).toBe(false);
    expect(env.judge(geography, { toolCalls: [], finalAnswer: `${geography.expected_answer}\n` })).toEqual({
      success: true,
      verified: false,
    });
  });
});
