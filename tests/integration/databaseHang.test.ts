/**
 * A PostgreSQL that hangs (stopped with SIGSTOP, a network partition: connections stay open and
 * nothing answers) rather than refusing connections. The API reaches the suite's real PostgreSQL
 * through a TCP relay the test can freeze: while it is frozen, calls answer -32050 after the
 * query timeout instead of hanging; once it thaws, they answer again by themselves.
 */
import net from 'node:net';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { startHarness, requireEnv, type Harness } from '../support/harness';
import { rpcError, startApiHarness, type ApiHarness } from '../support/apiHarness';

const TIMEOUT_MS = 1_500;

/** A PostgreSQL ErrorResponse (FATAL, with its SQLSTATE), as a server sends it to a new connection it will not serve. */
function fatalError(sqlstate: string, message: string): Buffer {
  const fields = Buffer.concat([...['SFATAL', 'VFATAL', `C${sqlstate}`, `M${message}`].map((field) => Buffer.from(`${field}\0`)), Buffer.from([0])]);
  const header = Buffer.alloc(5);
  header.write('E', 0);
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

/**
 * Relays TCP to `target`; `freeze()` stops passing bytes both ways (and connecting) until `thaw()`.
 * `restarting()` drops every connection and answers new ones as a PostgreSQL that is starting up
 * does (FATAL 57P03), until `thaw()`.
 */
async function freezableRelay(target: { host: string; port: number }) {
  let frozen = false;
  let refusal: Buffer | null = null;
  const sockets = new Set<net.Socket>();
  const waiting: (() => void)[] = [];
  const server = net.createServer((client) => {
    sockets.add(client);
    if (refusal) {
      const answer = refusal;
      client.once('data', () => client.end(answer));
      client.on('error', () => undefined);
      return;
    }
    const start = () => {
      const upstream = net.connect(target);
      sockets.add(upstream);
      for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
        from.on('data', (chunk) => {
          if (!frozen) return void to.write(chunk);
          // Held, not dropped: a thawed relay delivers what came in meanwhile, as a resumed server would.
          from.pause();
          waiting.push(() => {
            to.write(chunk);
            from.resume();
          });
        });
        from.on('close', () => to.destroy());
        from.on('error', () => to.destroy());
      }
    };
    if (frozen) waiting.push(start);
    else start();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze: () => {
      frozen = true;
    },
    restarting: () => {
      refusal = fatalError('57P03', 'the database system is starting up');
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    thaw: () => {
      frozen = false;
      refusal = null;
      for (const resume of waiting.splice(0)) resume();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let h: Harness;
let api: ApiHarness;
let relay: Awaited<ReturnType<typeof freezableRelay>>;
let prisma: ReturnType<typeof createPrismaClient>;
/** A client with the defaults every process uses. */
let createdWithDefaults: ReturnType<typeof createPrismaClient>;

beforeAll(async () => {
  h = await startHarness();
  const url = new URL(requireEnv('DATABASE_URL'));
  relay = await freezableRelay({ host: url.hostname, port: Number(url.port || 5432) });
  url.hostname = '127.0.0.1';
  url.port = String(relay.port);
  prisma = createPrismaClient(url.toString(), { poolSize: 2, queryTimeoutMs: TIMEOUT_MS, connectTimeoutMs: TIMEOUT_MS });
  api = await startApiHarness({ harness: { ...h, prisma, repos: createRepositories(prisma) } });
  createdWithDefaults = createPrismaClient(requireEnv('DATABASE_URL'), { poolSize: 1 });
});
afterAll(async () => {
  relay?.thaw();
  await api?.close();
  await prisma?.$disconnect();
  await createdWithDefaults?.$disconnect();
  await relay?.close();
  await h?.close();
});

/** Waits until calls answer again (at most 10 s): the pool drops the connections that failed and makes new ones. */
async function answersAgain(client: Awaited<ReturnType<ApiHarness['client']>>): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const answer = await client.listJobs({ limit: 1 }).catch((e: unknown) => e);
    if (!(answer instanceof Error)) return;
    if (Date.now() > deadline) throw answer;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('calls answer -32050 within the query timeout while PostgreSQL hangs, and answer again once it is back', async () => {
  const client = await api.client();
  expect(await client.listJobs({ limit: 1 })).toMatchObject({ jobs: expect.any(Array) });

  relay.freeze();
  // More calls than pooled connections: those waiting for a connection are bounded too.
  const calls = Array.from({ length: 4 }, async () => {
    const started = Date.now();
    const error = await rpcError(client.listJobs({ limit: 1 }));
    return { error, ms: Date.now() - started };
  });
  for (const { error, ms } of await Promise.all(calls)) {
    expect(error.code).toBe(-32050);
    // Bounded, not hung (the test's own limit is 60 s); loose enough for a loaded 2-core machine.
    expect(ms).toBeLessThan(8 * TIMEOUT_MS);
  }

  relay.thaw();
  await answersAgain(client);
}, 60_000);

test('while PostgreSQL is starting up (FATAL 57P03 to every new connection), calls answer -32050, not an internal error', async () => {
  const client = await api.client();
  expect(await client.listJobs({ limit: 1 })).toMatchObject({ jobs: expect.any(Array) });

  relay.restarting();
  const errors = [];
  for (let i = 0; i < 6; i += 1) errors.push(await rpcError(client.listJobs({ limit: 1 })));
  expect(errors.map((error) => [error.code, error.message])).toEqual(errors.map(() => [-32050, 'Service unavailable: Temporal or PostgreSQL did not answer; retry later']));

  relay.thaw();
  await answersAgain(client);
}, 60_000);

test("a stall that outlasts a transaction's COMMIT or ROLLBACK does not cost the pool its connection: a pool of one answers again once PostgreSQL does", async () => {
  const url = new URL(requireEnv('DATABASE_URL'));
  url.hostname = '127.0.0.1';
  url.port = String(relay.port);
  const single = createPrismaClient(url.toString(), { poolSize: 1, queryTimeoutMs: TIMEOUT_MS, connectTimeoutMs: TIMEOUT_MS });
  try {
    await single.$queryRaw`SELECT 1`;
    const stalls = {
      // The transaction's work is done; PostgreSQL stalls before its COMMIT is answered.
      commit: () => single.$transaction(async (tx) => { await tx.$queryRaw`SELECT 1`; relay.freeze(); }, { timeout: 20_000 }),
      // A statement inside it times out; the ROLLBACK that follows times out too.
      rollback: () => single.$transaction(async (tx) => { relay.freeze(); await tx.$queryRaw`SELECT 1`; }, { timeout: 20_000 }),
    };
    for (const [close, stall] of Object.entries(stalls)) {
      await expect(stall()).rejects.toThrow();
      relay.thaw();
      // Before, the pool's only connection was never handed back: every later query waited for one
      // and failed ("timeout exceeded when trying to connect") until the process restarted.
      const started = Date.now();
      await expect(single.$queryRaw`SELECT 1 AS answered`).resolves.toEqual([{ answered: 1 }]);
      // It may open a new connection first; before, it never answered.
      expect({ close, answeredInTime: Date.now() - started < 5_000 }).toEqual({ close, answeredInTime: true });
    }
  } finally {
    relay.thaw();
    await single.$disconnect();
  }
}, 60_000);

test('PostgreSQL is told the limits too (statement_timeout, idle_in_transaction_session_timeout): a transaction left idle is ended, freeing its locks', async () => {
  const { poolOf } = await import('../../adapters/db/prismaClient');
  const url = requireEnv('DATABASE_URL');
  const limited = createPrismaClient(url, { poolSize: 2, queryTimeoutMs: 60_000, idleInTransactionTimeoutMs: 1_000 });
  const other = createPrismaClient(url, { poolSize: 1 });
  try {
    const settings = await poolOf(createdWithDefaults).query("SELECT current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle");
    expect(settings.rows[0]).toEqual({ statement: '30s', idle: '1min' });

    // A transaction that takes a row lock and is then abandoned (its COMMIT never sent, as after a stall).
    await poolOf(other).query('CREATE TABLE IF NOT EXISTS idle_tx_probe (id int PRIMARY KEY)');
    await poolOf(other).query('INSERT INTO idle_tx_probe VALUES (1) ON CONFLICT DO NOTHING');
    const abandoned = await poolOf(limited).connect();
    abandoned.on('error', () => undefined); // the server ends the session: expected
    await abandoned.query('BEGIN');
    await abandoned.query('SELECT id FROM idle_tx_probe WHERE id = 1 FOR UPDATE');
    // Another session can take the lock once the server has ended the idle transaction (1 s), well before a test timeout.
    const started = Date.now();
    await poolOf(other).query("SET lock_timeout = '10s'");
    await poolOf(other).query('SELECT id FROM idle_tx_probe WHERE id = 1 FOR UPDATE');
    expect(Date.now() - started).toBeLessThan(8_000);
    abandoned.release(true);
  } finally {
    await limited.$disconnect();
    await other.$disconnect();
  }
}, 30_000);
