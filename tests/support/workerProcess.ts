/**
 * A training worker as its own OS process (`workers/main.ts`, what `npm run worker` runs), for
 * tests that kill or outlive processes. Resolves once the worker polls its task queue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { requireEnv } from './harness';

const ROOT = path.resolve(__dirname, '../..');

export interface WorkerProcessOptions {
  taskQueue: string;
  temporalAddress: string;
  databaseUrl: string;
  llmBaseUrl: string;
  /** FLOW_WORKER_POOL (default all). */
  pool?: string;
  /** FLOW_WORKER_HEALTH_PORT; default 0 (any free port), so parallel tests never collide on 8081. */
  healthPort?: number;
  /** More environment (pool concurrency and the like). */
  env?: Record<string, string>;
}

export async function spawnWorkerProcess(options: WorkerProcessOptions): Promise<ChildProcess & { output(): string; stderr(): string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'workers/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      TEMPORAL_ADDRESS: options.temporalAddress,
      FLOW_TASK_QUEUE: options.taskQueue,
      FLOW_LLM_BASE_URL: options.llmBaseUrl,
      FLOW_DB_POOL_SIZE: '4',
      FLOW_WORKER_HEALTH_PORT: String(options.healthPort ?? 0),
      ...(options.pool ? { FLOW_WORKER_POOL: options.pool } : {}),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (output.includes('polling task queue')) {
        child.stdout!.off('data', check);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => reject(new Error(`worker exited with ${code} before polling:\n${output}`));
    child.stdout!.on('data', check);
    child.once('exit', onExit);
  });
  // stderr alone too: lines written there (the SDK's JSON log) are whole in it, never cut by stdout's chunks.
  return Object.assign(child, { output: () => output, stderr: () => stderr });
}

/** Sends `signal` and waits for the process to be gone. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

/**
 * Worker processes of one test file on the suite's Temporal server and database, with `model` as
 * the LLM: `start(taskQueue)` spawns one, `killAll()` (in afterAll) SIGKILLs whatever is left.
 */
export function suiteWorkerProcesses(model: () => { url: string }) {
  const children: ChildProcess[] = [];
  return {
    async start(taskQueue: string) {
      const child = await spawnWorkerProcess({
        taskQueue,
        temporalAddress: requireEnv('TEMPORAL_ADDRESS'),
        databaseUrl: requireEnv('DATABASE_URL'),
        llmBaseUrl: model().url,
      });
      children.push(child);
      return child;
    },
    async killAll() {
      for (const child of children) await stopProcess(child, 'SIGKILL');
    },
  };
}
