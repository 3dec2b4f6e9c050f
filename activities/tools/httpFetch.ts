/**
 * The HTTP fetch tool: GET a URL whose host is on an allow-list (FLOW_HTTP_FETCH_ALLOW,
 * comma-separated `host` or `host:port`). Anything else is refused with a tool error the agent
 * reads: another host or port, another scheme than http/https, credentials in the URL. Redirects
 * are followed by hand, each hop checked against the same list. The answer is cut at a size
 * limit and the whole fetch at a time limit.
 */
import type { ToolOutcome } from '../agents/agentRuntime';
import { hostRefusal, parseHostAllowList } from '../../adapters/net/hostAllowList';

export const HTTP_FETCH_TOOL = 'http_fetch';
export const HTTP_FETCH_ALLOW_ENV = 'FLOW_HTTP_FETCH_ALLOW';

export const HTTP_FETCH_TOOL_DEFINITION = {
  name: HTTP_FETCH_TOOL,
  description: 'Fetches a web page or API response with HTTP GET and returns its status and text. Only allow-listed hosts can be reached.',
  parameters: {
    type: 'object',
    properties: { url: { type: 'string', description: 'an http:// or https:// URL' } },
    required: ['url'],
    additionalProperties: false,
  },
};

export interface HttpFetchOptions {
  /** Allowed `host` (the scheme's default port) or `host:port` entries, lower case. */
  allow: readonly string[];
  /** Bytes of the body kept; the rest is cut and the output says so. */
  maxBytes?: number;
  timeoutMs?: number;
  maxRedirects?: number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024;
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_REDIRECTS = 3;

/** The fetch tool's allow-list (FLOW_HTTP_FETCH_ALLOW): see parseHostAllowList. */
export function parseAllowList(raw: string | undefined, variable: string = HTTP_FETCH_ALLOW_ENV): string[] {
  return parseHostAllowList(raw, variable);
}

/** Why the fetch tool may not fetch `url`, or null when it may: see hostRefusal. */
export function refusalOf(url: URL, allow: readonly string[], list = { name: 'fetch allow-list', variable: HTTP_FETCH_ALLOW_ENV }): string | null {
  return hostRefusal(url, allow, list);
}

export async function httpFetch(rawUrl: unknown, options: HttpFetchOptions, signal?: AbortSignal): Promise<ToolOutcome> {
  if (typeof rawUrl !== 'string' || rawUrl.trim() === '') {
    return { output: '', error: `http_fetch needs {"url": string}, got ${JSON.stringify(rawUrl) ?? 'nothing'}` };
  }
  let url: URL;
  try {
    url = new URL(rawUrl.trim());
  } catch {
    return { output: '', error: `"${rawUrl.slice(0, 200)}" is not a valid URL` };
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const fetchSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  try {
    for (let hop = 0; ; hop++) {
      const refusal = refusalOf(url, options.allow);
      if (refusal) return { output: '', error: hop === 0 ? refusal : `redirect to ${url.href} refused: ${refusal}` };
      const response = await fetch(url, { method: 'GET', redirect: 'manual', signal: fetchSignal, headers: { accept: 'text/*, application/json' } });
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        if (hop >= maxRedirects) return { output: '', error: `more than ${maxRedirects} redirects` };
        url = new URL(location, url);
        continue;
      }
      const { text, truncated } = await readCapped(response, options.maxBytes ?? DEFAULT_MAX_BYTES);
      const output = `HTTP ${response.status}\n${text}${truncated ? `\n[cut at ${options.maxBytes ?? DEFAULT_MAX_BYTES} bytes]` : ''}`;
      return { output, error: response.ok ? null : `HTTP ${response.status} from ${url.host}` };
    }
  } catch (error) {
    if (signal?.aborted) throw error;
    if (timeout.aborted) return { output: '', error: `fetching ${url.href} took longer than ${timeoutMs} ms` };
    const cause = (error as { cause?: { message?: string } }).cause?.message;
    return { output: '', error: `fetching ${url.href} failed: ${cause ?? (error instanceof Error ? error.message : String(error))}` };
  }
}

/** Reads at most `maxBytes` of the body and stops the download there. */
export async function readCapped(response: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > maxBytes) {
      chunks.push(value.subarray(0, maxBytes - size));
      size = maxBytes;
      truncated = true;
      await reader.cancel();
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  return { text: new TextDecoder().decode(Buffer.concat(chunks)), truncated };
}
