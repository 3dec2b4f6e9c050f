/**
 * Records what the real local model (Qwen2.5-Coder-1.5B through llama.cpp) answers when it
 * misbehaves, into tests/fixtures/local-model/*.json, for the tests of issue 13's invalid outputs:
 * the replies are the model's own, not hand-written. Run once: `npx tsx scripts/record-local-model-fixtures.ts`
 * (needs `npm run setup:local-model`; a few minutes on two cores). `--only key,key` captures only those
 * keys and keeps the file's other entries as they were captured.
 *
 * - no response_format (a provider that ignores it): the model's free text, classified as prose,
 *   an unknown tool or arguments off the schema when it is one;
 * - a schema-forced call with max_tokens too small: cut off (`finish_reason: length`);
 * - the policy updater asked for free-form operations in JSON mode: checked against the answer schema;
 * - the same path as the first (no grammar), searched until the model names a tool it was not offered
 *   (`agent_unknown_tool`) and until it calls an offered tool with arguments off its schema
 *   (`agent_off_schema`): requests a support agent really gets that no offered tool serves, or whose
 *   natural argument is not the tool's, run as the agent loop runs them for two replies (the
 *   model's own first call, a scripted result, its next reply), over a bounded list of requests ×
 *   seeds × temperatures; the first hit of each kind is kept, with the calls the search took.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FINAL_ANSWER_TOOL, parseSchemaReply, schemaToolInstructions, toolCallResponseFormat } from '../activities/agents/schemaToolCalls';
import { ChatClient, type ChatMessage, type ChatRequest, type ChatTool } from '../adapters/llm/chatClient';
import { parseUpdaterAnswer } from '../activities/policyUpdateAnswer';
import { buildPolicyUpdateEvidence, renderPolicyUpdateEvidence } from '../training/policyEvidence';
import { SIMULATED_TOOLS, simulatedTaskSet } from '../training/simulation/environment';
import { LOCAL_MODEL } from '../workers/localModelFiles';
import { startLocalModelServer } from '../workers/localModelServer';

const OUT = path.join(__dirname, '..', 'tests', 'fixtures', 'local-model');
const tools: ChatTool[] = SIMULATED_TOOLS.map((tool) => ({ type: 'function', function: tool }));
const KEYS = ['agent_without_grammar', 'agent_max_tokens', 'agent_with_grammar', 'updater_free_form', 'agent_unknown_tool', 'agent_off_schema'] as const;

/** The keys to capture: all, or those named by `--only a,b`. */
function selectedKeys(argv: string[]): Set<string> {
  const at = argv.indexOf('--only');
  if (at < 0) return new Set(KEYS);
  const named = (argv[at + 1] ?? '').split(',').filter(Boolean);
  const unknown = named.filter((key) => !(KEYS as readonly string[]).includes(key));
  if (named.length === 0 || unknown.length > 0) throw new Error(`--only takes a comma-separated list of ${KEYS.join(', ')}; got ${argv[at + 1] ?? 'nothing'}`);
  return new Set(named);
}

/**
 * A request and what the environment answers the agent's first tool call (whichever tool it calls),
 * as `<tool> returned: …` the way the agent loop (llmAgent.ts) passes results back; the second
 * reply is the model's answer to its own first call and that result.
 */
interface Episode {
  prompt: string;
  observation: string;
}
/** Without a grammar: requests no offered tool serves (a model tends to name a tool of its own). */
const UNKNOWN_TOOL_EPISODES: Episode[] = [
  // Requests written with another agent's tools in mind (they name the tool).
  { prompt: 'Use the send_email tool to tell bob@example.com that his refund was issued.', observation: 'Refund emails use template R-2.' },
  { prompt: 'Call cancel_order for order 1234; the customer changed their mind.', observation: 'order 1234: status open, can be cancelled until it ships.' },
  { prompt: 'Open a helpdesk ticket: the login page shows error 502.', observation: 'no relevant result' },
  { prompt: 'Refund order 5521 ($40) with the refunds tool.', observation: 'order 5521: paid $120.00 by card, delivered.' },
  { prompt: 'Email the customer at bob@example.com that their refund was issued.', observation: 'Refund emails use template R-2: "Your refund has been issued and will reach your account in 3-5 business days." Send it from support@example.com.' },
  { prompt: 'Cancel order 1234 for the customer.', observation: 'order 1234: status open, placed 2 days ago, can be cancelled until it ships.' },
  { prompt: 'Issue a refund of $40 for order 5521.', observation: 'order 5521: paid $120.00 by card, delivered; refunds up to the amount paid are allowed.' },
  { prompt: 'Send an SMS to +1 555 0100 saying the parcel has shipped.', observation: 'Customers are notified by SMS through the notification service.' },
  { prompt: 'Reset the password of the user alice@example.com.', observation: 'account alice@example.com: active, last login 3 days ago, 2FA off.' },
  { prompt: 'Translate "thank you for your patience" into French for the customer.', observation: 'no relevant result' },
];
/** Without a grammar: requests whose natural argument is not the offered tool's (`query`, or a string `answer` for verify_answer and final_answer). */
const OFF_SCHEMA_EPISODES: Episode[] = [
  // Requests that carry an argument of their own (an expression, raw SQL, a result count, fields).
  { prompt: 'Use the calculator to evaluate the expression: (125 * 4) / 8', observation: '62.5' },
  { prompt: 'Run on the database, sql = "SELECT COUNT(*) FROM orders WHERE status = \'open\'"', observation: '17' },
  { prompt: 'Search the web for "Lyon population", 5 results, French pages only.', observation: 'Lyon: 522,250 inhabitants (2021)' },
  { prompt: 'Query the database for account 7874, fields: balance and due_date.', observation: 'balance $114.68, due_date 2024-05-01' },
  { prompt: 'What is 6 times 7?', observation: '42' },
  { prompt: 'How many units of SKU-221 are in stock in warehouse W-3?', observation: 'SKU-221 @ W-3: 148 units' },
  { prompt: 'List the 3 most recent orders of account 7874.', observation: '#981 2024-05-02 $40.00 | #977 2024-04-28 $12.50 | #960 2024-04-11 $99.90' },
  { prompt: 'Compute the expression (125 * 4) / 8 with the calculator.', observation: '62.5' },
  { prompt: 'Convert 250 EUR to USD at a rate of 1.08.', observation: '270' },
  { prompt: 'Is account 7874 overdue? Check before you tell me.', observation: 'account 7874: balance $114.68, due 2024-05-01, overdue: true' },
];
/** Settings tried for each episode, in order (a sampled reply, as a provider without the grammar would return). */
const SEARCH_SETTINGS = [
  { seed: 101, temperature: 1 },
  { seed: 102, temperature: 1.2 },
  { seed: 103, temperature: 0.7 },
  { seed: 104, temperature: 1.4 },
];
/** At most this many model calls per kind searched (the calls before the hit are listed with the entry, under `search.before`). */
const SEARCH_LIMIT = 40;

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const wanted = selectedKeys(process.argv.slice(2));
  const file = path.join(OUT, 'misbehaviour.json');
  const previous = wanted.size < KEYS.length && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
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
    // Without the grammar (as agent_without_grammar): the first reply of `kind` over episodes × settings,
    // each episode up to two replies (the model's first tool call, its result, the next reply).
    const search = async (kind: string, episodes: Episode[]) => {
      let calls = 0;
      const misses: { prompt: string; seed: number; temperature: number; replies: string[] }[] = [];
      for (const settings of SEARCH_SETTINGS) {
        for (const episode of episodes) {
          const messages: ChatMessage[] = [
            { role: 'system', content: system },
            { role: 'user', content: episode.prompt },
          ];
          const replies: string[] = [];
          for (let turn = 0; turn < 2 && calls < SEARCH_LIMIT; turn++) {
            calls++;
            const entry = await call(`${kind} ${calls}`, { model: LOCAL_MODEL.name, messages: [...messages], max_tokens: 96, ...settings, seed: settings.seed + turn, logprobs: true });
            const parsed = parseSchemaReply(entry.content, entry.finish_reason, tools);
            const classified_as = 'invalid' in parsed ? parsed.invalid.kind : 'valid';
            process.stderr.write(`  -> ${classified_as}\n`);
            if (classified_as === kind) return { ...entry, classified_as, search: { calls, limit: SEARCH_LIMIT, before: misses } };
            replies.push('invalid' in parsed ? classified_as : parsed.tool);
            if ('invalid' in parsed || parsed.tool === FINAL_ANSWER_TOOL) break;
            messages.push({ role: 'assistant', content: entry.content ?? '' }, { role: 'user', content: `${parsed.tool} returned: ${episode.observation}` });
          }
          misses.push({ prompt: episode.prompt, ...settings, replies });
          if (calls >= SEARCH_LIMIT) break;
        }
        if (calls >= SEARCH_LIMIT) break;
      }
      process.stderr.write(`no ${kind} reply in ${calls} calls\n`);
      return { not_found: `no ${kind} reply in ${calls} calls`, search: { calls, limit: SEARCH_LIMIT, before: misses } };
    };
    if (wanted.has('agent_without_grammar')) {
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
    }
    // With the grammar but too few tokens: cut off.
    const task = tasks[0];
    if (wanted.has('agent_max_tokens')) recorded.agent_max_tokens = await call('max_tokens', {
      model: LOCAL_MODEL.name,
      messages: [{ role: 'system', content: system }, { role: 'user', content: task.prompt }],
      max_tokens: 8,
      seed: 5,
      logprobs: true,
      response_format: toolCallResponseFormat(tools),
    });
    if (wanted.has('agent_with_grammar')) recorded.agent_with_grammar = await call('grammar', {
      model: LOCAL_MODEL.name,
      messages: [{ role: 'system', content: system }, { role: 'user', content: task.prompt }],
      max_tokens: 96,
      seed: 5,
      logprobs: true,
      response_format: toolCallResponseFormat(tools),
    });
    // The updater, asked the old free-form way (JSON mode, no schema).
    if (wanted.has('updater_free_form')) {
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
    }
    if (wanted.has('agent_unknown_tool')) recorded.agent_unknown_tool = await search('unknown_tool', UNKNOWN_TOOL_EPISODES);
    if (wanted.has('agent_off_schema')) recorded.agent_off_schema = await search('arguments_off_schema', OFF_SCHEMA_EPISODES);
  } finally {
    await server.stop();
  }
  writeFileSync(file, JSON.stringify({ note: 'Captured from the real model by scripts/record-local-model-fixtures.ts; not hand-written.', ...previous, ...recorded }, null, 2) + '\n');
  process.stderr.write(`wrote ${file}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`record-local-model-fixtures: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
