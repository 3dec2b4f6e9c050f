/**
 * The integration files' jest environment: node's, plus a readers-writer lock on the suite's
 * database held for the whole file (its hooks included), so that two files run side by side on
 * jest's workers except where one would disturb the other. A file whose docblock says
 * `@suiteLock exclusive (why)` runs alone: it turns the kill switch on (every running job on the
 * suite's Temporal pauses, and a job started meanwhile starts paused), probes every port on the
 * machine, or keeps both cores busy. Every other file shares the lock, and with it the Temporal
 * server, the database and the machine: such a file counts only its own jobs and rows.
 * PostgreSQL queues a new shared request behind a waiting exclusive one, so an exclusive file
 * waits at most for the files already running. The lock is a session-level advisory lock: a jest
 * worker that dies drops it with its connection. The sequencer in tests/support/suiteLock.js runs
 * the exclusive files back to back.
 */
import { TestEnvironment } from 'jest-environment-node';
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import { Client as PgClient } from 'pg';

export type SuiteLockMode = 'shared' | 'exclusive';

// Plain JavaScript, shared with the sequencer that jest loads untransformed.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const suiteLock = require('./suiteLock') as {
  SUITE_LOCK_KEY: number;
  suiteLockMode(pragmas: Record<string, string | string[]>, testPath: string): SuiteLockMode;
  fileLockMode(testPath: string): SuiteLockMode;
};
export const { SUITE_LOCK_KEY, suiteLockMode, fileLockMode } = suiteLock;

export default class SuiteEnvironment extends TestEnvironment {
  private readonly mode: SuiteLockMode;
  private lock: PgClient | null = null;
  private lost: Error | undefined;

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    this.mode = suiteLockMode(context.docblockPragmas, context.testPath);
  }

  override async setup(): Promise<void> {
    await super.setup();
    // DATABASE_URL is the suite's database, set by globalSetup before any worker starts.
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('DATABASE_URL is not set: the integration project runs tests/support/globalSetup.ts first');
    const lock = new PgClient({ connectionString: url, application_name: `jest suite lock (${this.mode})` });
    // A session lost mid-file is a lost lock: the file fails at teardown rather than pass unguarded.
    lock.on('error', (error) => (this.lost ??= error));
    this.lock = lock;
    await lock.connect();
    await lock.query(this.mode === 'exclusive' ? 'SELECT pg_advisory_lock($1)' : 'SELECT pg_advisory_lock_shared($1)', [SUITE_LOCK_KEY]);
  }

  override async teardown(): Promise<void> {
    const lock = this.lock;
    this.lock = null;
    // Closing the session releases its advisory locks (and a connection that failed to lock is closed too).
    await lock?.end().catch(() => undefined);
    await super.teardown();
    if (this.lost) throw new Error(`the suite lock's PostgreSQL session was lost during the file: ${this.lost.message}`);
  }
}
