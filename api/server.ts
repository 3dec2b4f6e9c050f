/**
 * The JSON-RPC 2.0 facade over HTTP: `POST /rpc` (single and batch requests), `GET /healthz`,
 * `GET /readyz`. fastify gives the body limit, request ids and structured logs;
 * @fastify/rate-limit the per-token limit; json-rpc-2.0 the method dispatch. Where that library
 * departs from the specification (see `envelopeError` and `respond`) this module corrects it,
 * and tests/integration/apiProtocol.test.ts holds each correction in place.
 */
import { randomUUID } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import type { ServerResponse } from 'node:http';
import fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import pino from 'pino';
import rateLimit from '@fastify/rate-limit';
import type { Client } from '@temporalio/client';
import { JSONRPCErrorException, JSONRPCServer, type JSONRPCResponse } from 'json-rpc-2.0';
import type { z } from 'zod';
import type { PrismaClient, Repositories } from '../adapters/db';
import type { BlobStore } from '../adapters/checkpoints/blobStore';
import { describeZodError } from '../training/zodErrors';
import { checkFlowNamespace, NamespaceNotReadyError } from '../deploy/registerSearchAttributes';
import { requirePermission, TokenVerifier, type AuthConfig, type Principal } from './auth';
import { answerClientError, DEFAULT_REQUEST_TIMEOUT_MS } from './clientErrors';
import { FlowRpcError, rpcErrorBody, type RpcErrorName } from './errors';
import { dashboardRoutes } from './dashboard/routes';
import { createMethodHandlers } from './methods';
import { PolicyRegistry, policyFastPath, registerPolicyRoutes, serverWithFastPath } from './policyRegistry';
import { drain } from './drainBody';
import { findUnsafeValue } from './paramsGuard';
import { METHODS, type MethodName } from './schemas';
import { registerRequestTracing } from './telemetry';

export interface ApiDependencies {
  client: Client;
  repos: Repositories;
  prisma: PrismaClient;
  /** Task queue for new jobs (tests use their own). */
  taskQueue?: string;
  /** Where checkpoint payloads are read from (training.list_checkpoints); default from the environment. */
  blobs?: BlobStore;
  /** The Temporal Web UI's base URL the dashboard links jobs to; default FLOW_TEMPORAL_UI_URL. */
  temporalUiUrl?: string | null;
}

export interface ApiOptions {
  auth: AuthConfig;
  /** Largest request body in bytes. */
  bodyLimitBytes?: number;
  /** Most requests in one batch. */
  maxBatch?: number;
  /** Requests per token per window. */
  rateLimit?: { max: number; timeWindowMs: number };
  /** A pino logger configuration, or false for none. */
  logger?: boolean | Record<string, unknown>;
  /** How long get_status may answer from a job row read earlier (api/jobStatusCache.ts); 0 for never. */
  statusCacheTtlMs?: number;
  /** How long an agent's active policy is served before its version is checked again (api/policyRegistry.ts). */
  policyCacheTtlMs?: number;
  /** How long a client has to send a whole request, headers and body (api/clientErrors.ts); default 30 s. */
  requestTimeoutMs?: number;
  /** How many connections are held open at once (api/connectionLimit.ts); default 4096. */
  maxConnections?: number;
}

export const API_DEFAULTS = { bodyLimitBytes: 1024 * 1024, maxBatch: 50, rateLimit: { max: 1200, timeWindowMs: 60_000 } };

/** Request logs are written this many bytes at a time, or every LOG_FLUSH_MS, whichever comes first. */
export const LOG_BUFFER_BYTES = 4096;
export const LOG_FLUSH_MS = 1000;

/**
 * The logger configuration fastify gets: one given with its own `stream` is used as it is;
 * otherwise lines go to `file` (or stdout) LOG_BUFFER_BYTES at a time, flushed at least every
 * LOG_FLUSH_MS and when the server closes or the process exits. One write(2) per line was a fifth
 * of the API's CPU with requests arriving one by one at 400 a second; the price is that a
 * SIGKILL loses up to a second of lines.
 */
function bufferedLogging(config: boolean | Record<string, unknown>): { logger: boolean | Record<string, unknown>; close: () => void } {
  if (typeof config !== 'object' || 'stream' in config) return { logger: config, close: () => undefined };
  const { file, ...rest } = config as { file?: string } & Record<string, unknown>;
  const stream = pino.destination({ dest: file ?? 1, minLength: LOG_BUFFER_BYTES, sync: false, mkdir: file !== undefined });
  const timer = setInterval(() => stream.flush(), LOG_FLUSH_MS).unref();
  return {
    logger: { ...rest, stream },
    close: () => {
      clearInterval(timer);
      try {
        stream.flushSync();
      } catch {
        // Not open yet (nothing was logged) or already closed: nothing to flush.
      }
    },
  };
}

/** The longest path segment routed: an agent id of 200 characters, each percent-encoded as up to 3 bytes of UTF-8. */
export const MAX_PATH_PARAM_CHARS = 200 * 9;

/** An error answered on the raw response (the router's hooks run before fastify's reply exists). */
function answerRaw(response: ServerResponse, status: number, error: ReturnType<typeof rpcErrorBody>): void {
  const body = JSON.stringify({ error });
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
}

/** A client's `x-request-id` is adopted only if it looks like an id (it ends up in logs and answers). */
export const SAFE_REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function requestId(request: { headers: Record<string, string | string[] | undefined> }): string {
  const offered = request.headers['x-request-id'];
  return typeof offered === 'string' && SAFE_REQUEST_ID.test(offered) ? offered : randomUUID();
}

interface CallContext {
  caller: Principal | FlowRpcError;
  requestId: string;
  log: FastifyRequest['log'];
  /** The request's calls, logged with it when it completes. */
  calls: RpcCallRecord[];
}

/** One JSON-RPC call of a request, as its log line carries it. */
interface RpcCallRecord {
  rpc_method: string;
  outcome: string;
  ms: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Principal | FlowRpcError;
    rpcCalls?: RpcCallRecord[];
  }
}

export async function buildApiServer(deps: ApiDependencies, options: ApiOptions): Promise<FastifyInstance> {
  const maxBatch = options.maxBatch ?? API_DEFAULTS.maxBatch;
  const limits = options.rateLimit ?? API_DEFAULTS.rateLimit;
  const verifier = new TokenVerifier(options.auth);
  const registry = new PolicyRegistry(deps.repos, { blobs: deps.blobs, cacheTtlMs: options.policyCacheTtlMs });
  // Agents' policy polls answered from memory before fastify when they can (api/policyRegistry.ts).
  const fastPath = policyFastPath({ verifier, registry, requestId });
  const logging = bufferedLogging(options.logger ?? { level: process.env.FLOW_API_LOG_LEVEL ?? 'info' });
  const app = fastify({
    logger: logging.logger,
    bodyLimit: options.bodyLimitBytes ?? API_DEFAULTS.bodyLimitBytes,
    // A client that sends its request slowly, or never finishes it, is answered 408 and closed
    // (fastify's default, 0, let a slow body hold a connection for ever).
    requestTimeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    clientErrorHandler: answerClientError,
    logController: new OneLinePerRequest(),
    requestIdHeader: false,
    genReqId: requestId,
    serverFactory: (handler, serverOptions) => serverWithFastPath(handler, { ...serverOptions, maxConnections: options.maxConnections }, fastPath),
    routerOptions: {
      // An agent id in GET /agents/{agent_id}/policy is up to 200 characters, so up to 1,800 once
      // percent-encoded (fastify's default, 100, refused ids every method accepts).
      maxParamLength: MAX_PATH_PARAM_CHARS,
      onMaxParamLength: (_path, _request, response) => answerRaw(response, 414, rpcErrorBody('INVALID_PARAMS', `a path segment over ${MAX_PATH_PARAM_CHARS} characters`)),
    },
    // A path that is not valid percent-encoding gets the error shape every other answer has.
    frameworkErrors: (error, request, reply) => {
      const detail = error.code === 'FST_ERR_BAD_URL' ? 'the URL path is not valid percent-encoding' : error.message;
      return (reply as FastifyReply).code(400).send({ error: rpcErrorBody('INVALID_PARAMS', detail, { request_id: request.id }) });
    },
  });
  app.addHook('onClose', async () => logging.close());
  registerRequestTracing(app); // each request's span is the root of the job's trace
  const rpc = createRpcServer({ ...deps, policyRegistry: registry, statusCacheTtlMs: options.statusCacheTtlMs });

  // JSON-RPC must answer malformed JSON itself (-32700), so the body arrives as text; any
  // other media type is refused (415). Bytes that are not UTF-8 are refused too (-32700): decoding
  // them would store U+FFFD where the client sent something else.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, isUtf8(body as Buffer) ? (body as Buffer).toString('utf8') : NOT_UTF8));

  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });

  app.setErrorHandler(async (error: Error & { code?: string; statusCode?: number }, request, reply) => {
    const known: Record<string, [number, RpcErrorName]> = {
      FST_ERR_CTP_BODY_TOO_LARGE: [413, 'REQUEST_TOO_LARGE'],
      FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
      FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_REQUEST'],
    };
    const match = (error.code && known[error.code]) || (error.statusCode === 429 ? ([429, 'RATE_LIMITED'] as const) : null);
    if (match) {
      const [status, name] = match;
      if (name === 'REQUEST_TOO_LARGE' && !(await drain(request.raw))) reply.header('connection', 'close');
      const detail = name === 'REQUEST_TOO_LARGE' ? `the limit is ${app.initialConfig.bodyLimit} bytes` : name === 'RATE_LIMITED' ? error.message : undefined;
      return reply.code(status).send({ jsonrpc: '2.0', id: null, error: rpcErrorBody(name, detail, { request_id: request.id }) });
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ jsonrpc: '2.0', id: null, error: rpcErrorBody('INTERNAL_ERROR', undefined, { request_id: request.id }) });
  });

  await app.register(rateLimit, {
    global: false,
    // Keyed after authentication, so the limit is per token (per subject), not per address.
    keyGenerator: (request) => {
      const caller = request.caller;
      return caller && !(caller instanceof FlowRpcError) ? `sub:${caller.tenantId}:${caller.subject}` : `ip:${request.ip}`;
    },
  });
  // The limit counts calls, not HTTP requests: a batch of 50 is 50 calls.
  const takeCall = app.createRateLimit({ max: limits.max, timeWindow: limits.timeWindowMs });

  // The dashboard at `/`: static files only; it reads and acts through POST /rpc with the user's token.
  await app.register(dashboardRoutes);

  app.get('/healthz', async () => ({ status: 'ok' }));

  // What running agents poll: the active policy version, with an ETag (api/policyRegistry.ts).
  registerPolicyRoutes(app, { verifier, registry });

  app.get('/readyz', async (_request, reply) => {
    const [temporal, postgres, namespace] = await Promise.all([
      probe(() => deps.client.workflowService.getSystemInfo({})),
      probe(() => deps.prisma.$queryRaw`SELECT 1`),
      // Reachable is not enough: jobs cannot start on a namespace without Flow's search attributes.
      probe(() => checkFlowNamespace(deps.client.connection, deps.client.options.namespace)),
    ]);
    const ready = temporal === 'ok' && postgres === 'ok' && namespace === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', temporal, postgres, namespace });
  });

  app.post(
    '/rpc',
    {
      onRequest: async (request) => {
        request.caller = await verifier.authenticate(request.headers.authorization);
      },
    },
    async (request, reply) => {
      const context: CallContext = { caller: request.caller!, requestId: request.id, log: request.log, calls: [] };
      request.rpcCalls = context.calls;
      const payload = parseBody(request.body);
      // Every call of a batch counts (an oversized one, refused whole, counts as the limit + 1).
      const calls = Array.isArray(payload) ? Math.max(1, Math.min(payload.length, maxBatch + 1)) : 1;
      let limit = await takeCall(request);
      for (let i = 1; i < calls; i++) limit = await takeCall(request);
      if (!limit.isAllowed) {
        reply.header('x-ratelimit-limit', limit.max).header('x-ratelimit-remaining', limit.remaining).header('x-ratelimit-reset', limit.ttlInSeconds);
        if (limit.isExceeded) {
          const detail = `more than ${limit.max} calls in ${limits.timeWindowMs / 1000} s for this token (each call of a batch counts); retry in ${limit.ttlInSeconds} s`;
          // A single call is answered under its own id; a batch, refused whole, under null.
          const single = payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? (payload as { id?: unknown }).id : undefined;
          return reply
            .code(429)
            .header('retry-after', limit.ttlInSeconds)
            .send({ jsonrpc: '2.0', id: isId(single) ? single : null, error: rpcErrorBody('RATE_LIMITED', detail, { request_id: request.id }) });
        }
      }
      const response = await respond(rpc, payload, maxBatch, context);
      if (response === null) return reply.code(204).send();
      return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(response);
    },
  );

  return app;
}

/**
 * One log line per request, not fastify's two plus one per JSON-RPC call: its "request completed"
 * (or "request errored") line carries the request's calls, one call's fields at the top level.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const calls = request.rpcCalls;
    const rpc = calls === undefined || calls.length === 0 ? undefined : calls.length === 1 ? calls[0] : { calls };
    const line = { method: request.method, url: request.url, res: reply, responseTime: Math.round(reply.elapsedTime * 10) / 10, ...rpc };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

async function probe(check: () => Promise<unknown>): Promise<string> {
  try {
    await Promise.race([check(), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 2 s')), 2000).unref())]);
    return 'ok';
  } catch (error) {
    if (error instanceof NamespaceNotReadyError) return `not ready: ${error.message}`;
    return `unreachable: ${failureReason(error)}`;
  }
}

/**
 * An error's reason in one line. Prisma's messages start with a blank line and an "Invalid
 * `prisma.$queryRaw()` invocation:" header, the reason last ("Can't reach database server at
 * …"): the first line alone left /readyz saying "unreachable: ". A message-less error (an
 * AggregateError: one ECONNREFUSED per address tried) gives its code, or its parts' or cause's.
 */
function failureReason(error: unknown, depth = 0): string {
  const { message, code, errors, cause } = (error ?? {}) as { message?: unknown; code?: unknown; errors?: unknown; cause?: unknown };
  const lines = typeof message === 'string' ? message.split('\n').map((line) => line.trim()).filter(Boolean) : [];
  if (lines.length > 0) return /^Invalid `.*` invocation/.test(lines[0]) ? lines[lines.length - 1] : lines[0];
  if (typeof code === 'string' && code) return code;
  if (depth < 3 && Array.isArray(errors)) {
    const parts = [...new Set(errors.map((part) => failureReason(part, depth + 1)).filter(Boolean))];
    if (parts.length > 0) return parts.join(', ');
  }
  if (depth < 3 && cause !== undefined) return failureReason(cause, depth + 1);
  return depth === 0 ? 'no reason given' : '';
}

function createRpcServer(deps: ApiDependencies & { policyRegistry: PolicyRegistry; statusCacheTtlMs?: number }): JSONRPCServer<CallContext> {
  const handlers = createMethodHandlers(deps);
  const server = new JSONRPCServer<CallContext>({ errorListener: () => undefined });
  for (const name of Object.keys(METHODS) as MethodName[]) {
    const spec = METHODS[name];
    server.addMethod(name, async (params: unknown, context: CallContext) => {
      const started = performance.now();
      let outcome = 'ok';
      try {
        if (context.caller instanceof FlowRpcError) throw context.caller;
        requirePermission(context.caller, spec.permission, name);
        if (spec.adminOnly && !context.caller.admin) throw new FlowRpcError('PERMISSION_DENIED', `${name} needs an admin token`);
        // What no schema may let through (NUL, lone surrogates, deep nesting), before the schema.
        const unsafe = findUnsafeValue(params);
        if (unsafe) throw new FlowRpcError('INVALID_PARAMS', `${unsafe.path}: ${unsafe.problem}`);
        const parsed = (spec.params as z.ZodType).safeParse(params ?? (name === 'rpc.discover' ? undefined : {}));
        if (!parsed.success) throw new FlowRpcError('INVALID_PARAMS', describeZodError(parsed.error, params));
        return await handlers[name](parsed.data as never, context.caller);
      } catch (error) {
        const mapped = toRpcError(error, context);
        outcome = String(mapped.code);
        throw mapped;
      } finally {
        context.calls.push({ rpc_method: name, outcome, ms: Math.round((performance.now() - started) * 10) / 10 });
      }
    });
  }
  return server;
}

/** Known errors pass through; anything else is logged with its stack and answered without it. */
function toRpcError(error: unknown, context: CallContext): JSONRPCErrorException {
  if (error instanceof JSONRPCErrorException) return error;
  // The Temporal client's own message is generic ("Failed to describe workflow"); the gRPC
  // status (14 UNAVAILABLE) is in its cause, so the whole chain is read.
  const messages: string[] = [];
  const codes: string[] = [];
  for (let cause: unknown = error; cause && messages.length < 5; cause = (cause as Error).cause) {
    messages.push((cause as Error).message ?? String(cause));
    for (const key of ['code', 'originalCode'] as const) {
      const code = (cause as Record<string, unknown>)[key];
      if (typeof code === 'string') codes.push(code);
    }
  }
  const message = messages.join(' | ');
  // node-postgres's own timeouts (adapters/db/prismaClient.ts) say a PostgreSQL that hangs: unavailable too;
  // so do PostgreSQL's refusals while it starts, stops or recovers (SQLSTATE 57P01-57P03), is
  // out of connection slots (53300), or has lost a connection (class 08).
  if (
    /ECONNREFUSED|UNAVAILABLE|Can't reach database|connect ETIMEDOUT|Connection terminated|Query read timeout|timeout exceeded when trying to connect/i.test(message) ||
    /the database system is (starting up|shutting down|in recovery mode|not yet accepting connections)|terminating connection due to administrator command|too many clients already|remaining connection slots are reserved/i.test(message) ||
    codes.some((code) => /^(57P0[123]|53300|08[0-9A-Z]{3})$/.test(code))
  ) {
    context.log.warn({ err: error }, 'dependency unavailable');
    return new FlowRpcError('UNAVAILABLE', 'Temporal or PostgreSQL did not answer; retry later', { request_id: context.requestId });
  }
  context.log.error({ err: error }, 'method failed');
  return new FlowRpcError('INTERNAL_ERROR', undefined, { request_id: context.requestId });
}

const isId = (id: unknown) => id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));

/**
 * What the library lets through but the specification calls an Invalid Request: a non-object
 * member (it crashes on null), an id that is not a string, number or null, params that are
 * neither an array nor an object.
 */
function envelopeError(request: unknown): JSONRPCResponse | null {
  const object = request !== null && typeof request === 'object' && !Array.isArray(request) ? (request as Record<string, unknown>) : null;
  const id = object && 'id' in object && isId(object.id) ? (object.id as string | number | null) : null;
  const invalid = (detail: string): JSONRPCResponse => ({ jsonrpc: '2.0', id, error: rpcErrorBody('INVALID_REQUEST', detail) });
  if (!object) return invalid('a request must be a JSON object');
  if (object.jsonrpc !== '2.0') return invalid('"jsonrpc" must be exactly "2.0"');
  if (typeof object.method !== 'string') return invalid('"method" must be a string');
  if ('id' in object && !isId(object.id)) return invalid('"id" must be a string, a number or null');
  if ('params' in object && (object.params === null || typeof object.params !== 'object')) return invalid('"params" must be an object or an array');
  return null;
}

async function respondOne(rpc: JSONRPCServer<CallContext>, request: unknown, context: CallContext): Promise<JSONRPCResponse | null> {
  const invalid = envelopeError(request);
  if (invalid) return invalid;
  const { id, method } = request as { id?: string | number | null; method: string };
  // The library's own -32601 has no data.reason; a notification (no id) is still not answered.
  if (id !== undefined && !Object.hasOwn(METHODS, method)) {
    return { jsonrpc: '2.0', id, error: rpcErrorBody('METHOD_NOT_FOUND', `no method "${method.slice(0, 100)}"; rpc.discover lists them`) };
  }
  return rpc.receive(request as never, context);
}

/** The body's JSON, or NOT_JSON (NOT_UTF8 as it came from the content type parser). */
const NOT_JSON = Symbol('not JSON');
const NOT_UTF8 = Symbol('not UTF-8');
function parseBody(body: unknown): unknown {
  if (body === NOT_UTF8) return NOT_UTF8;
  try {
    return JSON.parse(typeof body === 'string' ? body : '');
  } catch {
    return NOT_JSON;
  }
}

/** The whole HTTP answer: a response, an array of them, or null for no body (notifications only). */
export async function respond(
  rpc: JSONRPCServer<CallContext>,
  payload: unknown,
  maxBatch: number,
  context: CallContext,
): Promise<JSONRPCResponse | JSONRPCResponse[] | null> {
  if (payload === NOT_JSON) return { jsonrpc: '2.0', id: null, error: rpcErrorBody('PARSE_ERROR', 'the body is not valid JSON') };
  if (payload === NOT_UTF8) return { jsonrpc: '2.0', id: null, error: rpcErrorBody('PARSE_ERROR', 'the body is not valid UTF-8') };
  if (!Array.isArray(payload)) return respondOne(rpc, payload, context);
  if (payload.length === 0) return { jsonrpc: '2.0', id: null, error: rpcErrorBody('INVALID_REQUEST', 'an empty batch') };
  if (payload.length > maxBatch) {
    return { jsonrpc: '2.0', id: null, error: rpcErrorBody('BATCH_TOO_LARGE', `${payload.length} requests; at most ${maxBatch} per batch`) };
  }
  // The library answers a one-request batch with a bare object; a batch always gets an array.
  const responses = await Promise.all(payload.map((request) => respondOne(rpc, request, context)));
  const answered = responses.filter((r): r is JSONRPCResponse => r !== null);
  return answered.length === 0 ? null : answered;
}
