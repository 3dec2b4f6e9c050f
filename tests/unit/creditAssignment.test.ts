/**
 * FLOW-015 credit assignment and contrastive distillation, the pure parts: step credits (Q - V
 * over the group), the shuffled-advantages control's shuffle, the evidence the policy updater
 * shows (step credits, step refs, contrasts), the multi-step simulated families, the simulated
 * agent following leads and the simulated optimizer reading step credit and contrasts, and the
 * in-process training loop the benchmark uses.
 */
import { shuffleWithinGroup, stepActionKey, stepCredits, stepRewards } from '../../training/advantages';
import { GRPOConfigSchema, LEARNING_CONTROLS, POLICY_UPDATE_MODES } from '../../training/grpoConfig';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import type { TrajectoryStep } from '../../training/trajectory';
import { initialPolicy, type Policy } from '../../training/policy';
import { applyLessonOperations } from '../../training/lessonOperations';
import {
  CONTRAST_PER_SIDE,
  ContrastSchema,
  DecisionSchema,
  MAX_EVIDENCE_TRAJECTORIES,
  buildPolicyUpdateEvidence,
  contrastGroup,
  evidenceCredits,
  parsePolicyUpdateEvidence,
  renderPolicyUpdateEvidence,
  stepRef,
  toEvidenceTrajectory,
  trajectoryDecisions,
  type EvidenceCandidate,
  type EvidenceTrajectory,
  type PolicyUpdateEvidence,
} from '../../training/policyEvidence';
import { outcomeReward } from '../../training/rewards';
import {
  LEAD_PREFIX,
  NO_RELEVANT_RESULT,
  SIMULATED_MULTI_STEP_FAMILIES,
  SIMULATED_MULTI_STEP_FAMILY_RULES,
  SimulatedEnvironment,
  simulatedTaskSet,
} from '../../training/simulation/environment';
import {
  LEAD_PREFIX as MODEL_LEAD_PREFIX,
  NOTHING_FOUND,
  simulatedAgentTurn,
  simulatedOptimizerTurn,
  type AgentMessage,
} from '../../training/simulation/simulatedModel';
import { followUpLessonText, toolLessonText, verifyLessonText } from '../../training/simulation/lessonForms';
import { heldOutSuccessRate, runSimulatedEpisode, runSimulatedTraining } from '../../training/simulation/simulatedTraining';

describe('stepCredits: which steps earned the outcome (Q - V over the group)', () => {
  it('credits the shared correct steps of a failed run, blames the step that went wrong, and gives a step everyone took 0', () => {
    const credits = stepCredits(
      [
        { reward: 1, actions: ['A', 'B', 'C', 'answer'] },
        { reward: 0, actions: ['A', 'B', 'X', 'answer'] },
        { reward: 0, actions: ['A', 'Y', 'answer'] },
        { reward: 0, actions: ['Z', 'answer'] },
      ],
      1,
    );
    // Rewards [1, 0, 0, 0]: mean 0.25, population std sqrt(0.1875).
    const std = Math.sqrt(0.1875);
    // Step 0: V = mean of all = 0.25; Q(A) = 1/3; Q(Z) = 0.
    expect(credits[0][0]).toBeCloseTo((1 / 3 - 0.25) / std, 12);
    expect(credits[1][0]).toBeCloseTo((1 / 3 - 0.25) / std, 12);
    expect(credits[3][0]).toBeCloseTo((0 - 0.25) / std, 12);
    // Step 1 after A: V = 1/3; Q(B) = 1/2, Q(Y) = 0.
    expect(credits[1][1]).toBeCloseTo((0.5 - 1 / 3) / std, 12);
    expect(credits[2][1]).toBeCloseTo((0 - 1 / 3) / std, 12);
    // Step 2 after A, B: C earned it, X lost it.
    expect(credits[0][2]).toBeCloseTo(0.5 / std, 12);
    expect(credits[1][2]).toBeCloseTo(-0.5 / std, 12);
    // The answer step after a unique prefix: Q = V, no credit (and +0, never -0).
    expect(Object.is(credits[3][1], 0)).toBe(true);
    expect(credits.map((c) => c.length)).toEqual([4, 4, 3, 2]);
  });

  it('discounts with gamma, as the per-step rewards final_reward * gamma^(n-i-1)', () => {
    const gamma = 0.5;
    const credits = stepCredits(
      [
        { reward: 1, actions: ['A', 'B'] },
        { reward: 0, actions: ['C', 'D'] },
      ],
      gamma,
    );
    // std 0.5; step 0: returns 1 * 0.5 and 0; V = 0.25, Q(A) = 0.5.
    expect(stepRewards(1, 2, gamma)).toEqual([0.5, 1]);
    expect(credits[0][0]).toBeCloseTo((0.5 - 0.25) / 0.5, 12);
    expect(credits[1][0]).toBeCloseTo((0 - 0.25) / 0.5, 12);
    expect(credits[0][1]).toBe(0);
  });

  it('gives all zeros when the rewards are equal, nothing for an empty group, and names bad input', () => {
    expect(stepCredits([{ reward: 0.5, actions: ['A'] }, { reward: 0.5, actions: ['B', 'C'] }], 0.99)).toEqual([[0], [0, 0]]);
    expect(stepCredits([], 0.99)).toEqual([]);
    expect(() => stepCredits([{ reward: Number.NaN, actions: [] }], 0.99)).toThrow('stepCredits rewards: value at index 0 is NaN');
    expect(() => stepCredits([{ reward: 1, actions: ['A'] }], 0)).toThrow('stepCredits: gamma must be in (0, 1], got 0');
  });

  it('keys steps by the tool called or the answer', () => {
    const step = (type: 'tool_call' | 'final_answer', tool?: string) =>
      ({ action: { type, content: null }, tool_calls: tool ? [{ id: 'c', name: tool, arguments: {} }] : [] }) as Pick<TrajectoryStep, 'action' | 'tool_calls'>;
    expect(stepActionKey(step('tool_call', 'calculator'))).toBe('tool_call:calculator');
    expect(stepActionKey(step('tool_call'))).toBe('tool_call:');
    expect(stepActionKey(step('final_answer'))).toBe('final_answer');
  });
});

describe('shuffleWithinGroup (the shuffled_advantages control)', () => {
  it('is a seeded permutation: same seed same order, input untouched', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8];
    const shuffled = shuffleWithinGroup(values, 42);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(values);
    expect(shuffleWithinGroup(values, 42)).toEqual(shuffled);
    expect(values).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const orders = new Set(Array.from({ length: 20 }, (_, seed) => JSON.stringify(shuffleWithinGroup(values, seed))));
    expect(orders.size).toBeGreaterThan(15);
  });
});

describe('config.policy_update', () => {
  it('defaults to contrastive, accepts positive_only, names a bad value', () => {
    expect(POLICY_UPDATE_MODES).toEqual(['positive_only', 'contrastive']);
    expect(LEARNING_CONTROLS).toContain('shuffled_advantages');
    expect(GRPOConfigSchema.parse({}).policy_update).toBe('contrastive');
    expect(GRPOConfigSchema.parse({ policy_update: 'positive_only' }).policy_update).toBe('positive_only');
    const bad = GRPOConfigSchema.safeParse({ policy_update: 'negative' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0].path).toEqual(['policy_update']);
  });
});

const NOW = '2024-01-01T00:00:00.000Z';
function recorded(tools: string[], answer = 'ans'): Pick<import('../../training/trajectory').Trajectory, 'steps' | 'success' | 'final_answer'> {
  const base = { state: 's', started_at: NOW, ended_at: NOW, usage: { prompt_tokens: 0, completion_tokens: 0 }, cost_usd: 0, logprob: null, error: null };
  return {
    steps: [
      ...tools.map((tool, index) => ({ ...base, index, action: { type: 'tool_call' as const, content: null }, tool_calls: [{ id: `c${index}`, name: tool, arguments: {} }], result: `r${index}` })),
      { ...base, index: tools.length, action: { type: 'final_answer' as const, content: answer }, tool_calls: [], result: null },
    ],
    success: false,
    final_answer: answer,
  };
}

describe('evidence with step credit', () => {
  it('shows each step its credit, cites steps by ref and weights them by their credit', () => {
    const shown = toEvidenceTrajectory(recorded(['A', 'B']), 'T1', -0.5, '[refund] q', [0.4, 0.8, 0]);
    expect(shown.steps.map((step) => step.credit)).toEqual([0.4, 0.8, 0]);
    expect(toEvidenceTrajectory(recorded(['A']), 'T2', 1, 'q').steps[0]).not.toHaveProperty('credit');
    expect(() => toEvidenceTrajectory(recorded(['A']), 'T3', 1, 'q', [1])).toThrow('T3 has 2 steps but 1 step credits');
    expect(stepRef('T1', 1)).toBe('T1.s1');
    const credits = evidenceCredits({ trajectories: [shown] });
    expect(credits).toEqual({ T1: -0.5, 'T1.s0': 0.4, 'T1.s1': 0.8, 'T1.s2': 0 });
    // A failed run's credited step may carry a lesson; the run itself may not.
    const policy = initialPolicy('base');
    const opts = { learningRate: 0.5, clip: 0.3, maxLessons: 5 };
    expect(applyLessonOperations(policy, [{ op: 'add', text: 'x', evidence: ['T1.s1'] }], credits, opts).policy.lessons[0].weight).toBe(0.3);
    expect(applyLessonOperations(policy, [{ op: 'add', text: 'x', evidence: ['T1.s0'] }], credits, opts).policy.lessons[0].weight).toBe(0.2);
    expect(applyLessonOperations(policy, [{ op: 'add', text: 'x', evidence: ['T1'] }], credits, opts).rejected[0].reason).toContain('advantage -0.5');
    expect(applyLessonOperations(policy, [{ op: 'add', text: 'x', evidence: ['T1.s2'] }], credits, opts).rejected).toHaveLength(1);
  });

  it('lists a trajectory\'s tool choices with the tool before each', () => {
    const steps: EvidenceTrajectory['steps'] = [
      { action: 'tool_call', tool: 'A', result: 'lead: x' },
      { action: 'tool_call', tool: null, result: null },
      { action: 'tool_call', tool: 'B', result: 'y' },
      { action: 'final_answer', tool: null, result: null },
    ];
    expect(trajectoryDecisions(steps)).toEqual([
      { after: null, tool: 'A', step: 0 },
      { after: 'A', tool: 'B', step: 2 },
    ]);
  });
});

function evidenceTrajectory(ref: string, advantage: number, tools: string[], query = '[refund] q'): EvidenceTrajectory {
  return {
    ref,
    advantage,
    query,
    success: advantage > 0,
    steps: [...tools.map((tool) => ({ action: 'tool_call' as const, tool, result: 'r' })), { action: 'final_answer' as const, tool: null, result: null }],
    final_answer: 'r',
  };
}

describe('contrastGroup', () => {
  it('sets the best against the worst and lists the choices only one side made', () => {
    const contrast = contrastGroup(
      [
        evidenceTrajectory('a', -1, ['X', 'verify_answer']),
        evidenceTrajectory('b', 2, ['A', 'B']),
        evidenceTrajectory('c', 1, ['A', 'C']),
        evidenceTrajectory('d', -1.5, ['A', 'X']),
        evidenceTrajectory('e', 0, ['Z']),
        evidenceTrajectory('f', 0.5, ['A']),
      ],
      2,
    );
    expect(contrast).toEqual({
      query: '[refund] q',
      best: ['b', 'c'],
      worst: ['d', 'a'],
      best_only: [
        { after: 'A', tool: 'B' },
        { after: 'A', tool: 'C' },
      ],
      worst_only: [
        { after: 'A', tool: 'X' },
        { after: null, tool: 'X' },
        { after: 'X', tool: 'verify_answer' },
      ],
    });
  });

  it('has one schema for a decision and for a contrast', () => {
    expect(DecisionSchema.parse({ after: null, tool: 'A' })).toEqual({ after: null, tool: 'A' });
    expect(ContrastSchema.safeParse({ query: 'q', best: [], worst: [], best_only: [{ tool: 'A' }], worst_only: [] }).success).toBe(false);
    expect(CONTRAST_PER_SIDE).toBe(2);
  });

  it('is null without both a better and a worse side, and names a bad perSide', () => {
    expect(contrastGroup([evidenceTrajectory('a', 1, ['A']), evidenceTrajectory('b', 0, ['B'])], 2)).toBeNull();
    expect(contrastGroup([evidenceTrajectory('a', -1, ['A'])], 2)).toBeNull();
    expect(() => contrastGroup([], 0)).toThrow('contrastGroup: perSide must be a positive integer, got 0');
  });
});

describe('buildPolicyUpdateEvidence', () => {
  const candidate = (tools: string[], advantage: number, query = '[refund] q', stepCredits: number[] | null = null): EvidenceCandidate => ({
    trajectory: recorded(tools),
    advantage,
    query,
    stepCredits,
  });

  it('positive_only: shows what earned positive credit, best first, failed runs with credited steps included', () => {
    const evidence = buildPolicyUpdateEvidence(
      [],
      [candidate(['A'], 0.5), candidate(['B'], -1, '[refund] q', [0.9, -1]), candidate(['C'], -1, '[refund] q', [-1, -1]), candidate(['D'], 1.5)],
      'positive_only',
    );
    expect(evidence.trajectories.map((t) => [t.ref, t.steps[0].tool])).toEqual([
      ['T1', 'D'],
      ['T2', 'B'],
      ['T3', 'A'],
    ]);
    expect(evidence.contrasts).toBeUndefined();
    expect(buildPolicyUpdateEvidence([], [candidate(['A'], 1), candidate(['B'], 2)], 'positive_only', 1).trajectories).toHaveLength(1);
    const many = Array.from({ length: MAX_EVIDENCE_TRAJECTORIES + 3 }, () => candidate(['A'], 1));
    expect(buildPolicyUpdateEvidence([], many, 'positive_only').trajectories).toHaveLength(MAX_EVIDENCE_TRAJECTORIES);
    expect(() => buildPolicyUpdateEvidence([], [], 'positive_only', 0)).toThrow('maxTrajectories must be a positive integer, got 0');
  });

  it('contrastive: per group the best and the worst with their contrast, refs renumbered, groups with the best winner first, within the cap', () => {
    const lessons = [{ id: 'L1', text: 'For refund tasks, call A first.', weight: 0.5 }];
    const evidence = buildPolicyUpdateEvidence(
      lessons,
      [
        candidate(['A'], 1, '[refund] one'),
        candidate(['X'], -1, '[refund] one'),
        candidate(['B'], 2, '[warranty] two'),
        candidate(['Y'], -2, '[warranty] two'),
        candidate(['C'], 0, '[refund] flat'),
        candidate(['C'], 0, '[refund] flat'),
      ],
      'contrastive',
    );
    expect(evidence.lessons).toEqual(lessons);
    expect(evidence.trajectories.map((t) => [t.ref, t.query, t.advantage])).toEqual([
      ['T1', '[warranty] two', 2],
      ['T2', '[warranty] two', -2],
      ['T3', '[refund] one', 1],
      ['T4', '[refund] one', -1],
    ]);
    expect(evidence.contrasts!.map((c) => [c.query, c.best, c.worst, c.best_only, c.worst_only])).toEqual([
      ['[warranty] two', ['T1'], ['T2'], [{ after: null, tool: 'B' }], [{ after: null, tool: 'Y' }]],
      ['[refund] one', ['T3'], ['T4'], [{ after: null, tool: 'A' }], [{ after: null, tool: 'X' }]],
    ]);
    // It round-trips through the optimizer's fenced block.
    expect(parsePolicyUpdateEvidence(renderPolicyUpdateEvidence(evidence))).toEqual(evidence);
    const capped = buildPolicyUpdateEvidence([], [candidate(['A'], 1, 'one'), candidate(['X'], -1, 'one'), candidate(['B'], 0.5, 'two'), candidate(['Y'], -0.5, 'two')], 'contrastive', 3);
    expect(capped.trajectories).toHaveLength(2);
    expect(capped.contrasts).toHaveLength(1);
  });
});

describe('multi-step simulated families', () => {
  const environment = new SimulatedEnvironment();

  it('are named apart from the default families and hide a chain of three tools', () => {
    expect(SIMULATED_MULTI_STEP_FAMILIES).toEqual(['refund', 'warranty']);
    for (const family of SIMULATED_MULTI_STEP_FAMILIES) expect(SIMULATED_MULTI_STEP_FAMILY_RULES[family].chain).toHaveLength(3);
    expect(simulatedTaskSet({ queriesPerFamily: 1, seed: 1 }).some((task) => SIMULATED_MULTI_STEP_FAMILIES.includes(task.family!))).toBe(false);
    const [task] = simulatedTaskSet({ queriesPerFamily: 1, seed: 1, families: ['refund'] });
    expect(task.prompt).toMatch(/^\[refund\] What refund is due on returned order O-\d{5}\?$/);
    expect(task).not.toHaveProperty('expected_tool');
    expect(() => simulatedTaskSet({ queriesPerFamily: 1, seed: 1, families: ['cooking'] })).toThrow('weather, refund, warranty');
    expect(MODEL_LEAD_PREFIX).toBe(LEAD_PREFIX);
    expect(NOTHING_FOUND).toBe(NO_RELEVANT_RESULT);
  });

  it('answer only along the chain: each correct tool with the last lead unlocks the next', () => {
    for (const task of simulatedTaskSet({ queriesPerFamily: 5, seed: 2, families: SIMULATED_MULTI_STEP_FAMILIES })) {
      const { chain } = SIMULATED_MULTI_STEP_FAMILY_RULES[task.family!];
      const first = environment.executeTool(task, chain[0], { query: task.prompt });
      expect(first.output.startsWith(LEAD_PREFIX)).toBe(true);
      // The second tool without the lead, or a wrong tool with it, gives nothing useful.
      expect(environment.executeTool(task, chain[1], { query: task.prompt }).output).not.toMatch(/^lead: /);
      const wrong = ['lookup_docs', 'calculator', 'query_database', 'web_search'].find((tool) => tool !== chain[1])!;
      const wrongOutput = environment.executeTool(task, wrong, { query: first.output }).output;
      expect(wrongOutput.startsWith(LEAD_PREFIX) || wrongOutput === task.expected_answer).toBe(false);
      const second = environment.executeTool(task, chain[1], { query: first.output });
      expect(second.output.startsWith(LEAD_PREFIX)).toBe(true);
      expect(second.output).not.toBe(first.output);
      const third = environment.executeTool(task, chain[2], { query: second.output });
      expect(third).toEqual({ output: task.expected_answer, error: null });
      // A non-string query is no lead.
      expect(environment.executeTool(task, chain[1], { query: 7 }).output).not.toMatch(/^lead: /);
      expect(environment.judge(task, { toolCalls: [], finalAnswer: task.expected_answer! })).toEqual({ success: true, verified: false });
    }
  });
});

const user = (content: string): AgentMessage => ({ role: 'user', content });
const called = (name: string): AgentMessage => ({ role: 'assistant', content: null, tool_calls: [{ name }] });
const result = (content: string | null): AgentMessage => ({ role: 'tool', content });
const TOOLS = ['lookup_docs', 'calculator', 'query_database', 'web_search', 'verify_answer'];
const SEARCH = TOOLS.slice(0, 4);

describe('the simulated agent on a chain', () => {
  it('follows a lead with a follow-up lesson, passing the lead as the query', () => {
    const system = [
      'base',
      '',
      `- [0.20] ${followUpLessonText('refund', 'query_database', 'calculator')}`,
      `- [1.00] ${followUpLessonText('refund', 'query_database', 'lookup_docs')}`,
      `- [0.90] ${followUpLessonText('refund', 'query_database', 'web_search')}`,
      `- [1.00] ${followUpLessonText('refund', 'lookup_docs', 'calculator')}`,
      `- [1.00] ${followUpLessonText('warranty', 'query_database', 'calculator')}`,
      `- [1.00] ${followUpLessonText('refund', 'query_database', 'not_a_tool')}`,
    ].join('\n');
    const conversation = [user('[refund] q'), called('query_database'), result('lead: reference R1-12345')];
    const action = simulatedAgentTurn({ system, messages: conversation, toolNames: TOOLS, seed: 1 });
    expect(action).toEqual({ type: 'tool_call', tool: 'lookup_docs', arguments: { query: 'lead: reference R1-12345' }, probability: 1 });
  });

  it('without a lesson tries any search tool, and tries another when one found nothing after a lead', () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const action = simulatedAgentTurn({ system: 'base', messages: [user('[refund] q'), called('query_database'), result('lead: L1')], toolNames: TOOLS, seed });
      expect(action.type).toBe('tool_call');
      if (action.type === 'tool_call') {
        seen.add(action.tool);
        expect(action.probability).toBeCloseTo(0.25, 12);
      }
    }
    expect([...seen].sort()).toEqual([...SEARCH].sort());
    const retry = simulatedAgentTurn({
      system: 'base',
      messages: [user('[refund] q'), called('query_database'), result('lead: L1'), called('calculator'), result(NOTHING_FOUND)],
      toolNames: TOOLS,
      seed: 3,
    });
    expect(retry).toMatchObject({ type: 'tool_call', arguments: { query: 'lead: L1' } });
    // Without a lead, "nothing found" is answered as before (the single-step families are unchanged).
    const plain = simulatedAgentTurn({ system: 'base', messages: [user('[billing] q'), called('calculator'), result(NOTHING_FOUND)], toolNames: ['calculator'], seed: 3 });
    expect(plain).toEqual({ type: 'final_answer', content: NOTHING_FOUND, probability: 1 });
  });
});

function optimize(evidence: PolicyUpdateEvidence) {
  return simulatedOptimizerTurn(`Propose lesson operations.\n\n${renderPolicyUpdateEvidence(evidence)}`).operations;
}

describe('the simulated optimizer with step credit', () => {
  const credited = (ref: string, tools: string[], credits: number[], advantage = -0.5): EvidenceTrajectory => {
    const t = evidenceTrajectory(ref, advantage, tools);
    return { ...t, steps: t.steps.map((step, i) => ({ ...step, credit: credits[i] })) };
  };

  it('learns the first tool and each follow-up from positively credited steps, cited by step ref, even in failed runs', () => {
    const operations = optimize({
      lessons: [{ id: 'L1', text: followUpLessonText('refund', 'query_database', 'web_search'), weight: 0.4 }],
      trajectories: [
        credited('T1', ['query_database', 'lookup_docs', 'calculator'], [0.3, 0.5, 1.2, 0], 1.5),
        credited('T2', ['query_database', 'lookup_docs', 'web_search'], [0.3, 0.5, -1, 0]),
        // A lucky detour: the wrong step has negative credit and is not learned.
        credited('T3', ['query_database', 'web_search', 'lookup_docs'], [0.3, -0.4, 0.1, 0], 0.2),
      ],
    });
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText('refund', 'query_database'), evidence: ['T1.s0', 'T2.s0', 'T3.s0'] },
      { op: 'add', text: followUpLessonText('refund', 'lookup_docs', 'calculator'), evidence: ['T1.s2'] },
      { op: 'add', text: followUpLessonText('refund', 'query_database', 'lookup_docs'), evidence: ['T1.s1', 'T2.s1'] },
      { op: 'reweight', lesson_id: 'L1', direction: 'down', evidence: ['T1.s1', 'T2.s1'] },
      { op: 'add', text: followUpLessonText('refund', 'web_search', 'lookup_docs'), evidence: ['T3.s2'] },
    ]);
  });

  it('without step credit, every choice of a positive-advantage run counts, the detour too (once per run)', () => {
    const operations = optimize({
      lessons: [],
      trajectories: [
        evidenceTrajectory('T1', 1, ['query_database', 'web_search', 'query_database', 'web_search']),
        evidenceTrajectory('T2', -1, ['calculator']),
      ],
    });
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText('refund', 'query_database'), evidence: ['T1'] },
      { op: 'add', text: followUpLessonText('refund', 'query_database', 'web_search'), evidence: ['T1'] },
      { op: 'add', text: followUpLessonText('refund', 'web_search', 'query_database'), evidence: ['T1'] },
    ]);
  });

  it('learns a follow-up alone when only a later step earned credit', () => {
    const operations = optimize({
      lessons: [],
      trajectories: [credited('T1', ['calculator', 'lookup_docs'], [-0.2, 0.6, 0])],
    });
    expect(operations).toEqual([{ op: 'add', text: followUpLessonText('refund', 'calculator', 'lookup_docs'), evidence: ['T1.s1'] }]);
  });
});

describe('the simulated optimizer with contrastive evidence', () => {
  it('learns what only the best did, lowers lessons for what only the worst did, and cites only the best', () => {
    const trajectories = [
      evidenceTrajectory('T1', 1.5, ['query_database', 'verify_answer']),
      evidenceTrajectory('T2', 0.5, ['query_database', 'verify_answer']),
      evidenceTrajectory('T3', -1, ['calculator']),
      evidenceTrajectory('T4', 1, ['lookup_docs'], '[warranty] q'),
      evidenceTrajectory('T5', -1, ['lookup_docs', 'web_search'], '[warranty] q'),
    ];
    const lessons = [
      { id: 'L1', text: toolLessonText('refund', 'calculator'), weight: 0.5 },
      { id: 'L2', text: followUpLessonText('warranty', 'lookup_docs', 'web_search'), weight: 0.5 },
      { id: 'L3', text: 'Be polite.', weight: 0.5 },
    ];
    const evidence: PolicyUpdateEvidence = {
      lessons,
      trajectories,
      contrasts: [
        { query: '[refund] q', best: ['T1', 'T2', 'T9'], worst: ['T3'], best_only: [{ after: null, tool: 'query_database' }, { after: 'query_database', tool: 'verify_answer' }], worst_only: [{ after: null, tool: 'calculator' }] },
        { query: '[warranty] q', best: ['T4'], worst: ['T5'], best_only: [], worst_only: [{ after: 'lookup_docs', tool: 'web_search' }] },
        { query: 'untagged', best: ['T4'], worst: ['T5'], best_only: [{ after: null, tool: 'x' }], worst_only: [] },
      ],
    };
    const operations = optimize(evidence);
    expect(operations).toEqual([
      { op: 'add', text: toolLessonText('refund', 'query_database'), evidence: ['T1', 'T2'] },
      { op: 'reweight', lesson_id: 'L1', direction: 'down', evidence: ['T1', 'T2'] },
      { op: 'add', text: verifyLessonText('refund'), evidence: ['T1', 'T2'] },
      { op: 'reweight', lesson_id: 'L2', direction: 'down', evidence: ['T4'] },
    ]);
    // Applied with the same credits the updater builds, the edits move by positive advantage only.
    const update = applyLessonOperations(initialPolicyWith(lessons), operations, evidenceCredits(evidence), { learningRate: 0.5, clip: 0.2, maxLessons: 10 });
    expect(update.rejected).toEqual([]);
    expect(update.policy.lessons.find((l) => l.id === 'L1')!.weight).toBe(0.3);
  });
});

function initialPolicyWith(lessons: Policy['lessons']): Policy {
  return { ...initialPolicy(DEFAULT_BASE_PROMPT), lessons };
}

describe('runSimulatedTraining (the benchmark loop)', () => {
  const families = SIMULATED_MULTI_STEP_FAMILIES;
  const options = (overrides: Partial<Parameters<typeof runSimulatedTraining>[0]> = {}): Parameters<typeof runSimulatedTraining>[0] => ({
    trainingTasks: simulatedTaskSet({ queriesPerFamily: 4, seed: 1, families }),
    heldOutTasks: simulatedTaskSet({ queriesPerFamily: 2, seed: 99, families }),
    iterations: 12,
    groupSize: 8,
    batchSize: 4,
    maxTurns: 6,
    seed: 1,
    gamma: 0.99,
    creditAssignment: true,
    policyUpdate: 'positive_only',
    reward: outcomeReward,
    update: { learningRate: 0.5, clip: 0.2, maxLessons: 20 },
    evalSamples: 2,
    ...overrides,
  });

  it('learns the hidden chains from step credit and stops at the target', () => {
    const run = runSimulatedTraining(options({ targetSuccess: 0.5 }), initialPolicy(DEFAULT_BASE_PROMPT));
    expect(run.heldOutSuccess[0]).toBeLessThan(0.2);
    expect(run.iterationsToTarget).not.toBeNull();
    expect(run.heldOutSuccess).toHaveLength(run.iterationsToTarget! + 1);
    expect(run.heldOutSuccess[run.iterationsToTarget!]).toBeGreaterThanOrEqual(0.5);
    expect(run.policy.lessons.some((lesson) => / after \S+, call \S+\.$/.test(lesson.text))).toBe(true);
  });

  it('runs every iteration without a target, contrastive or under the shuffled control, deterministically', () => {
    const contrastive = runSimulatedTraining(options({ iterations: 3, policyUpdate: 'contrastive', creditAssignment: false }), initialPolicy(DEFAULT_BASE_PROMPT));
    expect(contrastive.heldOutSuccess).toHaveLength(4);
    expect(contrastive.iterationsToTarget).toBeNull();
    const shuffled = options({ iterations: 3, control: 'shuffled_advantages' });
    expect(runSimulatedTraining(shuffled, initialPolicy(DEFAULT_BASE_PROMPT))).toEqual(runSimulatedTraining(shuffled, initialPolicy(DEFAULT_BASE_PROMPT)));
  });

  it('evaluates with fixed seeds and refuses an empty held-out set', () => {
    const policy = initialPolicy(DEFAULT_BASE_PROMPT);
    const tasks = simulatedTaskSet({ queriesPerFamily: 1, seed: 3, families });
    expect(heldOutSuccessRate(policy, tasks, 3, 5, 6)).toBe(heldOutSuccessRate(policy, tasks, 3, 5, 6));
    expect(() => runSimulatedTraining(options({ heldOutTasks: [] }), policy)).toThrow('needs at least one held-out task');
    const episode = runSimulatedEpisode(policy, tasks[0], 1, 1);
    expect(episode.error).toBe('out of turns');
  });
});
