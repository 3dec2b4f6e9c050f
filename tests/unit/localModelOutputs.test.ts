/**
 * What a real model gets wrong becomes a recorded outcome, never a crashed activity (issue 13).
 * The replies are the real model's (Qwen2.5-Coder-1.5B through llama.cpp), captured once by
 * scripts/record-local-model-fixtures.ts into tests/fixtures/local-model/misbehaviour.json, and
 * replayed here through the agent and the policy updater.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LlmAgent } from '../../activities/agents/llmAgent';
import { argumentsProblem, FINAL_ANSWER_TOOL, parseSchemaReply, schemaToolInstructions, toolCallResponseFormat } from '../../activities/agents/schemaToolCalls';
import type { ChatClient, ChatRequest, ChatResult, ChatTool } from '../../adapters/llm/chatClient';
import { createPolicyUpdateActivities } from '../../activities/policyUpdate';
import { lessonText, parseUpdaterAnswer, structuredAnswerJsonSchema } from '../../activities/policyUpdateAnswer';
import type { TrajectoryRepository } from '../../adapters/db';
import type { TrajectoryStep } from '../../training/trajectory';
import { countInvalidOutputs, INVALID_OUTPUT_KINDS, InvalidOutputCountsSchema, invalidOutputKindOf, iterationMetrics } from '../../training/iterationMetrics';
import { initialPolicy } from '../../training/policy';
import { type PolicyUpdateEvidence } from '../../training/policyEvidence';
import { SIMULATED_TOOLS, SimulatedEnvironment, simulatedTaskSet } from '../../training/simulation/environment';

interface Recorded {
  content: string | null;
  finish_reason: string | null;
  usage: { prompt_tokens: number; completion_tokens: number };
  logprob: number | null;
  classified_as?: string;
}
const fixtures = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/local-model/misbehaviour.json'), 'utf8')) as {
  agent_without_grammar: Recorded[];
  agent_max_tokens: Recorded;
  agent_with_grammar: Recorded;
  updater_free_form: (Recorded & { evidence: PolicyUpdateEvidence })[];
  /** The first reply, without a grammar, that named a tool it was not offered / called one off its schema (the recorder's bounded search). */
  agent_unknown_tool: Recorded & { request: ChatRequest };
  agent_off_schema: Recorded & { request: ChatRequest };
};
const tools: ChatTool[] = SIMULATED_TOOLS.map((tool) => ({ type: 'function', function: tool }));
const MODEL = 'local:qwen2.5-coder-1.5b';

/** A ChatClient that answers with recorded replies, in order, and remembers the requests. */
function replaying(replies: Recorded[]): ChatClient & { requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  let next = 0;
  return {
    requests,
    async complete(request: ChatRequest): Promise<ChatResult> {
      requests.push(request);
      const reply = replies[Math.min(next++, replies.length - 1)];
      return { message: { role: 'assistant', content: reply.content }, usage: reply.usage, costUsd: 0, logprob: reply.logprob, finishReason: reply.finish_reason };
    },
  } as unknown as ChatClient & { requests: ChatRequest[] };
}

const byKind = (kind: string) => fixtures.agent_without_grammar.filter((r) => r.classified_as === kind);

/** The LLM agent on a simulated task, its model replaying `replies` in order (3 steps at most). */
async function runAgentOn(replies: Recorded[]) {
  const [task] = simulatedTaskSet({ queriesPerFamily: 1, seed: 1 });
  const chat = replaying(replies);
  const steps: TrajectoryStep[] = [];
  const result = await new LlmAgent(chat, new SimulatedEnvironment()).run({
    task,
    systemPrompt: 'You are a support agent.',
    model: MODEL,
    maxSteps: 3,
    maxTokens: 96,
    seed: 1,
    signal: new AbortController().signal,
    onStep: (step) => steps.push(step),
  });
  return { chat, steps, result };
}

describe('schema-forced tool calls', () => {
  it('asks for {"tool", "arguments"} with one anyOf branch per offered tool plus final_answer', () => {
    const format = toolCallResponseFormat(tools);
    const branches = (format.json_schema.schema as { anyOf: { properties: { tool: { enum: string[] }; arguments: unknown } }[] }).anyOf;
    expect(branches.map((b) => b.properties.tool.enum[0])).toEqual([...SIMULATED_TOOLS.map((t) => t.name), FINAL_ANSWER_TOOL]);
    expect(branches[0].properties.arguments).toEqual(SIMULATED_TOOLS[0].parameters);
    expect(schemaToolInstructions(tools)).toContain('- calculator: Evaluate a calculation or formula. Arguments: {"query": string}');
  });

  it("classifies the real model's replies without a grammar, and reads its grammar-constrained one", () => {
    for (const reply of fixtures.agent_without_grammar) {
      const parsed = parseSchemaReply(reply.content, reply.finish_reason, tools);
      expect('invalid' in parsed ? parsed.invalid.kind : 'valid').toBe(reply.classified_as);
    }
    expect(byKind('prose').length).toBeGreaterThan(0);
    const constrained = parseSchemaReply(fixtures.agent_with_grammar.content, fixtures.agent_with_grammar.finish_reason, tools);
    expect(constrained).toMatchObject({ tool: 'query_database', arguments: { query: expect.any(String) } });
    const cut = parseSchemaReply(fixtures.agent_max_tokens.content, fixtures.agent_max_tokens.finish_reason, tools);
    expect('invalid' in cut && cut.invalid.kind).toBe('max_tokens');
  });

  it("names the real model's unknown tool and its arguments off the schema", () => {
    // Captured without a grammar (the path of agent_without_grammar): the model named a tool it
    // was not offered, and gave an offered tool an argument its schema does not have.
    const unknown = parseSchemaReply(fixtures.agent_unknown_tool.content, fixtures.agent_unknown_tool.finish_reason, tools);
    expect(fixtures.agent_unknown_tool.classified_as).toBe('unknown_tool');
    expect(fixtures.agent_unknown_tool.request.response_format).toBeUndefined();
    expect('invalid' in unknown && unknown.invalid.toString()).toMatch(/^invalid_output:unknown_tool: unknown tool "[^"]+"; offered: lookup_docs, calculator, query_database, web_search, verify_answer, final_answer$/);
    expect(invalidOutputKindOf('invalid' in unknown ? unknown.invalid.toString() : null)).toBe('unknown_tool');
    const off = parseSchemaReply(fixtures.agent_off_schema.content, fixtures.agent_off_schema.finish_reason, tools);
    expect(fixtures.agent_off_schema.classified_as).toBe('arguments_off_schema');
    expect(fixtures.agent_off_schema.request.response_format).toBeUndefined();
    expect('invalid' in off && off.invalid.toString()).toMatch(/^invalid_output:arguments_off_schema: (lookup_docs|calculator|query_database|web_search|verify_answer|final_answer): /);
    expect(invalidOutputKindOf('invalid' in off ? off.invalid.toString() : null)).toBe('arguments_off_schema');
    // Both carry what the other captured replies carry: real token usage and a log-prob.
    for (const reply of [fixtures.agent_unknown_tool, fixtures.agent_off_schema]) {
      expect(reply.usage.completion_tokens).toBeGreaterThan(0);
      expect(reply.logprob).toEqual(expect.any(Number));
    }
  });

  it('says what is off the schema: a missing, extra or mistyped argument, a non-object, a fenced call', () => {
    expect(parseSchemaReply('{"tool": "calculator", "arguments": {"expression": "0.17 * 240"}}', 'stop', tools)).toMatchObject({ invalid: { kind: 'arguments_off_schema', detail: 'calculator: missing argument "query"' } });
    expect(argumentsProblem({ query: 'x', extra: 1 }, SIMULATED_TOOLS[0].parameters)).toBe('unexpected argument "extra"');
    expect(argumentsProblem({ query: 3 }, SIMULATED_TOOLS[0].parameters)).toBe('argument "query" should be string, got number');
    expect(argumentsProblem({ n: 2, rest: [] }, { properties: { n: { type: 'integer' } } })).toBeNull();
    expect(argumentsProblem({ n: 2.5 }, { properties: { n: { type: 'integer' } } })).toBe('argument "n" should be integer, got number');
    const notObject = parseSchemaReply('{"tool": "calculator", "arguments": "2+2"}', 'stop', tools);
    expect('invalid' in notObject && notObject.invalid.kind).toBe('arguments_off_schema');
    const noTool = parseSchemaReply('[1, 2]', 'stop', tools);
    expect('invalid' in noTool && noTool.invalid.kind).toBe('prose');
    expect(parseSchemaReply('```json\n{"tool": "final_answer", "arguments": {"answer": "42"}}\n```', 'stop', tools)).toEqual({ tool: 'final_answer', arguments: { answer: '42' } });
  });

  it("the agent records the real model's unknown tool and off-schema call as steps and goes on", async () => {
    const { chat, steps, result } = await runAgentOn([fixtures.agent_unknown_tool, fixtures.agent_off_schema, fixtures.agent_with_grammar]);
    expect(steps.map((s) => invalidOutputKindOf(s.error))).toEqual(['unknown_tool', 'arguments_off_schema', null]);
    // The invalid steps call nothing; the reply is kept as the step's action, and the model was told what was wrong.
    expect(steps[0]).toMatchObject({ tool_calls: [], result: null, action: { type: 'tool_call', content: fixtures.agent_unknown_tool.content }, usage: fixtures.agent_unknown_tool.usage, logprob: fixtures.agent_unknown_tool.logprob });
    expect(steps[1]).toMatchObject({ tool_calls: [], result: null, action: { type: 'tool_call', content: fixtures.agent_off_schema.content } });
    expect(steps[2].tool_calls).toEqual([{ id: 'call_2', name: 'query_database', arguments: expect.any(Object) }]);
    const detail = (reply: Recorded) => (parseSchemaReply(reply.content, reply.finish_reason, tools) as { invalid: { detail: string } }).invalid.detail;
    const told = chat.requests[2].messages.filter((m) => m.role === 'user' && /^That reply was not valid \(/.test(m.content ?? '')).map((m) => m.content);
    expect(told).toEqual([expect.stringContaining(detail(fixtures.agent_unknown_tool)), expect.stringContaining(detail(fixtures.agent_off_schema))]);
    expect(countInvalidOutputs(steps.map((s) => s.error))).toEqual({ prose: 0, unknown_tool: 1, arguments_off_schema: 1, max_tokens: 0, updater_answer: 0 });
    expect(result).toMatchObject({ success: false, error: 'ran out of steps (max_steps=3) without a final answer' });
  });

  it("the agent records the real model's invalid replies as steps, tells the model, and never throws", async () => {
    const replies = [...byKind('prose').slice(0, 1), fixtures.agent_max_tokens, fixtures.agent_with_grammar];
    const { chat, steps, result } = await runAgentOn(replies);
    expect(chat.requests[0].response_format).toEqual(toolCallResponseFormat(tools));
    expect(chat.requests[0].tools).toBeUndefined();
    expect(steps.map((s) => invalidOutputKindOf(s.error))).toEqual(['prose', 'max_tokens', null]);
    expect(steps[2].tool_calls).toEqual([{ id: 'call_2', name: 'query_database', arguments: expect.any(Object) }]);
    // The model was told what was wrong after each invalid reply (the conversation the requests carried).
    expect(chat.requests[2].messages.filter((m) => m.role === 'user' && /^That reply was not valid \(/.test(m.content ?? ''))).toHaveLength(2);
    expect(countInvalidOutputs(steps.map((s) => s.error))).toEqual({ prose: 1, unknown_tool: 0, arguments_off_schema: 0, max_tokens: 1, updater_answer: 0 });
    // It ran out of steps after a valid call: failed, with the ordinary reason.
    expect(result).toMatchObject({ success: false, error: 'ran out of steps (max_steps=3) without a final answer' });

    // Only invalid replies: the trajectory's error is the last invalid output.
    const invalidOnly = await new LlmAgent(replaying([fixtures.agent_max_tokens]), new SimulatedEnvironment()).run({
      task: simulatedTaskSet({ queriesPerFamily: 1, seed: 1 })[0],
      systemPrompt: 'p',
      model: MODEL,
      maxSteps: 2,
      maxTokens: 8,
      seed: 1,
      signal: new AbortController().signal,
      onStep: () => undefined,
    });
    expect(invalidOutputKindOf(invalidOnly.error)).toBe('max_tokens');
  });

  it('a final answer through the schema ends the run and is judged; native tools stay the default for other models', async () => {
    const [task] = simulatedTaskSet({ queriesPerFamily: 1, seed: 1 });
    const answer: Recorded = { content: JSON.stringify({ tool: 'final_answer', arguments: { answer: task.expected_answer } }), finish_reason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 5 }, logprob: -1 };
    const steps: TrajectoryStep[] = [];
    const run = { task, systemPrompt: 'p', maxSteps: 2, maxTokens: 50, seed: 1, signal: new AbortController().signal, onStep: (s: TrajectoryStep) => steps.push(s) };
    const result = await new LlmAgent(replaying([answer]), new SimulatedEnvironment(), { toolCalls: 'schema' }).run({ ...run, model: 'gpt-4o' });
    expect(result.finalAnswer).toBe(task.expected_answer);
    expect(steps[0].action).toEqual({ type: 'final_answer', content: task.expected_answer });
    const nonString: Recorded = { ...answer, content: '{"tool": "final_answer", "arguments": {"answer": 42}}' };
    await expect(new LlmAgent(replaying([{ ...nonString, content: JSON.stringify({ tool: 'final_answer', arguments: { answer: '42' } }) }]), new SimulatedEnvironment()).run({ ...run, model: MODEL })).resolves.toMatchObject({ finalAnswer: '42' });
    const native = replaying([{ ...answer, content: 'plain answer' }]);
    await new LlmAgent(native, new SimulatedEnvironment()).run({ ...run, model: 'gpt-4o' });
    expect(native.requests[0].tools).toHaveLength(SIMULATED_TOOLS.length);
    expect(native.requests[0].response_format).toBeUndefined();
  });
});

describe('the evidence-first updater answer', () => {
  const evidence = fixtures.updater_free_form[0].evidence;

  it("rejects the real model's free-form answers (they ran out of tokens or failed the schema) and leaves the policy byte-identical", async () => {
    for (const reply of fixtures.updater_free_form) {
      const parsed = reply.finish_reason === 'length' ? { problem: 'length' } : parseUpdaterAnswer(reply.content, evidence);
      expect('problem' in parsed).toBe(true);
    }
    const rows = [
      { id: 'a', steps: [], success: true, finalAnswer: 'x', stepAdvantages: null },
      { id: 'b', steps: [], success: false, finalAnswer: 'y', stepAdvantages: null },
    ];
    const trajectories = { findByIds: async () => rows } as unknown as TrajectoryRepository;
    const chat = replaying(fixtures.updater_free_form);
    const policy = initialPolicy('You are a support agent.');
    const before = JSON.stringify(policy);
    const result = await createPolicyUpdateActivities({ chat, trajectories }).updatePolicy({
      policy,
      candidates: [
        { trajectory_id: 'a', advantage: 1, query: 'q' },
        { trajectory_id: 'b', advantage: -1, query: 'q' },
      ],
      learning_rate: 0.5,
      clip: 0.5,
      max_lessons: 5,
      optimizer_model: MODEL,
      max_tokens: 160,
      seed: 1,
    });
    expect(result.skipped_reason).toMatch(/^malformed optimizer answer after 3 attempts: /);
    expect(result.invalid_outputs).toBe(3);
    expect(JSON.stringify(result.policy)).toBe(before);
    // A local optimizer is held to the evidence-first schema by the server's grammar.
    expect(chat.requests[0].response_format).toMatchObject({ type: 'json_schema', json_schema: { name: 'lessons' } });
  });

  it('turns evidence-first lessons into add operations, and rejects one whose evidence never called its tool', () => {
    const answer = JSON.stringify({
      lessons: [
        { evidence: ['T1'], task_kind: 'billing questions', use_tool: 'query_database', instead_of: 'lookup_docs' },
        { evidence: ['T2'], task_kind: 'billing', use_tool: 'query_database', instead_of: null },
      ],
    });
    const parsed = parseUpdaterAnswer(answer, evidence);
    expect(parsed).toEqual({
      operations: [{ op: 'add', text: 'For billing questions, use query_database instead of lookup_docs.', evidence: ['T1'] }],
      rejected: ['add: "For billing tasks, use query_database.": none of its evidence (T2) called query_database'],
    });
    expect(lessonText({ evidence: ['T1'], task_kind: 'billing. ', use_tool: 'x', instead_of: 'x' })).toBe('For billing tasks, use x.');
    expect(parseUpdaterAnswer('{"lessons": [{"evidence": []}]}', evidence)).toMatchObject({ problem: expect.stringContaining('lessons') });
    expect(parseUpdaterAnswer('{"operations": [{"op": "none"}]}', evidence)).toEqual({ operations: [{ op: 'none' }], rejected: [] });
    expect(parseUpdaterAnswer('{"operations": 3}', evidence)).toMatchObject({ problem: expect.any(String) });
    expect(parseUpdaterAnswer('', evidence)).toEqual({ problem: 'the answer was empty' });
    expect(parseUpdaterAnswer('not json', evidence)).toMatchObject({ problem: expect.stringMatching(/^not JSON/) });
  });

  it('a lesson reversing another (use B instead of A): cancelled within one answer, an edit of the library lesson it reverses', () => {
    const shown = {
      trajectories: [
        { ref: 'T1', advantage: 1, steps: [{ tool: 'web_search' }] },
        { ref: 'T2', advantage: 1, steps: [{ tool: 'lookup_docs' }] },
      ],
      lessons: [{ id: 'L7', text: 'For weather tasks, use lookup_docs instead of web_search.', weight: 0.2 }],
    } as unknown as PolicyUpdateEvidence;
    const both = JSON.stringify({
      lessons: [
        { evidence: ['T1'], task_kind: 'weather', use_tool: 'web_search', instead_of: 'lookup_docs' },
        { evidence: ['T2'], task_kind: 'weather', use_tool: 'lookup_docs', instead_of: 'web_search' },
      ],
    });
    expect(parseUpdaterAnswer(both, { trajectories: shown.trajectories })).toEqual({
      operations: [],
      rejected: [
        'add: "For weather tasks, use web_search instead of lookup_docs.": the same answer also says "For weather tasks, use lookup_docs instead of web_search."',
        'add: "For weather tasks, use lookup_docs instead of web_search.": the same answer also says "For weather tasks, use web_search instead of lookup_docs."',
      ],
    });
    const one = JSON.stringify({ lessons: [{ evidence: ['T1'], task_kind: 'weather', use_tool: 'web_search', instead_of: 'lookup_docs' }] });
    expect(parseUpdaterAnswer(one, shown)).toEqual({
      operations: [{ op: 'edit', lesson_id: 'L7', text: 'For weather tasks, use web_search instead of lookup_docs.', evidence: ['T1'] }],
      rejected: [],
    });
    // Unrelated library lessons leave an add an add.
    expect(parseUpdaterAnswer(one, { ...shown, lessons: [] })).toMatchObject({ operations: [{ op: 'add' }] });
  });

  it('holds a local answer to the positive refs shown, a tool they called, and any tool shown as the one replaced', () => {
    type Item = Record<string, { enum?: string[]; anyOf?: { enum?: string[] }[] }>;
    const schema = structuredAnswerJsonSchema(evidence) as { properties: { lessons: { items: { properties: Item } } } };
    const item = schema.properties.lessons.items.properties;
    // T1 (advantage 1) called query_database; T2 (advantage -1) lookup_docs: only T1 can be cited.
    expect(item.evidence).toMatchObject({ items: { enum: ['T1'] } });
    expect(item.use_tool.enum).toEqual(['query_database']);
    expect(new Set(item.instead_of.anyOf![0].enum)).toEqual(new Set(['query_database', 'lookup_docs']));
    // With no positive trajectory (the update is skipped before asking) every ref stays in the schema.
    const negativeOnly = { trajectories: evidence.trajectories.map((t) => ({ ...t, advantage: -Math.abs(t.advantage) })) };
    const fallback = (structuredAnswerJsonSchema(negativeOnly) as typeof schema).properties.lessons.items.properties;
    expect(fallback.evidence).toMatchObject({ items: { enum: ['T1', 'T2'] } });
    expect(structuredAnswerJsonSchema({ trajectories: [] })).toMatchObject({ properties: { lessons: { items: { properties: { use_tool: { type: 'string', maxLength: 60 } } } } } });
  });
});

describe('invalid outputs per iteration', () => {
  it('are summed over groups plus the updater, by kind', () => {
    const group = { rewards: [1, 0], successes: [true, false], advantages: [1, -1], logProbs: [-1, -2] };
    const metrics = iterationMetrics(
      [
        { ...group, invalidOutputs: { prose: 2, max_tokens: 1 } },
        { ...group, invalidOutputs: { unknown_tool: 1 } },
        group,
      ],
      { added: 0, edited: 0, reweighted: 0, dropped: 0 },
      3,
    );
    expect(metrics.invalid_outputs).toEqual({ prose: 2, unknown_tool: 1, arguments_off_schema: 0, max_tokens: 1, updater_answer: 3 });
    expect(Object.keys(InvalidOutputCountsSchema.parse(metrics.invalid_outputs))).toEqual([...INVALID_OUTPUT_KINDS]);
    expect(InvalidOutputCountsSchema.safeParse({ ...metrics.invalid_outputs, prose: -1 }).success).toBe(false);
    expect(iterationMetrics([group], { added: 0, edited: 0, reweighted: 0, dropped: 0 })).not.toHaveProperty('invalid_outputs');
    expect(invalidOutputKindOf('invalid_output:nonsense: x')).toBeNull();
    expect(invalidOutputKindOf(null)).toBeNull();
  });
});
