/**
 * FLOW_LLM=local wiring (issue 13) for `npm start` and `npm run worker`, with a stand-in for the
 * model (tests/support/fakeLocalModel.ts) so it runs in seconds: the demo says how long it will
 * take, starts the local server, trains through it and prints each iteration; the stand-in's
 * prose replies are counted as invalid outputs in the iteration's metrics. The real model runs in
 * tests/integration/localModel.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPrismaClient } from '../../adapters/db';
import { runDemo } from '../../workers/dev/demo';
import { freePort } from '../../workers/dev/devStack';
import { startWorker } from '../../workers/main';
import { requireEnv } from '../support/harness';
import { fakeLocalModel } from '../support/fakeLocalModel';
import { execFileSync } from 'node:child_process';
import { ChatClient, ProviderUnavailableError } from '../../adapters/llm/chatClient';
import { lazyLocalModel } from '../../workers/localModelServer';

const home = mkdtempSync(path.join(os.tmpdir(), 'flow-local-wiring-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, ...fakeLocalModel(path.join(home, 'model'), 'serve'), FLOW_LLM: 'local', ...extra };
  for (const key of ['PORTKEY_API_KEY', 'FLOW_LLM_BASE_URL', 'FLOW_MODEL', 'FLOW_JWT_SECRET', 'FLOW_JWKS_URL', 'FLOW_JWKS_FILE', 'FLOW_TASK_QUEUE']) delete base[key];
  return base;
}

test('FLOW_LLM=local npm start: says how long first, serves the job from the local server, prints each iteration and counts invalid outputs', async () => {
  const lines: string[] = [];
  await runDemo({ env: env({ FLOW_DEMO_ITERATIONS: '1', FLOW_DEMO_EXIT: '1', FLOW_API_PORT: String(await freePort()) }), home: path.join(home, 'demo'), say: (line) => lines.push(line) });
  expect(lines).toContainEqual(expect.stringMatching(/^LLM: the REAL local model Qwen\/Qwen2\.5-Coder-1\.5B-Instruct-GGUF \(Apache-2\.0\) .*This demo takes about 3 minutes on 2 cores/));
  expect(lines).toContainEqual(expect.stringMatching(/^local model server \(llama\.cpp\) at http:\/\/127\.0\.0\.1:\d+\/v1$/));
  expect(lines.filter((line) => line.startsWith('iteration'))).toEqual([expect.stringMatching(/^iteration  1\/1  success [#.]{30} +0%  lessons 0  spend \$0\.0000$/)]);
  expect(lines).toContainEqual(expect.stringMatching(/^job completed: success rate 0% in the first iteration → 0% in the last$/));

  // Every trajectory's first reply was prose: counted per iteration, none crashed an activity.
  const jobId = /started training job (\S+)/.exec(lines.join('\n'))![1];
  const prisma = createPrismaClient(requireEnv('DATABASE_URL'), { poolSize: 1 });
  try {
    const [iteration] = await prisma.trainingIteration.findMany({ where: { jobId } });
    expect((iteration.metrics as { invalid_outputs: Record<string, number> }).invalid_outputs).toEqual({ prose: 8, unknown_tool: 0, arguments_off_schema: 0, max_tokens: 0, updater_answer: 0 });
  } finally {
    await prisma.$disconnect();
  }
}, 120_000);

test('FLOW_LLM=local npm run worker: starts the local model server before polling, and stops it with itself', async () => {
  const lines: string[] = [];
  const worker = await startWorker(env({ FLOW_WORKER_HEALTH_PORT: '0', FLOW_TASK_QUEUE: `local-wiring-${process.pid}` }), (line) => lines.push(line));
  const url = /^local model server at (\S+)\/v1$/.exec(lines[0])?.[1];
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect((await fetch(`${url}/health`)).ok).toBe(true);
  await worker.stop();
  await expect(fetch(`${url}/health`)).rejects.toThrow();
}, 60_000);

test('a local model server that dies (a crash, the OOM killer) is started again by the next call; the calls it dropped fail as a provider outage, which Temporal retries', async () => {
  const lazy = lazyLocalModel({}, env({}));
  const chat = new ChatClient({ local: () => lazy.baseURL(), localSlots: 2 });
  const request = { model: 'local:qwen2.5-coder-1.5b', messages: [{ role: 'user' as const, content: 'hello' }], max_tokens: 8 };
  try {
    expect((await chat.complete(request)).message.content).toContain('model local:qwen2.5-coder-1.5b');
    const first = await lazy.baseURL();
    const serverScript = path.join(home, 'model', 'server.js');
    const pid = Number(execFileSync('pgrep', ['-n', '-f', serverScript], { encoding: 'utf8' }).trim());
    process.kill(pid, 'SIGKILL');
    await expect(fetch(`${first.replace(/\/v1$/, '')}/health`)).rejects.toThrow();
    // The next call starts a new server (another port) and is served; at most the ones already on their way fail, as an outage.
    const deadline = Date.now() + 20_000;
    let answer;
    for (;;) {
      answer = await chat.complete(request).catch((error: unknown) => error);
      if (!(answer instanceof Error)) break;
      expect(answer).toBeInstanceOf(ProviderUnavailableError);
      if (Date.now() > deadline) throw answer;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((answer as { message: { content: string } }).message.content).toContain("model local:qwen2.5-coder-1.5b");
    expect(await lazy.baseURL()).not.toBe(first);
  } finally {
    await lazy.stop();
  }
}, 60_000);

test('a local model server that cannot start is the provider being unavailable (retried), not an agent error', async () => {
  const broken = lazyLocalModel({}, { ...env({}), ...fakeLocalModel(path.join(home, 'broken'), 'exit') });
  const chat = new ChatClient({ local: () => broken.baseURL(), localSlots: 1 });
  const error = await chat.complete({ model: 'local:qwen2.5-coder-1.5b', messages: [{ role: 'user', content: 'hello' }], max_tokens: 8 }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ProviderUnavailableError);
  expect({ billing: (error as ProviderUnavailableError).billing, message: (error as Error).message }).toEqual({
    billing: 'none',
    message: expect.stringMatching(/^local:qwen2\.5-coder-1\.5b: the local model server is not available: the local model server exited \(3\) while loading/),
  });
  await broken.stop();
}, 30_000);
