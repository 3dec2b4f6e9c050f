/**
 * The local model server's launcher and the provider wiring (issue 13), without the 1.1 GB model:
 * a stand-in "python" (a small Node HTTP server) plays xllamacpp's part, so starting, health,
 * stopping and the failures a real launch can meet are all exercised. The real server runs in
 * tests/integration/localModel.test.ts.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatClient } from '../../activities/llm/chatClient';
import { costOf, priceOf, resolveModelPrice } from '../../activities/llm/pricing';
import { LOCAL_MODEL } from '../../workers/localModelFiles';
import { lazyLocalModel, startLocalModelServer, wantsLocalModel } from '../../workers/localModelServer';

const dir = mkdtempSync(path.join(tmpdir(), 'flow-local-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A GGUF header good enough for the launcher (it reads the name), and a fake venv whose python runs `behaviour`. */
function fakeSetup(name: string, behaviour: 'serve' | 'exit' | 'garbage'): NodeJS.ProcessEnv {
  const home = path.join(dir, name);
  mkdirSync(path.join(home, 'venv', 'bin'), { recursive: true });
  const str = (s: string) => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(s)));
    return Buffer.concat([len, Buffer.from(s)]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const gguf = path.join(home, 'model.gguf');
  writeFileSync(gguf, Buffer.concat([Buffer.from('GGUF'), u32(3), Buffer.alloc(8), Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), str('general.architecture'), u32(8), str('qwen2'), str('general.name'), u32(8), str('Fake Qwen')]));
  const server = path.join(home, 'server.js');
  writeFileSync(
    server,
    `const http = require('node:http');
const behaviour = ${JSON.stringify(behaviour)};
let inflight = 0, maxInflight = 0;
if (behaviour === 'exit') { console.error('llama: failed to load model'); process.exit(3); }
if (behaviour === 'garbage') { console.log('not json'); setInterval(() => {}, 1000); return; }
const s = http.createServer((req, res) => {
  if (req.url === '/health') return res.end('{"status":"ok"}');
  let body = ''; req.on('data', (c) => body += c); req.on('end', () => {
    const request = JSON.parse(body);
    inflight += 1; maxInflight = Math.max(maxInflight, inflight);
    setTimeout(() => {
      inflight -= 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ choices: [{ finish_reason: 'stop', message: { role: 'assistant', content: 'model ' + request.model + ' max in flight ' + maxInflight }, logprobs: { content: [{ logprob: -0.5 }, { logprob: -0.25 }] } }], usage: { prompt_tokens: 12, completion_tokens: 2 } }));
    }, 30);
  });
}).listen(0, '127.0.0.1', () => console.log(JSON.stringify({ address: 'http://127.0.0.1:' + s.address().port })));
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));`,
  );
  const python = path.join(home, 'venv', 'bin', 'python');
  writeFileSync(python, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(server)}\n`);
  chmodSync(python, 0o755);
  return { FLOW_LOCAL_MODEL_DIR: home, FLOW_LOCAL_MODEL: gguf };
}

describe('the local model server launcher', () => {
  it('starts the server, waits for /health, serves local:* calls through portkey-ai, and stops it', async () => {
    const env = fakeSetup('serve', 'serve');
    const lines: string[] = [];
    const local = lazyLocalModel({ log: (line) => lines.push(line) }, env);
    const chat = new ChatClient({ local: () => local.baseURL() });
    const request = { model: LOCAL_MODEL.name, messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 5, logprobs: true };
    // A group's calls wait their turn in the client, one per server slot.
    const aborted = new AbortController();
    const calls = [chat.complete(request), chat.complete(request), chat.complete(request, aborted.signal).catch((e: unknown) => e), chat.complete(request)];
    aborted.abort(new Error('stopped'));
    const results = await Promise.all(calls);
    expect(results[3]).toMatchObject({ message: { content: `model ${LOCAL_MODEL.name} max in flight 1` }, usage: { prompt_tokens: 12, completion_tokens: 2 }, costUsd: 0, logprob: -0.75, finishReason: 'stop' });
    expect((results[2] as Error).message).toBe('stopped');
    // The same server for every later call.
    const first = await local.baseURL();
    expect(await local.baseURL()).toBe(first);
    expect(first).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    // Only local:* models are served when no other endpoint is configured.
    await expect(chat.complete({ model: 'flow-sim-1', messages: [], max_tokens: 5 })).rejects.toThrow('no endpoint for flow-sim-1: only local:* models are served here');
    await local.stop();
    await local.stop();
    await expect(fetch(`${first.replace(/\/v1$/, '')}/health`)).rejects.toThrow();
    const server = await startLocalModelServer({ model: env.FLOW_LOCAL_MODEL }, env);
    expect(server.modelName).toBe('Fake Qwen');
    await server.stop();
    await server.stop();
  });

  it('says why it cannot start: not set up, exited while loading, or an unreadable answer; a failed start is retried', async () => {
    await expect(startLocalModelServer({}, { FLOW_LOCAL_MODEL_DIR: path.join(dir, 'none') })).rejects.toThrow(/the local model runtime is not installed .*npm run setup:local-model/);
    await expect(startLocalModelServer({}, fakeSetup('exit', 'exit'))).rejects.toThrow(/the local model server exited \(3\) while loading: llama: failed to load model/);
    await expect(startLocalModelServer({}, fakeSetup('garbage', 'garbage'))).rejects.toThrow('the local model server printed not json instead of its address');
    await expect(startLocalModelServer({ startTimeoutMs: 1 }, fakeSetup('slow', 'garbage'))).rejects.toThrow(/did not start within|printed not json/);
    const local = lazyLocalModel({}, fakeSetup('exit-lazy', 'exit'));
    const chat = new ChatClient({ local: () => local.baseURL() });
    await expect(chat.complete({ model: LOCAL_MODEL.name, messages: [], max_tokens: 1 })).rejects.toThrow('exited (3)');
    await expect(local.baseURL()).rejects.toThrow('exited (3)');
    await local.stop();
  });

  it('FLOW_LLM=local asks for it; local:* models cost zero USD with their tokens counted', () => {
    expect(wantsLocalModel({ FLOW_LLM: 'local' })).toBe(true);
    expect(wantsLocalModel({})).toBe(false);
    expect(priceOf('local:qwen2.5-coder-1.5b')).toEqual({ input_usd_per_mtok: 0, output_usd_per_mtok: 0 });
    expect(resolveModelPrice('local:my-own.gguf')).toEqual({ input_usd_per_mtok: 0, output_usd_per_mtok: 0 });
    expect(costOf('local:qwen2.5-coder-0.5b', { prompt_tokens: 1000, completion_tokens: 100 })).toBe(0);
    expect(costOf('local:other', { prompt_tokens: 1000, completion_tokens: 100 })).toBe(0);
    expect(() => new ChatClient({})).toThrow('no LLM endpoint');
  });
});
