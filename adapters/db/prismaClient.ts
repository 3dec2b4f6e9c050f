import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, type PoolClient } from 'pg';
import { PrismaClient } from '../../generated/prisma/client';

export type { PrismaClient };

/** The node-postgres pool under each client from `createPrismaClient`, for the repositories' raw hot paths. */
const pools = new WeakMap<PrismaClient, Pool>();

/**
 * How long a query may wait for PostgreSQL's answer; how long a caller may wait for a connection
 * (a free one from the pool, or a new one's handshake: node-postgres bounds both with one
 * setting, so it is as long as a query may take, not a handshake's few seconds).
 */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * A Prisma client on the node-postgres driver adapter, with the query compiler: no native
 * engine is loaded. `poolSize` bounds this process's connections: the pool is created here and
 * shared by Prisma and `poolOf(client)`, and `$disconnect()` ends it. A PostgreSQL that hangs
 * (stopped, not down: connections stay open and nothing answers) fails queries after
 * `queryTimeoutMs` and connection attempts after `connectTimeoutMs`, instead of holding every
 * caller forever; a refused connection fails at once either way.
 *
 * The query timeout is the client's own timer: the server does not know of it. So PostgreSQL is
 * told the same limit (statement_timeout), and to end a session left idle inside a transaction
 * (idle_in_transaction_session_timeout, twice the query timeout): when a stall outlasts a
 * transaction's COMMIT or ROLLBACK, Prisma's runtime never hands that connection back, and without
 * this its transaction would stay open on the server once PostgreSQL resumed, holding its row locks
 * (a job row's, stopping every later update of that job) until the worker restarted. That
 * connection is now closed at once, and its pool slot freed (`releasingFailedCloses`).
 */
export function createPrismaClient(
  databaseUrl = requireDatabaseUrl(),
  {
    poolSize = 10,
    queryTimeoutMs = DEFAULT_QUERY_TIMEOUT_MS,
    connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
    idleInTransactionTimeoutMs = 2 * queryTimeoutMs,
  }: { poolSize?: number; queryTimeoutMs?: number; connectTimeoutMs?: number; idleInTransactionTimeoutMs?: number } = {},
): PrismaClient {
  const pool = new Pool({
    connectionString: databaseUrl,
    max: poolSize,
    query_timeout: queryTimeoutMs,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: queryTimeoutMs,
    idle_in_transaction_session_timeout: idleInTransactionTimeoutMs,
  });
  // Listened to here rather than through the adapter's onPoolError, which attaches only once
  // Prisma connects: an idle client's error before that would otherwise crash the process.
  pool.on('error', (error) => console.error(`postgres pool error: ${error.message}`));
  const adapter = new PrismaPg(pool, { disposeExternalPool: true });
  const connect = adapter.connect.bind(adapter);
  adapter.connect = async () => releasingFailedCloses(await connect());
  const prisma = new PrismaClient({ adapter });
  pools.set(prisma, pool);
  return prisma;
}

type PgDriverAdapter = Awaited<ReturnType<PrismaPg['connect']>>;

/**
 * Prisma's runtime ends a transaction by sending COMMIT (or ROLLBACK) and only then hands its
 * connection back to the pool; when that statement fails (a PostgreSQL stall outlasting the query
 * timeout), it never does, and the pool lost the slot until the process restarted (two stalls
 * with the API's pool of 10 would leave 8). Here a failed COMMIT or ROLLBACK releases the
 * connection with its error, which makes the pool close it and open a new one when needed: its
 * transaction state is unknown, so it must not be reused.
 */
function releasingFailedCloses(driver: PgDriverAdapter): PgDriverAdapter {
  const startTransaction = driver.startTransaction.bind(driver);
  driver.startTransaction = async (isolationLevel) => {
    const transaction = await startTransaction(isolationLevel);
    const executeRaw = transaction.executeRaw.bind(transaction);
    transaction.executeRaw = async (query) => {
      try {
        return await executeRaw(query);
      } catch (error) {
        if (query.sql === 'COMMIT' || query.sql === 'ROLLBACK') {
          // The adapter's transaction keeps its pool client as `client` (protected in its types).
          // A failure to release (already released) must not hide the statement's own error.
          const { client } = transaction as unknown as { client?: PoolClient };
          try {
            client?.release(error instanceof Error ? error : new Error(String(error)));
          } catch {
            // the pool has it back already
          }
        }
        throw error;
      }
    };
    return transaction;
  };
  return driver;
}

/** The pool under a client made by `createPrismaClient`. */
export function poolOf(prisma: PrismaClient): Pool {
  const pool = pools.get(prisma);
  if (!pool) throw new Error('this PrismaClient was not made by createPrismaClient, so it has no shared pg pool');
  return pool;
}

export function requireDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set; start the stack with `npm start` or export a PostgreSQL URL');
  return url;
}
