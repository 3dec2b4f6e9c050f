/**
 * The local model provider (issue 13): llama.cpp's own OpenAI-compatible server (xllamacpp,
 * workers/localModelServer.py) on 127.0.0.1, serving the verified GGUF. Flow reaches it through
 * the same portkey-ai ChatClient as any provider (FLOW_LLM_BASE_URL = its /v1). Started by
 * `npm start`, the worker and the tests when FLOW_LLM=local or a job's model is `local:*`.
 *
 * One slot by default: on two cores concurrent requests do not raise throughput, and one slot
 * queues a group's calls so that each reuses the prefix (system prompt, tools, task) the previous
 * one left in the slot's KV cache (`cache_prompt`); llama.cpp's prompt cache keeps other
 * prefixes in RAM as well.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { localModelParallelFromEnv, localModelThreadsFromEnv } from '../adapters/llm/localModelSettings';
import { LOCAL_MODEL, localModelPath, localModelPython, localModelUnavailable, readGgufHeader } from './localModelFiles';

export { localModelUnavailable, LOCAL_MODEL };

export interface LocalModelServerOptions {
  /** The GGUF to serve; default FLOW_LOCAL_MODEL or the verified cached file. */
  model?: string;
  port?: number;
  /** Context tokens per slot (default 4096). */
  ctx?: number;
  /** Slots served at once (default FLOW_LOCAL_MODEL_PARALLEL or 1). */
  parallel?: number;
  /** CPU threads (default FLOW_LOCAL_MODEL_THREADS or 2). */
  threads?: number;
  /** Keep each slot's prompt in its KV cache for the next request (default true; the bench turns it off to compare). */
  cachePrompt?: boolean;
  /** How long loading may take (default 180 s). */
  startTimeoutMs?: number;
  /** Where the server's log goes: a file path, or 'inherit' (default: discarded). */
  log?: (line: string) => void;
}

export interface LocalModelServer {
  /** The OpenAI-compatible base URL, `http://127.0.0.1:<port>/v1`. */
  baseURL: string;
  /** The GGUF's own name (from its header). */
  modelName: string | null;
  /** The server process. */
  pid: number;
  /** Resolves when the server process has exited, stopped or not (a crash, the OOM killer). */
  exited: Promise<void>;
  stop(): Promise<void>;
}

const SCRIPT = path.join(__dirname, 'localModelServer.py');

/** Starts the server and resolves when it answers /health; throws with the reason when it cannot. */
export async function startLocalModelServer(options: LocalModelServerOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<LocalModelServer> {
  const unavailable = options.model ? null : localModelUnavailable(env);
  if (unavailable) throw new Error(unavailable);
  const model = options.model ?? localModelPath(env);
  const header = readGgufHeader(model);
  const args = {
    model,
    port: options.port ?? 0,
    ctx: options.ctx ?? 4096,
    parallel: options.parallel ?? localModelParallelFromEnv(env),
    threads: options.threads ?? localModelThreadsFromEnv(env),
    cache_prompt: options.cachePrompt ?? true,
    alias: LOCAL_MODEL.name,
  };
  const child = spawn(localModelPython(env), [SCRIPT, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const log = options.log ?? (() => undefined);
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 20) stderr.shift();
    log(line);
  });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the local model server did not start within ${(options.startTimeoutMs ?? 180_000) / 1000} s`)), options.startTimeoutMs ?? 180_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { address: string }).address);
      } catch {
        fail(new Error(`the local model server printed ${line.slice(0, 200)} instead of its address`));
      }
    });
    child.once('exit', (code, signal) => fail(new Error(`the local model server exited (${code ?? signal}) while loading: ${stderr.slice(-3).join(' | ')}`)));
  });
  const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  try {
    await waitHealthy(address, child);
  } catch (error) {
    // A server that never became healthy is not left holding the model's memory.
    child.kill('SIGKILL');
    throw error;
  }
  return {
    baseURL: `${address}/v1`,
    modelName: header.name,
    pid: child.pid!,
    exited,
    stop: () => stopChild(child),
  };
}

async function waitHealthy(address: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`the local model server exited (${child.exitCode})`);
    try {
      const response = await fetch(`${address}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the local model server at ${address} never became healthy`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin?.end();
    child.kill('SIGTERM');
  });
}

/** True when Flow should serve its LLM calls from the local model (FLOW_LLM=local). */
export function wantsLocalModel(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.FLOW_LLM === 'local';
}

export interface LazyLocalModel {
  /**
   * The server's `/v1` URL, starting it on the first call (a failed start is retried on the next),
   * and again on the first call after it exited: calls in flight when it died fail as a provider
   * outage, which Temporal retries, and the retry finds a new server.
   */
  baseURL(): Promise<string>;
  /** Stops the server if it was started; later calls are refused (a stopped worker's calls must not start another). */
  stop(): Promise<void>;
}

/** A local model server started on first use: what a worker hands its ChatClient (LlmSettings.local). */
export function lazyLocalModel(options: LocalModelServerOptions = {}, env: NodeJS.ProcessEnv = process.env): LazyLocalModel {
  let server: Promise<LocalModelServer> | null = null;
  let stopping: Promise<void> | null = null;
  return {
    baseURL() {
      if (stopping) return Promise.reject(new Error('the local model server was stopped (the worker is shutting down)'));
      if (!server) {
        const starting: Promise<LocalModelServer> = startLocalModelServer(options, env).then(
          (started) => {
            void started.exited.then(() => {
              if (server === starting) server = null;
            });
            return started;
          },
          (error: unknown) => {
            server = null;
            throw error;
          },
        );
        server = starting;
      }
      return server.then((s) => s.baseURL);
    },
    stop() {
      // A call that arrives while the server stops (or starts, to be stopped at once) is refused,
      // not given a new server the worker would leave running.
      return (stopping ??= (async () => {
        const running = await server?.catch(() => null);
        server = null;
        await running?.stop();
      })());
    },
  };
}
