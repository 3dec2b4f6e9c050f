/**
 * The `flow` command line as a user runs it: `scripts/flow` spawned as a process against the
 * real API server (apiHarness), checking stdout, stderr and the exit code of every command and
 * of the errors a shell user meets. A last block calls `main()` in-process for what a spawned
 * process cannot show (the progress bar on a terminal, stdin, --all paging).
 *
 * @suiteLock isolated (it turns the kill switch on, which reaches every job of an install; tests/support/suiteEnvironment.ts)
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, createReadStream, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { mintToken } from '../../api/auth';
import { FlowClient } from '../../api/client/flowClient';
import { EXIT, main } from '../../api/cli/flow';
import { isTransient } from '../../api/cli/errors';
import { FlowApiError } from '../../api/client/flowClient';
import { startWorker } from '../../workers/main';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { renderSystemPrompt, type Policy } from '../../training/policy';
import { startApiHarness, withOwnKillSwitch, type ApiHarness, waitFor } from '../support/apiHarness';

const FLOW = path.resolve(__dirname, '../../scripts/flow');

let api: ApiHarness;
let tmp: string;
/** A tenant of this file's own, so `flow list` sees only the jobs started here. */
const tenant = `cli-${randomBytes(4).toString('hex')}`;
/** Minted by `flow token` in the first test; every later command uses it. */
let token: string;

beforeAll(async () => {
  api = await startApiHarness();
  tmp = mkdtempSync(path.join(tmpdir(), 'flow-cli-'));
});
afterAll(async () => {
  // Should `flow kill-switch off` have failed, the switch this file turned on is lifted here.
  if (api) {
    const admin = await api.client({ subject: 'erin', tenant, roles: ['admin'] });
    const state = await admin.getKillSwitch().catch(() => null);
    if (state?.on && state.by === 'erin') await admin.killSwitch(false, 'apiCli cleanup');
  }
  await api?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Spawns `scripts/flow args...` with only the environment a user would have set. */
function spawnFlow(args: string[], env: Record<string, string | undefined> = {}): { result: Promise<Run>; firstOutput: Promise<void>; kill: (signal: NodeJS.Signals) => void } {
  const base = { PATH: process.env.PATH, HOME: process.env.HOME, FLOW_API_URL: api.url, FLOW_TOKEN: token };
  const child = spawn(FLOW, args, { cwd: tmp, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill(), 100_000);
  let stdout = '';
  let stderr = '';
  const firstOutput = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -1 : 0), stdout, stderr });
    });
  });
  return { result, firstOutput, kill: (signal) => child.kill(signal) };
}

/** The same as spawnFlow, but in-process through `main()`, so coverage sees the CLI's code. */
async function flow(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const merged = { PATH: process.env.PATH, HOME: process.env.HOME, FLOW_API_URL: api.url, FLOW_TOKEN: token, ...env };
  const defined = Object.fromEntries(Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined));
  let stdout = '';
  let stderr = '';
  const out = new PassThrough();
  const err = new PassThrough();
  out.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  err.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await main(args, { stdout: out, stderr: err, stdin: Readable.from([]), env: defined });
  await new Promise((r) => setImmediate(r));
  return { code, stdout, stderr };
}
/** The real `scripts/flow` binary, for what only a separate process shows. */
const spawned = (args: string[], env: Record<string, string | undefined> = {}) => spawnFlow(args, env).result;

function writeConfig(name: string, content: unknown): string {
  const file = path.join(tmp, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

/** A port nothing listens on. */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

const readLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);


const queries = simulatedTaskSet({ queriesPerFamily: 1, seed: 5 }).slice(0, 2);
const tinyJob = (agent: string) => ({
  agent_id: agent,
  training_queries: queries,
  // Given explicitly, so both training queries are trained on (none is held out).
  evaluation_queries: simulatedTaskSet({ queriesPerFamily: 1, seed: 5 }).slice(2, 3),
  config: { iterations: 2, batch_size: 2, group_size: 8, seed: 4, checkpoint_interval: 1 },
});
const client = () => new FlowClient({ url: api.url, token });

test('flow token mints a token the API accepts; it prints only the token', async () => {
  // The real binary here (and for --watch below); the other commands run in-process.
  const run = await spawned(['token', '--subject', 'carol', '--tenant', tenant, '--roles', 'trainer', '--expires-in', '1h'], { FLOW_JWT_SECRET: api.secret, FLOW_TOKEN: undefined });
  expect(run).toMatchObject({ code: 0, stderr: '' });
  expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  token = run.stdout.trim();
  const claims = decodeJwt(token);
  expect(claims).toMatchObject({ sub: 'carol', tenant, roles: ['trainer'], iss: 'flow', aud: 'flow-api' });
  expect(claims.exp! - claims.iat!).toBe(3600);
  await expect(client().listJobs()).resolves.toEqual({ jobs: [], next_cursor: null });
});

test('start → status → status --watch until completed → status --json → list → export', async () => {
  const config = writeConfig('job.json', tinyJob('cli-agent'));
  const start = await flow(['start', config]);
  expect(start).toMatchObject({ code: 0, stderr: '' });
  expect(start.stdout).toMatch(/^job-[\w-]+\n$/);
  const jobId = start.stdout.trim();

  const queued = await flow(['status', jobId]);
  expect(queued).toMatchObject({ code: 0, stderr: '' });
  expect(queued.stdout).toMatch(new RegExp(`^job +${jobId}$`, 'm'));
  expect(queued.stdout).toMatch(/^status +queued$/m);
  expect(queued.stdout).toMatch(/^iteration +0\/2$/m);
  expect(queued.stdout).toMatch(/^success rate +no iteration finished yet$/m);
  expect(queued.stdout).toMatch(/^spend +\$0\.00 of \$10\.00 \(0\.0%\)$/m);
  expect(queued.stdout).toMatch(/^best checkpoint +none yet$/m);

  // The worker starts once the watcher has printed its first line, so that line says queued.
  const watch = spawnFlow(['status', jobId, '--watch', '--interval', '200']);
  await watch.firstOutput;
  const worker = await api.startWorker();
  let watched: Run;
  try {
    watched = await watch.result;
  } finally {
    await worker.stop();
  }
  expect(watched).toMatchObject({ code: EXIT.OK, stderr: '' });
  const lines = watched.stdout.trim().split('\n');
  expect(lines[0]).toBe(`watching ${jobId}: queued, iteration 0/2`);
  // Not a terminal: one plain line per finished iteration, no bar redraws.
  expect(lines[1]).toMatch(/^iteration 1\/2  /);
  expect(lines[2]).toMatch(/^iteration 2\/2  success \d+\.\d% {2}mean reward \d\.\d{3} {2}spend \$\d+\.\d+ of \$10\.00 \(\d+\.\d%\)$/);
  expect(lines[3]).toMatch(new RegExp(`^${jobId} completed  iteration 2/2  success \\d+\\.\\d%  spend .*  best checkpoint run 1, iteration \\d`));
  expect(lines).toHaveLength(4);
  expect(watched.stdout).not.toMatch(/\u001b\[/);

  const json = await flow(['status', jobId, '--json']);
  expect(json.code).toBe(0);
  const status = await client().getStatus(jobId);
  expect(JSON.parse(json.stdout)).toEqual(status);
  expect(status).toMatchObject({ status: 'completed', iteration: 2, tenant_id: tenant, owner_id: 'carol' });

  const [listJson, table] = await Promise.all([flow(['list', '--json', '--agent', 'cli-agent']), flow(['list'])]);
  expect(listJson).toMatchObject({ code: 0, stderr: '' });
  const listed = JSON.parse(listJson.stdout);
  expect(listed).toEqual({ jobs: [expect.objectContaining({ job_id: jobId, status: 'completed', agent_id: 'cli-agent', iteration: 2, iterations: 2 })], next_cursor: null });
  expect(table).toMatchObject({ code: 0, stderr: '' });
  const [header, ...rows] = table.stdout.trim().split('\n');
  expect(header).toMatch(/^JOB +STATUS +AGENT +PRIORITY +ITERATION +SPEND\/BUDGET +CREATED$/);
  expect(rows).toHaveLength(1);
  expect(rows[0]).toMatch(new RegExp(`^${jobId} +completed +cli-agent +P1 +2/2 +\\$\\d+\\.\\d+/\\$10\\.00 +\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));

  const all = path.join(tmp, 'all.jsonl');
  const chat = path.join(tmp, 'chat.jsonl');
  const second = path.join(tmp, 'second.jsonl');
  const [exported, chatExport, secondExport] = await Promise.all([
    flow(['export', jobId, '--out', all]),
    flow(['export', jobId, '--out', chat, '--format', 'jsonl_chat']),
    flow(['export', jobId, '--out', second, '--iteration-from', '1', '--iteration-to', '1', '--success-only']),
  ]);
  const api32 = await client().exportTrajectories({ job_id: jobId, limit: 1 });
  expect(api32.total).toBe(32);
  expect(exported).toEqual({ code: 0, stdout: `wrote 32 trajectories to ${all}\n`, stderr: '' });
  const trajectories = readLines(all).map((line) => JSON.parse(line));
  expect(trajectories).toHaveLength(api32.total);
  expect(new Set(trajectories.map((t) => t.id)).size).toBe(32);
  expect(trajectories[0]).toMatchObject({ agent_id: 'cli-agent', steps: expect.any(Array), reward: expect.any(Number) });

  const successes = await client().exportTrajectories({ job_id: jobId, success_only: true, limit: 1 });
  expect(chatExport).toEqual({ code: 0, stdout: `wrote ${successes.total} chat lines to ${chat}\n`, stderr: '' });
  const chatLines = readLines(chat);
  expect(chatLines).toHaveLength(successes.total);
  for (const line of chatLines) expect(JSON.parse(line).messages[0].role).toBe('user');

  const secondSuccesses = trajectories.filter((t) => t.iteration === 1 && t.success).length;
  expect(secondExport).toMatchObject({ code: 0, stdout: `wrote ${secondSuccesses} trajectories to ${second}\n` });
  expect(readLines(second).map((l) => JSON.parse(l)).every((t) => t.iteration === 1 && t.success)).toBe(true);
  expect(readdirSync(tmp).filter((f) => f.includes('.partial'))).toEqual([]);
}, 180_000);

test('start with an idempotency key, cancel while running, watch it end cancelled (exit 3)', async () => {
  const config = writeConfig('long.json', { agent_id: 'cli-long', task_set: 'simulated-small', config: { iterations: 50, batch_size: 2, group_size: 8 } });
  const first = await flow(['start', config, '--idempotency-key', 'cli-long-1']);
  expect(first).toMatchObject({ code: 0, stderr: '' });
  const jobId = first.stdout.trim();
  const again = await flow(['start', config, '--idempotency-key', 'cli-long-1']);
  expect(again).toMatchObject({ code: 0, stdout: `${jobId}\n` });
  expect(again.stderr).toContain(`matched job ${jobId}`);

  const worker = await api.startWorker();
  try {
    await waitFor(() => client().getStatus(jobId), (s) => s.status === 'running');
    const cancel = await flow(['cancel', jobId, '--reason', 'enough for today']);
    expect(cancel).toEqual({ code: 0, stdout: `${jobId}: cancelling (the job ends "cancelled" once its workflow stops)\n`, stderr: '' });
    const watched = await flow(['status', jobId, '--watch', '--interval', '200']);
    expect(watched.code).toBe(EXIT.JOB_NOT_COMPLETED);
    expect(watched.stderr).toBe('');
    expect(watched.stdout.trim().split('\n').pop()).toMatch(new RegExp(`^${jobId} cancelled  iteration \\d+/50  .*reason: .*enough for today`));
  } finally {
    await worker.stop();
  }
  const twice = await flow(['cancel', jobId]);
  expect(twice).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: `flow: Job already finished: job "${jobId}" ended cancelled\n` });
}, 180_000);

test('errors: one readable line on stderr and the exit code a shell expects', async () => {
  const missing = path.join(tmp, 'missing.json');
  const invalid = writeConfig('invalid.json', '{"agent_id": "x", ');
  const badValue = writeConfig('bad-value.json', { ...tinyJob('cli-bad'), config: { group_size: 1 } });
  const otherSecret = await mintToken({ ...api.auth, secret: randomBytes(32).toString('hex') }, { subject: 'mallory', tenant, roles: ['admin'] });
  const unreachable = `http://127.0.0.1:${await closedPort()}`;

  const [unknownCommand, missingFile, invalidJson, bad, unknownJob, badToken, down, noToken] = await Promise.all([
    flow(['frobnicate']),
    flow(['start', missing]),
    flow(['start', invalid]),
    flow(['start', badValue]),
    flow(['status', 'job-does-not-exist']),
    flow(['list'], { FLOW_TOKEN: otherSecret }),
    flow(['status', 'job-x'], { FLOW_API_URL: unreachable }),
    flow(['list'], { FLOW_TOKEN: undefined }),
  ]);

  expect(unknownCommand).toMatchObject({ code: EXIT.USAGE, stdout: '' });
  expect(unknownCommand.stderr).toBe("flow: unknown command 'frobnicate' (run `flow --help` for usage)\n");
  expect(missingFile).toEqual({ code: EXIT.USAGE, stdout: '', stderr: `flow: cannot read config file ${missing}: no such file\n` });
  expect(invalidJson).toMatchObject({ code: EXIT.USAGE, stdout: '' });
  expect(invalidJson.stderr).toMatch(new RegExp(`^flow: config file ${invalid} is not valid JSON: .+\\n$`));
  expect(bad).toMatchObject({ code: EXIT.API_ERROR, stdout: '' });
  expect(bad.stderr).toMatch(/^flow: Invalid params: config\.group_size: .*\(got 1\)\n$/);
  expect(unknownJob).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: 'flow: Job not found: no job "job-does-not-exist"\n' });
  expect(badToken).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: 'flow: Token signature invalid: the token was not signed by a key this server trusts\n' });
  expect(down).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: `flow: cannot reach the Flow API at ${unreachable} (is it running?)\n` });
  expect(noToken).toMatchObject({ code: EXIT.USAGE, stdout: '' });
  expect(noToken.stderr).toMatch(/^flow: no token: set FLOW_TOKEN or pass --token/);
  // Nothing was started by the refused configs.
  expect((await client().listJobs({ agent_id: 'cli-bad' })).jobs).toEqual([]);
});

test('budget and resume: a raise, refusals with exit 1, bad arguments with exit 2, a resumed run', async () => {
  // Slow enough that the job is still running while the commands below start up.
  api.h.model.setLatency(20);
  const { job_id: jobId } = await client().startGrpo({
    agent_id: 'cli-resume',
    task_set: 'simulated-small',
    config: { iterations: 200, batch_size: 1, group_size: 2, checkpoint_interval: 1 },
  });
  const worker = await api.startWorker();
  try {
    await waitFor(() => client().getStatus(jobId), (s) => s.status === 'running' && s.best_checkpoint !== null);
    const [stillRunning, raise, badUsd, badCheckpoint] = await Promise.all([
      flow(['resume', jobId]),
      flow(['budget', jobId, '$20']),
      flow(['budget', jobId, 'lots']),
      flow(['resume', jobId, '--checkpoint', 'first']),
    ]);
    expect(stillRunning).toMatchObject({ code: EXIT.API_ERROR, stdout: '' });
    expect(stillRunning.stderr).toBe(`flow: Job still running: job "${jobId}" is running; only a job that has ended can be resumed (cancel it first)\n`);
    expect(raise).toEqual({ code: EXIT.OK, stdout: `${jobId}: budget $20.00\n`, stderr: '' });
    expect(badUsd).toMatchObject({ code: EXIT.USAGE, stdout: '' });
    expect(badUsd.stderr).toContain('<usd> must be a positive amount in USD');
    expect(badCheckpoint).toMatchObject({ code: EXIT.USAGE, stdout: '' });
    expect(badCheckpoint.stderr).toContain('--checkpoint must be best, latest or <run>:<iteration>');
    const lower = await flow(['budget', jobId, '15']);
    expect(lower).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: 'flow: Invalid params: budget_usd must be greater than the current budget of $20.00 (got 15)\n' });

    // The runbook's order: cancel --wait, then resume at once.
    const cancelWait = await flow(['cancel', jobId, '--reason', 'cli resume test', '--wait', '--interval', '50']);
    expect(cancelWait).toEqual({ code: EXIT.OK, stdout: `${jobId}: cancelling (the job ends "cancelled" once its workflow stops)\n${jobId}: cancelled\n`, stderr: '' });
    const cancelled = await client().getStatus(jobId);
    expect(cancelled.status).toBe('cancelled');
    const latest = (await api.h.repos.progress.checkpoints(jobId)).at(-1)!;
    const missing = await flow(['resume', jobId, '--checkpoint', '1:99999']);
    const resumed = await flow(['resume', jobId, '--checkpoint', 'latest']);
    expect(missing).toMatchObject({ code: EXIT.API_ERROR, stdout: '' });
    expect(missing.stderr).toMatch(new RegExp(`^flow: No such checkpoint: job "${jobId}" has no checkpoint at run 1, iteration 99999; it has .*1:${latest.iteration}`));
    expect(resumed).toMatchObject({ code: EXIT.OK, stderr: '' });
    expect(resumed.stdout).toMatch(new RegExp(`^${jobId}: run 2 (queued|running), from run 1, iteration ${latest.iteration}\n$`));
    const running = await waitFor(() => client().getStatus(jobId), (s) => s.run === 2 && s.status === 'running' && s.iteration > latest.iteration);
    expect(running.budget_usd).toBe(20);
    expect(running.spend_usd).toBeGreaterThan(cancelled.spend_usd);
    const status = await flow(['status', jobId]);
    expect(status.stdout).toMatch(/^iteration +\d+\/200 \(run 2\)$/m);
    await client().cancel(jobId, 'enough');
    await waitFor(() => client().getStatus(jobId), (s) => s.status === 'cancelled');
  } finally {
    await worker.stop();
    api.h.model.setLatency(0);
  }
}, 180_000);

test('policy: the system prompt the agent is sent, or the policy as JSON to a file; refusals', async () => {
  const { job_id: jobId } = await client().startGrpo(tinyJob('cli-policy'));
  const worker = await api.startWorker();
  try {
    await waitFor(() => client().getStatus(jobId), (s) => s.status === 'completed', 120_000);
  } finally {
    await worker.stop();
  }
  const [text, json, checkpoint1] = await Promise.all([
    flow(['policy', jobId, '--checkpoint', 'latest']),
    client().getPolicy(jobId, { checkpoint: 'latest' }),
    flow(['policy', jobId, '--checkpoint', '1:1']),
  ]);
  // Byte for byte the rendered prompt (training/policy.ts renderSystemPrompt), no trailing newline added.
  expect(text).toEqual({ code: EXIT.OK, stdout: renderSystemPrompt(json.policy as Policy), stderr: '' });
  expect(text.stdout).toBe((await client().getPolicy(jobId, { checkpoint: 'latest', format: 'text' })).system_prompt);
  expect(checkpoint1).toEqual({ code: EXIT.OK, stdout: (await client().getPolicy(jobId, { checkpoint: { run: 1, iteration: 1 }, format: 'text' })).system_prompt, stderr: '' });
  const out = path.join(tmp, 'policy.json');
  const written = await flow(['policy', jobId, '--checkpoint', 'latest', '--format', 'json', '--out', out]);
  expect(written).toEqual({ code: EXIT.OK, stdout: '', stderr: `wrote the policy of job ${jobId}, run 1 iteration 2, to ${out}\n` });
  expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(json);
  // Over an existing file: its permissions stay (a 600 file is not left readable by everyone), nothing is left beside it.
  writeFileSync(out, 'old\n');
  chmodSync(out, 0o600);
  expect((await flow(['policy', jobId, '--checkpoint', 'latest', '--format', 'json', '--out', out])).code).toBe(EXIT.OK);
  expect([JSON.parse(readFileSync(out, 'utf8')), statSync(out).mode & 0o777]).toEqual([json, 0o600]);
  expect(readdirSync(tmp).filter((f) => f.includes('.partial'))).toEqual([]);
  // `-o -` is stdout, as for export (it wrote a file named "-").
  expect(await flow(['policy', jobId, '--checkpoint', 'latest', '-o', '-'])).toEqual({ code: EXIT.OK, stdout: text.stdout, stderr: '' });
  expect(readdirSync(tmp)).not.toContain('-');
  const missing = await flow(['policy', jobId, '--checkpoint', '1:99']);
  expect(missing).toMatchObject({ code: EXIT.API_ERROR, stdout: '' });
  expect(missing.stderr).toMatch(new RegExp(`^flow: No such checkpoint: job "${jobId}" has no checkpoint at run 1, iteration 99; it has `));
  const badFormat = await flow(['policy', jobId, '--format', 'yaml']);
  expect(badFormat).toMatchObject({ code: EXIT.USAGE, stdout: '' });
  expect(badFormat.stderr).toContain('yaml');
}, 180_000);

test('kill-switch: shows the state, refuses a non-admin (exit 1) and bad arguments (exit 2), an admin turns it on and off', async () => {
  const adminToken = await api.token({ subject: 'erin', tenant, roles: ['admin'] });
  const [badState, reasonAlone, notAdmin] = await Promise.all([
    flow(['kill-switch', 'maybe']),
    flow(['kill-switch', '--reason', 'why not']),
    flow(['kill-switch', 'on', '--reason', 'not mine to pull']),
  ]);
  expect(badState).toMatchObject({ code: EXIT.USAGE, stdout: '' });
  expect(badState.stderr).toContain("value 'maybe' is invalid for argument 'state'. Allowed choices are on, off.");
  expect(reasonAlone).toEqual({ code: EXIT.USAGE, stdout: '', stderr: 'flow: --reason goes with `flow kill-switch on` or `flow kill-switch off`\n' });
  expect(notAdmin).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: 'flow: Permission denied: training.kill_switch needs an admin token\n' });

  await withOwnKillSwitch(async () => {
    try {
      const off = await flow(['kill-switch']);
      expect(off).toMatchObject({ code: EXIT.OK, stderr: '' });
      expect(off.stdout).toMatch(/^kill switch off/);
      const on = await flow(['kill-switch', 'on', '--reason', 'cli drill'], { FLOW_TOKEN: adminToken });
      expect(on).toMatchObject({ code: EXIT.OK, stderr: '' });
      expect(on.stdout).toMatch(/^kill switch on \(cli drill\): \d+ running jobs? signalled, they pause at their next batch boundary; new jobs start paused\n$/);
      const shown = await flow(['kill-switch']);
      expect(shown).toMatchObject({ code: EXIT.OK, stderr: '' });
      expect(shown.stdout).toMatch(/^kill switch on: cli drill \(turned on by erin at \d{4}-\d\d-\d\dT[\d:.]+Z\)\n$/);
    } finally {
      const lifted = await flow(['kill-switch', 'off'], { FLOW_TOKEN: adminToken });
      expect(lifted).toMatchObject({ code: EXIT.OK, stderr: '' });
      expect(lifted.stdout).toMatch(/^kill switch off: \d+ running jobs? signalled, paused jobs go on\n$/);
    }
    // Read under the lock: once it is released another file may pull the switch.
    expect(await client().getKillSwitch()).toMatchObject({ on: false, by: 'erin' });
  });
}, 120_000);

describe('main() in-process', () => {
  function capture(tty = false) {
    const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number; text(): string };
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    if (tty) Object.assign(stream, { isTTY: true, columns: 160 });
    stream.text = () => text;
    return stream;
  }
  async function run(argv: string[], options: { tty?: boolean; stdin?: string; env?: Record<string, string> } = {}) {
    const stdout = capture(options.tty);
    const stderr = capture();
    const code = await main(argv, {
      stdout,
      stderr,
      stdin: Readable.from([options.stdin ?? '']),
      env: { FLOW_API_URL: api.url, FLOW_TOKEN: token, ...options.env },
    });
    await new Promise((r) => setImmediate(r));
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  }

  test('start from stdin, then --watch on a terminal draws a progress bar', async () => {
    const start = await run(['start', '-'], { stdin: JSON.stringify(tinyJob('cli-tty')) });
    expect(start).toMatchObject({ code: 0, stderr: '' });
    const jobId = start.stdout.trim();
    const worker = await api.startWorker();
    let watched: Awaited<ReturnType<typeof run>>;
    try {
      watched = await run(['status', jobId, '--watch', '--interval', '100'], { tty: true });
    } finally {
      await worker.stop();
    }
    expect(watched).toMatchObject({ code: EXIT.OK, stderr: '' });
    expect(watched.stdout).toMatch(/iteration 2\/2 \[█{30}\] 100% \| completed \| success \d+\.\d% \| spend \$/);
    expect(watched.stdout).toContain(`${jobId} completed  iteration 2/2`);

    const jsonWatch = await run(['status', jobId, '--watch', '--json']);
    expect(jsonWatch.code).toBe(EXIT.OK);
    expect(JSON.parse(jsonWatch.stdout)).toMatchObject({ job_id: jobId, status: 'completed' });

    const chat = await run(['export', jobId, '--out', '-', '--format', 'jsonl_chat', '--min-reward', '0']);
    const lines = chat.stdout.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    expect(chat.stderr).toBe(`wrote ${lines.length} chat lines to stdout\n`);
    expect(lines.every((l) => Array.isArray(JSON.parse(l).messages))).toBe(true);
  }, 120_000);

  test('list --all follows next_cursor; a single page says there is more', async () => {
    const every = (await client().listJobs({ limit: 500 })).jobs.map((j) => j.job_id);
    expect(every.length).toBeGreaterThanOrEqual(3);
    const paged = await run(['list', '--all', '--limit', '1', '--json']);
    expect(paged.code).toBe(0);
    expect(JSON.parse(paged.stdout)).toEqual({ jobs: expect.any(Array), next_cursor: null });
    expect(JSON.parse(paged.stdout).jobs.map((j: { job_id: string }) => j.job_id)).toEqual(every);
    const one = await run(['list', '--limit', '1']);
    expect(one.stdout.trim().split('\n')).toHaveLength(2);
    expect(one.stderr).toBe('(more jobs than shown: add --all, or a larger --limit)\n');
    const none = await run(['list', '--agent', 'nobody']);
    expect(none).toEqual({ code: 0, stdout: 'no jobs\n', stderr: '' });
  });

  test('plain status, token and API failures', async () => {
    const [job] = (await client().listJobs({ agent_id: 'cli-agent' })).jobs;
    const status = await run(['status', job.job_id]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^status +completed$/m);
    expect(status.stdout).toMatch(/^success rate +\d+\.\d% in the last iteration \(16 trajectories, mean reward \d\.\d{3}\)$/m);
    expect(status.stdout).toMatch(/^best checkpoint +run 1, iteration \d, score \d\.\d{3}$/m);

    const minted = await run(['token', '--tenant', tenant, '--roles', 'viewer', '--expires-in', '90'], { env: { FLOW_JWT_SECRET: api.secret, USER: 'dave' } });
    expect(minted.code).toBe(0);
    const claims = decodeJwt(minted.stdout.trim());
    expect(claims).toMatchObject({ sub: 'dave', tenant, roles: ['viewer'] });
    expect(claims.exp! - claims.iat!).toBe(90);
    const viewer = await run(['cancel', job.job_id], { env: { FLOW_TOKEN: minted.stdout.trim() } });
    expect(viewer).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: expect.stringMatching(/^flow: Permission denied: training\.cancel needs the "training:cancel" permission/) });
    expect(await run(['token', '--expires-in', 'soon'], { env: { FLOW_JWT_SECRET: api.secret } })).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining('--expires-in "soon"') });
    expect(await run(['token'], { env: { FLOW_JWT_SECRET: 'too-short' } })).toMatchObject({ code: EXIT.USAGE, stderr: 'flow: FLOW_JWT_SECRET must be at least 32 characters\n' });

    expect(await run(['status', 'job-nope'])).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: 'flow: Job not found: no job "job-nope"\n' });
    const down = `http://127.0.0.1:${await closedPort()}`;
    expect(await run(['list'], { env: { FLOW_API_URL: down } })).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: `flow: cannot reach the Flow API at ${down} (is it running?)\n` });
    expect(await run(['start', '-'], { stdin: '"just a string"' })).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining('must hold a JSON object') });
  });

  test('export targets: a FIFO and a symlink are written through, a directory is a usage error, a reader that leaves ends it quietly', async () => {
    const [job] = (await client().listJobs({ agent_id: 'cli-agent' })).jobs;
    const fifo = path.join(tmp, 'export.fifo');
    execFileSync('mkfifo', [fifo]);
    let read = '';
    const reader = new Promise<void>((resolve, reject) => createReadStream(fifo).on('data', (chunk) => (read += chunk.toString())).on('end', resolve).on('error', reject));
    expect(await run(['export', job.job_id, '--out', fifo])).toMatchObject({ code: EXIT.OK, stdout: `wrote 32 trajectories to ${fifo}\n` });
    await reader;
    expect(read.trim().split('\n')).toHaveLength(32);
    // Renaming a file over it would have replaced the FIFO (or, as root, /dev/null) with a regular file.
    expect(lstatSync(fifo).isFIFO()).toBe(true);

    const target = path.join(tmp, 'target.jsonl');
    const link = path.join(tmp, 'link.jsonl');
    writeFileSync(target, 'old\n');
    symlinkSync(target, link);
    expect(await run(['export', job.job_id, '--out', link])).toMatchObject({ code: EXIT.OK });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readLines(target)).toHaveLength(32);

    expect(await run(['export', job.job_id, '--out', tmp])).toEqual({ code: EXIT.USAGE, stdout: '', stderr: `flow: cannot write ${tmp}: it is a directory\n` });
    // A full disk (/dev/full answers every write with ENOSPC) is an output that cannot be written, as the others are.
    expect(await run(['export', job.job_id, '--out', '/dev/full'])).toEqual({ code: EXIT.USAGE, stdout: '', stderr: 'flow: cannot write /dev/full: no space left on device, write\n' });

    // `flow export J -o - | head -1`: the pipe closes after the first line.
    const stderr = capture();
    let writes = 0;
    const closedPipe = new Writable({
      write(_chunk, _encoding, callback) {
        writes += 1;
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const code = await main(['export', job.job_id, '--out', '-'], { stdout: closedPipe, stderr, stdin: Readable.from([]), env: { FLOW_API_URL: api.url, FLOW_TOKEN: token } });
    expect({ code, writes, stderr: stderr.text() }).toEqual({ code: EXIT.OK, writes: 1, stderr: '' });
    expect(readdirSync(tmp).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  test('a wrong API URL, and values the API would refuse, are one readable line', async () => {
    const prefixed = `${api.url}/some/prefix`;
    expect(await run(['list'], { env: { FLOW_API_URL: prefixed } })).toEqual({
      code: EXIT.API_ERROR,
      stdout: '',
      stderr: `flow: the server at ${prefixed} answered HTTP 404, not a JSON-RPC response: is FLOW_API_URL the Flow API's base URL?\n`,
    });
    expect(await run(['token', '--tenant', ''], { env: { FLOW_JWT_SECRET: api.secret } })).toEqual({ code: EXIT.USAGE, stdout: '', stderr: 'flow: --tenant "" is empty\n' });
    expect(await run(['token', '--subject', 'a\tb'], { env: { FLOW_JWT_SECRET: api.secret } })).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining('contains a control character') });
    expect(await run(['policy', 'x', '--checkpoint', '99999999999999999999:1'])).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining('each at most 2147483647') });
    expect(await run(['list', '--limit', '1000'])).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining('--limit must be an integer from 1 to 500') });
    expect(await run(['export', 'x', '--out', '-', '--run', '2147483648'])).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining('--run must be an integer from 1 to 2147483647') });
    // An empty file name (an unset shell variable) is refused, not read as "stdout".
    for (const command of [['policy', 'x', '--out', ''], ['export', 'x', '--out', '']]) {
      expect(await run(command)).toEqual({
        code: EXIT.USAGE,
        stdout: '',
        stderr: "flow: option '-o, --out <file>' argument '' is invalid. A file name is needed, not an empty string. (run `flow --help` for usage)\n",
      });
    }
  });

  test('help, version and argument errors', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
    expect((await run(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect(await run(['status', 'x', '--interval', 'soon'])).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining('--interval must be an integer from 1 to') });
    expect(await run(['export', 'x'])).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringContaining("required option '-o, --out <file>'") });
    expect(await run(['export', 'x', '--out', path.join(tmp, 'no-such-dir', 'x.jsonl')])).toMatchObject({ code: EXIT.USAGE, stderr: expect.stringMatching(/^flow: cannot write /) });
    expect(await run(['token', '--roles', 'boss'])).toMatchObject({ code: EXIT.USAGE });
    expect(await run(['status', 'x', '--url', 'localhost:8080'])).toEqual({ code: EXIT.USAGE, stdout: '', stderr: 'flow: --url "localhost:8080" must be http:// or https://\n' });
  });

  test('every error is one line, and what the shell or the API would take wrongly is refused with exit 2', async () => {
    const refused = async (argv: string[], stderr: string | RegExp, env: Record<string, string> = {}) => {
      const result = await run(argv, { env });
      expect(result).toMatchObject({ code: EXIT.USAGE, stdout: '' });
      expect(result.stderr.split('\n')).toHaveLength(2); // one line, then the final newline
      expect(result.stderr).toMatch(stderr);
    };
    // A config or task file that is not UTF-8 (Latin-1 "café"): it was decoded to U+FFFD and sent.
    const latin1 = path.join(tmp, 'latin1.json');
    writeFileSync(latin1, Buffer.concat([Buffer.from('{"agent_id":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
    await refused(['start', latin1], `flow: config file ${latin1} is not UTF-8 text (byte 16 is not valid UTF-8); save it as UTF-8\n`);
    const tasks = path.join(tmp, 'latin1.jsonl');
    writeFileSync(tasks, Buffer.from([0x7b, 0xff, 0x7d, 0x0a]));
    await refused(['start', writeConfig('tasks-config.json', { agent_id: 'a' }), '--tasks', tasks], /^flow: task file .* is not UTF-8 text \(byte 1 is not valid UTF-8\)/);
    // JSON that V8 quotes with its line breaks.
    const commented = path.join(tmp, 'commented.json');
    writeFileSync(commented, '// a comment\n{\n"agent_id": "a"\n}\n');
    await refused(['start', commented], /^flow: config file .* is not valid JSON: /);
    // commander's errors carry the hint on their own line.
    await refused(['status'], "flow: missing required argument 'job' (run `flow --help` for usage)\n");
    await refused(['help', 'bogus'], "flow: unknown command 'bogus' (run `flow --help` for the commands)\n");
    // Values that were dropped, read as hexadecimal, or left for the server to refuse.
    await refused(['list', '--agent', ''], /--agent is empty; leave the option out instead/);
    await refused(['cancel', 'x', '--reason', ' '], /--reason is empty/);
    await refused(['kill-switch', 'on', '--reason', ''], /--reason is empty/);
    await refused(['budget', 'x', '0x10'], /<usd> must be a positive amount in USD/);
    // Decimal amounts as people write them pass the parser (the API then answers for job x).
    for (const amount of ['+5', '$ 5', '$.5', '1e2', '12.']) expect((await run(['budget', 'x', amount])).code).toBe(EXIT.API_ERROR);
    await refused(['export', 'x', '-o', '-', '--min-reward', '0x1'], /--min-reward must be a number from 0 to 1/);
    await refused(['export', 'x', '-o', '-', '--min-reward', '7'], /--min-reward must be a number from 0 to 1/);
    await refused(['export', 'x', '-o', '-', '--iteration-from', '5', '--iteration-to', '2'], 'flow: --iteration-from 5 is after --iteration-to 2\n');
    // Tokens: none already expired, no characters a header cannot carry (not echoed), the secret file unreadable.
    for (const span of ['0', '0s', '-1h', '0.4s', '1h ago']) await refused(['token', '--expires-in', span], /give a span in the future/, { FLOW_JWT_SECRET: api.secret });
    // A token read from a file ends in a newline: that is trimmed, not refused.
    expect(await run(['list', '--limit', '1'], { env: { FLOW_TOKEN: `${token}\n` } })).toMatchObject({ code: EXIT.OK });
    await refused(['status', 'x'], 'flow: the token has characters a bearer token cannot have (a space, a line break or a non-ASCII character): check FLOW_TOKEN or --token\n', { FLOW_TOKEN: `${token}\nx` });
    // The URL: named as it was given, and a password in it neither used nor echoed.
    await refused(['status', 'x'], 'flow: FLOW_API_URL "bogus" is not a URL (e.g. http://127.0.0.1:8080)\n', { FLOW_API_URL: 'bogus' });
    await refused(['status', 'x', '--url', 'http://u:hunter2@127.0.0.1:8080'], 'flow: --url must not carry a user name or password (the API takes a bearer token: FLOW_TOKEN)\n');
    // The worker: a port out of range is refused by the parser, a missing setting is a usage error (it was exit 1).
    await refused(['worker', '--health-port', '70000'], /--health-port must be a port from 0 to 65535/);
    const worker = await main(['worker', '--health-port', '0'], { stdout: capture(), stderr: capture(), stdin: Readable.from([]), env: {}, startWorker });
    expect(worker).toBe(EXIT.USAGE);

    // An API message with a line break in it (a job id is quoted as given) is one line too.
    const answers = await fakeApi(() => ({ status: 200, body: { jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'Invalid params:\n  job_id: required', data: { reason: 'invalid_params' } } } }));
    try {
      expect(await run(['status', 'x'], { env: { FLOW_API_URL: answers.url } })).toEqual({ code: EXIT.API_ERROR, stdout: '', stderr: 'flow: Invalid params: job_id: required\n' });
    } finally {
      await answers.close();
    }
    // A proxy's 502 while the API restarts is waited out by --watch and cancel --wait, as the API's own -32050 is.
    expect(isTransient(new FlowApiError(-32603, 'the server answered HTTP 502 with a body that is not JSON', { http_status: 502 }))).toBe(true);
    expect(isTransient(new FlowApiError(-32603, 'the server answered HTTP 404 with a body that is not JSON', { http_status: 404 }))).toBe(false);
    // The API's own "too many connections" (503, -32045) says retry later: it is retried too.
    expect(isTransient(new FlowApiError(-32045, 'Too many connections'))).toBe(true);
    const statuses = [
      { status: 502, body: '<html>Bad Gateway</html>' },
      { status: 200, body: { jsonrpc: '2.0', id: 1, error: { code: -32050, message: 'Service unavailable', data: { reason: 'unavailable' } } } },
      { status: 200, body: { jsonrpc: '2.0', id: 1, result: { job_id: 'x', status: 'cancelled' } } },
    ];
    const restarting = await fakeApi(({ method }) =>
      method === 'training.cancel' ? { status: 200, body: { jsonrpc: '2.0', id: 1, result: { job_id: 'x', status: 'cancelling' } } } : statuses.length > 1 ? statuses.shift()! : statuses[0],
    );
    try {
      expect(await run(['cancel', 'x', '--wait', '--interval', '10'], { env: { FLOW_API_URL: restarting.url } })).toEqual({
        code: EXIT.OK,
        stdout: 'x: cancelling (the job ends "cancelled" once its workflow stops)\nx: cancelled\n',
        stderr: '',
      });
    } finally {
      await restarting.close();
    }
  });
});

/** A stand-in for the API answering every POST with `answer()`, for answers the real one does not give. */
async function fakeApi(answer: (call: { method: string }) => { status: number; body?: unknown; hang?: boolean }) {
  const server: Server = createHttpServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString()));
    request.on('end', () => {
      const { status, body, hang } = answer(JSON.parse(text));
      if (hang) return;
      response.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/html' : 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

test('Ctrl-C during an export to a file removes the partial file and leaves the old one', async () => {
  // The first page is answered, the second never: the export is interrupted part-way.
  let calls = 0;
  const trajectories = Array.from({ length: 1000 }, (_, i) => ({ trajectory_id: `t-${i}` }));
  const answers = await fakeApi(() => (++calls === 1 ? { status: 200, body: { jsonrpc: '2.0', id: 1, result: { trajectories, count: 1000, total: 5000 } } } : { status: 200, hang: true }));
  const out = path.join(tmp, 'interrupted.jsonl');
  writeFileSync(out, 'old\n');
  try {
    const child = spawnFlow(['export', 'job-x', '-o', out], { FLOW_API_URL: answers.url });
    const partial = () => readdirSync(tmp).filter((f) => f.startsWith('interrupted.jsonl.partial-'));
    await waitFor(async () => partial().length, (n) => n === 1 && calls === 2, 30_000);
    child.kill('SIGINT');
    const result = await child.result;
    expect(result).toMatchObject({ code: -1, stdout: '', stderr: '' }); // ended by the signal, as the shell expects (130)
    expect(partial()).toEqual([]);
    expect(readFileSync(out, 'utf8')).toBe('old\n');
  } finally {
    await answers.close();
  }
}, 60_000);
