/**
 * The JSON-RPC facade on top of a test harness: the real API server (fastify, on a free port)
 * in front of the harness's Temporal client and database, with a fresh HS256 secret, plus
 * helpers to mint tokens and typed clients. A training worker runs while `h.run` or
 * `startWorker()` says so, as in the other integration tests.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { TrainingWorker as Worker } from '../../workers/trainingWorker';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_ROLES, mintToken, type AuthConfig, type TokenClaims } from '../../api/auth';
import { FlowApiError, FlowClient } from '../../api/client/flowClient';
import { buildApiServer, type ApiOptions } from '../../api/server';
import { startHarness, type Harness } from './harness';
import type { Repositories } from '../../adapters/db';
import { ISOLATED_INSTALL_ENV } from './isolatedInstall';

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

/**
 * Runs `fn`, which turns the kill switch on, in a file with a Flow install of its own
 * (`@suiteLock isolated`, tests/support/suiteEnvironment.ts): the switch is global to an install,
 * so in the suite's shared one it would pause every other file's jobs. Refused anywhere else.
 * `fn` must turn it off again before returning (use try/finally): the file's own later tests
 * share the install.
 */
export async function withOwnKillSwitch<T>(fn: () => Promise<T>): Promise<T> {
  if (process.env[ISOLATED_INSTALL_ENV] !== '1') throw new Error('the kill switch is turned on only in a file with an install of its own: give the file "@suiteLock isolated (it turns the kill switch on)"');
  return fn();
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
