import { readFileSync } from 'fs';
import { join } from 'path';
import { renderSystemPrompt, type Policy } from '../../training/policy';
import { renderPolicyUpdateEvidence as renderFromPolicy, type PolicyUpdateEvidence } from '../../training/policyEvidence';
import {
  GIVE_UP_ANSWER,
  UNPROMPTED_VERIFY_PROBABILITY,
  renderPolicyUpdateEvidence,
  simulatedAgentTurn,
  simulatedOptimizerTurn,
  type AgentMessage,
  type SimulatedAgentRequest,
} from '../../training/simulation/simulatedModel';
import { toolLessonText, verifyLessonText } from '../../training/simulation/lessonForms';

const TOOLS = ['lookup_docs', 'calculator', 'query_database', 'web_search', 'verify_answer'];
const BASE = 'You are careful.';

function policy(lessons: Policy['lessons']): Policy {
  return { base_prompt: BASE, lessons, version: 1 };
}

function request(system: string, messages: AgentMessage[], seed = 0, toolNames = TOOLS): SimulatedAgentRequest {
  return { system, messages, toolNames, seed };
}

const user = (content: string): AgentMessage => ({ role: 'user', content });
const called = (name: string): AgentMessage => ({ role: 'assistant', content: null, tool_calls: [{ name }] });
const result = (content: string | null): AgentMessage => ({ role: 'tool', content });

/** How often each first action is chosen over many seeds. */
function firstToolFrequencies(system: string, family = 'billing', seeds = 2000): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let seed = 0; seed < seeds; seed++) {
    const action = simulatedAgentTurn(request(system, [user(`[${family}] What?`)], seed));
    const key = action.type === 'tool_call' ? action.tool : 'answer';
    counts[key] = (counts[key] ?? 0) + 1 / seeds;
  }
  return counts;
}

describe('the simulated model does not know the hidden rules', () => {
  it('never imports the environment', () => {
    const source = readFileSync(join(__dirname, '../../training/simulation/simulatedModel.ts'), 'utf8');
    expect(source).not.toMatch(/from\s+['"][^'"]*environment['"]/);
    expect(source).not.toMatch(/require\(\s*['"][^'"]*environment['"]\s*\)/);
    expect(source).not.toMatch(/import\(\s*['"][^'"]*environment['"]\s*\)/);
    // Nor does it name any search tool: it only knows tools from the request and the lessons.
    for (const tool of ['lookup_docs', 'calculator', 'query_database', 'web_search']) {
      expect(source).not.toContain(tool);
    }
  });
});

describe('simulatedAgentTurn', () => {
  it('is deterministic in seed and conversation', () => {
    const req = request(BASE, [user('[billing] What?')], 5);
    expect(simulatedAgentTurn(req)).toEqual(simulatedAgentTurn(structuredClone(req)));
  });

  it('without lessons picks a search tool uniformly, never verify first', () => {
    const frequencies = firstToolFrequencies(BASE);
    expect(Object.keys(frequencies).sort()).toEqual(['calculator', 'lookup_docs', 'query_database', 'web_search']);
    for (const frequency of Object.values(frequencies)) expect(frequency).toBeCloseTo(0.25, 1);
    const action = simulatedAgentTurn(request(BASE, [user('[billing] What?')]));
    expect(action).toMatchObject({ type: 'tool_call', probability: 0.25, arguments: { query: '[billing] What?' } });
  });

  it('follows a tool lesson for its family with probability 0.5 + 0.5w (plus its uniform share)', () => {
    const system = renderSystemPrompt(
      policy([
        { id: 'a', text: toolLessonText('billing', 'query_database'), weight: 0.4 },
        { id: 'b', text: toolLessonText('billing', 'calculator'), weight: 0.2 },
        { id: 'c', text: toolLessonText('weather', 'web_search'), weight: 1 },
        { id: 'd', text: toolLessonText('billing', 'send_email'), weight: 1 },
      ]),
    );
    // The strongest usable lesson wins: query_database at w = 0.4  ->  p = 0.7, + 0.3 / 4.
    const expected = 0.7 + 0.3 / 4;
    expect(firstToolFrequencies(system).query_database).toBeCloseTo(expected, 1);
    const seen = new Set<string>();
    for (let seed = 0; seed < 50; seed++) {
      const action = simulatedAgentTurn(request(system, [user('[billing] What?')], seed));
      if (action.type !== 'tool_call') throw new Error('expected a tool call');
      seen.add(action.tool);
      expect(action.probability).toBeCloseTo(action.tool === 'query_database' ? expected : 0.3 / 4, 12);
    }
    expect(seen.size).toBeGreaterThan(1);
    // A lesson of weight 1 is always followed; another family's lessons are ignored.
    expect(firstToolFrequencies(system, 'weather').web_search).toBeCloseTo(1, 9);
    expect(firstToolFrequencies(system, 'inventory').query_database).toBeCloseTo(0.25, 1);
  });

  it('ignores lesson-like text outside the lesson format and a first message without a family tag', () => {
    const system = `${BASE}\nFor billing tasks, call calculator first.`;
    expect(firstToolFrequencies(system).calculator).toBeCloseTo(0.25, 1);
    const action = simulatedAgentTurn(request(BASE, [{ role: 'system', content: BASE }, user('no tag')]));
    expect(action.type).toBe('tool_call');
    const noUser = simulatedAgentTurn(request(BASE, []));
    expect(noUser).toMatchObject({ type: 'tool_call', arguments: { query: '' } });
  });

  it('gives up when it has no search tool', () => {
    expect(simulatedAgentTurn(request(BASE, [user('[billing] What?')], 0, ['verify_answer']))).toEqual({
      type: 'final_answer',
      content: GIVE_UP_ANSWER,
      probability: 1,
    });
  });

  it('after a tool result verifies sometimes (exploration) and otherwise answers with the tool output', () => {
    let verified = 0;
    const seeds = 2000;
    for (let seed = 0; seed < seeds; seed++) {
      const action = simulatedAgentTurn(
        request(BASE, [user('[billing] What?'), called('calculator'), result('$12.00')], seed),
      );
      if (action.type === 'tool_call') {
        verified += 1;
        expect(action).toEqual({
          type: 'tool_call',
          tool: 'verify_answer',
          arguments: { answer: '$12.00' },
          probability: UNPROMPTED_VERIFY_PROBABILITY,
        });
      } else {
        expect(action).toEqual({ type: 'final_answer', content: '$12.00', probability: 0.75 });
      }
    }
    expect(verified / seeds).toBeCloseTo(0.25, 1);
  });

  it('verifies with probability 0.5 + 0.5w under a verify lesson for its family', () => {
    const system = renderSystemPrompt(
      policy([
        { id: 'a', text: verifyLessonText('billing'), weight: 0.2 },
        { id: 'b', text: verifyLessonText('billing'), weight: 0.6 },
        { id: 'c', text: verifyLessonText('weather'), weight: 0 },
      ]),
    );
    let verified = 0;
    for (let seed = 0; seed < 2000; seed++) {
      const action = simulatedAgentTurn(request(system, [user('[billing] What?'), called('web_search'), result('x')], seed));
      if (action.type === 'tool_call') verified += 1;
      expect(action.probability).toBeCloseTo(action.type === 'tool_call' ? 0.8 : 0.2, 12);
    }
    expect(verified / 2000).toBeCloseTo(0.8, 1);
  });

  it('answers after a verification with the last search output', () => {
    const conversation = [user('[billing] What?'), called('web_search'), result('$5.00'), called('verify_answer'), result('verified: correct')];
    expect(simulatedAgentTurn(request(BASE, conversation))).toEqual({ type: 'final_answer', content: '$5.00', probability: 1 });
    // Verification without any search result, or an empty result: it has nothing better to say.
    expect(simulatedAgentTurn(request(BASE, [user('[billing] What?'), called('verify_answer'), result('verified: incorrect')]))).toEqual({
      type: 'final_answer',
      content: GIVE_UP_ANSWER,
      probability: 1,
    });
    expect(simulatedAgentTurn(request(BASE, [user('[billing] What?'), called('web_search'), result(null)], 0, ['web_search']))).toEqual({
      type: 'final_answer',
      content: GIVE_UP_ANSWER,
      probability: 1,
    });
  });

  it('answers at once when no verification tool is offered, and tolerates a tool message without a call', () => {
    expect(
      simulatedAgentTurn(request(BASE, [user('[billing] What?'), called('web_search'), result('7')], 0, ['web_search'])),
    ).toEqual({ type: 'final_answer', content: '7', probability: 1 });
    const orphan = simulatedAgentTurn(request(BASE, [user('[billing] What?'), { role: 'assistant', content: 'thinking' }, result('9')], 3));
    expect(['tool_call', 'final_answer']).toContain(orphan.type);
  });
});

type EvidenceTrajectory = PolicyUpdateEvidence['trajectories'][number];

function trajectory(
  ref: string,
  family: string,
  tools: string[],
  overrides: Partial<EvidenceTrajectory> = {},
): EvidenceTrajectory {
  return {
    ref,
    advantage: 1,
    query: `[${family}] What?`,
    success: true,
    steps: [
      ...tools.map((tool) => ({ action: 'tool_call' as const, tool, result: 'r' })),
      { action: 'final_answer' as const, tool: null, result: null },
    ],
    final_answer: 'r',
    ...overrides,
  };
}

function optimize(evidence: PolicyUpdateEvidence) {
  return simulatedOptimizerTurn(`Propose lesson operations.\n\n${renderPolicyUpdateEvidence(evidence)}\n`).operations;
}

describe('simulatedOptimizerTurn', () => {
  it('shares the evidence renderer with policyEvidence.ts', () => {
    expect(renderPolicyUpdateEvidence).toBe(renderFromPolicy);
  });

  it('adds a tool lesson from the most common first tool of positive-advantage runs', () => {
    const operations = optimize({
      lessons: [],
      trajectories: [
        trajectory('t1', 'billing', ['query_database']),
        trajectory('t2', 'billing', ['query_database', 'verify_answer']),
        trajectory('t3', 'billing', ['calculator']),
        // Ignored: negative or zero advantage (even when it succeeded).
        trajectory('t4', 'billing', ['calculator'], { advantage: -0.5 }),
        trajectory('t5', 'billing', ['calculator'], { advantage: 0 }),
        // A query of another kind (no word in common): a lesson of its own, scoped by its words.
        trajectory('t6', 'billing', ['calculator'], { query: 'untagged question' }),
      ],
    });
    expect(operations).toEqual([
      { op: 'add', text: 'For tasks like "billing", call query_database first.', evidence: ['t1', 't2'] },
      { op: 'add', text: 'For tasks like "untagged question", call calculator first.', evidence: ['t6'] },
    ]);
  });

  it('adds a verify lesson when most winners verified, and reweights existing lessons instead of duplicating', () => {
    const operations = optimize({
      lessons: [
        { id: 'L1-1', text: toolLessonText('weather', 'web_search'), weight: 0.3 },
        { id: 'L1-2', text: toolLessonText('weather', 'calculator'), weight: 0.2 },
        { id: 'L1-3', text: 'for tasks like "WEATHER", call verify_answer before answering.', weight: 0.2 },
        { id: 'L1-4', text: toolLessonText('billing', 'calculator'), weight: 0.2 },
      ],
      trajectories: [
        trajectory('w1', 'weather', ['web_search', 'verify_answer']),
        trajectory('w2', 'weather', ['web_search', 'verify_answer']),
        trajectory('w3', 'weather', ['lookup_docs']),
        trajectory('a1', 'arithmetic', ['calculator', 'verify_answer']),
      ],
    });
    expect(operations).toEqual([
      { op: 'reweight', lesson_id: 'L1-1', direction: 'up', evidence: ['w1', 'w2'] },
      { op: 'reweight', lesson_id: 'L1-2', direction: 'down', evidence: ['w1', 'w2'] },
      { op: 'reweight', lesson_id: 'L1-3', direction: 'up', evidence: ['w1', 'w2'] },
      { op: 'add', text: toolLessonText('arithmetic', 'calculator'), evidence: ['a1'] },
      { op: 'add', text: verifyLessonText('arithmetic'), evidence: ['a1'] },
    ]);
  });

  it('needs a strict majority of verifiers, breaks tool ties alphabetically and skips runs without search tools', () => {
    const operations = optimize({
      lessons: [],
      trajectories: [
        trajectory('g1', 'geography', ['web_search', 'verify_answer']),
        trajectory('g2', 'geography', ['lookup_docs']),
        trajectory('g3', 'geography', ['calculator']),
        trajectory('g4', 'geography', ['calculator']),
        trajectory('g5', 'geography', ['web_search', 'verify_answer']),
        trajectory('s1', 'shipping', []),
      ],
    });
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText('geography', 'calculator'), evidence: ['g3', 'g4'] },
    ]);
  });

  it('learns from the advantage, not from success: a failed run that beat its group counts, a success that did not does not', () => {
    expect(optimize({ lessons: [], trajectories: [trajectory('x', 'billing', ['calculator'], { success: false, advantage: 0.4 })] })).toEqual([
      { op: 'add', text: toolLessonText('billing', 'calculator'), evidence: ['x'] },
    ]);
    expect(optimize({ lessons: [], trajectories: [trajectory('y', 'billing', ['calculator'], { success: true, advantage: 0 })] })).toEqual([]);
  });

  it('returns no operations when no trajectory has a positive advantage, and at most 20', () => {
    expect(optimize({ lessons: [], trajectories: [trajectory('x', 'billing', ['calculator'], { advantage: -1 })] })).toEqual([]);
    // Words with digits say nothing about the kind of task, so these families are named by letters.
    const families = Array.from({ length: 15 }, (_, i) => `family${String.fromCharCode(97 + i)}`);
    const many = optimize({
      lessons: [],
      trajectories: families.map((family, i) => trajectory(`t${i}`, family, ['calculator', 'verify_answer'])),
    });
    expect(many).toHaveLength(20);
  });

  it('explains a message without valid evidence', () => {
    expect(() => simulatedOptimizerTurn('no evidence')).toThrow('no fenced ```json block');
  });
});
