/**
 * What the `flow` command line gets from the process that runs it (streams, environment, fetch,
 * the worker starter) and the input files it reads. Tests pass their own to `main()`.
 */
import { readFileSync, rmSync } from 'node:fs';
import { access, chmod, constants, open, realpath, rename, rm, stat } from 'node:fs/promises';
import { parseTasksJsonl, TaskSetError } from '../taskSets';
import { CliError, EXIT, usage } from './errors';

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

/**
 * Bytes as UTF-8 text, or a usage error naming the file: Node's lossy decoding would send U+FFFD
 * where the file has something else (a Latin-1 "café" arrived as "caf\uFFFD").
 */
function utf8Text(bytes: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw usage(`${what} is not UTF-8 text (byte ${firstInvalidByte(bytes)} is not valid UTF-8); save it as UTF-8`);
  }
}

/** Where the first byte sequence that is not UTF-8 starts (U+FFFD in the lossy decoding, unless the file spells it). */
function firstInvalidByte(bytes: Buffer): number {
  const text = bytes.toString('utf8');
  for (let at = text.indexOf('\uFFFD'); at !== -1; at = text.indexOf('\uFFFD', at + 1)) {
    const offset = Buffer.byteLength(text.slice(0, at));
    if (!(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) return offset;
  }
  return 0;
}

/** The JSON object of a `flow start` config file ("-" reads stdin); a usage error otherwise. */
export async function readConfig(file: string, io: CliIo): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = utf8Text(file === '-' ? await readAll(io.stdin) : readFileSync(file), `config file ${file}`);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw usage(`cannot read config file ${file}: ${why}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // V8 quotes the text around the fault, line breaks and all: one line here.
    throw usage(`config file ${file} is not valid JSON: ${(error as Error).message.replace(/\s+/g, ' ')}`);
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
    text = utf8Text(readFileSync(file), `task file ${file}`);
  } catch (error) {
    if (error instanceof CliError) throw error;
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

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** An output file being written: `commit` puts it in place, `abort` leaves what was there. */
export interface OutputFile {
  write(chunk: string): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Opens `--out <path>` for writing. A regular file (new, or existing, also through a symlink, which
 * stays) is written beside its final place and renamed over it, so a failed or interrupted write
 * (a full disk, Ctrl-C) leaves what was there; an existing file keeps its permissions, and one
 * this user may not write is refused as the shell would. A FIFO, device or socket is written
 * through as it is (renaming over one would replace it with a file: `-o /dev/null` as root); a
 * directory is a usage error. Every failure is a usage error naming `path`.
 */
export async function openOutput(path: string): Promise<OutputFile> {
  const cannotWrite = (error: unknown, partial?: string) => {
    const message = (error as Error).message.replace(/^[A-Z]+: /, '');
    return usage(`cannot write ${path}: ${partial ? message.split(partial).join(path) : message}`);
  };
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw cannotWrite(error);
  }
  if (info?.isDirectory()) throw usage(`cannot write ${path}: it is a directory`);
  const atomic = !info || info.isFile();
  const target = info?.isFile() ? await realpath(path) : path;
  if (info?.isFile()) await access(target, constants.W_OK).catch((error: unknown) => Promise.reject(cannotWrite(error)));
  const partial = atomic ? `${target}.partial-${process.pid}` : undefined;
  // Interrupted (Ctrl-C, a SIGTERM): the partial file goes, and the process ends as it would have
  // (the signal again, once nothing else listens); where something else handles it, commit refuses.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    if (partial) rmSync(partial, { force: true });
    release();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const release = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  if (partial) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  let file: Awaited<ReturnType<typeof open>>;
  try {
    file = await open(partial ?? target, 'w');
    if (partial && info) await chmod(partial, info.mode & 0o7777);
  } catch (error) {
    release();
    if (partial) await rm(partial, { force: true });
    throw cannotWrite(error, partial);
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await file.close();
  };
  const abort = async () => {
    await close().catch(() => undefined);
    if (partial) await rm(partial, { force: true });
    release();
  };
  return {
    write: (chunk) => file.write(chunk).then(() => undefined, (error: unknown) => Promise.reject(cannotWrite(error, partial))),
    async commit() {
      if (interrupted) {
        await abort();
        throw new CliError(`interrupted: ${path} was left as it was`, EXIT.INTERRUPTED);
      }
      try {
        await close();
        if (partial) await rename(partial, target);
        release();
      } catch (error) {
        await abort();
        throw cannotWrite(error, partial);
      }
    },
    abort,
  };
}

/** Writes a chunk and waits until the stream took it; the stream's error (EPIPE: the reader left) rejects. */
export function writeChunk(stream: Output, chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (error?: Error | null) => (error ? reject(error) : resolve()));
  });
}
