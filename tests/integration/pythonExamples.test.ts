/**
 * examples/python/ (standard library only) against the real stack: python3 starts a job through
 * the JSON-RPC API, watches it to completion and exports its successful trajectories as chat
 * lines; refusals are one line and exit status 1.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../workers/dev/devStack';
import { startApiHarness, type ApiHarness } from '../support/apiHarness';

const run = promisify(execFile);
const EXAMPLES = path.join(PROJECT_ROOT, 'examples', 'python');

let api: ApiHarness;
let worker: Awaited<ReturnType<ApiHarness['startWorker']>>;
let env: NodeJS.ProcessEnv;
const scratch = mkdtempSync(path.join(os.tmpdir(), 'flow-python-'));

beforeAll(async () => {
  api = await startApiHarness();
  worker = await api.startWorker();
  env = { ...process.env, FLOW_API_URL: api.url, FLOW_TOKEN: await api.token(), PYTHONDONTWRITEBYTECODE: '1' };
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Runs an example; resolves with its exit code and output whatever the code. */
async function python(script: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run('python3', [path.join(EXAMPLES, script), ...args], { env: { ...env, ...extraEnv }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

test('start_job.py, watch_job.py and export_data.py: a job started, followed to completion and exported from Python', async () => {
  const started = await python('start_job.py', ['python-agent', '2']);
  expect(started).toMatchObject({ code: 0, stderr: '' });
  const jobId = started.stdout.trim();
  expect(jobId).toMatch(/^job-[0-9a-f-]{36}$/);
  expect(await (await api.client()).getStatus(jobId)).toMatchObject({ agent_id: 'python-agent', iterations: 2, owner_id: 'alice' });

  const watched = await python('watch_job.py', [jobId]);
  expect(watched.stderr).toBe('');
  expect(watched.code).toBe(0);
  const lines = watched.stdout.trim().split('\n');
  expect(lines.filter((line) => /^run 1 iteration \d+: success \d+%, reward \d\.\d{3}, spend \$\d+\.\d{4}$/.test(line))).toHaveLength(2);
  expect(watched.stdout).toMatch(new RegExp(`job ${jobId} completed; spent \\$\\d+\\.\\d{4} of \\$2`));

  const out = path.join(scratch, 'export.jsonl');
  const exported = await python('export_data.py', [jobId, out]);
  expect(exported).toMatchObject({ code: 0, stderr: '' });
  const rows = readFileSync(out, 'utf8').trim().split('\n').filter(Boolean);
  const successes = (await (await api.client()).exportTrajectories({ job_id: jobId, success_only: true, limit: 1000 })).total;
  expect(successes).toBeGreaterThan(0);
  expect(rows).toHaveLength(successes);
  expect(exported.stdout.trim()).toBe(`${successes} successful trajectories written to ${out}`);
  for (const row of rows) {
    const { messages } = JSON.parse(row) as { messages: { role: string }[] };
    expect(messages[0].role).toBe('user');
    expect(messages[messages.length - 1].role).toBe('assistant');
  }
}, 180_000);

test('a refused call is one line on stderr and exit status 1; bad usage is 2; no token says how to get one', async () => {
  const missing = await python('watch_job.py', ['job-does-not-exist']);
  expect(missing.code).toBe(1);
  expect(missing.stderr.trim()).toBe('error: Job not found: no job "job-does-not-exist" (code -32020)');

  const forged = await python('start_job.py', [], { FLOW_TOKEN: 'not-a-jwt' });
  expect(forged.code).toBe(1);
  expect(forged.stderr).toMatch(/^error: Malformed token.*\(code -32002\)\n$/);

  expect((await python('export_data.py', [])).code).toBe(2);

  const noToken = await python('start_job.py', [], { FLOW_TOKEN: '' });
  expect(noToken.code).toBe(1);
  expect(noToken.stderr).toContain('FLOW_TOKEN is not set');

  const unreachable = await python('start_job.py', [], { FLOW_API_URL: 'http://127.0.0.1:9' });
  expect(unreachable.code).toBe(1);
  expect(unreachable.stderr).toMatch(/^error: cannot reach the API/);
});
