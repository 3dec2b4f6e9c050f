/**
 * Training is batch work; the API's answers, the Temporal server and PostgreSQL are what people
 * wait on. Where they share cores with a worker (one host, `npm start`-style, a small VM), a
 * worker at the default priority takes its full share and an API call waits for a core: on 2
 * cores with 20 jobs training, get_status at 400 requests a second had p95 16.8 ms with the
 * worker at nice 0 and 7.6 ms at nice 10 (tests/perf/getStatusLoad.ts). So a worker lowers its
 * own CPU priority (FLOW_WORKER_NICE, 0–19, default 10): it still gets every core nobody else
 * wants, and gives way when somebody does. On a node of its own it changes nothing.
 *
 * Linux keeps a nice value per thread, and a thread starts with its creator's: every thread the
 * process has is lowered (libuv's pool, V8's, Temporal core's runtime) and those started later
 * inherit it. Never raised: a worker already started under `nice` keeps its lower priority.
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { integerFromEnv } from '../adapters/envIntegers';

export const DEFAULT_WORKER_NICE = 10;

/** FLOW_WORKER_NICE, checked: an integer 0–19 (0: the worker competes as an equal). */
export function workerNiceFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return integerFromEnv(env, 'FLOW_WORKER_NICE', DEFAULT_WORKER_NICE, { min: 0, max: 19, unit: 'a nice value' });
}

/** Lowers every thread of this process to `nice` (never raises one); returns how many it changed. */
export function lowerCpuPriority(nice: number): number {
  let threads: number[];
  try {
    threads = readdirSync('/proc/self/task').map(Number);
  } catch {
    // Not Linux: the process's priority is the one there is.
    threads = [0];
  }
  let changed = 0;
  for (const thread of threads) {
    try {
      if (os.getPriority(thread) >= nice) continue;
      os.setPriority(thread, nice);
      changed++;
    } catch {
      // A thread that ended meanwhile.
    }
  }
  return changed;
}
