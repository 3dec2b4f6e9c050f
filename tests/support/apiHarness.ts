/**
 * The JSON-RPC facade on top of a test harness: the real API server (fastify, on a free port)
 * in front of the harness's Temporal client and database, with a fresh HS256 secret, plus
 * helpers to mint tokens and typed clients. A training worker runs while `h.run` or
 * `startWorker()` says so, as in the other integration tests.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Worker } from '@temporalio/worker';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_ROLES, mintToken, type AuthConfig, type TokenClaims } from '../../api/auth';
import { FlowClient } from '../../api/client/flowClient';
import { buildApiServer, type ApiOptions } from '../../api/server';
import { startHarness, type Harness } from './harness';

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
