/**
 * The facade as a JSON-RPC 2.0 service: batches and notifications exactly as the
 * specification says (including where json-rpc-2.0 departs from it), OpenRPC discovery,
 * idempotent starts under concurrency, RS256 tokens through a JWKS endpoint, per-token rate
 * limits, request logs with request ids, health and readiness.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { spawnSync } from 'node:child_process';
import openRpcMetaSchema from '@open-rpc/meta-schema';
import jsonSchemaToolsMetaSchema from '@json-schema-tools/meta-schema';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_ROLES } from '../../api/auth';
import { FlowApiError, FlowClient } from '../../api/client/flowClient';
import { METHODS } from '../../api/schemas';
import { buildApiServer } from '../../api/server';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { freePort } from '../../workers/dev/devStack';
import { startApiHarness, type ApiHarness } from '../support/apiHarness';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api?.close();
});

/** Serves `app` on a free port for one POST to /rpc. */
async function postTo(app: Awaited<ReturnType<typeof buildApiServer>>, body: object, headers: Record<string, string>) {
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const response = await fetch(`${url}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { url, response, text: await response.text() };
}

const list = (id?: unknown) => ({ jsonrpc: '2.0', method: 'training.list_jobs', params: { limit: 1 }, ...(id === undefined ? {} : { id }) });

describe('batches and notifications', () => {
  test('a batch holding a single request is answered with an array of one (the library answers a bare object)', async () => {
    const { status, body } = await api.post([list(7)]);
    expect(status).toBe(200);
    expect(Array.isArray(body)).toBe(true);
    expect(body).toHaveLength(1);
    expect(body[0]).toMatchObject({ jsonrpc: '2.0', id: 7, result: { jobs: expect.any(Array) } });
  });

  test('a notification gets no response; a batch of only notifications gets no body', async () => {
    const single = await api.post(list());
    expect(single.status).toBe(204);
    expect(single.text).toBe('');
    const batch = await api.post([list(), list()]);
    expect(batch.status).toBe(204);
    expect(batch.text).toBe('');
  });

  test('a mixed batch answers each request, in order, and skips the notifications', async () => {
    const { body } = await api.post([list('a'), list(), { jsonrpc: '2.0', id: 'b', method: 'nope' }, null, list(3)]);
    expect(body.map((r: { id: unknown }) => r.id)).toEqual(['a', 'b', null, 3]);
    expect(body[1].error.code).toBe(-32601);
    expect(body[2].error.code).toBe(-32600);
  });

  test('an Invalid Request keeps a valid id; an invalid id becomes null', async () => {
    const { body } = await api.post([{ jsonrpc: '2.0', id: 5, method: 'training.list_jobs', params: 3 }, { jsonrpc: '2.0', id: [1], method: 'x' }]);
    expect(body[0]).toMatchObject({ id: 5, error: { code: -32600 } });
    expect(body[1]).toMatchObject({ id: null, error: { code: -32600 } });
  });

  test('an unexpected failure is -32603 with a request id and no stack trace', async () => {
    // A real Prisma client on a port where nothing listens: the database is unreachable.
    const prisma = createPrismaClient('postgresql://flow:flow@127.0.0.1:1/flow', { poolSize: 1 });
    const app = await buildApiServer({ client: api.h.client, prisma, repos: createRepositories(prisma) }, { auth: api.auth, logger: false });
    try {
      const { url, response, text } = await postTo(app, list(1), { authorization: `Bearer ${await api.token()}` });
      const body = JSON.parse(text);
      expect(body.error.code).toBe(-32050);
      expect(body.error.data.request_id).toBe(response.headers.get('x-request-id'));
      expect(text).not.toMatch(/\n\s+at /);
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ status: 'not_ready', temporal: 'ok', postgres: expect.stringMatching(/^unreachable/) });
    } finally {
      await app.close();
      await prisma.$disconnect();
    }
  });
});

test('PostgreSQL refusing connections: /readyz gives the reason (it was empty), and the methods that then answer -32050 list it in rpc.discover', async () => {
  const port = await freePort();
  const prisma = createPrismaClient(`postgresql://flow:flow@127.0.0.1:${port}/flow`, { poolSize: 1 });
  const app = await buildApiServer({ client: api.h.client, prisma, repos: createRepositories(prisma) }, { auth: api.auth, logger: false });
  try {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', temporal: 'ok', postgres: `unreachable: Raw query failed. Code: \`N/A\`. Message: \`Can't reach database server at 127.0.0.1:${port}\`` });

    const calls = {
      'training.get_status': { job_id: 'job-anything' },
      'training.list_jobs': {},
      'training.export_trajectories': { job_id: 'job-anything' },
    };
    const discovered = (await api.post({ jsonrpc: '2.0', id: 0, method: 'rpc.discover' })).body.result as { methods: { name: string; errors: { code: number }[] }[] };
    for (const [method, params] of Object.entries(calls)) {
      const response = await fetch(`${url}/rpc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await api.token()}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      });
      const answered = ((await response.json()) as { error?: { code: number } }).error?.code;
      const listed = discovered.methods.find((m) => m.name === method)!.errors.map((e) => e.code);
      expect({ method, answered, listed: listed.includes(-32050) }).toEqual({ method, answered: -32050, listed: true });
    }
  } finally {
    await app.close();
    await prisma.$disconnect();
  }
});

test('healthz and readyz', async () => {
  expect(await (await fetch(`${api.url}/healthz`)).json()).toEqual({ status: 'ok' });
  const ready = await fetch(`${api.url}/readyz`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready', temporal: 'ok', postgres: 'ok', namespace: 'ok' });
});

/**
 * @open-rpc/schema-utils-js's validateOpenRPCDocument, in a node process of its own: it loads
 * @open-rpc/spec-types, which is ESM-only (Node 20 can require it; jest's CommonJS runtime cannot).
 */
function validateOpenRPCDocument(document: unknown): string {
  const script =
    "const validate = require('@open-rpc/schema-utils-js').validateOpenRPCDocument;" +
    "const result = validate(JSON.parse(require('node:fs').readFileSync(0, 'utf8')));" +
    "process.stdout.write(result === true ? 'valid' : String(result.message));";
  const run = spawnSync(process.execPath, ['-e', script], { input: JSON.stringify(document), encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  if (run.status !== 0) throw new Error(`the validator did not run: ${run.stderr}`);
  return run.stdout;
}

test('rpc.discover returns an OpenRPC document that validates against the meta-schema and lists every method', async () => {
  const document = (await (await api.client({ roles: ['viewer'] })).discover()) as Record<string, any>;
  // The official validator, formats checked (servers[0].url must be a URI).
  expect(validateOpenRPCDocument(document)).toBe('valid');
  expect(validateOpenRPCDocument({ ...document, servers: [{ name: 'flow', url: '/rpc' }] })).toMatch(/"dataPath": "\.servers\[0\]\.url"[\s\S]*"format": "uri"/);
  expect(document.servers[0].url).toBe('http://127.0.0.1:8080/rpc');
  const ajv = new Ajv({ strict: false, validateSchema: false });
  addFormats(ajv);
  // The OpenRPC meta-schema refers to the JSON-schema-tools meta-schema under two spellings.
  const { $id: _id, $schema: _schema, ...toolsSchema } = jsonSchemaToolsMetaSchema as Record<string, unknown>;
  ajv.addSchema({ ...toolsSchema, $id: 'https://meta.json-schema.tools/' });
  ajv.addSchema({ ...toolsSchema, $id: 'https://meta.json-schema.tools' });
  const validate = ajv.compile(openRpcMetaSchema as object);
  expect(validate(document)).toBe(true);
  expect(validate({ ...document, methods: [{ name: 'x', params: 'none' }] })).toBe(false);
  expect(document.methods.map((m: { name: string }) => m.name).sort()).toEqual(Object.keys(METHODS).sort());
  const startMethod = document.methods.find((m: { name: string }) => m.name === 'training.start_grpo');
  const configParam = startMethod.params.find((p: { name: string }) => p.name === 'config');
  expect(configParam.schema.properties.group_size).toMatchObject({ type: 'integer', minimum: 2, maximum: 64, default: 8 });
  expect(startMethod.params.find((p: { name: string }) => p.name === 'agent_id').required).toBe(true);
  expect(startMethod.errors.map((e: { code: number }) => e.code)).toEqual(expect.arrayContaining([-32022, -32602, -32001, -32010]));
  // Every params schema compiles with formats on and says what the database can store.
  for (const method of document.methods) for (const param of method.params) ajv.compile(param.schema);
  const exportParams = document.methods.find((m: { name: string }) => m.name === 'training.export_trajectories').params;
  for (const name of ['iteration_from', 'iteration_to', 'run', 'offset']) {
    expect(exportParams.find((p: { name: string }) => p.name === name).schema.maximum).toBe(2 ** 31 - 1);
  }
  const listParams = document.methods.find((m: { name: string }) => m.name === 'training.list_jobs').params;
  const createdAfter = ajv.compile(listParams.find((p: { name: string }) => p.name === 'created_after').schema);
  expect(createdAfter('2026-01-01T00:00:00Z')).toBe(true);
  expect(createdAfter('yesterday')).toBe(false);
  expect(document.info.description).toMatch(/without NUL .* nest at most 32 levels/);
  // Free-text strings say they hold no NUL; the validator refuses one, as the server does.
  const agentId = startMethod.params.find((p: { name: string }) => p.name === 'agent_id').schema;
  // An agent id is a URL path segment too (GET /agents/{agent_id}/policy): no control characters
  // at all, and not "." or ".." (URL parsers resolve those segments away).
  expect(agentId.pattern).toBe('^(?!\\.\\.?$)[^\\u0000-\\u001f\\u007f]*$');
  expect(ajv.compile(agentId)('support-agent')).toBe(true);
  expect(ajv.compile(agentId)('a\u0000b')).toBe(false);
  expect(ajv.compile(agentId)('a\tb')).toBe(false);
  expect([ajv.compile(agentId)('.'), ajv.compile(agentId)('..'), ajv.compile(agentId)('...'), ajv.compile(agentId)('.hidden')]).toEqual([false, false, true, true]);
  const prompt = ajv.compile(startMethod.params.find((p: { name: string }) => p.name === 'training_queries').schema);
  expect(prompt([{ id: 'q', prompt: 'fine 😀' }])).toBe(true);
  expect(prompt([{ id: 'q', prompt: 'x\u0000' }])).toBe(false);
  expect(startMethod.params.find((p: { name: string }) => p.name === 'idempotency_key').schema.pattern).not.toBe('^[^\\u0000]*$');
});

test('ten concurrent start_grpo requests with one idempotency key start exactly one workflow', async () => {
  const client = await api.client();
  const key = `retry-${Date.now()}`;
  const params = { agent_id: 'idem-agent', task_set: 'simulated-small' as const, config: { iterations: 1, seed: 9 }, idempotency_key: key };
  const answers = await Promise.all(Array.from({ length: 10 }, () => client.startGrpo(params)));
  const jobIds = new Set(answers.map((a) => a.job_id));
  expect(jobIds.size).toBe(1);
  const [jobId] = jobIds;
  expect(answers.filter((a) => a.created)).toHaveLength(1);
  expect(await api.h.prisma.trainingJob.count({ where: { id: jobId } })).toBe(1);
  const handle = api.h.client.workflow.getHandle(jobId);
  const description = await handle.describe();
  expect(description.runId).toBe((await handle.describe()).runId);
  // Visibility is eventually consistent: wait until the run is listed, then count every run.
  let runs = 0;
  for (let i = 0; i < 50 && runs === 0; i++) {
    runs = (await api.h.client.workflow.count(`WorkflowId = "${jobId}"`)).count;
    if (runs === 0) await new Promise((r) => setTimeout(r, 100));
  }
  expect(runs).toBe(1);
  // A later retry is answered with the same job; the same key with another request is refused.
  expect(await client.startGrpo(params)).toEqual({ job_id: jobId, status: 'queued', created: false });
  await expect(client.startGrpo({ ...params, config: { iterations: 2, seed: 9 } })).rejects.toMatchObject({ code: -32022 });
  // Another tenant's identical key is a different job.
  const other = await (await api.client({ tenant: 'tenant-b' })).startGrpo(params);
  expect(other.job_id).not.toBe(jobId);
  expect((await api.h.client.workflow.count(`WorkflowId = "${jobId}"`)).count).toBe(1);
  await handle.terminate('test over');
  await api.h.client.workflow.getHandle(other.job_id).terminate('test over');
});

test('list_jobs matches what the Temporal search attributes show, and pages with a cursor', async () => {
  const client = await api.client({ tenant: `list-${Date.now()}` });
  const ids: string[] = [];
  for (const priority of ['P0', 'P2', 'P0'] as const) {
    ids.push((await client.startGrpo({ agent_id: 'list-agent', task_set: 'simulated-small', config: { iterations: 1, priority } })).job_id);
  }
  const page1 = await client.listJobs({ limit: 2 });
  expect(page1.jobs.map((j) => j.job_id)).toEqual([ids[2], ids[1]]);
  const page2 = await client.listJobs({ limit: 2, cursor: page1.next_cursor! });
  expect(page2).toMatchObject({ jobs: [{ job_id: ids[0] }], next_cursor: null });
  const p0 = await client.listJobs({ priority: 'P0' });
  expect(p0.jobs.map((j) => j.job_id).sort()).toEqual([ids[0], ids[2]].sort());
  // The same jobs, as the Temporal Web UI finds them by search attribute.
  let temporalP0: string[] = [];
  for (let i = 0; i < 50 && temporalP0.length < 2; i++) {
    temporalP0 = [];
    for await (const wf of api.h.client.workflow.list({ query: `FlowPriority = "P0" AND WorkflowId IN (${ids.map((id) => `"${id}"`).join(', ')})` })) temporalP0.push(wf.workflowId);
    if (temporalP0.length < 2) await new Promise((r) => setTimeout(r, 100));
  }
  expect(temporalP0.sort()).toEqual(p0.jobs.map((j) => j.job_id).sort());
  expect((await client.listJobs({ created_after: new Date(Date.now() + 60_000).toISOString() })).jobs).toEqual([]);
  for (const id of ids) await api.h.client.workflow.getHandle(id).terminate('test over');
});

test('an admin token sees every tenant; others see only their own', async () => {
  const mine = await (await api.client({ tenant: 'tenant-x' })).startGrpo({ agent_id: 'admin-agent', task_set: 'simulated-small', config: { iterations: 1 } });
  const admin = await api.client({ tenant: 'ops', roles: ['admin'] });
  expect((await admin.getStatus(mine.job_id)).tenant_id).toBe('tenant-x');
  expect((await admin.listJobs({ tenant_id: 'tenant-x' })).jobs.map((j) => j.job_id)).toContain(mine.job_id);
  await expect((await api.client({ tenant: 'tenant-y' })).getStatus(mine.job_id)).rejects.toBeInstanceOf(FlowApiError);
  await admin.cancel(mine.job_id, 'admin cleanup');
});

describe('RS256 through a JWKS endpoint', () => {
  let jwks: Server;
  let rsApi: Awaited<ReturnType<typeof buildApiServer>>;
  let url: string;
  let privateKey: KeyLike;
  let otherKey: KeyLike;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey as KeyLike;
    otherKey = (await generateKeyPair('RS256')).privateKey as KeyLike;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    rsApi = await buildApiServer(
      { client: api.h.client, prisma: api.h.prisma, repos: api.h.repos },
      { logger: false, auth: { key: { algorithm: 'RS256', jwksUrl }, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, tenantClaim: 'tenant', roles: DEFAULT_ROLES } },
    );
    url = await rsApi.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await rsApi?.close();
    jwks?.close();
  });

  const rsToken = (key: KeyLike, kid = 'key-1') =>
    new SignJWT({ tenant: 'tenant-a', roles: ['viewer'] }).setProtectedHeader({ alg: 'RS256', kid }).setSubject('bob').setIssuer(DEFAULT_ISSUER).setAudience(DEFAULT_AUDIENCE).setExpirationTime('1h').sign(key);

  test('a token signed by the JWKS key is accepted; another key, another kid or HS256 is not', async () => {
    expect((await new FlowClient({ url, token: await rsToken(privateKey) }).listJobs({ limit: 1 })).jobs).toEqual(expect.any(Array));
    await expect(new FlowClient({ url, token: await rsToken(otherKey) }).listJobs()).rejects.toMatchObject({ code: -32004 });
    await expect(new FlowClient({ url, token: await rsToken(privateKey, 'key-9') }).listJobs()).rejects.toMatchObject({ code: -32004 });
    await expect(new FlowClient({ url, token: await api.token() }).listJobs()).rejects.toMatchObject({ code: -32005 });
  });
});

test('the rate limit is per token: the 6th call in a window of 5 is refused, another caller is not', async () => {
  const limited = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos }, { auth: api.auth, logger: false, rateLimit: { max: 5, timeWindowMs: 60_000 } });
  const url = await limited.listen({ host: '127.0.0.1', port: 0 });
  try {
    const alice = new FlowClient({ url, token: await api.token({ subject: 'alice' }) });
    for (let i = 0; i < 5; i++) await alice.listJobs({ limit: 1 });
    const refused = await fetch(`${url}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await api.token({ subject: 'alice' })}` }, body: JSON.stringify(list(1)) });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    // Answered under the call's own id (null before), so a client matching answers to calls finds it.
    expect((await refused.json()) as { id: unknown; error: unknown }).toMatchObject({ id: list(1).id, error: { code: -32042 } });
    await expect(new FlowClient({ url, token: await api.token({ subject: 'bob' }) }).listJobs({ limit: 1 })).resolves.toBeDefined();
  } finally {
    await limited.close();
  }
});

test('every request is logged as structured JSON with its request id, which the response echoes', async () => {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const logged = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos }, { auth: api.auth, logger: { level: 'info', stream } });
  try {
    const { response } = await postTo(logged, list(1), { authorization: `Bearer ${await api.token()}`, 'x-request-id': 'req-42' });
    expect(response.headers.get('x-request-id')).toBe('req-42');
    const rpcLine = lines.find((l) => l.rpc_method === 'training.list_jobs');
    expect(rpcLine).toMatchObject({ reqId: 'req-42', outcome: 'ok', ms: expect.any(Number) });
    expect(lines.some((l) => l.reqId === 'req-42' && (l as { res?: { statusCode?: number } }).res?.statusCode === 200)).toBe(true);
  } finally {
    await logged.close();
  }
});

test('logged to a file, lines are written in blocks and all of them are there once the server closes', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flow-api-log-'));
  const file = path.join(dir, 'api.log');
  const logged = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos }, { auth: api.auth, logger: { level: 'info', file } });
  try {
    const authorization = `Bearer ${await api.token()}`;
    const { url } = await postTo(logged, list(1), { authorization, 'x-request-id': 'block-1' });
    for (const i of [2, 3]) await fetch(`${url}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json', authorization, 'x-request-id': `block-${i}` }, body: JSON.stringify(list(i)) });
    await logged.close();
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { reqId?: string; rpc_method?: string });
    expect(lines.filter((l) => l.rpc_method === 'training.list_jobs').map((l) => l.reqId)).toEqual(['block-1', 'block-2', 'block-3']);
  } finally {
    await logged.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the typed client reports a refused call as FlowApiError with code and reason', async () => {
  const error = (await (await api.client()).getStatus('job-missing').catch((e: unknown) => e)) as FlowApiError;
  expect(error).toBeInstanceOf(FlowApiError);
  expect(error).toMatchObject({ code: -32020, reason: 'job_not_found' });
});

