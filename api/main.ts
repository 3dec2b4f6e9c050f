/**
 * The API process: `npm run api`. Needs DATABASE_URL, Temporal's connection settings
 * (TEMPORAL_ADDRESS, default 127.0.0.1:7233, TEMPORAL_NAMESPACE, and for Temporal Cloud
 * TEMPORAL_API_KEY or TEMPORAL_TLS_*: adapters/temporalConnection.ts) and a JWT key
 * (FLOW_JWT_SECRET, or FLOW_JWKS_URL / FLOW_JWKS_FILE).
 */
import { Client, Connection } from '@temporalio/client';
import { createPrismaClient, createRepositories } from '../adapters/db';
import { integerFromEnv, tcpPortFromEnv } from '../adapters/envIntegers';
import { DEFAULT_POLICY_CACHE_TTL_MS } from './policyRegistry';
import { temporalConnectionFromEnv } from '../adapters/temporalConnection';
import { authConfigFromEnv } from './auth';
import { statusCacheTtlFromEnv } from './jobStatusCache';
import { startOrphanReconciler } from './orphanedJobs';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './clientErrors';
import { DEFAULT_MAX_CONNECTIONS } from './connectionLimit';
import { buildApiServer, type ApiOptions } from './server';
import { startApiTelemetry, tracingClientInterceptors } from './telemetry';

/**
 * The server options every API process is built with (`npm run api` and `npm start`'s demo):
 * the JWT key, FLOW_API_LOG_LEVEL (default info) with logs to stdout or to FLOW_API_LOG_FILE,
 * FLOW_RATE_LIMIT_PER_MINUTE (calls per token per minute), FLOW_STATUS_CACHE_TTL_MS (how old a
 * job row get_status answers from may be; default 250), FLOW_POLICY_CACHE_TTL_MS (how long an
 * agent's active policy is served before its version is checked again; default 1000),
 * FLOW_API_REQUEST_TIMEOUT_MS (how long a client has to send a whole request; default 30000),
 * FLOW_API_MAX_CONNECTIONS (connections held open at once; default 4096).
 */
export function apiOptionsFromEnv(env: NodeJS.ProcessEnv, auth: ApiOptions['auth'] = authConfigFromEnv(env)): ApiOptions {
  // Unset (0 here): the server's default limit.
  const perMinute = integerFromEnv(env, 'FLOW_RATE_LIMIT_PER_MINUTE', 0, { min: 1, max: 1_000_000_000_000, unit: 'calls per token per minute' });
  return {
    auth,
    logger: { level: env.FLOW_API_LOG_LEVEL || 'info', ...(env.FLOW_API_LOG_FILE ? { file: env.FLOW_API_LOG_FILE } : {}) },
    rateLimit: perMinute ? { max: perMinute, timeWindowMs: 60_000 } : undefined,
    statusCacheTtlMs: statusCacheTtlFromEnv(env),
    policyCacheTtlMs: integerFromEnv(env, 'FLOW_POLICY_CACHE_TTL_MS', DEFAULT_POLICY_CACHE_TTL_MS, { min: 0, max: 3_600_000, unit: 'ms' }),
    requestTimeoutMs: integerFromEnv(env, 'FLOW_API_REQUEST_TIMEOUT_MS', DEFAULT_REQUEST_TIMEOUT_MS, { min: 1_000, max: 3_600_000, unit: 'ms' }),
    maxConnections: integerFromEnv(env, 'FLOW_API_MAX_CONNECTIONS', DEFAULT_MAX_CONNECTIONS, { min: 1, max: 1_000_000, unit: 'connections' }),
  };
}

/** Starts the API from `env` (the process environment by default) and listens. */
export async function startApi(env: NodeJS.ProcessEnv = process.env) {
  // Configuration errors first, before anything is opened.
  if (!env.DATABASE_URL) throw new Error('DATABASE_URL is not set; start the stack with `npm start` or export a PostgreSQL URL');
  const auth = authConfigFromEnv(env);
  const options = apiOptionsFromEnv(env, auth);
  const temporal = temporalConnectionFromEnv(env);
  const poolSize = integerFromEnv(env, 'FLOW_API_DB_POOL_SIZE', 10, { min: 1, max: 1000, unit: 'connections' });
  const port = tcpPortFromEnv(env, 'FLOW_API_PORT', 8080);
  const prisma = createPrismaClient(env.DATABASE_URL, { poolSize });
  const connection = await Connection.connect(temporal.connectionOptions);
  const client = new Client({ connection, namespace: temporal.namespace, interceptors: { workflow: tracingClientInterceptors() } });
  const repos = createRepositories(prisma);
  const app = await buildApiServer(
    { client, prisma, repos, taskQueue: env.FLOW_TASK_QUEUE || undefined },
    options,
  );
  const host = env.FLOW_API_HOST ?? '127.0.0.1';
  let url: string;
  try {
    url = await app.listen({ host, port });
  } catch (error) {
    // Nothing stays open, and the line names the setting to change (Node's own says only "EADDRINUSE").
    await app.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new Error(`FLOW_API_PORT ${port} is in use on ${host} (another API?); set FLOW_API_PORT to a free port`);
    if (code === 'EACCES') throw new Error(`FLOW_API_PORT ${port} on ${host} needs privileges this process does not have; use a port above 1023`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new Error(`FLOW_API_HOST ${host} is not an address of this machine`);
    throw error;
  }
  const reconciler = startOrphanReconciler(client, repos, (message) => app.log.warn(message));
  return {
    url,
    async close() {
      await reconciler.stop();
      await app.close();
      await connection.close();
      await prisma.$disconnect();
    },
  };
}

if (require.main === module) {
  startApiTelemetry()
    .then(() => startApi())
    .then(({ url, close }) => {
      console.log(`flow api: listening on ${url}`);
      const stop = () => void close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((error: Error) => {
      console.error(`flow api: ${error.message}`);
      process.exit(1);
    });
}
