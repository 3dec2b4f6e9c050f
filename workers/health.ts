/**
 * Health endpoints of a worker process, for Kubernetes probes and compose healthchecks:
 *  - GET /healthz: the process is alive and its event loop answers (liveness);
 *  - GET /readyz:  every pool's Worker is RUNNING and Temporal and PostgreSQL answer
 *                  (readiness: 503 with what is wrong otherwise, e.g. while draining); the body
 *                  also names the namespace and the task queue each pool polls, so an operator
 *                  sees at a glance which install a worker serves.
 * A bare node:http server: two routes need no framework.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { integerFromEnv } from '../adapters/envIntegers';

export const DEFAULT_WORKER_HEALTH_PORT = 8081;

export type CheckResult = 'ok' | string;

export interface ReadinessProbe {
  /** Pool name → Worker state; ready only when every one is RUNNING. */
  workerStates(): Record<string, string>;
  /** Named dependency checks (e.g. temporal, postgres); each resolves or throws. */
  dependencies: Record<string, () => Promise<unknown>>;
  /** What the worker serves, shown as is (e.g. its namespace and task queues). */
  serving?: () => Record<string, unknown>;
}

export interface HealthServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

export interface HealthServerOptions {
  port: number;
  host?: string;
  probe: ReadinessProbe;
  /** A dependency check slower than this counts as down. */
  checkTimeoutMs?: number;
}

/** FLOW_WORKER_HEALTH_PORT: a port (0 = any free one); default 8081. */
export function healthPortFromEnv(env: NodeJS.ProcessEnv): number {
  return integerFromEnv(env, 'FLOW_WORKER_HEALTH_PORT', DEFAULT_WORKER_HEALTH_PORT, { min: 0, max: 65535, unit: 'a port; 0: any free port' });
}

export async function readiness(probe: ReadinessProbe, checkTimeoutMs = 2000): Promise<{ ready: boolean; body: Record<string, unknown> }> {
  const workers = probe.workerStates();
  const entries = await Promise.all(
    Object.entries(probe.dependencies).map(async ([name, check]) => [name, await withTimeout(check, checkTimeoutMs)] as const),
  );
  const dependencies = Object.fromEntries(entries);
  const ready = Object.values(workers).every((state) => state === 'RUNNING') && entries.every(([, result]) => result === 'ok');
  return { ready, body: { status: ready ? 'ready' : 'not_ready', workers, ...dependencies, ...probe.serving?.() } };
}

async function withTimeout(check: () => Promise<unknown>, ms: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
    return 'ok';
  } catch (error) {
    return `down: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  } finally {
    clearTimeout(timer);
  }
}

export async function startHealthServer({ port, host = '0.0.0.0', probe, checkTimeoutMs }: HealthServerOptions): Promise<HealthServer> {
  const server = http.createServer((request, response) => {
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
    };
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, { error: `method ${request.method} not allowed; use GET` });
    if (path === '/healthz') return reply(200, { status: 'ok' });
    if (path === '/readyz') {
      readiness(probe, checkTimeoutMs).then(
        ({ ready, body }) => reply(ready ? 200 : 503, body),
        (error: unknown) => reply(503, { status: 'not_ready', error: String(error) }),
      );
      return;
    }
    reply(404, { error: `no route ${path}; try /healthz or /readyz` });
  });
  // Probes must never keep a draining process alive.
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`FLOW_WORKER_HEALTH_PORT ${port} is in use (another worker on this machine?); set FLOW_WORKER_HEALTH_PORT to a free port, or 0 for any`)
          : error,
      ),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const actual = (server.address() as AddressInfo).port;
  return {
    port: actual,
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${actual}`,
    // Requests being answered finish (a probe during the last moments of a drain gets its 503);
    // idle keep-alive connections are closed now, anything still open after a second too.
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), 1000);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
