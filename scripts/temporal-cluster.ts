/**
 * A production-mode Temporal on one machine: `temporal-server` built from its Go module at a
 * pinned version (cached under .flow/tools/temporal-server/<version>, built once, offline except
 * for the Go module proxy), PostgreSQL persistence and SQL visibility in devStack's project-local
 * cluster (schemas set up and updated with temporal-sql-tool, no auto-setup), and the frontend,
 * history, matching and worker services as four separate processes, each with its own config file
 * (its own metrics port). Then the namespace is created and Flow's search attributes registered.
 *
 * Used by `npm run temporal:cluster -- start|stop|status` (the end of this file), by
 * jest's global setup when FLOW_TEST_TEMPORAL=cluster, and by the cluster benchmark, which
 * SIGKILLs and restarts services mid-run (`kill`, `restart`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { registerSearchAttributes } from '../deploy/registerSearchAttributes';
import { integerFromEnv } from '../adapters/envIntegers';
import { createDatabase, ensurePostgres, listening, PROJECT_ROOT, sleep, type PostgresServer } from '../workers/dev/devStack';

/** The server version the cluster, compose and the Helm docs use. */
export const TEMPORAL_SERVER_VERSION = 'v1.31.2';
/** Start order: history and matching first, so the frontend finds them in the ring. */
export const CLUSTER_SERVICES = ['history', 'matching', 'frontend', 'worker'] as const;
export type ClusterService = (typeof CLUSTER_SERVICES)[number];

/** Ports relative to the frontend's gRPC port: [gRPC, membership, metrics] per service. */
const PORT_OFFSETS: Record<ClusterService, [number, number, number]> = {
  frontend: [0, 2, 3],
  history: [10, 11, 12],
  matching: [20, 21, 22],
  worker: [30, 31, 32],
};
/** The frontend's HTTP API: base + 1. */
const HTTP_OFFSET = 1;

const flowHome = () => process.env.FLOW_HOME ?? path.join(PROJECT_ROOT, '.flow');

export interface ClusterBinaries {
  server: string;
  sqlTool: string;
  /** The server module's source (schemas) in the Go module cache. */
  moduleDir: string;
}

/**
 * The server and sql tool at TEMPORAL_SERVER_VERSION: reused when present, else built with
 * `go install` into the project-local cache (~5 minutes on an idle 2-core machine, 16 measured under load; the module cache is reused).
 */
export function ensureServerBinaries(log: (line: string) => void = () => undefined): ClusterBinaries {
  const binDir = path.join(flowHome(), 'tools', 'temporal-server', TEMPORAL_SERVER_VERSION, 'bin');
  const server = path.join(binDir, 'server');
  const sqlTool = path.join(binDir, 'sql');
  const go = process.env.FLOW_GO ?? 'go';
  if (!existsSync(server) || !existsSync(sqlTool)) {
    log(`building temporal-server ${TEMPORAL_SERVER_VERSION} and temporal-sql-tool from the Go module into ${binDir} (once; ~5 minutes on an idle 2-core machine, more under load)`);
    const started = Date.now();
    mkdirSync(binDir, { recursive: true });
    try {
      execFileSync(go, ['install', `go.temporal.io/server/cmd/server@${TEMPORAL_SERVER_VERSION}`, `go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`], {
        env: { ...process.env, GOBIN: binDir, GOFLAGS: '-mod=mod' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(-5).join('\n');
      throw new Error(`go install of temporal-server ${TEMPORAL_SERVER_VERSION} failed (needs Go ≥ 1.23 and the Go module proxy): ${stderr ?? (error as Error).message}`);
    }
    log(`built in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  const modCache = execFileSync(go, ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  const moduleDir = path.join(modCache, `go.temporal.io/server@${TEMPORAL_SERVER_VERSION}`);
  if (!existsSync(path.join(moduleDir, 'schema'))) {
    // Binaries copied from elsewhere, module cache cleaned: fetch the source (schemas) again.
    execFileSync(go, ['mod', 'download', `go.temporal.io/server@${TEMPORAL_SERVER_VERSION}`], { stdio: 'ignore' });
  }
  return { server, sqlTool, moduleDir };
}

export interface ClusterOptions {
  /** The cluster's folder under .flow/temporal-cluster (pid files, configs, logs); default `default`. */
  name?: string;
  /** The frontend's gRPC port; the other services use base+1 … base+32. Default FLOW_TEMPORAL_CLUSTER_PORT or 7600. */
  basePort?: number;
  /** Namespace to create with Flow's search attributes; default TEMPORAL_NAMESPACE or `default`. */
  namespace?: string;
  /** Retention of closed workflows in the namespace. */
  retentionDays?: number;
  /** Persistence database; visibility is `<database>_visibility`. Default `temporal`. */
  database?: string;
  /** Drop both databases first (tests, benchmarks). */
  fresh?: boolean;
  /** Keys added to deploy/temporal/dynamicconfig.yaml for this cluster. */
  dynamicConfig?: Record<string, unknown>;
  numHistoryShards?: number;
  log?: (line: string) => void;
}

export interface TemporalCluster {
  address: string;
  namespace: string;
  uiUrl: null;
  dir: string;
  /** Metrics endpoints per service (Prometheus text), all on 127.0.0.1. */
  metricsUrls: Record<ClusterService, string>;
  pid(service: ClusterService): number | null;
  /** Sends `signal` to one service (the benchmark SIGKILLs history and matching). */
  kill(service: ClusterService, signal?: NodeJS.Signals): Promise<void>;
  /** Starts one service again (after `kill`) and waits for its port. */
  restart(service: ClusterService): Promise<void>;
  stop(): Promise<void>;
}

interface ClusterState {
  basePort: number;
  namespace: string;
  database: string;
  pids: Partial<Record<ClusterService, number>>;
}

/** A base port whose 33 ports (frontend … worker, metrics included) are all free, from `start` up in steps of 100. */
export async function freeBasePort(start = 7700): Promise<number> {
  for (let base = start; base < 30_000; base += 100) {
    const ports = CLUSTER_SERVICES.flatMap((s) => Object.values(portsOf(base, s))).concat(base + HTTP_OFFSET);
    if (!(await Promise.all(ports.map(listening))).some(Boolean)) return base;
  }
  throw new Error(`no free block of ports for a Temporal cluster from ${start}`);
}

export function clusterDir(name = 'default'): string {
  return path.join(flowHome(), 'temporal-cluster', name);
}

function portsOf(basePort: number, service: ClusterService) {
  const [grpc, membership, metrics] = PORT_OFFSETS[service];
  return { grpc: basePort + grpc, membership: basePort + membership, metrics: basePort + metrics };
}

/** Sets up (or updates) the schema of both databases with temporal-sql-tool; idempotent. */
export async function setupSchemas(postgres: PostgresServer, binaries: ClusterBinaries, database: string, fresh = false): Promise<void> {
  const schemaRoot = path.join(binaries.moduleDir, 'schema', 'postgresql', 'v12');
  for (const [db, dir] of [
    [database, 'temporal'],
    [`${database}_visibility`, 'visibility'],
  ] as const) {
    await createDatabase(postgres.adminUrl, db, { fresh });
    const common = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '-p', String(postgres.port), '-u', 'postgres', '--db', db];
    // setup-schema -v 0.0 creates the version table only (a no-op when it exists); update-schema
    // applies every versioned step not yet applied: the same two commands upgrade a server.
    runSqlTool(binaries.sqlTool, [...common, 'setup-schema', '-v', '0.0']);
    runSqlTool(binaries.sqlTool, [...common, 'update-schema', '-d', path.join(schemaRoot, dir, 'versioned')]);
  }
}

function runSqlTool(sqlTool: string, args: string[]): void {
  try {
    execFileSync(sqlTool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    const stdout = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    throw new Error(`temporal-sql-tool ${args.slice(-3).join(' ')} failed: ${(stderr + stdout).trim().split('\n').slice(-3).join(' | ')}`);
  }
}

/** The server config of one service process; only the metrics port differs between them. */
export function serviceConfig(options: { basePort: number; pgPort: number; database: string; dynamicConfigFile: string; metricsPort: number; numHistoryShards: number }): string {
  const { basePort, pgPort, database } = options;
  const store = (name: string, maxConns: number) => `
    ${name}:
      sql:
        pluginName: postgres12
        databaseName: ${name === 'default' ? database : `${database}_visibility`}
        connectAddr: "127.0.0.1:${pgPort}"
        connectProtocol: tcp
        user: postgres
        password: ""
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (s: ClusterService) => {
    const p = portsOf(basePort, s);
    return `
  ${s}:
    rpc:
      grpcPort: ${p.grpc}
      membershipPort: ${p.membership}
      bindOnIP: 127.0.0.1${s === 'frontend' ? `\n      httpPort: ${basePort + HTTP_OFFSET}` : ''}`;
  };
  return `# Written by workers/temporalCluster.ts; one file per service process (metrics port ${options.metricsPort}).
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: ${options.numHistoryShards}
  datastores:${store('default', 20)}${store('visibility', 10)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  pprof:
    port: 0
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:${options.metricsPort}"
services:${CLUSTER_SERVICES.map(service).join('')}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${basePort}"
dcRedirectionPolicy:
  policy: noop
archival:
  history:
    state: disabled
  visibility:
    state: disabled
namespaceDefaults:
  archival:
    history:
      state: disabled
    visibility:
      state: disabled
publicClient:
  hostPort: "127.0.0.1:${basePort}"
dynamicConfigClient:
  filepath: "${options.dynamicConfigFile}"
  pollInterval: 10s
`;
}

/** deploy/temporal/dynamicconfig.yaml plus the cluster's own keys. */
function dynamicConfigYaml(extra: Record<string, unknown>): string {
  const base = readFileSync(path.join(PROJECT_ROOT, 'deploy', 'temporal', 'dynamicconfig.yaml'), 'utf8');
  const added = Object.entries(extra)
    .map(([key, value]) => `${key}:\n  - value: ${JSON.stringify(value)}\n`)
    .join('');
  return `${base.trimEnd()}\n${added}`;
}

function readState(dir: string): ClusterState | null {
  const file = path.join(dir, 'state.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterState) : null;
}

function writeState(dir: string, state: ClusterState): void {
  writeFileSync(path.join(dir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
}

const alive = (pid: number | undefined): pid is number => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, failFast?: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    const failure = failFast?.();
    if (failure) throw new Error(failure);
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

function spawnService(binaries: ClusterBinaries, dir: string, service: ClusterService): number {
  const logFd = openSync(path.join(dir, `${service}.log`), 'a');
  // Detached: `npm run temporal:cluster -- start` returns while the services keep running.
  const child = spawn(binaries.server, ['--config-file', path.join(dir, `${service}.yaml`), '--allow-no-auth', 'start', '--service', service], {
    stdio: ['ignore', logFd, logFd],
    detached: true,
  });
  child.unref();
  if (!child.pid) throw new Error(`could not start temporal-server --service ${service}`);
  return child.pid;
}

/**
 * Builds (once), sets up schemas, writes configs and starts the four services, then creates the
 * namespace and registers Flow's search attributes. A cluster of the same name already running is
 * reused as it is.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<TemporalCluster> {
  const log = options.log ?? (() => undefined);
  const dir = clusterDir(options.name);
  const namespace = options.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default';
  // Checked before the build, which can take minutes; the block's highest port is the base plus the largest offset.
  const highestOffset = Math.max(HTTP_OFFSET, ...Object.values(PORT_OFFSETS).flat());
  const basePort = options.basePort ?? integerFromEnv(process.env, 'FLOW_TEMPORAL_CLUSTER_PORT', 7600, { min: 1, max: 65535 - highestOffset, unit: 'the first of a block of ports' });
  const previous = readState(dir);
  const binaries = ensureServerBinaries(log);
  if (previous && CLUSTER_SERVICES.every((s) => alive(previous.pids[s])) && !options.fresh) {
    log(`cluster ${dir} is already running (frontend 127.0.0.1:${previous.basePort})`);
    await ensureNamespace(`127.0.0.1:${previous.basePort}`, namespace, options.retentionDays ?? 3, log);
    return clusterHandle(dir, binaries, { ...previous, namespace });
  }
  if (previous) await stopClusterIn(dir);
  const database = options.database ?? 'temporal';
  for (const service of CLUSTER_SERVICES) {
    const ports = portsOf(basePort, service);
    for (const port of [ports.grpc, ports.membership, ports.metrics, ...(service === 'frontend' ? [basePort + HTTP_OFFSET] : [])]) {
      if (await listening(port)) throw new Error(`port ${port} (${service}) is in use on 127.0.0.1; pick another base with FLOW_TEMPORAL_CLUSTER_PORT`);
    }
  }
  mkdirSync(dir, { recursive: true });
  const postgres = await ensurePostgres();
  log(`schemas: ${database} and ${database}_visibility on 127.0.0.1:${postgres.port} (temporal-sql-tool, postgres12)`);
  await setupSchemas(postgres, binaries, database, options.fresh);
  const dynamicConfigFile = path.join(dir, 'dynamicconfig.yaml');
  writeFileSync(dynamicConfigFile, dynamicConfigYaml(options.dynamicConfig ?? {}));
  for (const service of CLUSTER_SERVICES) {
    rmSync(path.join(dir, `${service}.log`), { force: true });
    writeFileSync(
      path.join(dir, `${service}.yaml`),
      serviceConfig({ basePort, pgPort: postgres.port, database, dynamicConfigFile, metricsPort: portsOf(basePort, service).metrics, numHistoryShards: options.numHistoryShards ?? 4 }),
    );
  }
  const state: ClusterState = { basePort, namespace, database, pids: {} };
  const handle = clusterHandle(dir, binaries, state);
  try {
    for (const service of CLUSTER_SERVICES) {
      await handle.restart(service);
      log(`${service}: pid ${state.pids[service]}, gRPC 127.0.0.1:${portsOf(basePort, service).grpc}, metrics 127.0.0.1:${portsOf(basePort, service).metrics}`);
    }
    await ensureNamespace(handle.address, namespace, options.retentionDays ?? 3, log);
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}

function clusterHandle(dir: string, binaries: ClusterBinaries, state: ClusterState): TemporalCluster {
  const metricsUrls = Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, `http://127.0.0.1:${portsOf(state.basePort, s).metrics}/metrics`])) as Record<ClusterService, string>;
  return {
    address: `127.0.0.1:${state.basePort}`,
    namespace: state.namespace,
    uiUrl: null,
    dir,
    metricsUrls,
    pid: (service) => state.pids[service] ?? null,
    async kill(service, signal = 'SIGKILL') {
      const pid = state.pids[service];
      if (!alive(pid)) return;
      process.kill(pid, signal);
      await waitFor(`temporal-server ${service} (pid ${pid}) did not exit`, async () => !alive(pid), 20_000);
    },
    async restart(service) {
      const pid = spawnService(binaries, dir, service);
      state.pids[service] = pid;
      writeState(dir, state);
      const port = portsOf(state.basePort, service).grpc;
      await waitFor(
        `temporal-server ${service} did not listen on 127.0.0.1:${port}`,
        () => listening(port),
        60_000,
        () => (alive(pid) ? null : `temporal-server ${service} exited at start; see ${path.join(dir, `${service}.log`)}`),
      );
    },
    async stop() {
      await stopClusterIn(dir);
    },
  };
}

/** Stops every service of the cluster in `dir` (SIGTERM, SIGKILL after 15 s). */
export async function stopClusterIn(dir: string): Promise<string[]> {
  const state = readState(dir);
  if (!state) return [];
  const stopped: string[] = [];
  // Frontend first so clients see it go before the services behind it.
  for (const service of ['worker', 'frontend', 'matching', 'history'] as const) {
    const pid = state.pids[service];
    if (!alive(pid)) continue;
    process.kill(pid, 'SIGTERM');
    try {
      await waitFor('', async () => !alive(pid), 15_000);
    } catch {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    stopped.push(`${service} (pid ${pid})`);
  }
  writeState(dir, { ...state, pids: {} });
  return stopped;
}

export function clusterStatus(dir: string): { running: Record<string, number | null>; address: string | null } {
  const state = readState(dir);
  if (!state) return { running: {}, address: null };
  const running = Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, alive(state.pids[s]) ? state.pids[s]! : null]));
  return { running, address: `127.0.0.1:${state.basePort}` };
}

/**
 * Creates the namespace when it does not exist and registers Flow's search attributes on it,
 * retrying while the frontend's namespace cache catches up (up to ~10 s after a create).
 */
export async function ensureNamespace(address: string, namespace: string, retentionDays: number, log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + 90_000;
  let connection: Connection | undefined;
  try {
    for (;;) {
      try {
        connection ??= await Connection.connect({ address, connectTimeout: 2_000 });
        const exists = await connection.workflowService.describeNamespace({ namespace }).then(
          () => true,
          (error: { code?: number }) => {
            if (error.code === 5) return false; // NOT_FOUND
            throw error;
          },
        );
        if (!exists) {
          await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(retentionDays * 86_400_000) });
          log(`namespace ${namespace} created (retention ${retentionDays} days)`);
        }
        const { added } = await registerSearchAttributes(connection, namespace);
        if (added.length > 0) log(`search attributes registered on ${namespace}: ${added.join(', ')}`);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`could not prepare namespace ${namespace} on ${address}: ${(error as Error).message}`);
        await sleep(1000);
      }
    }
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/*
 * The command line: `npm run temporal:cluster -- start|stop|status|build`: a multi-service Temporal cluster on this
 * machine (workers/temporalCluster.ts): temporal-server built once from its Go module, PostgreSQL
 * persistence and visibility, frontend/history/matching/worker as separate processes, the
 * namespace (TEMPORAL_NAMESPACE, default `default`) with Flow's search attributes.
 *
 * Settings: FLOW_TEMPORAL_CLUSTER_PORT (frontend gRPC, default 7600; the services use the next
 * 32 ports), FLOW_TEMPORAL_CLUSTER_NAME (folder under .flow/temporal-cluster, default `default`),
 * FLOW_PG_PORT (the project-local PostgreSQL). Then run Flow against it with
 * TEMPORAL_ADDRESS=127.0.0.1:7600.
 */

async function main(command: string | undefined): Promise<number> {
  const name = process.env.FLOW_TEMPORAL_CLUSTER_NAME || 'default';
  const log = (line: string) => console.log(`temporal cluster: ${line}`);
  switch (command) {
    case 'start': {
      const started = Date.now();
      const cluster = await startCluster({ name, log });
      log(`ready in ${Math.round((Date.now() - started) / 1000)} s: TEMPORAL_ADDRESS=${cluster.address} TEMPORAL_NAMESPACE=${cluster.namespace}`);
      for (const [service, url] of Object.entries(cluster.metricsUrls)) log(`metrics ${service}: ${url}`);
      log(`logs and configs: ${cluster.dir}; stop with: npm run temporal:cluster -- stop`);
      return 0;
    }
    case 'build': {
      // Only the binaries (CI builds them before the tests, so the time shows on its own line).
      const started = Date.now();
      const { server, sqlTool } = ensureServerBinaries(log);
      log(`${server} and ${sqlTool} ready in ${Math.round((Date.now() - started) / 1000)} s`);
      return 0;
    }
    case 'stop': {
      const stopped = await stopClusterIn(clusterDir(name));
      log(stopped.length > 0 ? `stopped ${stopped.join(', ')}` : 'nothing was running');
      return 0;
    }
    case 'status': {
      const { running, address } = clusterStatus(clusterDir(name));
      if (!address) {
        log('never started here');
        return 1;
      }
      const up = Object.values(running).every((pid) => pid !== null);
      log(`${up ? 'running' : 'not running'} at ${address}: ${Object.entries(running).map(([s, pid]) => `${s} ${pid ?? 'down'}`).join(', ')}`);
      return up ? 0 : 1;
    }
    default:
      console.error('usage: npm run temporal:cluster -- start|stop|status|build');
      return 2;
  }
}

if (require.main === module) {
  main(process.argv[2]).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`temporal cluster: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
