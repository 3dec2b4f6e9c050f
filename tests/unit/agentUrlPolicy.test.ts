/**
 * The HTTP agent's SSRF policy (adapters/net/agentUrlPolicy.ts): without FLOW_HTTP_AGENT_ALLOW
 * only public addresses, checked on the resolver's answer as the connection is made; with it,
 * only the hosts it names. Real loopback servers; a name that resolves into a denied range comes
 * from the system resolver (`localhost`) or an injected one.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { agentAllowListFromEnv, agentFetch, agentUrlRefusal, deniedRangeOf, guardedLookup } from '../../adapters/net/agentUrlPolicy';
import { HttpAgent } from '../../activities/agents/httpAgent';
import type { AgentRunRequest } from '../../activities/agents/agentRuntime';

let server: http.Server;
let port: number;
let requests = 0;
const SECRET = `internal-admin-secret-${'x'.repeat(5000)}`;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests++;
    if (req.url === '/redirect') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    res.writeHead(req.url === '/error' ? 400 : 200, { 'content-type': 'application/json' }).end(JSON.stringify({ secret: SECRET }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const init = () => ({ method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(5000) });

test.each([
  ['127.0.0.1', 'loopback'],
  ['127.255.0.9', 'loopback'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['10.1.2.3', 'private'],
  ['172.16.0.1', 'private'],
  ['192.168.10.1', 'private'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['100.100.100.200', 'carrier-grade NAT (shared)'],
  ['0.0.0.0', '"this network"'],
  ['fd00:ec2::254', 'unique local (private)'],
  ['fe80::1', 'link-local'],
  ['224.0.0.1', 'multicast'],
  ['8.8.8.8', null],
  ['172.32.0.1', null],
  ['2606:4700::1111', null],
  ['not-an-ip', null],
])('deniedRangeOf(%s) = %s', (address, range) => {
  expect(deniedRangeOf(address)).toBe(range);
});

test('agentUrlRefusal: addresses and localhost in a URL are refused without an allow-list; names wait for resolution', () => {
  expect(agentUrlRefusal('http://127.0.0.1:9/internal/admin', undefined)).toBe('127.0.0.1 is a loopback address; agent services there are refused unless FLOW_HTTP_AGENT_ALLOW names the host');
  expect(agentUrlRefusal('http://2130706433/', undefined)).toMatch(/^127\.0\.0\.1 is a loopback/);
  expect(agentUrlRefusal('http://[::ffff:127.0.0.1]/', undefined)).toMatch(/loopback/);
  // A name, localhost included, is checked on what it resolves to when connected to.
  expect(agentUrlRefusal('http://LOCALHOST:8080/', undefined)).toBeNull();
  expect(agentUrlRefusal('http://169.254.169.254/latest/meta-data/', undefined)).toMatch(/link-local \(cloud metadata\)/);
  expect(agentUrlRefusal('http://u:p@agents.example.com/', undefined)).toBe('URLs with credentials are refused');
  expect(agentUrlRefusal('ftp://agents.example.com/', undefined)).toMatch(/only http and https/);
  expect(agentUrlRefusal('not a url', undefined)).toBe('not a valid URL');
  expect(agentUrlRefusal('https://agents.example.com/run', undefined)).toBeNull();
  expect(agentUrlRefusal('http://8.8.8.8:9000/run', undefined)).toBeNull();
  // The allow-list names what may be called, wherever it is, and nothing else.
  expect(agentUrlRefusal(`http://127.0.0.1:${port}/`, ['127.0.0.1:*'])).toBeNull();
  expect(agentUrlRefusal('http://10.0.0.5:9000/', ['10.0.0.5:9000'])).toBeNull();
  expect(agentUrlRefusal('https://agents.example.com/', ['10.0.0.5:9000'])).toMatch(/not on the agent allow-list \(10\.0\.0\.5:9000; set FLOW_HTTP_AGENT_ALLOW\)/);
  expect(agentAllowListFromEnv({})).toBeUndefined();
  expect(agentAllowListFromEnv({ FLOW_HTTP_AGENT_ALLOW: 'A.example:80, 127.0.0.1:*' })).toEqual(['a.example:80', '127.0.0.1:*']);
  expect(() => agentAllowListFromEnv({ FLOW_HTTP_AGENT_ALLOW: 'http://x' })).toThrow('FLOW_HTTP_AGENT_ALLOW: "http://x" is not a host or host:port');
});

test('a name that resolves into a denied range is refused as it is connected to; nothing is sent', async () => {
  const before = requests;
  await expect(agentFetch(`http://localhost:${port}/agent`, init(), undefined)).rejects.toThrow(/refused: localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
  // A resolver that answers with a public and a private address (rebinding) is refused too.
  const mixed = (_host: string, callback: (error: null, addresses: { address: string; family: number }[]) => void) =>
    callback(null, [
      { address: '93.184.216.34', family: 4 },
      { address: '10.0.0.1', family: 4 },
    ]);
  await expect(agentFetch(`http://agents.example.test:${port}/agent`, init(), undefined, mixed)).rejects.toThrow(/agents\.example\.test resolves to 10\.0\.0\.1, a private address/);
  expect(requests).toBe(before);
  // Listed, the same service is reached.
  const listed = await agentFetch(`http://localhost:${port}/agent`, init(), ['localhost:*']);
  expect(listed.status).toBe(200);
  expect(requests).toBe(before + 1);
});

test('guardedLookup passes public answers through, by family, one or all', async () => {
  const resolver = (_host: string, callback: (error: null, addresses: { address: string; family: number }[]) => void) =>
    callback(null, [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
  const lookup = guardedLookup(resolver) as unknown as (host: string, options: object, callback: (...args: unknown[]) => void) => void;
  const call = (options: object) => new Promise<unknown[]>((resolve) => lookup('example.test', options, (...args) => resolve(args)));
  expect(await call({ family: 4 })).toEqual([null, '93.184.216.34', 4]);
  expect(await call({ all: true })).toEqual([null, [{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }]]);
  const failing = guardedLookup((_host, callback) => callback(Object.assign(new Error('nope'), { code: 'ENOTFOUND' }), [])) as unknown as typeof lookup;
  expect(await new Promise((resolve) => failing('x.test', {}, (error) => resolve((error as { code: string }).code)))).toBe('ENOTFOUND');
  const none = guardedLookup((_host, callback) => callback(null, [{ address: '93.184.216.34', family: 4 }])) as unknown as typeof lookup;
  expect(await new Promise((resolve) => none('x.test', { family: 6 }, (error) => resolve((error as { code: string }).code)))).toBe('ENOTFOUND');
});

function runRequest(): AgentRunRequest {
  return {
    task: { id: 'q', prompt: 'p' },
    systemPrompt: 'be careful',
    model: 'm',
    maxSteps: 3,
    maxTokens: 100,
    seed: 1,
    signal: new AbortController().signal,
    onStep: () => undefined,
  } as unknown as AgentRunRequest;
}

const trajectory = { job_id: 'job-ssrf', run: 1, iteration: 0, query_index: 0, sample_index: 0 };
const spec = (url: string) => ({ type: 'http' as const, url, timeout_seconds: 2, max_attempts: 3, expose_expected: false });

test('the HTTP agent: loopback by address or by name fails the run unsent and unretried; a redirect is not followed; stored bodies are cut', async () => {
  const before = requests;
  await expect(new HttpAgent(spec(`http://127.0.0.1:${port}/internal/admin`), { environment: 'simulated', trajectory }).run(runRequest())).rejects.toThrow(
    `http agent http://127.0.0.1:${port}/internal/admin refused: 127.0.0.1 is a loopback address`,
  );
  const byName = new HttpAgent(spec(`http://localhost:${port}/internal/admin`), { environment: 'simulated', trajectory, baseBackoffMs: 1 }).run(runRequest());
  await expect(byName).rejects.toThrow(/not retried: attempt 1: http:\/\/localhost:\d+\/internal\/admin refused: localhost resolves to .*a loopback address/);
  expect(requests).toBe(before);

  const allowed = { environment: 'simulated', trajectory, allow: ['127.0.0.1:*'], baseBackoffMs: 1 };
  const redirected = new HttpAgent(spec(`http://127.0.0.1:${port}/redirect`), allowed).run(runRequest());
  await expect(redirected).rejects.toThrow(/not retried: attempt 1: HTTP 302/);
  expect(requests).toBe(before + 1);

  // An error body, or a body off the contract, is kept only as a short excerpt.
  for (const path of ['/error', '/agent']) {
    const error = await new HttpAgent(spec(`http://127.0.0.1:${port}${path}`), allowed).run(runRequest()).then(
      () => null,
      (e: Error) => e,
    );
    expect(error!.message.length).toBeLessThan(600);
    expect(error!.message).not.toContain('x'.repeat(300));
  }
});
