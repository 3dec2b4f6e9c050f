/**
 * The integration files' jest environment: node's, plus a readers-writer lock on the suite's
 * database held for the whole file (its hooks included), so that two files run side by side on
 * jest's workers except where one would disturb the other. A file whose docblock says
 * `@suiteLock exclusive (why)` runs alone: it disturbs the whole machine, as the real model does
 * by keeping both cores busy. Every other file shares the lock, and with it the Temporal server, the database and
 * the machine: such a file counts only its own jobs and rows. PostgreSQL queues a new shared
 * request behind a waiting exclusive one, so an exclusive file waits at most for the files already
 * running. The lock is a session-level advisory lock: a jest worker that dies drops it with its
 * connection. The sequencer in tests/support/suiteLock.js runs the exclusive files back to back.
 *
 * A file whose docblock says `@suiteLock isolated (why)` shares the lock but gets a Flow install
 * of its own: a fresh, migrated database and a Temporal namespace with Flow's search attributes,
 * named in its DATABASE_URL and TEMPORAL_NAMESPACE. That is for the files that turn the kill
 * switch on: the switch is global to an install (its setting lives in the database, and it is
 * sent to every running job on the namespace), so in an install of their own it reaches only
 * their jobs. The database is dropped after the file; the namespace stays, and goes with the
 * suite's Temporal server (in memory, or the cluster's databases, which are dropped).
 */
import { TestEnvironment } from 'jest-environment-node';
import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import { randomBytes } from 'node:crypto';
import { Client as PgClient } from 'pg';
import { Connection } from '@temporalio/client';
import { checkFlowNamespace } from '../../deploy/registerSearchAttributes';
import { ensureNamespace } from '../../scripts/temporal-cluster';
import { createDatabase, dropDatabase, migrateDatabase } from '../../workers/dev/devStack';
import { ISOLATED_INSTALL_ENV } from './isolatedInstall';
import { requireEnv } from './requireEnv';

export type SuiteLockMode = 'shared' | 'exclusive' | 'isolated';

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
  private ownDatabase: string | undefined;

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    this.mode = suiteLockMode(context.docblockPragmas, context.testPath);
  }

  override async setup(): Promise<void> {
    await super.setup();
    // DATABASE_URL is the suite's database, set by globalSetup before any worker starts.
    const url = requireEnv('DATABASE_URL');
    const lock = new PgClient({ connectionString: url, application_name: `jest suite lock (${this.mode})` });
    // A session lost mid-file is a lost lock: the file fails at teardown rather than pass unguarded.
    lock.on('error', (error) => (this.lost ??= error));
    this.lock = lock;
    await lock.connect();
    await lock.query(this.mode === 'exclusive' ? 'SELECT pg_advisory_lock($1)' : 'SELECT pg_advisory_lock_shared($1)', [SUITE_LOCK_KEY]);
    if (this.mode === 'isolated') await this.installOwnFlow();
  }

  /** A database and a namespace for this file alone, named in the file's (not the worker's) environment. */
  private async installOwnFlow(): Promise<void> {
    const adminUrl = requireEnv('FLOW_TEST_ADMIN_URL');
    const suffix = randomBytes(4).toString('hex');
    // Named after the suite's database, so globalTeardown drops whatever a crashed file left.
    this.ownDatabase = `${requireEnv('FLOW_TEST_DATABASE_NAME')}_iso_${suffix}`;
    const databaseUrl = await createDatabase(adminUrl, this.ownDatabase, { fresh: true });
    migrateDatabase(databaseUrl);
    const namespace = `flow-isolated-${suffix}`;
    const address = requireEnv('TEMPORAL_ADDRESS');
    // Created with Flow's search attributes, retried while the frontend's namespace cache catches
    // up; then ready by what the API checks before a start.
    await ensureNamespace(address, namespace, 1, () => undefined);
    const connection = await Connection.connect({ address });
    try {
      await checkFlowNamespace(connection, namespace);
    } finally {
      await connection.close();
    }
    Object.assign(this.global.process.env, { DATABASE_URL: databaseUrl, TEMPORAL_NAMESPACE: namespace, [ISOLATED_INSTALL_ENV]: '1' });
  }

  override async teardown(): Promise<void> {
    const lock = this.lock;
    this.lock = null;
    // Dropped WITH (FORCE), so a connection the file left open does not keep it; a failure to drop
    // is reported after the lock is released (globalTeardown drops it again by its name).
    const dropError = this.ownDatabase ? await dropDatabase(requireEnv('FLOW_TEST_ADMIN_URL'), this.ownDatabase).then(() => undefined, (error: Error) => error) : undefined;
    // Closing the session releases its advisory locks (and a connection that failed to lock is closed too).
    await lock?.end().catch(() => undefined);
    await super.teardown();
    if (this.lost) throw new Error(`the suite lock's PostgreSQL session was lost during the file: ${this.lost.message}`);
    if (dropError) throw new Error(`the file's own database ${this.ownDatabase} could not be dropped: ${dropError.message}`);
  }
}

