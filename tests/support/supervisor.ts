/**
 * A compose-style supervisor for a worker process, as `restart: unless-stopped` (or a
 * Kubernetes Deployment) would be: whenever the process exits without being stopped through
 * the supervisor, it is started again after a short delay. Tests kill the process from outside
 * and watch it come back.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnWorkerProcess, stopProcess, type WorkerProcessOptions } from './workerProcess';

type WorkerChild = ChildProcess & { output(): string };

export interface Supervisor {
  /** The process running now (replaced after each restart). */
  current(): WorkerChild;
  /** How many times the process was started again after an exit. */
  restarts(): number;
  /** Exit codes / signals of the processes that ended, in order. */
  exits(): { code: number | null; signal: NodeJS.Signals | null }[];
  /** Resolves once the process has been restarted `count` times in all. */
  waitForRestarts(count: number, timeoutMs?: number): Promise<void>;
  /** Stops supervising and sends `signal` to the current process; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function superviseWorker(options: WorkerProcessOptions & { restartDelayMs?: number }): Promise<Supervisor> {
  const restartDelayMs = options.restartDelayMs ?? 200;
  let stopped = false;
  let restarts = 0;
  const exits: { code: number | null; signal: NodeJS.Signals | null }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let child = await spawnWorkerProcess(options);

  const watch = (process: WorkerChild) => {
    process.once('exit', (code, signal) => {
      exits.push({ code, signal });
      if (stopped) return;
      setTimeout(() => void restart(), restartDelayMs);
    });
  };
  const restart = async () => {
    if (stopped) return;
    try {
      child = await spawnWorkerProcess(options);
    } catch {
      // A start that failed is retried, as a supervisor would (with its own back-off).
      if (!stopped) setTimeout(() => void restart(), restartDelayMs * 5);
      return;
    }
    if (stopped) {
      await stopProcess(child, 'SIGTERM');
      return;
    }
    restarts++;
    watch(child);
    for (const waiter of waiters.filter((w) => restarts >= w.count)) waiter.resolve();
  };
  watch(child);

  return {
    current: () => child,
    restarts: () => restarts,
    exits: () => [...exits],
    waitForRestarts(count, timeoutMs = 60_000) {
      if (restarts >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the supervised worker was restarted ${restarts} times, not ${count}, within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      stopped = true;
      return stopProcess(child, signal);
    },
  };
}
