/**
 * Host allow-lists, shared by the fetch tool (FLOW_HTTP_FETCH_ALLOW) and the HTTP agent's URL
 * policy (FLOW_HTTP_AGENT_ALLOW): which hosts and ports a URL may name.
 */

/**
 * "api.example.com, 127.0.0.1:8080, localhost:*" → ['api.example.com', '127.0.0.1:8080', 'localhost:*']
 * (`host:*` is any port of that host); bad entries throw, naming them.
 */
export function parseHostAllowList(raw: string | undefined, variable: string): string[] {
  if (!raw) return [];
  return raw
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '')
    .map((entry) => {
      if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5}|:\*)?$/.test(entry)) {
        throw new Error(`${variable}: "${entry}" is not a host or host:port`);
      }
      return entry;
    });
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** Why `url` may not be fetched, or null when it may; `list` names the allow-list and its variable. */
export function hostRefusal(url: URL, allow: readonly string[], list: { name: string; variable: string }): string | null {
  if (!(url.protocol in DEFAULT_PORTS)) return `only http and https URLs can be fetched, not ${url.protocol}`;
  if (url.username || url.password) return 'URLs with credentials are refused';
  const host = url.hostname.toLowerCase();
  const port = url.port || DEFAULT_PORTS[url.protocol];
  // A bare host allows the scheme's default port only; other ports must be listed.
  const allowed = allow.some((entry) => entry === `${host}:${port}` || entry === `${host}:*` || (entry === host && url.port === ''));
  if (!allowed) {
    return `host ${host}:${port} is not on the ${list.name} (${allow.length ? allow.join(', ') : 'empty'}; set ${list.variable})`;
  }
  return null;
}
