/**
 * The local model server's launcher and the provider wiring (issue 13), without the 1.1 GB model:
 * a stand-in "python" (a small Node HTTP server) plays xllamacpp's part, so starting, health,
 * stopping and the failures a real launch can meet are all exercised. The real server runs in
 * tests/integration/localModel.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatClient } from '../../adapters/llm/chatClient';
import { costOf, priceOf, resolveModelPrice } from '../../adapters/llm/pricing';
import { LOCAL_MODEL } from '../../workers/localModelFiles';
import { lazyLocalModel, startLocalModelServer, wantsLocalModel } from '../../workers/localModelServer';
import { fakeLocalModel } from '../support/fakeLocalModel';

const dir = mkdtempSync(path.join(tmpdir(), 'flow-local-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fakeSetup = (name: string, behaviour: 'serve' | 'exit' | 'garbage') => fakeLocalModel(path.join(dir, name), behaviour);

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
    // A call made while the server stops is refused, not given a new server left running.
    const stopping = local.stop();
    const during = local.baseURL().catch((e: unknown) => e as Error);
    await stopping;
    await local.stop();
    expect(((await during) as Error).message).toBe('the local model server was stopped (the worker is shutting down)');
    await expect(local.baseURL()).rejects.toThrow('was stopped');
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
