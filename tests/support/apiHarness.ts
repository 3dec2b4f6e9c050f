/**
 * The JSON-RPC facade on top of a test harness: the real API server (fastify, on a free port)
 * in front of the harness's Temporal client and database, with a fresh HS256 secret, plus
 * helpers to mint tokens and typed clients. A training worker runs while `h.run` or
 * `startWorker()` says so, as in the other integration tests.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { TrainingWorker as Worker } from '../../workers/trainingWorker';
import { Client as PgClient } from 'pg';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_ROLES, mintToken, type AuthConfig, type TokenClaims } from '../../api/auth';
import { FlowApiError, FlowClient } from '../../api/client/flowClient';
import { buildApiServer, type ApiOptions } from '../../api/server';
import { requireEnv, startHarness, type Harness } from './harness';
import type { Repositories } from '../../adapters/db';

export interface ApiHarness {
  h: Harness;
  app: FastifyInstance;
  url: string;
  auth: AuthConfig;
  secret: string;
  token(claims?: Partial<TokenClaims>): Promise<string>;
  client(claims?: Partial<TokenClaims>): Promise<FlowClient>;
  /** POSTs a raw body to /rpc. */
  post(body: string | object, headers?: Record<string, string>): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  startWorker(): Promise<{ worker: Worker; stop(): Promise<void> }>;
  close(): Promise<void>;
}

export const TEST_CLAIMS: TokenClaims = { subject: 'alice', tenant: 'tenant-a', roles: ['trainer'], expiresIn: '1h' };

export async function startApiHarness(options: Partial<Omit<ApiOptions, 'auth'>> & { harness?: Harness } = {}): Promise<ApiHarness> {
  const h = options.harness ?? (await startHarness());
  const secret = randomBytes(32).toString('hex');
  const auth: AuthConfig = { key: { algorithm: 'HS256', secret }, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, tenantClaim: 'tenant', roles: DEFAULT_ROLES };
  const app = await buildApiServer({ client: h.client, repos: h.repos, prisma: h.prisma, taskQueue: h.taskQueue }, { logger: false, ...options, auth });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const token = (claims: Partial<TokenClaims> = {}) => mintToken({ ...auth, secret }, { ...TEST_CLAIMS, ...claims });
  return {
    h,
    app,
    url,
    auth,
    secret,
    token,
    async client(claims) {
      return new FlowClient({ url, token: await token(claims) });
    },
    async post(body, headers = {}) {
      const response = await fetch(`${url}/rpc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await token()}`, ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: unknown = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, body: parsed, text, headers: response.headers };
    },
    async startWorker() {
      const worker = await h.newWorker();
      const running = worker.run();
      return {
        worker,
        async stop() {
          worker.shutdown();
          await running;
        },
      };
    },
    async close() {
      await app.close();
      if (!options.harness) await h.close();
    },
  };
}

/** Polls `fn` until `done` holds (every 100 ms by default); throws with the last value on timeout. */
export async function waitFor<T>(fn: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A PostgreSQL advisory lock key: "FlowKS" in ASCII. */
const KILL_SWITCH_TEST_LOCK = 0x466c6f774b53;

/**
 * The kill switch is global: every running trainingJob workflow on the suite's Temporal server
 * gets it, and the setting lives in the shared database. Test files that turn it on run alone
 * (`@suiteLock exclusive`, tests/support/suiteEnvironment.ts) and do so inside this lock (a
 * session-level advisory lock on the test database), so two kill-switch files never overlap even
 * when run without the suite lock; `fn` must turn it off again before returning (use try/finally).
 */
export async function withKillSwitchLock<T>(fn: () => Promise<T>): Promise<T> {
  const pg = new PgClient({ connectionString: requireEnv('DATABASE_URL') });
  pg.on('error', () => undefined);
  await pg.connect();
  try {
    await pg.query('SELECT pg_advisory_lock($1)', [KILL_SWITCH_TEST_LOCK]);
    return await fn();
  } finally {
    await pg.query('SELECT pg_advisory_unlock($1)', [KILL_SWITCH_TEST_LOCK]).catch(() => undefined);
    await pg.end().catch(() => undefined);
  }
}

/** The FlowApiError a call was refused with (fails the test if it was not refused). */
export async function rpcError(promise: Promise<unknown>): Promise<FlowApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FlowApiError);
  return error as FlowApiError;
}

/** start_grpo params for a tiny job that checkpoints every iteration. */
export const tinyJob = (agent: string, iterations = 4) => ({
  agent_id: agent,
  task_set: 'simulated-small' as const,
  config: { iterations, checkpoint_interval: 1, batch_size: 1, group_size: 4, seed: 7 },
});

/** `count` registry versions of `agentId`, written directly (as promotions would), v1 oldest. */
export async function writeVersions(repos: Repositories, tenantId: string, agentId: string, count: number) {
  for (let version = 1; version <= count; version += 1) {
    await repos.policyVersions.create({
      tenantId,
      agentId,
      version,
      kind: 'force',
      policy: { version, base_prompt: `prompt ${version}`, lessons: [] },
      contentHash: String(version).padStart(64, '0'),
      sourceJobId: 'no-such-job',
      sourceRun: 1,
      sourceIteration: version,
      evaluation: null,
      rollbackOf: null,
      reason: `version ${version}`,
      refusal: null,
      createdBy: 'test',
    });
  }
}
