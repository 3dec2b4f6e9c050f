/**
 * Plug in an agent that runs outside Flow: a tiny agent service speaking Flow's HTTP contract
 * (`flow-agent/2`, activities/agents/httpAgentContract.ts; docs/guides/http_agent.md), and a
 * job that trains it through the API with `agent: { type: "http", url }`.
 *
 * Flow POSTs each trajectory's task and the current policy (system prompt and lessons); the
 * service answers with its steps and final answer. This one answers in one step with what its
 * strongest lesson suggests, to keep the example short; a real one would run its own LLM loop.
 *
 *   npx tsx examples/http-agent.ts                 # serves on a free port, trains 2 iterations
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpAgentRequest, HttpAgentResponseInput } from '../activities/agents/httpAgentContract';
import { flowClientFromEnv, run } from './flowEnv';

function answer(request: HttpAgentRequest): HttpAgentResponseInput {
  const hint = request.policy.lessons[0]?.text ?? 'no lesson yet';
  const now = new Date().toISOString();
  return {
    steps: [{ state: request.task.prompt, action: { type: 'final_answer', content: hint }, started_at: now, ended_at: now }],
    final_answer: hint,
    // No `success`: Flow compares final_answer with the task's expected_answer (which it does not send).
  };
}

function serveAgent(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      try {
        const reply = answer(JSON.parse(body) as HttpAgentRequest);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
      } catch (error) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error) }));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

run(async () => {
  const server = await serveAgent();
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/run`;
  console.log(`agent service at ${url}`);
  try {
    const flow = flowClientFromEnv();
    const { job_id } = await flow.startGrpo({
      agent_id: 'http-example-agent',
      task_set: 'simulated-small',
      agent: { type: 'http', url, timeout_seconds: 10 },
      config: { iterations: 2, group_size: 4, batch_size: 2 },
    });
    console.log(`started ${job_id}`);
    for (;;) {
      const status = await flow.getStatus(job_id);
      if (!['queued', 'running', 'paused'].includes(status.status)) {
        const rate = status.last_metrics ? `${(status.last_metrics.success_rate * 100).toFixed(0)}%` : 'n/a';
        console.log(`job ${job_id} ${status.status}: ${status.iteration} iterations, last success rate ${rate}`);
        return status.status === 'completed' ? 0 : 3;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    server.close();
  }
});
