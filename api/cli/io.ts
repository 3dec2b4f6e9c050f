/**
 * What the `flow` command line gets from the process that runs it (streams, environment, fetch,
 * the worker starter) and the input files it reads. Tests pass their own to `main()`.
 */
import { readFileSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { parseTasksJsonl, TaskSetError } from '../taskSets';
import { usage } from './errors';

export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** A running worker as `flow worker` needs it: where its health endpoints are, and when it ends. */
export interface StartedWorker {
  health: { url: string };
  finished: Promise<void>;
}

/** Starts a worker process's pools from the environment (workers/main.ts `startWorker`). */
export type WorkerStarter = (env: NodeJS.ProcessEnv, log: (line: string) => void) => Promise<StartedWorker>;

export interface CliIo {
  stdout: Output;
  stderr: Output;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** For tests; default the global fetch. */
  fetch?: typeof fetch;
  /**
   * What `flow worker` runs. api/ never imports workers/, so the process entry that may import
   * both (scripts/flow.ts) hands it in; without it `flow worker` says where to run it from.
   */
  startWorker?: WorkerStarter;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The JSON object of a `flow start` config file ("-" reads stdin); a usage error otherwise. */
export async function readConfig(file: string, io: CliIo): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await readAll(io.stdin) : readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw usage(`cannot read config file ${file}: ${why}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw usage(`config file ${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw usage(`config file ${file} must hold a JSON object (the training.start_grpo params: agent_id, training_queries or task_set, config, ...)`);
  }
  return parsed as Record<string, unknown>;
}

/** A JSONL task file's text, once every line is a valid task. */
export function readTasksFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usage(`cannot read task file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message}`);
  }
  try {
    parseTasksJsonl(text, file);
  } catch (error) {
    if (error instanceof TaskSetError) throw usage(error.message);
    throw error;
  }
  return text;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Where `--out <path>` writes. A regular file (new, or existing, also through a symlink, which
 * stays) is written beside its final place and renamed over it, so a failed export leaves what
 * was there; a FIFO, device or socket is written through as it is (renaming over one would
 * replace it with a file: `-o /dev/null` as root); a directory is a usage error.
 */
export async function outputTarget(path: string): Promise<{ path: string; atomic: boolean }> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { path, atomic: true };
    throw usage(`cannot write ${path}: ${(error as Error).message.replace(/^[A-Z]+: /, '')}`);
  }
  if (info.isDirectory()) throw usage(`cannot write ${path}: it is a directory`);
  if (!info.isFile()) return { path, atomic: false };
  return { path: await realpath(path), atomic: true };
}

/** Writes a chunk and waits until the stream took it; the stream's error (EPIPE: the reader left) rejects. */
export function writeChunk(stream: Output, chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (error?: Error | null) => (error ? reject(error) : resolve()));
  });
}
