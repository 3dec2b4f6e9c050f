/**
 * The process entry points, run in-process against the suite's PostgreSQL and Temporal: the
 * demo behind `npm start` (workers/dev/demo.ts), the worker process (`npm run worker`,
 * workers/main.ts) and the API process (`npm run api`, api/main.ts).
 *
 * Both the demo and the worker process poll the default training task queue, so they live in
 * this one file (run in order), never side by side. The demo goes first: it installs the
 * Temporal runtime with its quiet logger, which a process may do only once.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, mintToken } from '../../api/auth';
import { FlowApiError, FlowClient } from '../../api/client/flowClient';
import { apiOptionsFromEnv, startApi } from '../../api/main';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { runDemo } from '../../workers/dev/demo';
import { createDatabase, databaseUrl, dropDatabase, freePort, PROJECT_ROOT, resolveTemporalCli } from '../../workers/dev/devStack';
import { createPrismaClient } from '../../adapters/db';
import { startWorker } from '../../workers/main';
import { startSimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { requireEnv } from '../support/harness';
import { waitFor } from '../support/apiHarness';

const execFileAsync = promisify(execFile);

let demoQueues = 0;

/**
 * The suite's servers, with no LLM, JWT or demo settings a developer's shell may carry, and a task
 * queue of this run's own: other files' demos and workers share the suite's Temporal server, and a
 * demo refuses a queue that workers it did not start poll.
 */
function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FLOW_TASK_QUEUE: `entry-points-${process.pid}-${++demoQueues}`, ...extra };
  for (const key of ['PORTKEY_API_KEY', 'FLOW_LLM_BASE_URL', 'FLOW_MODEL', 'FLOW_JWT_SECRET', 'FLOW_JWKS_URL', 'FLOW_JWKS_FILE', 'FLOW_DEMO_EXIT', 'FLOW_API_LOG_LEVEL']) {
    if (!(key in extra)) delete env[key];
  }
  return env;
}

const answers = (url: string) =>
  fetch(`${url}/healthz`).then(
    () => true,
    () => false,
  );


const home = mkdtempSync(path.join(os.tmpdir(), 'flow-demo-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));
const GIVEN_DATABASE = `flow_demo_given_${process.pid}`;
afterAll(() => dropDatabase(requireEnv('FLOW_TEST_ADMIN_URL'), GIVEN_DATABASE));

describe('the demo (`npm start`)', () => {
  test('refuses, before starting anything, a JWT setup it cannot mint a token with', async () => {
    const lines: string[] = [];
    await expect(runDemo({ env: baseEnv({ FLOW_JWKS_URL: 'http://127.0.0.1:9/jwks.json' }), home, say: (line) => lines.push(line) })).rejects.toThrow(
      'the demo mints its own token and needs FLOW_JWT_SECRET (HS256); unset FLOW_JWKS_URL/FLOW_JWKS_FILE',
    );
    expect(lines).toEqual([]);
  });

  test('refuses, before starting anything, a number setting that is not one, naming the variable', async () => {
    const refusals: Record<string, [string, string]> = {
      FLOW_DEMO_ITERATIONS: ['-2', 'FLOW_DEMO_ITERATIONS must be an integer from 1 to 100000, got "-2"'],
      FLOW_PG_PORT: ['abc', 'FLOW_PG_PORT must be an integer port 1-65535, got "abc"'],
      FLOW_TEMPORAL_PORT: ['abc', 'FLOW_TEMPORAL_PORT must be an integer port 1-65535, got "abc"'],
      FLOW_TEMPORAL_UI_PORT: ['70000', 'FLOW_TEMPORAL_UI_PORT must be an integer port 1-65535, got "70000"'],
      FLOW_API_PORT: ['8080x', 'FLOW_API_PORT must be an integer port 1-65535, got "8080x"'],
      FLOW_SIM_LATENCY_MS: ['1e3', 'FLOW_SIM_LATENCY_MS must be an integer from 0 to 60000 (milliseconds), got "1e3"'],
      FLOW_RATE_LIMIT_PER_MINUTE: ['0', 'FLOW_RATE_LIMIT_PER_MINUTE must be an integer from 1 to 1000000000000 (calls per token per minute), got "0"'],
    };
    // Free ports for the rest: a run that got past the check must not take the default ones.
    const ports = { FLOW_PG_PORT: await freePort(), FLOW_TEMPORAL_PORT: await freePort(), FLOW_TEMPORAL_UI_PORT: await freePort(), FLOW_API_PORT: await freePort() };
    for (const [variable, [value, message]] of Object.entries(refusals)) {
      const lines: string[] = [];
      // No DATABASE_URL or TEMPORAL_ADDRESS: a run that got past the check would start PostgreSQL and Temporal.
      const env = baseEnv({ ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])), [variable]: value });
      delete env.DATABASE_URL;
      delete env.TEMPORAL_ADDRESS;
      const refused = await runDemo({ env, home, say: (line) => lines.push(line) }).then(
        () => 'started',
        (error: Error) => error.message,
      );
      expect({ variable, refused, lines }).toEqual({ variable, refused: message, lines: [] });
    }
  });

  test('with DATABASE_URL and TEMPORAL_ADDRESS given: prints the API and a working token, runs the job to completion with a line per iteration, and shuts down', async () => {
    const port = await freePort();
    const lines: string[] = [];
    let whileUp: { jobId: string; status: unknown; refused: unknown; rateLimit: string | null; requestId: string | null; hints: { command: string; code: number | null; output: string }[] } | undefined;
    // A database of its own (the demo migrates it): its `flow list` hint lists every tenant's jobs,
    // 50 to a page, and a file running beside this one can start more than that meanwhile.
    const given = await createDatabase(requireEnv('FLOW_TEST_ADMIN_URL'), GIVEN_DATABASE, { fresh: true });
    // Built like `npm run api`: the rate limit it is given, and a log (to a file) with each request id.
    const env = baseEnv({ DATABASE_URL: given, FLOW_DEMO_ITERATIONS: '2', FLOW_API_PORT: String(port), FLOW_SIM_LATENCY_MS: '5', FLOW_RATE_LIMIT_PER_MINUTE: '900' });

    await runDemo({
      env,
      home,
      say: (line) => lines.push(line),
      // Without FLOW_DEMO_EXIT=1 the stack stays up after the job: use it, as a developer would.
      stayUpUntil: async () => {
        const output = lines.join('\n');
        const apiUrl = /API \(JSON-RPC\) at (\S+)\/rpc/.exec(output)![1];
        const token = /development token[^\n]*:\n(\S+)/.exec(output)![1];
        const jobId = /started training job (\S+)/.exec(output)![1];
        const status = await new FlowClient({ url: apiUrl, token }).getStatus(jobId);
        const forged = await mintToken(
          { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, tenantClaim: 'tenant', secret: randomBytes(32).toString('hex') },
          { subject: 'developer', tenant: 'default', roles: ['admin'], expiresIn: '1h' },
        );
        const refused = await new FlowClient({ url: apiUrl, token: forged }).getStatus(jobId).catch((error: unknown) => error);
        const bad = await fetch(`${apiUrl}/rpc`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-request-id': 'demo-log-check-1' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'training.get_status', params: { job_id: 'job-missing' } }),
        });
        // The printed commands work as printed, in a shell that knows nothing of this stack.
        const shell = { ...baseEnv({}) };
        for (const key of ['FLOW_API_URL', 'FLOW_TOKEN', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE']) delete shell[key];
        const hints = [];
        for (const command of lines.filter((line) => line.startsWith('try: ')).map((line) => line.slice('try: '.length))) {
          // Not spawnSync: the API answering the command runs in this process.
          const run = await execFileAsync('bash', ['-c', command], { cwd: PROJECT_ROOT, env: shell, timeout: 60_000 }).then(
            ({ stdout, stderr }) => ({ code: 0, output: `${stdout}${stderr}` }),
            (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
          );
          hints.push({ command, ...run });
        }
        whileUp = { jobId, status, refused, rateLimit: bad.headers.get('x-ratelimit-limit'), requestId: bad.headers.get('x-request-id'), hints };
      },
    });

    const output = lines.join('\n');
    // It started neither PostgreSQL nor Temporal: it used the ones it was given.
    expect(lines.some((line) => line.startsWith('PostgreSQL on'))).toBe(false);
    expect(lines).toContain(`Temporal at ${requireEnv('TEMPORAL_ADDRESS')}`);
    expect(lines).toContainEqual(expect.stringMatching(/^LLM: the built-in SIMULATED model at http:\/\/127\.0\.0\.1:\d+\/v1/));
    expect(lines).toContain(`API (JSON-RPC) at http://127.0.0.1:${port}/rpc`);
    expect(output).toMatch(/development token \(admin, 12 h[^\n]*:\n[\w-]+\.[\w-]+\.[\w-]+\n/);
    // The token is signed with the development secret it keeps for `flow token`.
    expect(readFileSync(path.join(home, 'jwt-secret'), 'utf8')).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(path.join(home, 'jwt-secret')).mode & 0o777).toBe(0o600);

    const iterationLines = lines.filter((line) => line.startsWith('iteration'));
    expect(iterationLines).toHaveLength(2);
    expect(iterationLines[0]).toMatch(/^iteration  1\/2  success [#.]{30} +\d+%  lessons \d+  spend \$\d+\.\d{4}$/);
    expect(iterationLines[1]).toMatch(/^iteration  2\/2  success /);
    expect(lines).toContainEqual(expect.stringMatching(/^job completed: success rate \d+% in the first iteration → \d+% in the last$/));
    expect(lines).toContain('lessons learned:');
    expect(lines).toContain('the stack stays up; press Ctrl-C to stop');
    // The SDK's "No activities/workflows registered" warnings become one line per pool, naming what it polls.
    expect(lines).toEqual(
      expect.arrayContaining([
        `worker pool "workflow" polls task queue ${env.FLOW_TASK_QUEUE}: workflow tasks (the jobs' workflow code)`,
        `worker pool "trajectory" polls task queue ${env.FLOW_TASK_QUEUE}-trajectories: LLM-bound activities (trajectories, evaluation episodes, the policy updater)`,
        `worker pool "cpu" polls task queue ${env.FLOW_TASK_QUEUE}-cpu: CPU and database activities (rewards, advantages, records, checkpoints)`,
      ]),
    );
    expect(output).not.toMatch(/No (activities|workflows) registered/);

    // While it stayed up, its token worked against its API (and a forged one did not).
    expect(whileUp!.status).toMatchObject({ job_id: whileUp!.jobId, agent_id: 'demo-support-agent', status: 'completed', iteration: 2, iterations: 2, priority: 'P1' });
    expect(whileUp!.refused).toBeInstanceOf(FlowApiError);
    expect((whileUp!.refused as FlowApiError).code).toBe(-32004); // token signature invalid
    expect(whileUp!.rateLimit).toBe('900');
    // The hints name this stack's API (not on the default port) and Temporal server, and work as printed.
    const token = /development token[^\n]*:\n(\S+)/.exec(output)![1];
    expect(whileUp!.hints.map((hint) => hint.command)).toEqual([
      `FLOW_API_URL=http://127.0.0.1:${port} FLOW_TOKEN=${token} scripts/flow list`,
      expect.stringMatching(new RegExp(`^\\S*temporal workflow describe --address ${requireEnv('TEMPORAL_ADDRESS').replaceAll('.', '\\.')} --workflow-id ${whileUp!.jobId}$`)),
    ]);
    for (const hint of whileUp!.hints) {
      expect({ command: hint.command, code: hint.code, mentionsJob: hint.output.includes(whileUp!.jobId), output: hint.output.slice(-2000) }).toEqual({
        command: hint.command,
        code: 0,
        mentionsJob: true,
        output: expect.any(String),
      });
    }
    expect(whileUp!.requestId).toBe('demo-log-check-1');
    const apiLog = path.join(home, 'logs', 'api.log');
    expect(lines).toContain(`API log (an error's request_id is there): ${apiLog}`);
    const logged = readFileSync(apiLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ reqId: 'demo-log-check-1', rpc_method: 'training.get_status', outcome: '-32020' }));
    // And it is down now.
    expect(await answers(`http://127.0.0.1:${port}`)).toBe(false);
  });
  test('on a fresh machine (no DATABASE_URL, no TEMPORAL_ADDRESS): creates and migrates its database, starts the Temporal dev server with its Web UI, and FLOW_DEMO_EXIT=1 ends it all after the job', async () => {
    const [apiPort, temporalPort, uiPort] = [await freePort(), await freePort(), await freePort()];
    const database = `flow_demo_${process.pid}_${Date.now()}`;
    const lines: string[] = [];
    const env = baseEnv({
      FLOW_DEMO_ITERATIONS: '1',
      FLOW_DEMO_EXIT: '1',
      FLOW_API_PORT: String(apiPort),
      FLOW_SIM_LATENCY_MS: '5',
      // The suite's running cluster stands in for the project-local one (ensurePostgres reuses it).
      FLOW_PG_DATABASE: database,
      FLOW_TEMPORAL_PORT: String(temporalPort),
      FLOW_TEMPORAL_UI_PORT: String(uiPort),
    });
    delete env.DATABASE_URL;
    delete env.TEMPORAL_ADDRESS;
    const freshHome = mkdtempSync(path.join(os.tmpdir(), 'flow-demo-fresh-'));
    let uiWhileUp: number | undefined;
    try {
      await runDemo({
        env,
        home: freshHome,
        say: (line) => {
          lines.push(line);
          // The Web UI answers while the job runs.
          if (line.startsWith('started training job')) void fetch(`http://127.0.0.1:${uiPort}/`).then((response) => (uiWhileUp = response.status));
        },
        stayUpUntil: () => Promise.reject(new Error('FLOW_DEMO_EXIT=1 must not wait')),
      });
      expect(lines).toContain(`PostgreSQL on 127.0.0.1:${process.env.FLOW_PG_PORT ?? 54329} (database "${database}")`);
      expect(lines).toContain(`Temporal at 127.0.0.1:${temporalPort}, Web UI at http://127.0.0.1:${uiPort}`);
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^started training job \\S+ \\(http://127\\.0\\.0\\.1:${uiPort}/namespaces/default/workflows/`)));
      expect(lines).toContainEqual(expect.stringMatching(/^job completed: success rate \d+% in the first iteration → \d+% in the last$/));
      expect(lines).not.toContain('the stack stays up; press Ctrl-C to stop');
      await waitFor(async () => uiWhileUp, (status) => status !== undefined, 10_000, 50);
      expect(uiWhileUp).toBe(200);
      // Its Temporal server kept its history in the demo's home, and is down now, as is the API.
      expect(statSync(path.join(freshHome, 'temporal.db')).size).toBeGreaterThan(0);
      expect(await answers(`http://127.0.0.1:${uiPort}`)).toBe(false);
      expect(await answers(`http://127.0.0.1:${apiPort}`)).toBe(false);
      // The job is in the database it created and migrated.
      const prisma = createPrismaClient(databaseUrl(requireEnv('FLOW_TEST_ADMIN_URL'), database));
      try {
        expect(await prisma.trainingJob.findMany({ select: { status: true, agentId: true } })).toEqual([{ status: 'completed', agentId: 'demo-support-agent' }]);
      } finally {
        await prisma.$disconnect();
      }
    } finally {
      await dropDatabase(requireEnv('FLOW_TEST_ADMIN_URL'), database);
      rmSync(freshHome, { recursive: true, force: true });
    }
  }, 120_000);
});

/** Whether something accepts TCP connections on 127.0.0.1:port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/**
 * Runs `command` (default `npm start`) in a process group of its own; `until` decides when to press
 * Ctrl-C (SIGINT to the group). stderr is kept apart too, for what must be one line there.
 */
async function npmStart(env: NodeJS.ProcessEnv, until: RegExp | null, timeoutMs: number, command = 'npm start'): Promise<{ code: number | null; output: string; stderr: string }> {
  const child = spawn('bash', ['-c', command], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => ((output += chunk), (stderr += chunk)));
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
  try {
    if (until) {
      await waitFor(async () => output, (text) => until.test(text) || child.exitCode !== null, timeoutMs, 100);
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGINT');
    }
    return { code: await closed, output, stderr };
  } finally {
    clearTimeout(killer);
  }
}

/** A spawned entry point's environment: the suite's servers, none of jest's or coverage's settings. */
function processEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = baseEnv({ FLOW_SKIP_LOCAL_MODEL: '1', ...extra });
  for (const key of ['NODE_OPTIONS', 'FLOW_API_LOG_FILE', 'FLOW_HTTP_AGENT_ALLOW']) delete env[key];
  for (const key of Object.keys(env)) if (key.startsWith('JEST_')) delete env[key];
  return env;
}

describe('`npm start` as a process, on a machine with nothing running', () => {
  test('Ctrl-C mid-job stops everything it started, PostgreSQL included, and says so; a second `npm start` works straight after', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'flow-start-'));
    chmodSync(home, 0o755); // PostgreSQL runs as the postgres user and must reach its data directory
    const [pgPort, temporalPort, uiPort, apiPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const env = baseEnv({
      FLOW_HOME: home,
      FLOW_PG_PORT: String(pgPort),
      FLOW_TEMPORAL_PORT: String(temporalPort),
      FLOW_TEMPORAL_UI_PORT: String(uiPort),
      FLOW_API_PORT: String(apiPort),
      FLOW_SIM_LATENCY_MS: '5',
      FLOW_SKIP_LOCAL_MODEL: '1',
      // FLOW_HOME moves the dev stack's state; the CLI stays where install-infra.sh put it.
      TEMPORAL_CLI_PATH: resolveTemporalCli(),
    });
    for (const key of ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'FLOW_API_LOG_FILE', 'NODE_OPTIONS']) delete env[key];
    for (const key of Object.keys(env)) if (key.startsWith('JEST_')) delete env[key];
    const postmasterPid = path.join(home, 'pg', String(pgPort), 'postmaster.pid');
    try {
      // A long job, interrupted after its first iteration.
      const first = await npmStart({ ...env, FLOW_DEMO_ITERATIONS: '40' }, /flow: iteration {2}1\/40/, 240_000);
      expect(first.output).toContain(`flow: PostgreSQL on 127.0.0.1:${pgPort} (database "flow")`);
      expect(first.output).toContain('flow: interrupted (Ctrl-C or SIGTERM): stopping everything this run started');
      for (const line of ['stopped the worker', 'stopped the API', 'stopped the simulated model server', 'stopped the Temporal dev server', `stopped PostgreSQL (127.0.0.1:${pgPort})`, 'everything this run started is stopped']) {
        expect({ line, shown: first.output.includes(`flow: ${line}\n`), tail: first.output.slice(-3000) }).toEqual({ line, shown: true, tail: expect.any(String) });
      }
      expect(first.output).not.toMatch(/No (activities|workflows) registered/);
      expect({ pg: await listening(pgPort), temporal: await listening(temporalPort), ui: await listening(uiPort), api: await listening(apiPort) }).toEqual({ pg: false, temporal: false, ui: false, api: false });
      expect(existsSync(postmasterPid)).toBe(false);

      // Straight after: the same ports, the same state; this time it runs its job to the end and exits.
      const second = await npmStart({ ...env, FLOW_DEMO_ITERATIONS: '1', FLOW_DEMO_EXIT: '1' }, null, 240_000);
      expect({ code: second.code, tail: second.output.slice(-1500) }).toEqual({ code: 0, tail: expect.stringMatching(/flow: job completed: success rate/) });
      expect(second.output).toContain(`flow: stopped PostgreSQL (127.0.0.1:${pgPort})`);
      expect(existsSync(postmasterPid)).toBe(false);
    } finally {
      // Whatever a failed run left behind.
      if (existsSync(postmasterPid)) {
        const pid = Number(readFileSync(postmasterPid, 'utf8').split('\n')[0]);
        try {
          process.kill(pid, 'SIGINT'); // PostgreSQL's fast shutdown
        } catch {
          // already gone
        }
        await waitFor(async () => existsSync(postmasterPid), (exists) => !exists, 30_000, 200).catch(() => undefined);
      }
      rmSync(home, { recursive: true, force: true });
    }
  }, 600_000);
});

describe('`npm start` failing or interrupted while it comes up (workers/dev/demo.ts as a process)', () => {
  /** The suite's PostgreSQL; a Temporal dev server of the demo's own, so there is something to stop. */
  async function startupEnv(extra: Record<string, string> = {}) {
    const stackHome = mkdtempSync(path.join(os.tmpdir(), 'flow-startup-'));
    const [temporalPort, uiPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const env = processEnv({
      FLOW_HOME: stackHome,
      FLOW_TEMPORAL_PORT: String(temporalPort),
      FLOW_TEMPORAL_UI_PORT: String(uiPort),
      FLOW_API_PORT: String(apiPort),
      FLOW_DEMO_EXIT: '1',
      TEMPORAL_CLI_PATH: resolveTemporalCli(),
      ...extra,
    });
    delete env.TEMPORAL_ADDRESS;
    return { env, stackHome, temporalPort, uiPort, apiPort };
  }
  // What `npm start` runs after install-infra.sh. Not through the tsx CLI: its parent process
  // SIGKILLs a child that has not taken Ctrl-C within 60 ms (one bundling the workflow code, or
  // running the migration), and what that child started was left running.
  const demo = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start.split(' && ').pop()!;

  test('the API port taken: one line on stderr, no stack trace, exit 1, and the Temporal server it started is stopped', async () => {
    const { env, stackHome, temporalPort, uiPort, apiPort } = await startupEnv();
    const holder = net.createServer().listen(apiPort, '127.0.0.1');
    await new Promise((resolve) => holder.once('listening', resolve));
    try {
      const run = await npmStart(env, null, 60_000, demo);
      expect({ code: run.code, stderr: run.stderr }).toEqual({
        code: 1,
        stderr: `flow: the API cannot listen on 127.0.0.1:${apiPort}: something else is using it (set FLOW_API_PORT to a free port)\n`,
      });
      for (const line of ['stopped the worker', 'stopped the simulated model server', 'stopped the Temporal dev server']) expect(run.output).toContain(`flow: ${line}\n`);
      expect({ temporal: await listening(temporalPort), ui: await listening(uiPort) }).toEqual({ temporal: false, ui: false });
    } finally {
      holder.close();
      rmSync(stackHome, { recursive: true, force: true });
    }
  }, 60_000);

  test('Ctrl-C during the migration: says it was interrupted (not "Command failed"), exit 130', async () => {
    const { env, stackHome, temporalPort } = await startupEnv();
    try {
      // The first line comes just before `prisma migrate deploy`, which takes a few seconds.
      const run = await npmStart(env, /flow: HTTP agents allowed/, 60_000, demo);
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 130, stderr: 'flow: interrupted (Ctrl-C or SIGTERM); everything this run started is stopped\n' });
      expect(run.output).toContain('flow: interrupted (Ctrl-C or SIGTERM): stopping everything this run started\n');
      expect(run.output).not.toMatch(/Command failed|Prisma/);
      expect(await listening(temporalPort)).toBe(false);
    } finally {
      rmSync(stackHome, { recursive: true, force: true });
    }
  }, 60_000);

  test('Ctrl-C once Temporal is up: what started is stopped, nothing more is started, exit 130', async () => {
    const { env, stackHome, temporalPort, uiPort, apiPort } = await startupEnv();
    try {
      const run = await npmStart(env, /flow: Temporal at /, 60_000, demo);
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 130, stderr: 'flow: interrupted (Ctrl-C or SIGTERM); everything this run started is stopped\n' });
      expect(run.output).toContain('flow: stopped the Temporal dev server\n');
      expect(run.output).not.toContain('started training job');
      expect({ temporal: await listening(temporalPort), ui: await listening(uiPort), api: await listening(apiPort) }).toEqual({ temporal: false, ui: false, api: false });
    } finally {
      rmSync(stackHome, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the worker (`npm run worker`) and API (`npm run api`) processes', () => {
  test('a number setting that is not one: one line naming the variable, exit 1, nothing left listening', async () => {
    const apiPort = await freePort();
    const api = await npmStart(processEnv({ FLOW_API_DB_POOL_SIZE: '-3', FLOW_API_PORT: String(apiPort), FLOW_JWT_SECRET: 'x'.repeat(32) }), null, 30_000, 'node_modules/.bin/tsx api/main.ts');
    expect({ code: api.code, output: api.output }).toEqual({ code: 1, output: 'flow api: FLOW_API_DB_POOL_SIZE must be an integer from 1 to 1000 (connections), got "-3"\n' });
    expect(await listening(apiPort)).toBe(false);
    const demo = await npmStart(processEnv({ FLOW_PG_PORT: 'abc' }), null, 30_000, 'node --import tsx workers/dev/demo.ts');
    expect({ code: demo.code, output: demo.output }).toEqual({ code: 1, output: 'flow: FLOW_PG_PORT must be an integer port 1-65535, got "abc"\n' });
    // The production-mode cluster's base port: its block of 33 ports must fit, checked before the (minutes-long) build.
    const cluster = await npmStart(processEnv({ FLOW_TEMPORAL_CLUSTER_PORT: '65530', FLOW_TEMPORAL_CLUSTER_NAME: `refused-${process.pid}` }), null, 30_000, 'node --import tsx scripts/temporal-cluster.ts start');
    expect({ code: cluster.code, output: cluster.output }).toEqual({
      code: 1,
      output: 'temporal cluster: FLOW_TEMPORAL_CLUSTER_PORT must be an integer from 1 to 65503 (the first of a block of ports), got "65530"\n',
    });
  }, 60_000);

  test('refuse, before connecting anything, a pool size or port that is not one, naming the variable', async () => {
    const base = { DATABASE_URL: requireEnv('DATABASE_URL'), FLOW_JWT_SECRET: 'x'.repeat(32), FLOW_API_PORT: String(await freePort()), FLOW_WORKER_NICE: '0' };
    await expect(startApi({ ...base, FLOW_API_DB_POOL_SIZE: '-3' })).rejects.toThrow('FLOW_API_DB_POOL_SIZE must be an integer from 1 to 1000 (connections), got "-3"');
    await expect(startApi({ ...base, FLOW_API_DB_POOL_SIZE: 'abc' })).rejects.toThrow('FLOW_API_DB_POOL_SIZE must be an integer from 1 to 1000 (connections), got "abc"');
    await expect(startApi({ ...base, FLOW_API_PORT: 'abc' })).rejects.toThrow('FLOW_API_PORT must be an integer port 1-65535, got "abc"');
    await expect(startWorker({ ...base, FLOW_DB_POOL_SIZE: '-3' })).rejects.toThrow('FLOW_DB_POOL_SIZE must be an integer from 1 to 1000 (connections), got "-3"');
    await expect(startWorker({ ...base, FLOW_WORKER_SHUTDOWN_GRACE_S: '2m' })).rejects.toThrow('FLOW_WORKER_SHUTDOWN_GRACE_S must be an integer from 0 to 86400 (s), got "2m"');
    // Settings read only later (the local model's first call, the policy cache) are refused at start too.
    await expect(startWorker({ ...base, FLOW_LOCAL_MODEL_PARALLEL: 'two' })).rejects.toThrow('FLOW_LOCAL_MODEL_PARALLEL must be an integer from 1 to 64 (slots), got "two"');
    await expect(startWorker({ ...base, FLOW_LOCAL_MODEL_THREADS: '0' })).rejects.toThrow('FLOW_LOCAL_MODEL_THREADS must be an integer from 1 to 256 (threads), got "0"');
    await expect(startApi({ ...base, FLOW_POLICY_CACHE_TTL_MS: '-1' })).rejects.toThrow('FLOW_POLICY_CACHE_TTL_MS must be an integer from 0 to 3600000 (ms), got "-1"');
    // A value that passes is the one the server is built with (the registry no longer reads the environment itself).
    expect(apiOptionsFromEnv({ ...base, FLOW_POLICY_CACHE_TTL_MS: '250', FLOW_RATE_LIMIT_PER_MINUTE: '90' })).toMatchObject({ policyCacheTtlMs: 250, rateLimit: { max: 90 } });
    expect(apiOptionsFromEnv(base)).toMatchObject({ policyCacheTtlMs: 1_000, rateLimit: undefined });
    await expect(startApi({ ...base, FLOW_API_REQUEST_TIMEOUT_MS: '500' })).rejects.toThrow('FLOW_API_REQUEST_TIMEOUT_MS must be an integer from 1000 to 3600000 (ms), got "500"');
    expect(apiOptionsFromEnv({ ...base, FLOW_API_REQUEST_TIMEOUT_MS: '5000' })).toMatchObject({ requestTimeoutMs: 5_000 });
    await expect(startApi({ ...base, FLOW_API_MAX_CONNECTIONS: '0' })).rejects.toThrow('FLOW_API_MAX_CONNECTIONS must be an integer from 1 to 1000000 (connections), got "0"');
    expect(apiOptionsFromEnv({ ...base, FLOW_API_MAX_CONNECTIONS: '64' })).toMatchObject({ maxConnections: 64 });
    expect(apiOptionsFromEnv(base)).toMatchObject({ maxConnections: 4096 });
    expect(apiOptionsFromEnv(base)).toMatchObject({ requestTimeoutMs: 30_000 });
  });

  test('an API port already taken: one line naming FLOW_API_PORT, exit 1, and the process lets go of PostgreSQL and Temporal', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const api = await npmStart(processEnv({ FLOW_API_PORT: String(port), FLOW_JWT_SECRET: 'x'.repeat(32) }), null, 30_000, 'node --import tsx api/main.ts');
      expect({ code: api.code, stderr: api.stderr }).toEqual({ code: 1, stderr: `flow api: FLOW_API_PORT ${port} is in use on 127.0.0.1 (another API?); set FLOW_API_PORT to a free port\n` });
      // In process: the same refusal, and nothing left open (a connection left behind would keep jest's worker alive).
      await expect(startApi({ DATABASE_URL: requireEnv('DATABASE_URL'), TEMPORAL_ADDRESS: requireEnv('TEMPORAL_ADDRESS'), FLOW_JWT_SECRET: 'x'.repeat(32), FLOW_API_PORT: String(port) })).rejects.toThrow(
        `FLOW_API_PORT ${port} is in use on 127.0.0.1 (another API?); set FLOW_API_PORT to a free port`,
      );
    } finally {
      holder.close();
    }
  }, 60_000);

  test('refuse to start without DATABASE_URL or a JWT key', async () => {
    await expect(startWorker({})).rejects.toThrow('DATABASE_URL is not set');
    await expect(startApi({})).rejects.toThrow('DATABASE_URL is not set');
    await expect(startApi({ DATABASE_URL: requireEnv('DATABASE_URL') })).rejects.toThrow('no JWT key configured');
  });

  test('started from the environment, the API answers and a job started through it runs to completion on the worker', async () => {
    const model = await startSimulatedModelServer({ latencyMs: 2 });
    const secret = randomBytes(32).toString('hex');
    const env = baseEnv({
      FLOW_LLM_BASE_URL: model.url,
      FLOW_JWT_SECRET: secret,
      FLOW_API_PORT: String(await freePort()),
      FLOW_API_LOG_LEVEL: 'silent',
      FLOW_RATE_LIMIT_PER_MINUTE: '1000',
      FLOW_DB_POOL_SIZE: '4',
      // In this (jest's) process: 0 leaves its priority as it is.
      FLOW_WORKER_NICE: '0',
      FLOW_WORKER_SHUTDOWN_GRACE_S: '45',
    });
    const logged: string[] = [];
    const worker = await startWorker(env, (line) => logged.push(line));
    const api = await startApi(env);
    try {
      expect(logged).toEqual([`flow worker ${process.pid} polling task queue ${env.FLOW_TASK_QUEUE} at nice ${os.getPriority()}`]);
      expect(worker.worker.getState()).toBe('RUNNING');
      // FLOW_WORKER_SHUTDOWN_GRACE_S reached every pool's Worker (it was fixed at 20 s).
      expect(worker.worker.members.map((member) => member.worker.options.shutdownGraceTimeMs)).toEqual([45_000, 45_000, 45_000]);
      expect(api.url).toBe(`http://127.0.0.1:${env.FLOW_API_PORT}`);

      const health = await fetch(`${api.url}/healthz`);
      expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);
      const ready = await fetch(`${api.url}/readyz`);
      expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready', temporal: 'ok', postgres: 'ok', namespace: 'ok' }]);

      const token = await mintToken(
        { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, tenantClaim: 'tenant', secret },
        { subject: 'operator', tenant: `tenant-${randomUUID()}`, roles: ['trainer'], expiresIn: '10m' },
      );
      const flow = new FlowClient({ url: api.url, token });
      const { job_id: jobId } = await flow.startGrpo({
        agent_id: 'entry-point-agent',
        training_queries: simulatedTaskSet({ queriesPerFamily: 1, seed: 7 }).slice(0, 2),
        config: { iterations: 1, batch_size: 2, group_size: 2, seed: 7 },
      });
      const done = await waitFor(
        () => flow.getStatus(jobId),
        (status) => status.status !== 'queued' && status.status !== 'running',
      );
      expect(done).toMatchObject({ job_id: jobId, status: 'completed', iteration: 1, iterations: 1, owner_id: 'operator' });
      expect(model.calls()).toBeGreaterThan(0);

      // FLOW_RATE_LIMIT_PER_MINUTE reached the server.
      const rpc = await fetch(`${api.url}/rpc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'training.get_status', params: { job_id: jobId } }),
      });
      expect(rpc.status).toBe(200);
      expect(rpc.headers.get('x-ratelimit-limit')).toBe('1000');
    } finally {
      await api.close();
      await worker.stop();
      await model.close();
    }
    expect(worker.worker.getState()).toBe('STOPPED');
    await expect(worker.finished).resolves.toBeUndefined();
    expect(await answers(api.url)).toBe(false);
  });
});

describe("the demo's simulated model server", () => {
  test('answers a body that is not JSON with 400 and an OpenAI-style error', async () => {
    const model = await startSimulatedModelServer();
    try {
      const bad = await fetch(`${model.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toEqual({ error: { message: 'request body is not JSON' } });
      expect(model.calls()).toBe(1);
    } finally {
      await model.close();
    }
  });
});
