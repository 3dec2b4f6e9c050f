/**
 * A bounded fuzz of POST /rpc (issue 15): valid requests of every method, mutated with a fixed
 * seed (values swapped for hostile ones: NUL, lone surrogates, int4 overflow, deep nesting, huge
 * strings, wrong types; keys dropped or added; envelopes broken; bodies cut; batches). Whatever
 * comes back: no HTTP 5xx, no -32603, nothing written by a refused call, /readyz green after.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApiServer } from '../../api/server';
import { startApiHarness, type ApiHarness } from '../support/apiHarness';

const CASES = 3000;
const SEED = 0x15f1;
const tenant = `fuzz-${randomUUID().slice(0, 8)}`;
const agent = `fuzz-agent-${randomUUID().slice(0, 8)}`;

let api: ApiHarness;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  api = await startApiHarness();
  // Its own server: the fuzz sends more calls than the default per-token limit allows in a minute.
  app = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos, taskQueue: api.h.taskQueue }, { auth: api.auth, logger: false, rateLimit: { max: 1_000_000, timeWindowMs: 60_000 } });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await api?.close();
});

/** mulberry32: small, seeded, the same sequence on every run. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)] };
}

const JOB = 'job-fuzz-does-not-exist';
const TEMPLATES: [string, Record<string, unknown> | undefined][] = [
  ['training.start_grpo', { agent_id: agent, task_set: 'simulated-small', config: { iterations: 1, group_size: 4, seed: 7, budget_usd: 1, priority: 'P2' }, idempotency_key: 'fuzz-1' }],
  ['training.start_grpo', { agent_id: agent, training_queries: [{ id: 'q1', prompt: 'What is 2+2?', expected_answer: '4' }], agent: { type: 'http', url: 'https://agents.example.com/run', timeout_seconds: 5 }, idempotency_key: 'fuzz-2' }],
  ['training.start_grpo', { agent_id: agent, training_queries_jsonl: '{"id":"q1","prompt":"p"}\n{"id":"q2","prompt":"r"}', base_prompt: 'Be brief.', idempotency_key: 'fuzz-3' }],
  ['training.get_status', { job_id: JOB }],
  ['training.list_jobs', { agent_id: agent, status: 'running', priority: 'P1', limit: 5, created_after: '2026-01-01T00:00:00Z' }],
  ['training.cancel', { job_id: JOB, reason: 'fuzz' }],
  ['training.export_trajectories', { job_id: JOB, iteration_from: 0, iteration_to: 3, run: 1, limit: 10, offset: 0, format: 'json', min_reward: 0.5, success_only: true }],
  ['training.update_budget', { job_id: JOB, budget_usd: 5 }],
  ['training.resume', { job_id: JOB, checkpoint: { run: 1, iteration: 0 }, budget_usd: 2 }],
  ['training.evaluate', { job_id: JOB, checkpoint: 'best', budget_usd: 1 }],
  ['training.get_history', { job_id: JOB }],
  ['training.list_checkpoints', { job_id: JOB }],
  ['training.get_kill_switch', {}],
  ['training.kill_switch', { on: true, reason: 'fuzz (a trainer may not)' }],
  ['training.get_server_info', {}],
  ['training.get_policy', { job_id: JOB, checkpoint: { run: 1, iteration: 2 }, format: 'text' }],
  ['agents.promote_policy', { agent_id: agent, job_id: JOB, checkpoint: 'latest', reason: 'fuzz', force: false }],
  ['agents.rollback', { agent_id: agent, to_version: 1, reason: 'fuzz' }],
  ['agents.list_policy_versions', { agent_id: agent }],
  ['agents.get_active_policy', { agent_id: agent, tenant_id: 'fuzz-tenant' }],
  ['rpc.discover', undefined],
];

/** Stands for a value nested `depth` arrays deep, spliced into the JSON text (too deep to stringify). */
const DEEP = (depth: number) => ({ __deep: depth });
const HOSTILE: unknown[] = [
  null, true, false, 0, -1, 1.5, 2 ** 31, 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 53, 1e308, -1e308, '', ' ', '\u0000', 'a\u0000b', '\ud800', 'x\udfff', '😀',
  'x'.repeat(70_000), '../../../etc/passwd', '/etc/passwd', '<script>alert(1)</script>', "'; DROP TABLE training_jobs; --", '%00', '\\u0000', 'http://169.254.169.254/',
  'http://127.0.0.1:9/', [], {}, [1, 2], { a: 1 }, { __proto__: { admin: true } }, { constructor: { prototype: {} } }, DEEP(5000), DEEP(40), DEEP(100_000),
  '1970-01-01T00:00:00Z', '9999-12-31T23:59:59Z', 'best', 'latest', { run: 2 ** 31, iteration: 0 }, { type: 'http', url: 'http://10.0.0.1/' }, { type: 'llm' },
];

type Json = unknown;
const clone = <T>(value: T): T => (value === undefined ? value : JSON.parse(JSON.stringify(value)));

/** Every path to a value in `value` (objects and arrays), the root included. */
function paths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) out.push(...paths(item, [...prefix, Array.isArray(value) ? Number(key) : key]));
  }
  return out;
}

function mutateParams(params: Json, r: ReturnType<typeof prng>): Json {
  let root: Json = params === undefined ? {} : clone(params);
  for (let round = 0, rounds = 1 + r.int(3); round < rounds; round++) {
    const all = paths(root);
    const path = r.pick(all);
    if (path.length === 0) {
      root = r.next() < 0.5 ? clone(r.pick(HOSTILE)) : [root];
      continue;
    }
    const parent = path.slice(0, -1).reduce((value: any, key) => value?.[key], root) as Record<string | number, unknown> | undefined;
    if (!parent || typeof parent !== 'object') continue;
    const key = path[path.length - 1];
    const hostile = () => clone(r.pick(HOSTILE));
    const choice = r.int(5);
    if (choice === 0) delete parent[key];
    else if (choice === 1) parent[`${String(key)}_${r.int(100)}`] = hostile();
    else if (choice === 2) parent[key] = [parent[key]];
    else parent[key] = hostile();
  }
  return root;
}

function request(r: ReturnType<typeof prng>, id: number): Record<string, unknown> {
  const [method, params] = r.pick(TEMPLATES);
  const body: Record<string, unknown> = { jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) };
  const envelope = r.next();
  if (envelope < 0.75) body.params = mutateParams(params, r);
  else if (envelope < 0.8) body.id = clone(r.pick(HOSTILE));
  else if (envelope < 0.85) body.method = r.pick([...TEMPLATES.map(([m]) => `${m}x`), 'rpc.', '', 'constructor', '__proto__', 'toString']);
  else if (envelope < 0.88) body.jsonrpc = clone(r.pick(HOSTILE));
  else if (envelope < 0.9) delete body.id; // a notification
  return body;
}

function serialise(value: unknown): string {
  // Only the depths DEEP made (a mutation may have changed one into any number).
  return JSON.stringify(value).replace(/\{"__deep":(40|5000|100000)\}/g, (_match, depth: string) => `${'['.repeat(Number(depth))}1${']'.repeat(Number(depth))}`);
}

function body(r: ReturnType<typeof prng>, id: number): string {
  const shape = r.next();
  if (shape < 0.1) return serialise(Array.from({ length: 2 + r.int(9) }, (_, i) => request(r, id * 100 + i)));
  const text = serialise(request(r, id));
  if (shape < 0.15) return text.slice(0, r.int(text.length)); // cut mid-body
  if (shape < 0.18) {
    const at = r.int(text.length);
    return `${text.slice(0, at)}${r.pick(['"', '{', ']', ',', '\\', '\u0000', ':'])}${text.slice(at + 1)}`;
  }
  return text;
}

test(`${CASES} mutated requests (seed ${SEED}): no 5xx, no -32603, nothing written by a refused call, ready after`, async () => {
  const r = prng(SEED);
  const token = await api.token({ tenant, subject: 'fuzz', roles: ['trainer'] });
  const started = new Set<string>();
  const failures: string[] = [];
  const codes = new Map<number | string, number>();
  const texts = Array.from({ length: CASES }, (_, i) => body(r, i + 1));
  // Eight clients at a time: the server sees concurrency, the run stays well under a minute.
  for (let next = 0; next < texts.length; ) {
    const chunk = texts.slice(next, next + 8);
    next += chunk.length;
    await Promise.all(
      chunk.map(async (text) => {
        const response = await fetch(`${url}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: text });
        const answer = await response.text();
        if (response.status >= 500) failures.push(`HTTP ${response.status} for ${text.slice(0, 200)}: ${answer.slice(0, 200)}`);
        if (!answer) return;
        const parsed = JSON.parse(answer);
        for (const item of Array.isArray(parsed) ? parsed : [parsed]) {
          const code = item.error?.code ?? 'ok';
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code === -32603) failures.push(`-32603 for ${text.slice(0, 300)}`);
          if (item.result?.job_id && item.result.created === true) started.add(item.result.job_id);
        }
      }),
    );
  }
  expect(failures.slice(0, 10)).toEqual([]);
  // Most cases are refused; the codes show what was exercised.
  expect((codes.get(-32602) ?? 0) + (codes.get(-32600) ?? 0) + (codes.get(-32700) ?? 0)).toBeGreaterThan(CASES / 2);
  // Only the calls that answered "created" wrote a job, and each started one workflow.
  const rows = await api.h.prisma.trainingJob.findMany({ where: { tenantId: tenant }, select: { id: true } });
  expect(rows.map((row) => row.id).sort()).toEqual([...started].sort());
  const ready = await fetch(`${url}/readyz`);
  expect(ready.status).toBe(200);
  for (const jobId of started) await api.h.client.workflow.getHandle(jobId).terminate('fuzz over').catch(() => undefined);
}, 120_000);
