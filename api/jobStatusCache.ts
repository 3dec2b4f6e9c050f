/**
 * The job rows `training.get_status` answers from, kept for a moment per API process (issue 15
 * §5). Dashboards and scripts poll status several times a second per job; each poll was one
 * PostgreSQL round trip, and the socket writes and row parsing of those round trips were most of
 * the API's CPU per call. Callers of one job within FLOW_STATUS_CACHE_TTL_MS (default 250 ms)
 * share one read, and concurrent callers share the read in flight. The row itself is written by
 * the workflow after every group, so status is at most a group plus this moment behind; a change
 * made through this process (cancel, update_budget, resume) forgets the job's copy at once.
 */
import { LRUCache } from 'lru-cache';
import { integerFromEnv } from '../adapters/envIntegers';

export const DEFAULT_STATUS_CACHE_TTL_MS = 250;
/** Jobs kept at most: a copy is tiny, and a poller of more jobs than this only reads more often. */
const STATUS_CACHE_MAX_JOBS = 10_000;

export class JobStatusCache<Row extends object> {
  private readonly rows: LRUCache<string, Promise<Row | null>> | null;

  constructor(
    private readonly load: (jobId: string) => Promise<Row | null>,
    ttlMs: number = DEFAULT_STATUS_CACHE_TTL_MS,
  ) {
    // ttlResolution 0: read the clock on every lookup. lru-cache's default (1 ms) caches the time
    // and arms a 1 ms timer to forget it: a timer per poll arriving alone.
    this.rows = ttlMs > 0 ? new LRUCache({ max: STATUS_CACHE_MAX_JOBS, ttl: ttlMs, ttlResolution: 0 }) : null;
  }

  get(jobId: string): Promise<Row | null> {
    const rows = this.rows;
    if (!rows) return this.load(jobId);
    const cached = rows.get(jobId);
    if (cached) return cached;
    const read = this.load(jobId);
    rows.set(jobId, read);
    // A job not found (yet) or a failed read is never kept: the next caller reads again.
    const drop = () => {
      if (rows.peek(jobId) === read) rows.delete(jobId);
    };
    read.then((row) => (row === null ? drop() : undefined), drop);
    return read;
  }

  /** After a change made through this process, the next read goes to the database. */
  forget(jobId: string): void {
    this.rows?.delete(jobId);
  }
}

/**
 * `build`, computed once per row object: callers within the TTL share one row read, so they share
 * what is built from it too (get_status: the stored metrics' schema checks and the answer's
 * assembly; the API's CPU per call in the closed loop went from 0.18-0.20 ms to 0.12 ms). A row
 * read again is a new object, built again.
 */
export function oncePerRow<Row extends object, Built>(build: (row: Row) => Built): (row: Row) => Built {
  const built = new WeakMap<Row, Built>();
  return (row) => {
    if (built.has(row)) return built.get(row)!;
    const value = build(row);
    built.set(row, value);
    return value;
  };
}

/** FLOW_STATUS_CACHE_TTL_MS: whole milliseconds ≥ 0 (0 turns the copies off); unset, the default. */
export function statusCacheTtlFromEnv(env: NodeJS.ProcessEnv): number {
  return integerFromEnv(env, 'FLOW_STATUS_CACHE_TTL_MS', DEFAULT_STATUS_CACHE_TTL_MS, { min: 0, max: 60_000, unit: 'ms; 0: no copies' });
}
