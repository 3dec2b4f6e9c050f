/**
 * How far o200k_base (adapters/llm/tokenCounter.ts's stand-in for non-OpenAI families) is from the
 * local Qwen2.5 model's own tokenizer on rendered policies (issue 16 item 5; docs/guides/policy-hygiene.md).
 * Needs the local model (npm run setup:local-model): npx tsx tests/perf/qwenTokenCount.ts. Qwen's count
 * is the prompt tokens its llama.cpp server reports, minus those of the same chat with a one-token system.
 */
import { startLocalModelServer } from '../../workers/localModelServer';
import { tokenCounterFor } from '../../adapters/llm/tokenCounter';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import { initialPolicy, renderSystemPrompt, type Policy } from '../../training/policy';
import { outcomeReward } from '../../training/rewards';
import { SIMULATED_FAMILIES, simulatedTaskSet } from '../../training/simulation/environment';
import { runSimulatedTraining } from '../../training/simulation/simulatedTraining';

const o200k = tokenCounterFor('gpt-4o').count;
function trained(seed: number): Policy {
  return runSimulatedTraining({
    trainingTasks: simulatedTaskSet({ queriesPerFamily: 3, seed, families: SIMULATED_FAMILIES }),
    heldOutTasks: simulatedTaskSet({ queriesPerFamily: 1, seed: seed + 1, families: SIMULATED_FAMILIES }),
    iterations: 6, groupSize: 6, batchSize: 4, maxTurns: 6, seed, gamma: 0.99, creditAssignment: false, policyUpdate: 'positive_only',
    reward: outcomeReward, update: { learningRate: 0.5, clip: 0.2, maxLessons: 20 }, evalSamples: 1,
  }, initialPolicy(DEFAULT_BASE_PROMPT)).policy;
}
const prose: Policy = {
  base_prompt: DEFAULT_BASE_PROMPT,
  version: 1,
  lessons: [
    'When a customer asks about a refund older than 30 days, check the order history before quoting the policy.',
    'Always confirm the invoice number with lookup_invoice; never guess amounts from memory.',
    'For shipping questions, give the carrier, the tracking number and the expected delivery date in one sentence.',
    'If a tool returns an error, retry once with a simpler query, then explain what failed.',
    'Prefer the knowledge base over web search for product specifications (température, Größe, 尺寸 included).',
  ].map((text, i) => ({ id: `p${i}`, text, weight: 0.5 })),
};
async function main() {
  const server = await startLocalModelServer({ threads: 1, parallel: 1 });
  const promptTokens = async (system: string) => {
    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local:qwen2.5-coder-1.5b', messages: [{ role: 'system', content: system }, { role: 'user', content: 'Hi' }], max_tokens: 1 }),
    });
    return ((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
  };
  try {
    const baseline = await promptTokens('x');
    const samples = [initialPolicy(DEFAULT_BASE_PROMPT), trained(1), trained(2), trained(3), prose].map(renderSystemPrompt);
    const rows = [];
    for (const text of samples) {
      const qwen = (await promptTokens(text)) - baseline + 1; // "x" is one token in both
      rows.push({ chars: text.length, o200k: o200k(text), qwen, ratio: o200k(text) / qwen });
      console.log(JSON.stringify(rows[rows.length - 1]));
    }
    const totalO = rows.reduce((s, r) => s + r.o200k, 0), totalQ = rows.reduce((s, r) => s + r.qwen, 0);
    console.log(JSON.stringify({ samples: rows.length, o200k_total: totalO, qwen_total: totalQ, o200k_over_qwen: totalO / totalQ, worst: Math.min(...rows.map((r) => r.ratio)), best: Math.max(...rows.map((r) => r.ratio)) }));
  } finally {
    await server.stop();
  }
}
void main();
