/**
 * The docs are run, so they cannot rot: every ```bash / ```sh block of the README, the guides
 * (docs/guides/*.md), the training runbook and the deployment guide runs here, in order, against a real stack — the
 * API (with a training worker) on this suite's Temporal server, in this file's own namespace and
 * database (it turns the kill switch on) — and must exit 0.
 * `npm start` runs for real until its demo job completes. What cannot run on these machines is in
 * SKIPS, each with its reason; a skip that matches no command fails the test, so the list stays
 * true. Blocks of one file share exported variables (`export JOB=...` in one block is `$JOB` in
 * the next), as in one terminal session.
 *
 * @suiteLock isolated (it turns the kill switch on, which reaches every job of an install; tests/support/suiteEnvironment.ts)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, PROJECT_ROOT } from '../../workers/dev/devStack';
import { requireEnv } from '../support/harness';
import { startApiHarness, waitFor, withOwnKillSwitch, type ApiHarness } from '../support/apiHarness';

interface Skip {
  /** Matches the start of a command (a logical line, continuation lines joined). */
  command: RegExp;
  reason: string;
}

/** Commands that do not run here, and why. Everything else in a bash/sh block runs. */
const SKIPS: Skip[] = [
  { command: /^npm start\b/, reason: 'run once, for real, by the "npm start" test at the top of this file, until its first job completes' },
  { command: /^npm test\b/, reason: 'runs the whole suite, this file included; CI runs it (.ci/run)' },
  { command: /^docker build\b/, reason: 'needs a Docker daemon, which these machines do not have; the Dockerfile is linted offline by the deployment tests' },
  { command: /^docker compose\b/, reason: 'needs Docker and registry images, which these machines do not have; docker-compose.yml is validated offline by the deployment tests' },
  { command: /^(helm|kubectl)\b/, reason: 'needs a Kubernetes cluster; the chart is linted and rendered offline by the deployment tests' },
  { command: /^temporal workflow (reset|terminate)\b/, reason: "rewrites or ends a job's workflow history: incident tools, shown in the runbook, not run against a live job" },
  { command: /^npx jest \S+ --selectProjects integration\b/, reason: 'starts a second integration suite (its own Temporal server and database) inside this one; CI runs it' },
];

interface Server {
  command: RegExp;
  /** What it prints once it serves. */
  ready: RegExp;
  reason: string;
}

/**
 * Commands that start a server and run until stopped: started in the background, awaited until
 * they print that they serve, and stopped after the last block of their file.
 */
const SERVERS: Server[] = [
  { command: /tests\/support\/httpAgentService\.ts/, ready: /listening http:\/\/127\.0\.0\.1:\d+\/agent/, reason: 'the test agent service (docs/guides/http_agent.md) serves until stopped' },
];

/** Placeholders the docs use, filled with what this test made. */
type Placeholders = Record<string, string>;

const DOCUMENTS = [
  'README.md',
  ...readdirSync(path.join(PROJECT_ROOT, 'docs', 'guides'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/guides/${name}`),
  'docs/ops/training-runbook.md',
  'docs/ops/deployment.md',
].filter((file) => existsSync(path.join(PROJECT_ROOT, file)));

interface Block {
  file: string;
  line: number;
  /** Logical lines: continuation lines joined, the block's indentation removed. */
  commands: string[];
}

/** The ```bash and ```sh blocks of a Markdown file. */
function shellBlocks(file: string): Block[] {
  const lines = readFileSync(path.join(PROJECT_ROOT, file), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(bash|sh|shell|console)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) body.push(lines[j].slice(Math.min(indent, lines[j].length - lines[j].trimStart().length)));
    const commands: string[] = [];
    for (const raw of body) {
      const line = raw.replace(/^\$ /, '');
      const previous = commands[commands.length - 1];
      if (previous !== undefined && /\\$/.test(previous)) commands[commands.length - 1] = `${previous}\n${line}`;
      else if (line.trim() !== '' && !line.trim().startsWith('#')) commands.push(line);
    }
    blocks.push({ file, line: i + 1, commands });
    i = j;
  }
  return blocks;
}

const blocks = DOCUMENTS.flatMap(shellBlocks);
const skipsUsed = new Set<Skip>();
const skipFor = (command: string) => SKIPS.find((skip) => skip.command.test(command.trim()));

// examples/http-agent.ts serves its agent on loopback, as a reader's own machine would.
process.env.FLOW_HTTP_AGENT_ALLOW = '127.0.0.1:*';

let api: ApiHarness;
let worker: Awaited<ReturnType<ApiHarness['startWorker']>>;
let stateDir: string;
const placeholders: Record<string, Placeholders> = {};

/** The environment a reader's shell would have: the API, a token secret, Temporal, the CLIs on PATH. */
function shellEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('JEST_') || key === 'NODE_OPTIONS') delete env[key];
  for (const key of ['PORTKEY_API_KEY', 'FLOW_LLM_BASE_URL', 'FLOW_MODEL', 'FLOW_JWKS_URL', 'FLOW_JWKS_FILE', 'FLOW_DEMO_EXIT', 'FLOW_TASK_QUEUE', 'FLOW_TOKEN']) delete env[key];
  return {
    ...env,
    FLOW_API_URL: api.url,
    FLOW_JWT_SECRET: api.secret,
    TEMPORAL_ADDRESS: requireEnv('TEMPORAL_ADDRESS'),
    PATH: [path.join(PROJECT_ROOT, '.flow', 'tools', 'venv', 'bin'), path.join(PROJECT_ROOT, '.flow', 'tools', 'go', 'bin'), env.PATH].join(path.delimiter),
  };
}

/** Runs a script in bash; resolves with its exit code and output. */
function bash(script: string, env: NodeJS.ProcessEnv, timeoutMs = 240_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  api = await startApiHarness();
  worker = await api.startWorker();
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'flow-docs-'));
}, 60_000);

afterAll(async () => {
  // Jobs the docs started and left running end here, so the worker can stop.
  const flow = await api.client({ roles: ['admin'] });
  for (const job of (await flow.listJobs({ limit: 500, tenant_id: 'default' })).jobs) {
    if (['queued', 'running', 'paused'].includes(job.status)) await flow.cancel(job.job_id, 'docs test done').catch(() => undefined);
  }
  await worker?.stop();
  await api?.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('npm start (README)', () => {
  test('brings the stack up, runs the demo job through its API until it completes, serves the dashboard, and stops on Ctrl-C', async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...shellEnv(),
      // The file's own database and namespace on the suite's Temporal server; a short demo job.
      DATABASE_URL: requireEnv('DATABASE_URL'),
      FLOW_API_PORT: String(port),
      FLOW_DEMO_ITERATIONS: '2',
      FLOW_SIM_LATENCY_MS: '5',
      FLOW_API_LOG_LEVEL: 'warn',
      // A queue of its own: other files' demos and workers share the suite's Temporal server,
      // and a demo refuses a queue that workers it did not start poll.
      FLOW_TASK_QUEUE: `docs-${process.pid}`,
    };
    delete env.FLOW_JWT_SECRET;
    delete env.FLOW_API_URL;
    const child = spawn('bash', ['-c', 'npm start'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(
        async () => output,
        (text) => /flow: job \w+: success rate/.test(text) || child.exitCode !== null,
        240_000,
        250,
      );
      expect(output).toMatch(/flow: job completed: success rate \d+% in the first iteration → \d+% in the last/);
      expect(output).toMatch(/flow: iteration {2}2\/2 {2}success/);
      const jobId = /started training job (\S+)/.exec(output)![1];
      placeholders['README.md'] = { '<job id>': jobId };
      // While it stays up, the dashboard is served by its API.
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('dashboard/app.js');
      expect(output).toContain('the stack stays up');
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGINT');
      const timer = setTimeout(() => child.exitCode === null && process.kill(-child.pid!, 'SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
    }
    expect(await fetch(`http://127.0.0.1:${port}/healthz`).then(() => 'up', () => 'down')).toBe('down');
  }, 300_000);
});

describe('the runbook and guides have a job to point at', () => {
  test('a long job with checkpoints is running (the runbook\'s <job id>)', async () => {
    api.h.model.setLatency(15);
    const flow = await api.client({ tenant: 'default', roles: ['admin'] });
    const { job_id: jobId } = await flow.startGrpo({
      agent_id: 'runbook-agent',
      task_set: 'simulated-small',
      config: { iterations: 500, batch_size: 1, group_size: 4, checkpoint_interval: 1, budget_usd: 40 },
    });
    await waitFor(() => api.h.repos.progress.checkpoints(jobId), (rows) => rows.length >= 1, 60_000, 200);
    placeholders['docs/ops/training-runbook.md'] = { '<job id>': jobId };
  }, 90_000);
});

// A guide without a shell block has nothing to run here (its examples run elsewhere, or it has none).
describe.each(DOCUMENTS.filter((file) => blocks.some((block) => block.file === file)))('%s', (file) => {
  const fileBlocks = blocks.filter((block) => block.file === file);
  const state = () => path.join(stateDir, `${file.replace(/[^a-z0-9]/gi, '_')}.env`);
  const servers: ChildProcess[] = [];
  afterAll(async () => {
    for (const server of servers) {
      if (server.exitCode !== null || server.signalCode !== null) continue;
      const closed = new Promise((resolve) => server.once('close', resolve));
      process.kill(-server.pid!, 'SIGTERM');
      await closed;
    }
  });

  /** Starts a server command in the background and waits until it says it serves. */
  async function startServer(command: string, server: Server): Promise<void> {
    const script = `[ -f ${JSON.stringify(state())} ] && source ${JSON.stringify(state())}\n${command.replace(/\s+#.*$/, '')}`;
    const child = spawn('bash', ['-c', script], { cwd: PROJECT_ROOT, env: shellEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    servers.push(child);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    await waitFor(async () => output, (text) => server.ready.test(text) || child.exitCode !== null, 60_000, 100);
    expect({ command, exitCode: child.exitCode, ready: server.ready.test(output) }).toEqual({ command, exitCode: null, ready: true });
  }

  test.each(fileBlocks.map((block) => [`line ${block.line}`, block] as const))('the block at %s runs', async (_where, block) => {
    const runnable: string[] = [];
    for (const command of block.commands) {
      const skip = skipFor(command);
      const server = SERVERS.find((candidate) => candidate.command.test(command));
      if (skip) skipsUsed.add(skip);
      else if (server) await startServer(command, server);
      else runnable.push(command);
    }
    if (runnable.length === 0) return;
    let script = runnable.join('\n');
    // The docs' default API address is this test's API.
    script = script.replaceAll('http://127.0.0.1:8080', api.url);
    for (const [placeholder, value] of Object.entries(placeholders[file] ?? {})) script = script.replaceAll(placeholder, value);
    const unknown = /<(job id|token|[a-z][a-z ]*id)>/.exec(script);
    expect({ where: `${file}:${block.line}`, unfilledPlaceholder: unknown?.[0] }).toEqual({ where: `${file}:${block.line}`, unfilledPlaceholder: undefined });

    const wrapped = [
      'set -euo pipefail',
      `state=${JSON.stringify(state())}`,
      '[ -f "$state" ] && source "$state"',
      `trap 'export -p > "$state"' EXIT`,
      script,
    ].join('\n');
    const global = /\bkill-switch\b/.test(script);
    const result = global
      ? // The kill switch is global to this file's install: always leave it off for the tests after.
        await withOwnKillSwitch(async () => {
          try {
            return await bash(wrapped, shellEnv());
          } finally {
            await (await api.client({ roles: ['admin'] })).call('training.kill_switch', { on: false });
          }
        })
      : await bash(wrapped, shellEnv());
    expect({ where: `${file}:${block.line}`, script, code: result.code, stderr: result.code === 0 ? '' : result.stderr.slice(-3000), stdout: result.code === 0 ? '' : result.stdout.slice(-2000) }).toEqual({
      where: `${file}:${block.line}`,
      script,
      code: 0,
      stderr: '',
      stdout: '',
    });
  }, 300_000);
});

test('every skip in the list matches a command in the docs (none is stale), and each says why', () => {
  for (const skip of SKIPS) {
    expect(skip.reason.length).toBeGreaterThan(20);
    const used = blocks.some((block) => block.commands.some((command) => skip.command.test(command.trim())));
    expect([String(skip.command), used]).toEqual([String(skip.command), true]);
  }
});
