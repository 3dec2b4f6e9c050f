/**
 * Where an HTTP agent service may live (SSRF). A job names its agent's URL; the worker, not the
 * job, decides what it may reach. With FLOW_HTTP_AGENT_ALLOW set, only the hosts it lists (`host`
 * or `host:port`), wherever they are. Without it, any host whose every address is public:
 * loopback, private, link-local (the cloud metadata service at 169.254.169.254), carrier-grade
 * NAT, multicast and the other special ranges are refused. The address is checked when the
 * connection is made (the resolver's answer, not an earlier lookup a DNS rebinding could change),
 * and redirects are never followed. The API checks the same rule at the start for what it can
 * know without DNS (an address in the URL).
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { hostRefusal, parseHostAllowList } from './hostAllowList';

export const HTTP_AGENT_ALLOW_ENV = 'FLOW_HTTP_AGENT_ALLOW';

/** Each denied range with the name errors use. */
const DENIED_RANGES: { name: string; cidr: string; family: 'ipv4' | 'ipv6' }[] = [
  { name: '"this network"', cidr: '0.0.0.0/8', family: 'ipv4' },
  { name: 'private', cidr: '10.0.0.0/8', family: 'ipv4' },
  { name: 'carrier-grade NAT (shared)', cidr: '100.64.0.0/10', family: 'ipv4' },
  { name: 'loopback', cidr: '127.0.0.0/8', family: 'ipv4' },
  { name: 'link-local (cloud metadata)', cidr: '169.254.0.0/16', family: 'ipv4' },
  { name: 'private', cidr: '172.16.0.0/12', family: 'ipv4' },
  { name: 'IETF protocol assignments', cidr: '192.0.0.0/24', family: 'ipv4' },
  { name: 'documentation', cidr: '192.0.2.0/24', family: 'ipv4' },
  { name: 'private', cidr: '192.168.0.0/16', family: 'ipv4' },
  { name: 'benchmarking', cidr: '198.18.0.0/15', family: 'ipv4' },
  { name: 'documentation', cidr: '198.51.100.0/24', family: 'ipv4' },
  { name: 'documentation', cidr: '203.0.113.0/24', family: 'ipv4' },
  { name: 'multicast', cidr: '224.0.0.0/4', family: 'ipv4' },
  { name: 'reserved', cidr: '240.0.0.0/4', family: 'ipv4' },
  { name: 'unspecified', cidr: '::/128', family: 'ipv6' },
  { name: 'loopback', cidr: '::1/128', family: 'ipv6' },
  { name: 'NAT64 (embeds an IPv4 address)', cidr: '64:ff9b::/96', family: 'ipv6' },
  { name: 'unique local (private)', cidr: 'fc00::/7', family: 'ipv6' },
  { name: 'link-local', cidr: 'fe80::/10', family: 'ipv6' },
  { name: 'multicast', cidr: 'ff00::/8', family: 'ipv6' },
];

const BLOCKS = DENIED_RANGES.map((range) => {
  const list = new BlockList();
  const [network, prefix] = range.cidr.split('/');
  list.addSubnet(network, Number(prefix), range.family);
  return { name: range.name, list, family: range.family };
});

/** The name of the denied range `address` (an IP address) is in, or null when it is public. */
export function deniedRangeOf(address: string): string | null {
  let ip = address.replace(/^\[|\]$/g, '').toLowerCase();
  const mapped = ipv4Mapped(ip);
  if (mapped) ip = mapped;
  const family = isIP(ip) === 4 ? 'ipv4' : isIP(ip) === 6 ? 'ipv6' : null;
  if (!family) return null;
  return BLOCKS.find((block) => block.family === family && block.list.check(ip, family))?.name ?? null;
}

/** `::ffff:127.0.0.1` and `::ffff:7f00:1` are IPv4 addresses in IPv6 form. */
function ipv4Mapped(ip: string): string | null {
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (dotted) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (!hex) return null;
  const [high, low] = [parseInt(hex[1], 16), parseInt(hex[2], 16)];
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** The agent allow-list from the environment: the hosts listed, or undefined when none is set. */
export function agentAllowListFromEnv(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  return env[HTTP_AGENT_ALLOW_ENV] ? parseHostAllowList(env[HTTP_AGENT_ALLOW_ENV], HTTP_AGENT_ALLOW_ENV) : undefined;
}

const LIST = { name: 'agent allow-list', variable: HTTP_AGENT_ALLOW_ENV };

/**
 * Why the agent service at `rawUrl` may not be called, as far as the URL alone tells (scheme,
 * credentials, the allow-list, an address in a denied range), or null. A host name's addresses
 * (`localhost` too) are checked when it is connected to (`agentFetch`).
 */
export function agentUrlRefusal(rawUrl: string, allow: readonly string[] | undefined): string | null {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return 'not a valid URL';
  }
  if (allow) return hostRefusal(url, allow, LIST);
  const general = hostRefusal(url, [`${url.hostname.toLowerCase()}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`], LIST);
  if (general) return general;
  const host = url.hostname.toLowerCase();
  const range = deniedRangeOf(host);
  return range ? deniedMessage(host, range) : null;
}

function deniedMessage(host: string, range: string, address?: string): string {
  const where = address && address !== host ? `${host} resolves to ${address}, ` : `${host} is `;
  return `${where}a ${range} address; agent services there are refused unless ${HTTP_AGENT_ALLOW_ENV} names the host`;
}

/** A connection the policy refused: never retried. */
export class AgentAddressRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentAddressRefusedError';
  }
}

type Resolver = (hostname: string, callback: (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;
const systemResolver: Resolver = (hostname, callback) => dns.lookup(hostname, { all: true, verbatim: true }, callback);

/** A `lookup` for http.request that fails when any address the name resolves to is denied. */
export function guardedLookup(resolve: Resolver = systemResolver): LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    resolve(hostname, (error, addresses) => {
      if (error) return callback(error);
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
      for (const { address } of wanted) {
        const range = deniedRangeOf(address);
        if (range) return callback(new AgentAddressRefusedError(deniedMessage(hostname, range, address)));
      }
      if (wanted.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }));
      if (options.all) return callback(null, wanted);
      return callback(null, wanted[0].address, wanted[0].family);
    });
  }) as LookupFunction;
}

export interface AgentFetchInit {
  method: 'POST';
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
}

/**
 * `fetch` for agent services under the policy: the URL is checked, a host not on the allow-list
 * is connected to only at a public address, redirects come back as they are (3xx, never
 * followed). Connection failures reject as fetch's do (a TypeError with the cause); a refused
 * address rejects with AgentAddressRefusedError.
 */
export async function agentFetch(rawUrl: string, init: AgentFetchInit, allow: readonly string[] | undefined, resolve?: Resolver): Promise<Response> {
  const refusal = agentUrlRefusal(rawUrl, allow);
  if (refusal) throw new AgentAddressRefusedError(`${rawUrl} refused: ${refusal}`);
  const url = new URL(rawUrl);
  const send = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<Response>((resolveResponse, reject) => {
    const request = send(
      url,
      {
        method: init.method,
        headers: { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) },
        signal: init.signal,
        // A host the allow-list names is trusted wherever it resolves; any other only at public addresses.
        ...(allow ? {} : { lookup: guardedLookup(resolve) }),
      },
      (response) => {
        const status = response.statusCode ?? 502;
        const headers = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
        }
        const known = status >= 200 && status <= 599;
        const noBody = !known || status === 204 || status === 205 || status === 304;
        if (noBody) response.resume();
        resolveResponse(new Response(noBody ? null : (Readable.toWeb(response) as ReadableStream), { status: known ? status : 502, headers }));
      },
    );
    request.once('error', (error: Error) => {
      // As fetch does: an aborted call rejects with the signal's reason.
      if (init.signal.aborted) return reject(init.signal.reason);
      if (error instanceof AgentAddressRefusedError) return reject(new AgentAddressRefusedError(`${rawUrl} refused: ${error.message}`));
      reject(Object.assign(new TypeError('fetch failed'), { cause: error }));
    });
    request.end(init.body);
  });
}
