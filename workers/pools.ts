/**
 * Worker pools: one Temporal Worker per task queue (workflows/taskQueues.ts), each with its own
 * concurrency, and the group of them one process runs. `FLOW_WORKER_POOL` picks the pools a
 * process polls (`all` by default: one process serves a whole deployment, as `npm start` and
 * the tests need); in a cluster each pool is a Deployment of its own and scales on its own.
 */
import { z } from 'zod';
import type { State, Worker, WorkerOptions } from '@temporalio/worker';
import { WORKER_POOLS, type WorkerPoolName } from '../workflows/taskQueues';
import { integerFromEnv } from '../adapters/envIntegers';

export { WORKER_POOLS, type WorkerPoolName };

/** The per-pool knobs (the rest of the worker options are the same for every pool). */
export type PoolSettings = Pick<
  WorkerOptions,
  | 'maxConcurrentWorkflowTaskExecutions'
  | 'maxConcurrentActivityTaskExecutions'
  | 'maxCachedWorkflows'
  | 'workflowTaskPollerBehavior'
  | 'activityTaskPollerBehavior'
>;

/**
 * Defaults sized for one 2-core machine running everything. Trajectories mostly wait on the
 * LLM, so many run at once; CPU/database work is bounded by cores and the database pool.
 */
export const DEFAULT_POOL_SETTINGS: Record<WorkerPoolName, PoolSettings> = {
  workflow: { maxConcurrentWorkflowTaskExecutions: 100 },
  trajectory: { maxConcurrentActivityTaskExecutions: 200 },
  cpu: { maxConcurrentActivityTaskExecutions: 50 },
};

/** Environment variable → pool and option it sets. */
export const POOL_ENV = {
  FLOW_WORKFLOW_MAX_CONCURRENT_TASKS: ['workflow', 'maxConcurrentWorkflowTaskExecutions'],
  FLOW_WORKFLOW_MAX_CACHED: ['workflow', 'maxCachedWorkflows'],
  FLOW_TRAJECTORY_MAX_CONCURRENT_ACTIVITIES: ['trajectory', 'maxConcurrentActivityTaskExecutions'],
  FLOW_CPU_MAX_CONCURRENT_ACTIVITIES: ['cpu', 'maxConcurrentActivityTaskExecutions'],
} as const satisfies Record<string, [WorkerPoolName, keyof PoolSettings]>;

export class WorkerPoolConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerPoolConfigError';
  }
}

const PoolSelectionSchema = z.enum(['all', ...WORKER_POOLS]);

/**
 * `FLOW_WORKER_POOL`: `all` (default), one pool, or a comma-separated list of pools. Returns
 * the pools in a stable order, each once.
 */
export function parsePoolSelection(value: string | undefined): WorkerPoolName[] {
  const names = (value ?? '').split(',').map((name) => name.trim()).filter(Boolean);
  if (names.length === 0) return [...WORKER_POOLS];
  const chosen = new Set<WorkerPoolName>();
  for (const name of names) {
    const parsed = PoolSelectionSchema.safeParse(name);
    if (!parsed.success) {
      throw new WorkerPoolConfigError(`FLOW_WORKER_POOL: unknown pool ${JSON.stringify(name)}; use all, ${WORKER_POOLS.join(', ')} or a comma-separated list of them`);
    }
    if (parsed.data === 'all') WORKER_POOLS.forEach((pool) => chosen.add(pool));
    else chosen.add(parsed.data);
  }
  return WORKER_POOLS.filter((pool) => chosen.has(pool));
}

const COUNT_RANGE = { min: 1, max: 100_000 };
/** maxCachedWorkflows may be 0 (no sticky cache: every workflow task replays its history). */
const CACHE_RANGE = { min: 0, max: 1_000_000, unit: '0: no sticky cache' };

/** The per-pool settings, defaults overridden by the environment (see POOL_ENV). */
export function poolSettingsFromEnv(env: NodeJS.ProcessEnv): Record<WorkerPoolName, PoolSettings> {
  const settings: Record<WorkerPoolName, PoolSettings> = {
    workflow: { ...DEFAULT_POOL_SETTINGS.workflow },
    trajectory: { ...DEFAULT_POOL_SETTINGS.trajectory },
    cpu: { ...DEFAULT_POOL_SETTINGS.cpu },
  };
  for (const [variable, [pool, option]] of Object.entries(POOL_ENV)) {
    const current = (settings[pool] as Record<string, number>)[option];
    try {
      (settings[pool] as Record<string, number>)[option] = integerFromEnv(env, variable, current, option === 'maxCachedWorkflows' ? CACHE_RANGE : COUNT_RANGE);
    } catch (error) {
      throw new WorkerPoolConfigError((error as Error).message);
    }
  }
  return settings;
}

export interface PoolWorker {
  pool: WorkerPoolName;
  worker: Worker;
}

const ENDED: State[] = ['STOPPED', 'FAILED'];

/**
 * The Workers of one process, run and stopped together, with the part of Worker's interface
 * callers use (`run`, `runUntil`, `shutdown`, `getState`). When one Worker fails,
 * the others are shut down (draining their in-flight work) and the failure is reported.
 */
export class WorkerGroup {
  private running: Promise<void> | null = null;

  constructor(readonly members: PoolWorker[]) {
    if (members.length === 0) throw new WorkerPoolConfigError('a worker group needs at least one pool');
  }

  get taskQueues(): string[] {
    return this.members.map((m) => m.worker.options.taskQueue);
  }

  /**
   * RUNNING when every member runs; STOPPED or FAILED only when every member has ended (FAILED
   * if any failed), so a caller waiting for the end never sees it early; else the first
   * member's state that is neither.
   */
  getState(): State {
    const states = this.members.map((m) => m.worker.getState());
    if (states.every((s) => s === 'RUNNING')) return 'RUNNING';
    if (states.every((s) => ENDED.includes(s))) return states.includes('FAILED') ? 'FAILED' : 'STOPPED';
    if (states.every((s) => s === 'INITIALIZED')) return 'INITIALIZED';
    return states.find((s) => s !== 'RUNNING' && !ENDED.includes(s) && s !== 'INITIALIZED') ?? 'STOPPING';
  }

  /** Runs every member until all have stopped (on shutdown(), SIGINT/SIGTERM, or a failure). */
  run(): Promise<void> {
    if (this.running) throw new Error('this worker group is already running (a group runs once)');
    const runs = this.members.map(({ pool, worker }) =>
      worker.run().catch((error: unknown) => {
        this.shutdown();
        throw Object.assign(error instanceof Error ? error : new Error(String(error)), { pool });
      }),
    );
    this.running = Promise.allSettled(runs).then((results) => {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    return this.running;
  }

  /** Runs until `fn` settles, then drains and stops; rejects early if a member fails. */
  async runUntil<R>(fn: Promise<R> | (() => Promise<R>)): Promise<R> {
    const run = this.run();
    const work = typeof fn === 'function' ? fn() : fn;
    try {
      return await Promise.race([
        work,
        run.then(() => {
          throw new Error('the worker group stopped before the work it was running for finished');
        }),
      ]);
    } finally {
      this.shutdown();
      await run.catch(() => undefined);
      // A member's failure wins over the work's own outcome, as with Worker.runUntil.
      await run;
    }
  }

  /** Starts a graceful shutdown of every member still running (idempotent). */
  shutdown(): void {
    for (const { worker } of this.members) if (worker.getState() === 'RUNNING') worker.shutdown();
  }
}
