/**
 * Brings up the servers Flow runs on, on one machine, with nothing downloaded at run time:
 * PostgreSQL from Debian's package (a project-local cluster, run as the `postgres` user
 * because PostgreSQL refuses root) and the official Temporal CLI's dev server (installed by
 * scripts/install-infra.sh). Used by `npm start`, jest's global setup and `npm run bench`.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, chownSync, openSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { tcpPortFromEnv } from '../../adapters/envIntegers';
import { FLOW_SEARCH_ATTRIBUTES } from '../../workflows/searchAttributes';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** Where the dev stack keeps its state: $FLOW_HOME, else <project>/.flow (read at each use). */
const flowHome = () => process.env.FLOW_HOME ?? path.join(PROJECT_ROOT, '.flow');

const isRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL binary as `postgres` when we are root, else as ourselves. */
function runAsPostgresUser(binary: string, args: string[]): string {
  const [cmd, cmdArgs] = isRoot() ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
  return execFileSync(cmd, cmdArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
    : [];
  if (versions.length === 0) {
    throw new Error('PostgreSQL is not installed (no initdb under /usr/lib/postgresql); run scripts/install-infra.sh or set DATABASE_URL');
  }
  versions.sort((a, b) => Number(b) - Number(a));
  return path.join(base, versions[0], 'bin');
}

export interface PostgresServer {
  /** URL of the `postgres` maintenance database, for creating and dropping databases. */
  adminUrl: string;
  port: number;
  /** This call started the cluster (it was not running), so the caller stops it when done (`npm start` does). */
  started: boolean;
}

/**
 * Starts (or reuses) the project-local PostgreSQL cluster on 127.0.0.1. Idempotent: an
 * already running cluster is reused, so `npm start`, tests and benchmarks can share it.
 */
export async function ensurePostgres(port = tcpPortFromEnv(process.env, 'FLOW_PG_PORT', 54329)): Promise<PostgresServer> {
  const adminUrl = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  if (await canConnect(adminUrl)) return { adminUrl, port, started: false };

  const bin = postgresBinDir();
  const dataDir = path.join(flowHome(), 'pg', String(port));
  mkdirSync(dataDir, { recursive: true });
  if (isRoot()) {
    const pwUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const pwGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dataDir, pwUid, pwGid);
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    runAsPostgresUser(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  }
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    "-c unix_socket_directories=''",
    // Enough for 200 concurrent jobs' pools plus the API; dev-sized memory.
    '-c max_connections=400',
    '-c shared_buffers=256MB',
  ].join(' ');
  runAsPostgresUser(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-l', path.join(dataDir, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
  if (!(await canConnect(adminUrl))) throw new Error(`PostgreSQL did not accept connections on 127.0.0.1:${port}; see ${dataDir}/server.log`);
  return { adminUrl, port, started: true };
}

/** Stops the project-local cluster on `port` (fast shutdown: open sessions are disconnected). */
export function stopPostgres(port: number): void {
  const dataDir = path.join(flowHome(), 'pg', String(port));
  runAsPostgresUser(path.join(postgresBinDir(), 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
}

async function canConnect(url: string): Promise<boolean> {
  const client = new PgClient({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates a database (dropping one of the same name first when `fresh`). Returns its URL. */
export async function createDatabase(adminUrl: string, name: string, { fresh = false } = {}): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`database name must be lower-case snake_case, got ${JSON.stringify(name)}`);
  const client = new PgClient({ connectionString: adminUrl });
  await client.connect();
  try {
    if (fresh) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  return databaseUrl(adminUrl, name);
}

/** The URL of database `name` on the server `adminUrl` points at. */
export function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new PgClient({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Applies prisma/migrations with the offline, adapter-based schema engine. */
export function migrateDatabase(databaseUrl: string): void {
  execFileSync(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'prisma'), ['migrate', 'deploy'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * The Temporal CLI: $TEMPORAL_CLI_PATH, else PATH, else the copy install-infra.sh made. That script
 * installs into the project's .flow/tools whatever FLOW_HOME says (FLOW_HOME moves the stack's
 * state, not its tools), so the project's copy is looked for as well as one under $FLOW_HOME/tools.
 */
export function resolveTemporalCli(): string {
  const toolDirs = [...new Set([path.join(flowHome(), 'tools'), path.join(PROJECT_ROOT, '.flow', 'tools')])];
  const candidates = [
    process.env.TEMPORAL_CLI_PATH,
    ...(process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, 'temporal')),
    ...toolDirs.flatMap((tools) => [path.join(tools, 'venv', 'bin', 'temporal'), path.join(tools, 'go', 'bin', 'temporal')]),
  ];
  for (const candidate of candidates) {
    if (candidate && existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new Error('the Temporal CLI was not found; run scripts/install-infra.sh or set TEMPORAL_CLI_PATH');
}

export interface TemporalServer {
  address: string;
  uiUrl: string | null;
  /** The server's own Prometheus endpoint, when `metricsPort` chose its port (else the CLI picks a random one). */
  metricsUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface TemporalServerOptions {
  port?: number;
  uiPort?: number;
  /** Persist workflows in this SQLite file (survives restarts); in memory when absent. */
  dbFile?: string;
  headless?: boolean;
  logFile?: string;
  /** Extra `--dynamic-config-value` pairs, e.g. for tests that need one task-queue partition. */
  dynamicConfig?: Record<string, unknown>;
  /** The port of the server's /metrics (`--metrics-port`); without it the CLI picks a random free one. */
  metricsPort?: number;
  /**
   * Run the server in a process group of its own, so Ctrl-C in a terminal (SIGINT to the caller's
   * group) does not stop it before the caller's workers have drained; `stop()` ends it (`npm start`).
   */
  ownProcessGroup?: boolean;
}

/** Starts `temporal server start-dev` with Flow's search attributes and waits until it serves. */
export async function startTemporal(options: TemporalServerOptions = {}): Promise<TemporalServer> {
  const port = options.port ?? (await freePort());
  const uiPort = options.headless ? null : options.uiPort ?? port + 1000;
  const dynamicConfig: Record<string, unknown> = {
    // Priority and fairness dispatch (used by job priorities) are off by default on the dev server.
    'matching.useNewMatcher': true,
    'matching.enableFairness': true,
    // A draining worker's polls are answered empty, so no task is sent to it after it stops
    // taking work (deploy/temporal/dynamicconfig.yaml says why).
    'frontend.enableCancelWorkerPollsOnShutdown': true,
    ...options.dynamicConfig,
  };
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'warn'];
  if (uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.metricsPort !== undefined) args.push('--metrics-port', String(options.metricsPort));
  for (const key of FLOW_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=Keyword`);
  for (const [key, value] of Object.entries(dynamicConfig)) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);

  const logFd = options.logFile ? openSync(options.logFile, 'a') : 'ignore';
  const child = spawn(resolveTemporalCli(), args, { stdio: ['ignore', logFd, logFd], detached: options.ownProcessGroup ?? false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null) throw new Error(`temporal server start-dev exited with code ${child.exitCode}${options.logFile ? `; see ${options.logFile}` : ''}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the Temporal dev server did not listen on ${address} within 60 s`);
    }
    await sleep(200);
  }
  await waitForNamespace(address);
  return {
    address,
    uiUrl: uiPort === null ? null : `http://127.0.0.1:${uiPort}`,
    metricsUrl: options.metricsPort === undefined ? null : `http://127.0.0.1:${options.metricsPort}/metrics`,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The frontend accepts TCP before the default namespace and search attributes are ready. */
async function waitForNamespace(address: string): Promise<void> {
  const { Connection } = await import('@temporalio/client');
  const connection = await Connection.connect({ address });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const attributes = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        const custom = Object.keys(attributes.customAttributes ?? {});
        if (FLOW_SEARCH_ATTRIBUTES.every((key) => custom.includes(key.name))) return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      if (Date.now() > deadline) throw new Error('the Temporal dev server did not register the Flow search attributes');
      await sleep(200);
    }
  } finally {
    await connection.close();
  }
}

/** Something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
