/**
 * The policy read's fast path (api/policyRegistry.ts): it answers only a remembered token with
 * policy:read, its own tenant's agent and a fresh cache entry, exactly as the route would; every
 * other request reaches the handler behind it (fastify's route in the API).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_ROLES, mintToken, TokenVerifier, type AuthConfig } from '../../api/auth';
import { PolicyRegistry, policyFastPath, serverWithFastPath } from '../../api/policyRegistry';
import type { Repositories } from '../../adapters/db';

const secret = 'x'.repeat(40);
const auth: AuthConfig = { key: { algorithm: 'HS256', secret }, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, tenantClaim: 'tenant', roles: DEFAULT_ROLES };
const row = {
  id: 'id-1',
  tenantId: 't',
  agentId: 'agent one',
  version: 4,
  kind: 'rollback',
  policy: { version: 2, base_prompt: 'Base.', lessons: [{ id: 'l1', text: 'Check units.', weight: 0.5 }] },
  contentHash: 'c'.repeat(64),
  sourceJobId: 'job-1',
  sourceRun: 1,
  sourceIteration: 3,
  evaluation: null,
  rollbackOf: 1,
  reason: null,
  refusal: null,
  createdBy: 'alice',
  createdAt: new Date('2026-12-06T00:00:00Z'),
};
const repos = { policyVersions: { active: async () => row, activeVersion: async () => row.version } } as unknown as Repositories;

let server: Server;
let url: string;
let verifier: TokenVerifier;
let registry: PolicyRegistry;
let fallbacks = 0;

beforeAll(async () => {
  verifier = new TokenVerifier(auth);
  registry = new PolicyRegistry(repos, { cacheTtlMs: 60_000 });
  const fastPath = policyFastPath({ verifier, registry, requestId: () => 'req-1' });
  server = serverWithFastPath(
    (_request, response) => {
      fallbacks++;
      response.writeHead(599).end('fallback');
    },
    { keepAliveTimeout: 5_000 },
    fastPath,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const token = (roles: string[], tenant = 't') => mintToken({ ...auth, secret }, { subject: 'agent', tenant, roles, expiresIn: '1h' });
const get = (path: string, headers: Record<string, string>) => fetch(`${url}${path}`, { headers });

test('a remembered agent token and a fresh entry: 200 with the cached body, then 304 on its ETag', async () => {
  const agent = await token(['agent']);
  const path = `/agents/${encodeURIComponent('agent one')}/policy`;
  // Neither the token nor the entry is known yet: the handler behind answers (and in the API fills both).
  expect((await get(path, { authorization: `Bearer ${agent}` })).status).toBe(599);
  await verifier.authenticate(`Bearer ${agent}`);
  const entry = await registry.active('t', 'agent one');
  const before = fallbacks;
  const full = await get(path, { authorization: `Bearer ${agent}` });
  expect(full.status).toBe(200);
  expect(Object.fromEntries(['etag', 'cache-control', 'vary', 'content-type', 'x-request-id'].map((h) => [h, full.headers.get(h)]))).toEqual({
    etag: entry!.etag,
    'cache-control': 'private, no-cache',
    vary: 'Authorization',
    'content-type': 'application/json; charset=utf-8',
    'x-request-id': 'req-1',
  });
  expect(await full.json()).toEqual(entry!.body);
  const same = await get(path, { authorization: `bearer ${agent}`, 'if-none-match': entry!.etag });
  expect({ status: same.status, body: await same.text(), etag: same.headers.get('etag') }).toEqual({ status: 304, body: '', etag: entry!.etag });
  expect(fallbacks).toBe(before);
});

test('everything else goes to the handler behind', async () => {
  const agent = await token(['agent']);
  const exporter = await token(['exporter']);
  const otherTenant = await token(['agent'], 'u');
  for (const t of [exporter, otherTenant]) await verifier.authenticate(`Bearer ${t}`);
  await verifier.authenticate(`Bearer ${agent}`);
  await registry.active('t', 'agent one');
  const path = `/agents/${encodeURIComponent('agent one')}/policy`;
  const cases: [string, Record<string, string>][] = [
    [path, { authorization: `Bearer ${exporter}` }], // no policy:read
    [path, { authorization: `Bearer ${otherTenant}` }], // its tenant has no entry
    [`${path}?tenant_id=t`, { authorization: `Bearer ${agent}` }], // a query: the route decides
    [path, {}], // no token
    [path, { authorization: 'Bearer not.a.token' }], // never verified
    ['/agents/other/policy', { authorization: `Bearer ${agent}` }], // no entry
    ['/agents/%E0%A4%A/policy', { authorization: `Bearer ${agent}` }], // not UTF-8
  ];
  for (const [p, headers] of cases) expect([p, (await get(p, headers)).status]).toEqual([p, 599]);
  const post = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${agent}` } });
  expect(post.status).toBe(599);
});

test('a stale entry goes to the handler behind, which refreshes it', async () => {
  const quick = new PolicyRegistry(repos, { cacheTtlMs: 20 });
  await quick.active('t', 'agent one');
  expect(quick.fresh('t', 'agent one')?.version).toBe(4);
  await new Promise((resolve) => setTimeout(resolve, 30));
  expect(quick.fresh('t', 'agent one')).toBeUndefined();
  expect(quick.fresh('t', 'nobody')).toBeUndefined();
});

test('an entry polled late in its TTL is checked again in the background, once, and stays fresh', async () => {
  let checks = 0;
  let version = 4;
  const counting = {
    policyVersions: {
      active: async () => ({ ...row, version }),
      activeVersion: async () => {
        checks++;
        return version;
      },
    },
  } as unknown as Repositories;
  let clock = 1_000_000;
  const polled = new PolicyRegistry(counting, { cacheTtlMs: 1_000, now: () => clock });
  await polled.active('t', 'agent one');
  clock += 700;
  expect(polled.fresh('t', 'agent one')?.version).toBe(4);
  expect(checks).toBe(0);
  // Another replica promotes v5; this one learns of it without any poll waiting or falling through.
  version = 5;
  clock += 150;
  expect(polled.fresh('t', 'agent one')?.version).toBe(4);
  expect(polled.fresh('t', 'agent one')?.version).toBe(4);
  await new Promise((resolve) => setImmediate(resolve));
  expect(checks).toBe(1);
  // Past the first read's TTL: the renewed entry (read 850 ms in) is served.
  clock += 300;
  expect(polled.fresh('t', 'agent one')?.version).toBe(5);
  expect(checks).toBe(1);
});

test('a token polled late in the time it is remembered is verified again in the background and stays remembered', async () => {
  let clock = Date.now();
  const quick = new TokenVerifier(auth, { ms: 5_000, now: () => clock });
  const header = `Bearer ${await token(['agent'])}`;
  expect(quick.remembered(header)).toBeUndefined();
  const caller = await quick.authenticate(header);
  expect(quick.remembered(header)).toBe(caller);
  clock += 4_500;
  expect(quick.remembered(header)).toBe(caller);
  // The renewal verifies with jose (asynchronously): let it finish.
  const renewing = (quick as unknown as { renewing: Set<string> }).renewing;
  for (let waited = 0; renewing.size > 0 && waited < 5_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  clock += 1_000;
  // Without the renewal it would have been forgotten 5 s after the first verification.
  expect(quick.remembered(header)).toEqual(caller);
  clock += 5_000;
  expect(quick.remembered(header)).toBeUndefined();
});
