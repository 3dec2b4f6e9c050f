/**
 * Records what the real local model (Qwen2.5-Coder-1.5B through llama.cpp) answers when it
 * misbehaves, into tests/fixtures/local-model/*.json, for the tests of issue 13's invalid outputs:
 * the replies are the model's own, not hand-written. Run once: `npx tsx scripts/record-local-model-fixtures.ts`
 * (needs `npm run setup:local-model`; a few minutes on two cores).
 *
 * - no response_format (a provider that ignores it): the model's free text, classified as prose,
 *   an unknown tool or arguments off the schema when it is one;
 * - a schema-forced call with max_tokens too small: cut off (`finish_reason: length`);
 * - the policy updater asked for free-form operations in JSON mode: checked against the answer schema.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseSchemaReply, schemaToolInstructions, toolCallResponseFormat } from '../activities/agents/schemaToolCalls';
import { ChatClient, type ChatMessage, type ChatRequest, type ChatTool } from '../adapters/llm/chatClient';
import { parseUpdaterAnswer } from '../activities/policyUpdateAnswer';
import { buildPolicyUpdateEvidence, renderPolicyUpdateEvidence } from '../training/policyEvidence';
import { SIMULATED_TOOLS, simulatedTaskSet } from '../training/simulation/environment';
import { LOCAL_MODEL } from '../workers/localModelFiles';
import { startLocalModelServer } from '../workers/localModelServer';

const OUT = path.join(__dirname, '..', 'tests', 'fixtures', 'local-model');
const tools: ChatTool[] = SIMULATED_TOOLS.map((tool) => ({ type: 'function', function: tool }));

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const server = await startLocalModelServer();
  const chat = new ChatClient({ baseURL: server.baseURL });
  const recorded: Record<string, unknown> = {};
  const call = async (name: string, request: ChatRequest) => {
    const started = Date.now();
    const result = await chat.complete(request);
    const entry = {
      model: `${LOCAL_MODEL.name} (${server.modelName}, llama.cpp via xllamacpp)`,
      captured_at: new Date().toISOString(),
      seconds: (Date.now() - started) / 1000,
      request: { ...request, messages: request.messages },
      content: result.message.content,
      finish_reason: result.finishReason,
      usage: result.usage,
      logprob: result.logprob,
    };
    process.stderr.write(`${name}: ${JSON.stringify(entry.content)?.slice(0, 160)} (${entry.finish_reason}, ${entry.seconds.toFixed(1)} s)\n`);
    return entry;
  };
  try {
    const tasks = simulatedTaskSet({ queriesPerFamily: 1, seed: 3 });
    const system = `You are a helpful support agent.\n\n${schemaToolInstructions(tools)}`;
    // Without the grammar: what the model writes when a provider ignores response_format.
    const free: unknown[] = [];
    for (const [i, task] of tasks.slice(0, 6).entries()) {
      const messages: ChatMessage[] = [
        { role: 'system', content: i % 2 === 0 ? system : 'You are a helpful support agent. Use the tools you are given.' },
        { role: 'user', content: task.prompt },
      ];
      const entry = await call(`free ${i}`, { model: LOCAL_MODEL.name, messages, max_tokens: 96, seed: 11 + i, temperature: 1, logprobs: true, ...(i % 2 === 1 ? { tools } : {}) });
      const parsed = parseSchemaReply(entry.content, entry.finish_reason, tools);
      free.push({ ...entry, classified_as: 'invalid' in parsed ? parsed.invalid.kind : 'valid' });
    }
    // Requests beyond the offered tools, where a model without a grammar tends to invent a tool or its arguments.
    const beyond = ['Email the customer at bob@example.com that their refund was issued.', 'Calculate 17% of 240.', 'Run this SQL: SELECT id FROM orders WHERE total > 100', 'Translate "thank you" into French.'];
    for (const [i, prompt] of beyond.entries()) {
      const entry = await call(`beyond ${i}`, { model: LOCAL_MODEL.name, messages: [{ role: 'system', content: system }, { role: 'user', content: prompt }], max_tokens: 96, seed: 21 + i, temperature: 1, logprobs: true });
      const parsed = parseSchemaReply(entry.content, entry.finish_reason, tools);
      free.push({ ...entry, classified_as: 'invalid' in parsed ? parsed.invalid.kind : 'valid' });
    }
    recorded.agent_without_grammar = free;
    // With the grammar but too few tokens: cut off.
    const task = tasks[0];
    recorded.agent_max_tokens = await call('max_tokens', {
      model: LOCAL_MODEL.name,
      messages: [{ role: 'system', content: system }, { role: 'user', content: task.prompt }],
      max_tokens: 8,
      seed: 5,
      logprobs: true,
      response_format: toolCallResponseFormat(tools),
    });
    recorded.agent_with_grammar = await call('grammar', {
      model: LOCAL_MODEL.name,
      messages: [{ role: 'system', content: system }, { role: 'user', content: task.prompt }],
      max_tokens: 96,
      seed: 5,
      logprobs: true,
      response_format: toolCallResponseFormat(tools),
    });
    // The updater, asked the old free-form way (JSON mode, no schema).
    const evidence = buildPolicyUpdateEvidence(
      [],
      [
        {
          trajectory: { success: true, final_answer: '$114.68', steps: [{ action: { type: 'tool_call', content: null }, tool_calls: [{ id: 'c', name: 'query_database', arguments: { query: 'balance of account 7874' } }], result: '$114.68' } as never, { action: { type: 'final_answer', content: '$114.68' }, tool_calls: [], result: null } as never] },
          advantage: 1,
          query: '[billing] What is the outstanding balance on account 7874?',
          stepCredits: null,
        },
        {
          trajectory: { success: false, final_answer: '$20.00', steps: [{ action: { type: 'tool_call', content: null }, tool_calls: [{ id: 'c', name: 'lookup_docs', arguments: { query: 'balance of account 7874' } }], result: 'no relevant result' } as never, { action: { type: 'final_answer', content: '$20.00' }, tool_calls: [], result: null } as never] },
          advantage: -1,
          query: '[billing] What is the outstanding balance on account 7874?',
          stepCredits: null,
        },
      ],
      'contrastive',
    );
    const freeFormPrompt =
      'You are the policy optimizer of an AI agent. Write lessons from the trajectories with positive advantage. Answer with JSON only: {"operations": [{"op": "add", "text": "<lesson>", "evidence": ["T1"]}]}';
    const updaterEntries = [];
    for (const seed of [1, 2]) {
      const entry = await call(`updater ${seed}`, {
        model: LOCAL_MODEL.name,
        messages: [
          { role: 'system', content: freeFormPrompt },
          { role: 'user', content: `Current lessons and trajectories:\n\n${renderPolicyUpdateEvidence(evidence)}` },
        ],
        max_tokens: 160,
        seed,
        temperature: 1,
        response_format: { type: 'json_object' },
      });
      const parsed = parseUpdaterAnswer(entry.content, evidence);
      updaterEntries.push({ ...entry, evidence, validation: 'problem' in parsed ? parsed.problem : parsed });
    }
    recorded.updater_free_form = updaterEntries;
  } finally {
    await server.stop();
  }
  const file = path.join(OUT, 'misbehaviour.json');
  writeFileSync(file, JSON.stringify({ note: 'Captured from the real model by scripts/record-local-model-fixtures.ts; not hand-written.', ...recorded }, null, 2) + '\n');
  process.stderr.write(`wrote ${file}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`record-local-model-fixtures: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
