/**
 * Task sets through the real JSON-RPC API: training.start_grpo with JSONL text, with a JSONL
 * file from the task directory and with the environment and agent; bad lines come back as
 * INVALID_PARAMS naming the line, and nothing is stored or started for them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TrainingJobInputSchema } from '../../training/jobInput';
import { rpcError, startApiHarness, type ApiHarness } from '../support/apiHarness';

const line = (task: object) => JSON.stringify(task);
const q1 = { id: 'q1', prompt: 'What is `6 * 7`?', expected_answer: '42', expected_tool: 'calculator' };
const q2 = { id: 'q2', prompt: 'What is `2 + 2`?', expected_answer: '4', expected_tool: 'calculator' };
const taskDir = mkdtempSync(path.join(os.tmpdir(), 'flow-api-tasks-'));
writeFileSync(path.join(taskDir, 'train.jsonl'), `${line(q1)}\n${line(q2)}\n`);
writeFileSync(path.join(taskDir, 'broken.jsonl'), `${line(q1)}\n${line({ id: 'q2', prompt: '' })}\n`);

let api: ApiHarness;
const previousTaskDir = process.env.FLOW_TASK_DIR;
beforeAll(async () => {
  process.env.FLOW_TASK_DIR = taskDir;
  api = await startApiHarness();
});
afterAll(async () => {
  await api.close();
  if (previousTaskDir === undefined) delete process.env.FLOW_TASK_DIR;
  else process.env.FLOW_TASK_DIR = previousTaskDir;
});

async function storedInput(jobId: string) {
  const row = await api.h.prisma.trainingJob.findUnique({ where: { id: jobId }, select: { input: true } });
  return TrainingJobInputSchema.parse(row!.input);
}

test('JSONL text and a task file become the job input, with its environment and agent', async () => {
  const client = await api.client();
  const agent = { type: 'http' as const, url: 'http://agents.example.test:9/agent', timeout_seconds: 5, max_attempts: 2 };
  const fromText = await client.startGrpo({ agent_id: 'tasks-agent', training_queries_jsonl: `${line(q1)}\n${line(q2)}`, evaluation_queries_jsonl: line(q2), environment: 'tools', agent, config: { iterations: 1 } });
  const input = await storedInput(fromText.job_id);
  expect(input).toMatchObject({ training_queries: [q1, q2], evaluation_queries: [q2], environment: 'tools', agent });

  const fromFile = await client.startGrpo({ agent_id: 'tasks-agent', task_file: 'train.jsonl', evaluation_task_file: 'train.jsonl', config: { iterations: 1 } });
  expect(await storedInput(fromFile.job_id)).toMatchObject({ training_queries: [q1, q2], evaluation_queries: [q1, q2], environment: 'simulated', agent: { type: 'llm' } });
  for (const jobId of [fromText.job_id, fromFile.job_id]) await api.h.client.workflow.getHandle(jobId).terminate('test done');
});

test.each([
  [{ training_queries_jsonl: `${line(q1)}\nnot json` }, /^Invalid params: training_queries_jsonl line 2: not valid JSON/],
  [{ task_file: 'broken.jsonl' }, /^Invalid params: task_file "broken.jsonl" line 2: prompt: Too small: expected string to have >=1 characters/],
  [{ task_file: '../../etc/passwd' }, /^Invalid params: task_file: "..\/..\/etc\/passwd" is outside the task directory/],
  [{ task_set: 'simulated-small', evaluation_queries_jsonl: '' }, /^Invalid params: evaluation_queries_jsonl: no tasks/],
  [{ task_set: 'simulated-small', training_queries_jsonl: line(q1) }, /give exactly one of training_queries, task_set, training_queries_jsonl, task_file/],
])('%j is refused with INVALID_PARAMS naming the line; no job is stored', async (params, message) => {
  const client = await api.client();
  // This agent's rows only: another file running beside this one may store jobs meanwhile.
  const count = () => api.h.prisma.trainingJob.count({ where: { agentId: 'tasks-agent' } });
  const before = await count();
  const error = await rpcError(client.startGrpo({ agent_id: 'tasks-agent', config: { iterations: 1 }, ...params } as never));
  expect(error.code).toBe(-32602);
  expect(error.message).toMatch(message);
  expect(await count()).toBe(before);
});
