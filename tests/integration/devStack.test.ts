/**
 * The dev stack (workers/dev/devStack.ts) that `npm start`, jest's global setup and the benchmarks
 * stand on, run here in jest's sight: PostgreSQL clusters and databases, migrations, the
 * Temporal CLI's dev server, free ports, and the errors an operator sees when a piece is missing.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Client as PgClient } from 'pg';
import {
  createDatabase,
  dropDatabase,
  ensurePostgres,
  freePort,
  migrateDatabase,
  PROJECT_ROOT,
  resolveTemporalCli,
  startTemporal,
  type TemporalServer,
} from '../../workers/dev/devStack';
import { requireEnv } from '../support/harness';

const scratch: string[] = [];
/** A temporary directory PostgreSQL's own user can traverse (the stack runs it as `postgres` under root). */
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  scratch.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** Runs `fn` with some environment variables set (undefined: unset), then restores them. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T | Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

async function query<T extends Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new PgClient({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

const executable = (dir: string, name: string, script: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, script, { mode: 0o755 });
  return file;
};

test('freePort returns a port this process can bind', async () => {
  const port = await freePort();
  expect(port).toBeGreaterThan(1024);
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  expect((server.address() as net.AddressInfo).port).toBe(port);
  await new Promise((resolve) => server.close(resolve));
});

describe('PostgreSQL', () => {
  test("ensurePostgres is idempotent: a second call finds the suite's running cluster", async () => {
    const adminUrl = requireEnv('FLOW_TEST_ADMIN_URL');
    const port = Number(new URL(adminUrl).port);
    const startedAt = (await query<{ t: Date }>(adminUrl, 'select pg_postmaster_start_time() as t'))[0].t;
    // Found running, so this call did not start it (and its caller must not stop it).
    await expect(ensurePostgres(port)).resolves.toEqual({ adminUrl, port, started: false });
    // Reused, not restarted.
    expect((await query<{ t: Date }>(adminUrl, 'select pg_postmaster_start_time() as t'))[0].t).toEqual(startedAt);
  });

  test('ensurePostgres creates a cluster under FLOW_HOME, reuses it while it runs, and restarts it after a stop', async () => {
    const home = tempDir('flow-pg-');
    const port = await freePort();
    const dataDir = path.join(home, 'pg', String(port));
    const stop = async () => {
      const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGINT'); // PostgreSQL's fast shutdown
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 200 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(alive()).toBe(false);
    };
    await withEnv({ FLOW_HOME: home }, async () => {
      try {
        const first = await ensurePostgres(port);
        expect(first).toEqual({ adminUrl: `postgresql://postgres@127.0.0.1:${port}/postgres`, port, started: true });
        expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
        const settings = await query<{ name: string; setting: string }>(
          first.adminUrl,
          "select name, setting from pg_settings where name in ('max_connections', 'listen_addresses', 'port') order by name",
        );
        expect(settings).toEqual([
          { name: 'listen_addresses', setting: '127.0.0.1' },
          { name: 'max_connections', setting: '400' },
          { name: 'port', setting: String(port) },
        ]);
        const startedAt = (await query<{ t: Date }>(first.adminUrl, 'select pg_postmaster_start_time() as t'))[0].t;
        await expect(ensurePostgres(port)).resolves.toEqual({ ...first, started: false });
        expect((await query<{ t: Date }>(first.adminUrl, 'select pg_postmaster_start_time() as t'))[0].t).toEqual(startedAt);

        // Stopped, the same cluster (its data directory already initialised) is started again.
        await query(first.adminUrl, 'create database kept_across_restarts');
        await stop();
        expect(await accepts(port)).toBe(false);
        await expect(ensurePostgres(port)).resolves.toEqual({ ...first, started: true });
        expect(await query(first.adminUrl, "select 1 from pg_database where datname = 'kept_across_restarts'")).toHaveLength(1);
      } finally {
        if (existsSync(path.join(dataDir, 'postmaster.pid'))) await stop();
      }
    });
  });

  test('createDatabase / migrateDatabase / dropDatabase on a scratch database', async () => {
    const adminUrl = requireEnv('FLOW_TEST_ADMIN_URL');
    const name = `flow_devstack_${process.pid}_${Date.now()}`;
    const tables = async (url: string) =>
      (await query<{ table_name: string }>(url, "select table_name from information_schema.tables where table_schema = 'public' order by table_name")).map(
        (row) => row.table_name,
      );
    await expect(createDatabase(adminUrl, 'Not-Snake')).rejects.toThrow('database name must be lower-case snake_case, got "Not-Snake"');
    try {
      const url = await createDatabase(adminUrl, name);
      const parsed = new URL(url);
      expect(parsed.pathname).toBe(`/${name}`);
      expect(parsed.host).toBe(new URL(adminUrl).host);
      expect(await tables(url)).toEqual([]);

      migrateDatabase(url);
      expect(await tables(url)).toEqual(
        expect.arrayContaining(['_prisma_migrations', 'policy_checkpoints', 'training_iterations', 'training_jobs', 'trajectories']),
      );
      const applied = await query<{ migration_name: string }>(url, 'select migration_name from _prisma_migrations where finished_at is not null order by migration_name');
      const migrations = readdirSync(path.join(PROJECT_ROOT, 'prisma', 'migrations'))
        .filter((entry) => /^\d+_/.test(entry))
        .sort();
      expect(applied.map((row) => row.migration_name)).toEqual(migrations);

      // Without `fresh` an existing database is kept; with it, it is recreated empty.
      await expect(createDatabase(adminUrl, name)).resolves.toBe(url);
      expect(await tables(url)).toContain('training_jobs');
      await expect(createDatabase(adminUrl, name, { fresh: true })).resolves.toBe(url);
      expect(await tables(url)).toEqual([]);
    } finally {
      await dropDatabase(adminUrl, name);
    }
    expect(await query(adminUrl, 'select 1 from pg_database where datname = $1', [name])).toEqual([]);
    // Dropping a database that is not there is not an error.
    await expect(dropDatabase(adminUrl, name)).resolves.toBeUndefined();
  });

  test('migrateDatabase fails loudly when the database cannot be reached', async () => {
    const closed = await freePort();
    expect(() => migrateDatabase(`postgresql://postgres@127.0.0.1:${closed}/nowhere`)).toThrow(/prisma migrate deploy/);
  });
});

describe('the Temporal CLI', () => {
  test('resolveTemporalCli finds the installed CLI, which runs', () => {
    const cli = resolveTemporalCli();
    expect(statSync(cli).isFile()).toBe(true);
    expect(execFileSync(cli, ['--version'], { encoding: 'utf8' })).toMatch(/^temporal version \d+\.\d+\.\d+/);
  });

  test('the search order: TEMPORAL_CLI_PATH, PATH, then FLOW_HOME copies; a wrong TEMPORAL_CLI_PATH falls back (as install-infra.sh does)', async () => {
    const dir = tempDir('flow-cli-');
    const script = '#!/bin/sh\nexit 0\n';
    const mine = executable(dir, 'my-temporal', script);
    const onPath = path.join(dir, 'bin');
    const home = path.join(dir, 'home');
    const venvCopy = path.join(home, 'tools', 'venv', 'bin');
    const goCopy = path.join(home, 'tools', 'go', 'bin');
    const empty = path.join(dir, 'empty');
    for (const folder of [onPath, venvCopy, goCopy, empty]) mkdirSync(folder, { recursive: true });
    executable(onPath, 'temporal', script);
    executable(venvCopy, 'temporal', script);
    executable(goCopy, 'temporal', script);
    const resolveWith = (vars: Record<string, string | undefined>) => withEnv(vars, () => resolveTemporalCli());

    expect(await resolveWith({ TEMPORAL_CLI_PATH: mine, PATH: onPath, FLOW_HOME: home })).toBe(mine);
    expect(await resolveWith({ TEMPORAL_CLI_PATH: undefined, PATH: `${empty}${path.delimiter}${onPath}`, FLOW_HOME: home })).toBe(path.join(onPath, 'temporal'));
    expect(await resolveWith({ TEMPORAL_CLI_PATH: path.join(dir, 'missing'), PATH: empty, FLOW_HOME: home })).toBe(path.join(venvCopy, 'temporal'));
    // A directory is not the CLI.
    expect(await resolveWith({ TEMPORAL_CLI_PATH: dir, PATH: empty, FLOW_HOME: home })).toBe(path.join(venvCopy, 'temporal'));
    rmSync(path.join(venvCopy, 'temporal'));
    expect(await resolveWith({ TEMPORAL_CLI_PATH: undefined, PATH: empty, FLOW_HOME: home })).toBe(path.join(goCopy, 'temporal'));
  });

  test('with FLOW_HOME elsewhere, the copy install-infra.sh put in the project is still found (it installs into .flow/tools whatever FLOW_HOME says)', async () => {
    const elsewhere = tempDir('flow-home-');
    const empty = tempDir('flow-no-cli-');
    const projectTools = path.join(PROJECT_ROOT, '.flow', 'tools');
    const found = await withEnv({ TEMPORAL_CLI_PATH: undefined, PATH: empty, FLOW_HOME: elsewhere }, () => resolveTemporalCli());
    expect([path.join(projectTools, 'venv', 'bin', 'temporal'), path.join(projectTools, 'go', 'bin', 'temporal')]).toContain(found);
  });

  test('startTemporal reports a dev server that exits, pointing at its log; the CLI got Flow’s arguments', async () => {
    const dir = tempDir('flow-fake-temporal-');
    const fake = executable(dir, 'temporal', '#!/bin/sh\necho "fake temporal: $*"\nexit 3\n');
    const logFile = path.join(dir, 'temporal.log');
    const port = await freePort();
    await withEnv({ TEMPORAL_CLI_PATH: fake }, () =>
      expect(startTemporal({ port, headless: true, logFile, dynamicConfig: { 'limit.maxIDLength': 255 } })).rejects.toThrow(
        `temporal server start-dev exited with code 3; see ${logFile}`,
      ),
    );
    const args = readFileSync(logFile, 'utf8');
    expect(args).toContain(`fake temporal: server start-dev --ip 127.0.0.1 --port ${port} --log-level warn --headless`);
    for (const attribute of ['FlowAgentId', 'FlowJobStatus', 'FlowPriority']) expect(args).toContain(`--search-attribute ${attribute}=Keyword`);
    expect(args).toContain('--dynamic-config-value matching.enableFairness=true');
    expect(args).toContain('--dynamic-config-value frontend.enableCancelWorkerPollsOnShutdown=true');
    expect(args).toContain('--dynamic-config-value limit.maxIDLength=255');
    expect(args).not.toContain('--db-filename');
  });

  describe('a second dev server on free ports, persisted to a file', () => {
    let server: TemporalServer;
    let port: number;
    let uiPort: number;
    let dir: string;
    beforeAll(async () => {
      dir = tempDir('flow-temporal-');
      [port, uiPort] = [await freePort(), await freePort()];
      server = await startTemporal({ port, uiPort, dbFile: path.join(dir, 'temporal.db'), logFile: path.join(dir, 'temporal.log') });
    });
    afterAll(async () => {
      await server?.stop();
    });

    test('answers with the Flow search attributes registered, and serves its Web UI', async () => {
      expect(server.address).toBe(`127.0.0.1:${port}`);
      expect(server.address).not.toBe(requireEnv('TEMPORAL_ADDRESS'));
      expect(server.uiUrl).toBe(`http://127.0.0.1:${uiPort}`);
      const connection = await Connection.connect({ address: server.address });
      try {
        const info = await connection.workflowService.getSystemInfo({});
        expect(info.serverVersion).toMatch(/^\d+\.\d+/);
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        const keyword = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
        expect(customAttributes).toMatchObject({ FlowAgentId: keyword, FlowJobStatus: keyword, FlowPriority: keyword });
      } finally {
        await connection.close();
      }
      expect(statSync(path.join(dir, 'temporal.db')).size).toBeGreaterThan(0);
      let ui: Response | undefined;
      for (let i = 0; i < 50 && !ui?.ok; i++) {
        ui = await fetch(server.uiUrl!).catch(() => undefined);
        if (!ui?.ok) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ui?.status).toBe(200);
    });

    test('stop() stops it (and a second stop() is a no-op)', async () => {
      await server.stop();
      expect(server.process.exitCode !== null || server.process.signalCode !== null).toBe(true);
      expect(await accepts(port)).toBe(false);
      await expect(server.stop()).resolves.toBeUndefined();
    });
  });
});
