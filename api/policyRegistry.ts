/**
 * The learned policy as a product (issue 16): a checkpoint's policy as JSON or as the rendered
 * system prompt (training.get_policy), and each agent's registry of policy versions
 * (agents.promote_policy, agents.rollback, agents.list_policy_versions), which running agents
 * read through GET /agents/{agent_id}/policy with an ETag, or agents.get_active_policy.
 *
 * Versions are rows that are never changed (policy_versions); the active version is the highest.
 * The read path answers from an in-process cache of each agent's active version, its JSON body
 * serialised once. This process drops an agent's entry when it promotes or rolls back; other API
 * replicas learn of a change by re-reading the active version *number* (one indexed query) once
 * an entry is older than FLOW_POLICY_CACHE_TTL_MS (default 1 s): a replica serves the previous
 * version for at most that long after another replica's promotion, and never an unknown one.
 * The hot path renews an entry in the background once it is REFRESH_AHEAD_SHARE of that old, so
 * under steady polling it never goes stale and no poll waits for (or falls back to) the check.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { z } from 'zod';
import { CheckpointIntegrityError, CheckpointStore } from '../adapters/checkpoints/checkpointStore';
import { blobStoreFromEnv, type BlobStore } from '../adapters/checkpoints/blobStore';
import { PolicyVersionTakenError, type PolicyVersionRow, type Repositories } from '../adapters/db';
import type { Prisma } from '../generated/prisma/client';
import { evaluationSplit, EvaluationSummarySchema, type EvaluationSplitInput, type EvaluationSummary } from '../training/evaluation';
import { PolicySchema, renderSystemPrompt, type Policy } from '../training/policy';
import { promotionRefusal, type JobBase, type PromotionCase } from '../training/promotion';
import { isTerminalJobStatus, type JobStatus } from '../training/jobStatus';
import { REFRESH_AHEAD_SHARE, type Principal, type TokenVerifier } from './auth';
import { httpTimeouts } from './clientErrors';
import { DEFAULT_MAX_CONNECTIONS, limitConnections } from './connectionLimit';
import { drain } from './drainBody';
import { checkpointUnreadable, FlowRpcError, rpcErrorBody, type RpcErrorName } from './errors';
import type {
  ActivePolicy,
  GetActivePolicyParamsSchema,
  GetPolicyParamsSchema,
  GetPolicyResult,
  ListPolicyVersionsParamsSchema,
  ListPolicyVersionsResult,
  PolicyVersionResult,
  PromotePolicyParamsSchema,
  RollbackParamsSchema,
} from './schemas';
import { AGENT_ID_PATTERN, AGENT_ID_RULE, INT4_MAX } from './schemas';

/** sha256 (hex) of a policy's content (base prompt and lessons, not its update counter). */
export function policyContentHash(policy: Pick<Policy, 'base_prompt' | 'lessons'>): string {
  return createHash('sha256').update(JSON.stringify({ base_prompt: policy.base_prompt, lessons: policy.lessons })).digest('hex');
}

/** The ETag of a version: its number and content, so a rollback (a new number) is a new tag. */
export function policyEtag(version: number, contentHash: string): string {
  return `"v${version}-${contentHash.slice(0, 16)}"`;
}

export const DEFAULT_POLICY_CACHE_TTL_MS = 1_000;
/** Agents whose active version (or its absence) is remembered: a bound, since any id can be asked for. */
export const POLICY_CACHE_MAX_AGENTS = 10_000;

/** An agent's active version as the read path serves it; `json` is the body, serialised once. */
interface ActiveEntry {
  version: number;
  etag: string;
  json: string;
  /** `json` as UTF-8, what the fast path writes. */
  bytes: Buffer;
  body: ActivePolicy;
}

interface CacheSlot {
  entry: ActiveEntry | null;
  /** When the check that produced `entry` started: what it read was current then. */
  checkedAt: number;
  /** A refresh in flight: concurrent readers of a stale slot share it. */
  refreshing?: Promise<ActiveEntry | null>;
}

export interface PolicyRegistryOptions {
  /** How long an entry is served before its version number is checked again; default 1 s (the API sets FLOW_POLICY_CACHE_TTL_MS). */
  cacheTtlMs?: number;
  blobs?: BlobStore;
  /** The cache's clock (tests set it). */
  now?: () => number;
}

export class PolicyRegistry {
  private readonly cache = new LRUCache<string, CacheSlot>({ max: POLICY_CACHE_MAX_AGENTS });
  /** Bumped by every invalidation: a refresh that started before it must not store what it read. */
  private generation = 0;
  private readonly ttlMs: number;
  private checkpointStore?: CheckpointStore;

  constructor(
    private readonly repos: Repositories,
    private readonly options: PolicyRegistryOptions = {},
  ) {
    this.ttlMs = options.cacheTtlMs ?? DEFAULT_POLICY_CACHE_TTL_MS;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private checkpoints(): CheckpointStore {
    this.checkpointStore ??= new CheckpointStore(this.repos.progress, this.options.blobs ?? blobStoreFromEnv());
    return this.checkpointStore;
  }

  /** The agent's active version (cached), or null when it has none. */
  async active(tenantId: string, agentId: string): Promise<ActiveEntry | null> {
    const key = `${tenantId}\0${agentId}`;
    const slot = this.cache.get(key);
    if (slot && this.now() - slot.checkedAt < this.ttlMs) return slot.entry;
    return slot?.refreshing ?? this.startRefresh(key, tenantId, agentId, slot);
  }

  /** Checks the agent's active version; concurrent readers share the check through the slot. */
  private startRefresh(key: string, tenantId: string, agentId: string, slot: CacheSlot | undefined): Promise<ActiveEntry | null> {
    const generation = this.generation;
    const startedAt = this.now();
    const refreshing = this.refresh(tenantId, agentId, slot?.entry ?? null).then(
      (entry) => {
        // A promotion or rollback here meanwhile: what was read may be older than it; the next reader reads again.
        if (generation === this.generation) this.cache.set(key, { entry, checkedAt: startedAt });
        else this.cache.delete(key);
        return entry;
      },
      (error: unknown) => {
        // A failed check leaves the slot stale: the next reader tries again.
        const current = this.cache.get(key);
        if (current) delete current.refreshing;
        throw error;
      },
    );
    this.cache.set(key, { entry: slot?.entry ?? null, checkedAt: slot?.checkedAt ?? 0, refreshing });
    return refreshing;
  }

  /** The version number is enough to know a cached entry is current; the row is read only when it is not. */
  private async refresh(tenantId: string, agentId: string, cached: ActiveEntry | null): Promise<ActiveEntry | null> {
    if (cached) {
      const version = await this.repos.policyVersions.activeVersion(tenantId, agentId);
      if (version === cached.version) return cached;
    }
    const row = await this.repos.policyVersions.active(tenantId, agentId);
    if (!row) return null;
    const body = activeBody(row);
    const json = JSON.stringify(body);
    return { version: row.version, etag: body.etag, json, bytes: Buffer.from(json), body };
  }

  /**
   * The agent's entry when it is fresh (checked within the TTL), else undefined: no I/O, no
   * waiting. One nearing the end of its TTL is renewed in the background meanwhile.
   */
  fresh(tenantId: string, agentId: string): ActiveEntry | null | undefined {
    const key = `${tenantId}\0${agentId}`;
    const slot = this.cache.get(key);
    if (!slot) return undefined;
    const age = this.now() - slot.checkedAt;
    if (age >= this.ttlMs * REFRESH_AHEAD_SHARE && !slot.refreshing) {
      // Its failure leaves the slot to go stale; the route's reader then retries and answers the error.
      this.startRefresh(key, tenantId, agentId, slot).catch(() => undefined);
    }
    return age < this.ttlMs ? slot.entry : undefined;
  }

  /** Forgets an agent's entry: the next read loads the new active version. */
  invalidate(tenantId: string, agentId: string): void {
    this.generation++;
    this.cache.delete(`${tenantId}\0${agentId}`);
  }

  async getPolicy(params: z.infer<typeof GetPolicyParamsSchema>, caller: Principal): Promise<GetPolicyResult> {
    const job = visibleJob(await this.repos.jobs.get(params.job_id), params.job_id, caller);
    const { loaded, policy, lessons } = await this.loadCheckpointPolicy(job.id, params.checkpoint);
    const row = await this.repos.progress.checkpoint(job.id, loaded);
    return {
      job_id: job.id,
      agent_id: job.agentId,
      format: params.format,
      checkpoint: { run: loaded.run, iteration: loaded.iteration, score: loaded.score, created_at: (row?.createdAt ?? new Date(0)).toISOString() },
      content_hash: policyContentHash(policy),
      ...(params.format === 'text' ? { system_prompt: renderSystemPrompt(policy) } : { policy: { version: policy.version, base_prompt: policy.base_prompt, lessons } }),
    };
  }

  /** The checkpoint's verified policy, and its lessons as stored (with any fields beside id, text, weight). */
  private async loadCheckpointPolicy(jobId: string, which: z.infer<typeof GetPolicyParamsSchema>['checkpoint']) {
    let loaded;
    try {
      loaded = await this.checkpoints().load(jobId, which);
    } catch (error) {
      if ((error as Error).name === 'CheckpointNotFoundError') {
        const checkpoints = await this.repos.progress.checkpoints(jobId);
        const has = checkpoints.length ? `it has ${checkpoints.map((c) => `${c.run}:${c.iteration}`).join(', ')} (run:iteration)` : 'it has none';
        const what = typeof which === 'string' ? `${which} checkpoint` : `checkpoint at run ${which.run}, iteration ${which.iteration}`;
        throw new FlowRpcError('NO_CHECKPOINT', `job "${jobId}" has no ${what}; ${has}`);
      }
      if (error instanceof CheckpointIntegrityError) throw checkpointUnreadable(error);
      throw error;
    }
    const parsed = PolicySchema.safeParse(loaded.policy);
    if (!parsed.success) throw new FlowRpcError('NO_CHECKPOINT', `job "${jobId}" checkpoint ${loaded.run}:${loaded.iteration} holds no well-formed policy`);
    const lessons = (loaded.policy.lessons as unknown as ActivePolicy['policy']['lessons']) ?? parsed.data.lessons;
    return { loaded, policy: parsed.data, lessons };
  }

  async promote(params: z.infer<typeof PromotePolicyParamsSchema>, caller: Principal): Promise<PolicyVersionResult> {
    const tenantId = registryTenant(params.tenant_id, caller);
    if (params.force && !caller.admin) throw new FlowRpcError('PERMISSION_DENIED', 'force: only an admin token may force a promotion');
    if (params.force && !params.reason?.trim()) throw new FlowRpcError('INVALID_PARAMS', 'reason: a forced promotion must say why (it is recorded with the version), in more than blanks');
    const job = visibleJob(await this.repos.jobs.get(params.job_id), params.job_id, caller);
    if (job.tenantId !== tenantId) throw new FlowRpcError('INVALID_PARAMS', `job "${job.id}" belongs to tenant "${job.tenantId}", not to "${tenantId}" whose agent is promoted`);
    if (job.agentId !== params.agent_id) throw new FlowRpcError('INVALID_PARAMS', `job "${job.id}" trains agent "${job.agentId}", not "${params.agent_id}"`);
    const { loaded, policy, lessons } = await this.loadCheckpointPolicy(job.id, params.checkpoint);
    const position = { run: loaded.run, iteration: loaded.iteration };
    const [active, { evaluation, test_split }] = await Promise.all([this.repos.policyVersions.active(tenantId, params.agent_id), this.testEvidence(job, position)]);
    const refusal = promotionRefusal({
      job_id: job.id,
      checkpoint: position,
      evaluation,
      active: active ? { version: active.version, content_hash: active.contentHash } : null,
      job_base: jobBase(job.input),
      test_split,
    });
    if (refusal && !params.force) throw new FlowRpcError('PROMOTION_REFUSED', refusal, { active_version: active?.version ?? null });
    const row = await this.write({
      tenantId,
      agentId: params.agent_id,
      version: (active?.version ?? 0) + 1,
      kind: refusal ? 'force' : 'promote',
      policy: { version: policy.version, base_prompt: policy.base_prompt, lessons } as Prisma.InputJsonValue,
      contentHash: policyContentHash(policy),
      sourceJobId: job.id,
      sourceRun: loaded.run,
      sourceIteration: loaded.iteration,
      evaluation: evaluation ? (evaluation as unknown as Prisma.InputJsonValue) : null,
      rollbackOf: null,
      reason: params.reason ?? null,
      refusal,
      createdBy: caller.subject,
    });
    return versionResult(row, row.version);
  }

  async rollback(params: z.infer<typeof RollbackParamsSchema>, caller: Principal): Promise<PolicyVersionResult> {
    const tenantId = registryTenant(params.tenant_id, caller);
    const [active, target] = await Promise.all([
      this.repos.policyVersions.active(tenantId, params.agent_id),
      this.repos.policyVersions.get(tenantId, params.agent_id, params.to_version),
    ]);
    if (!active || !target) {
      const has = active ? `it has v1..v${active.version}` : 'it has no policy versions';
      throw new FlowRpcError('POLICY_NOT_FOUND', `agent "${params.agent_id}" has no version ${params.to_version}; ${has}`);
    }
    if (target.version === active.version) throw new FlowRpcError('INVALID_PARAMS', `to_version: v${target.version} is the active version already`);
    const row = await this.write({
      tenantId,
      agentId: params.agent_id,
      version: active.version + 1,
      kind: 'rollback',
      policy: target.policy as Prisma.InputJsonValue,
      contentHash: target.contentHash,
      sourceJobId: target.sourceJobId,
      sourceRun: target.sourceRun,
      sourceIteration: target.sourceIteration,
      evaluation: null,
      rollbackOf: target.version,
      reason: params.reason ?? null,
      refusal: null,
      createdBy: caller.subject,
    });
    return versionResult(row, row.version);
  }

  async list(params: z.infer<typeof ListPolicyVersionsParamsSchema>, caller: Principal): Promise<ListPolicyVersionsResult> {
    const tenantId = registryTenant(params.tenant_id, caller);
    // The cursor is the oldest version a page showed: the next page lists those below it.
    const beforeVersion = params.cursor === undefined ? undefined : /^[1-9]\d{0,9}$/.test(params.cursor) && Number(params.cursor) <= INT4_MAX ? Number(params.cursor) : NaN;
    if (Number.isNaN(beforeVersion)) throw new FlowRpcError('INVALID_PARAMS', 'cursor: not a cursor this server issued (use next_cursor of the previous page)');
    const limit = params.limit ?? 50;
    const rows = await this.repos.policyVersions.list(tenantId, params.agent_id, { limit: limit + 1, beforeVersion });
    const page = rows.slice(0, limit);
    const activeVersion = beforeVersion === undefined ? (rows[0]?.version ?? null) : (await this.repos.policyVersions.activeVersion(tenantId, params.agent_id)) || null;
    return {
      agent_id: params.agent_id,
      tenant_id: tenantId,
      active_version: activeVersion,
      versions: page.map((row) => versionResult(row, activeVersion)),
      next_cursor: rows.length > limit ? String(page[page.length - 1].version) : null,
      can_promote: caller.permissions.has('policy:promote'),
      can_force: caller.permissions.has('policy:promote') && caller.admin,
    };
  }

  async getActive(params: z.infer<typeof GetActivePolicyParamsSchema>, caller: Principal): Promise<ActivePolicy> {
    const tenantId = registryTenant(params.tenant_id, caller);
    const entry = await this.active(tenantId, params.agent_id);
    if (!entry) throw new FlowRpcError('POLICY_NOT_FOUND', noActiveVersion(params.agent_id));
    return entry.body;
  }

  /**
   * What a job started with `base: "active"` starts from: the active version's content and which
   * version it was, resolved once at the start (the workflow input carries it, so replays agree).
   */
  async activeForJob(tenantId: string, agentId: string): Promise<{ policy: Policy; version: number; content_hash: string }> {
    const row = await this.repos.policyVersions.active(tenantId, agentId);
    if (!row) throw new FlowRpcError('INVALID_PARAMS', `base: "active": ${noActiveVersion(agentId)}`);
    return { policy: PolicySchema.parse(row.policy), version: row.version, content_hash: row.contentHash };
  }

  private async write(row: Parameters<Repositories['policyVersions']['create']>[0]): Promise<PolicyVersionRow> {
    try {
      return await this.repos.policyVersions.create(row);
    } catch (error) {
      if (error instanceof PolicyVersionTakenError) {
        throw new FlowRpcError('POLICY_VERSION_CONFLICT', `${error.message}; list the versions (agents.list_policy_versions) and decide again`, { version: error.version });
      }
      throw error;
    } finally {
      this.invalidate(row.tenantId, row.agentId);
    }
  }

  /**
   * The checkpoint's latest test-split evaluation (at the end of training, or on demand), or null;
   * and where the job's test split stands, so a refusal can say what would produce the evidence.
   */
  private async testEvidence(
    job: { id: string; status: string; input: unknown },
    position: { run: number; iteration: number },
  ): Promise<{ evaluation: EvaluationSummary | null; test_split: NonNullable<PromotionCase['test_split']> }> {
    const rows = await this.repos.progress.evaluations(job.id);
    let found: EvaluationSummary | null = null;
    for (const row of rows) {
      if (row.run !== position.run || row.iteration !== position.iteration) continue;
      const summary = EvaluationSummarySchema.safeParse(row.summary);
      if (summary.success && summary.data.split === 'test') found = summary.data; // oldest first: the last one wins
    }
    const state = rows.some((row) => row.kind === 'test')
      ? 'evaluated'
      : holdsNoTestSplit(job.input)
        ? 'none'
        : isTerminalJobStatus(job.status as JobStatus)
          ? 'missed'
          : 'pending';
    return { evaluation: found, test_split: { state, job_status: job.status } };
  }
}

/**
 * A job whose input holds out no test query: evaluation off, test_fraction 0, or too few queries
 * for one (two training queries, fewer than two evaluation_queries). Unknown input: false.
 */
export function holdsNoTestSplit(input: unknown): boolean {
  const job = input as (EvaluationSplitInput & { config: { evaluate?: boolean } }) | null;
  if (!job?.config || !Array.isArray(job.training_queries)) return false;
  if (job.config.evaluate === false) return true;
  try {
    return evaluationSplit({ ...job, evaluation_queries: job.evaluation_queries ?? [] }).test.length === 0;
  } catch {
    return false;
  }
}

const noActiveVersion = (agentId: string) => `agent "${agentId}" has no active policy version; promote a checkpoint first (agents.promote_policy)`;

/** The tenant whose registry a call reads or writes: the token's, or for an admin the one named. */
function registryTenant(tenantId: string | undefined, caller: Principal): string {
  if (tenantId && tenantId !== caller.tenantId && !caller.admin) throw new FlowRpcError('PERMISSION_DENIED', "only an admin token may use another tenant's policy registry");
  return tenantId ?? caller.tenantId;
}

function visibleJob<Row extends { tenantId: string }>(row: Row | null, jobId: string, caller: Principal): Row {
  if (!row || (!caller.admin && row.tenantId !== caller.tenantId)) throw new FlowRpcError('JOB_NOT_FOUND', `no job "${jobId}"`);
  return row;
}

/** The registry version a job's stored input says it started from (base: "active"), else null. */
function jobBase(input: unknown): JobBase | null {
  const base = (input as { initial_policy?: { version?: unknown; content_hash?: unknown } } | null)?.initial_policy;
  return base && typeof base.version === 'number' && typeof base.content_hash === 'string' ? { version: base.version, content_hash: base.content_hash } : null;
}

function storedPolicy(row: PolicyVersionRow): ActivePolicy['policy'] {
  const value = row.policy as { version?: number; base_prompt?: string; lessons?: ActivePolicy['policy']['lessons'] };
  return { version: value.version ?? 0, base_prompt: value.base_prompt ?? '', lessons: value.lessons ?? [] };
}

function versionResult(row: PolicyVersionRow, activeVersion: number | null): PolicyVersionResult {
  const evaluation = row.evaluation == null ? null : EvaluationSummarySchema.safeParse(row.evaluation);
  return {
    agent_id: row.agentId,
    tenant_id: row.tenantId,
    version: row.version,
    kind: row.kind as PolicyVersionResult['kind'],
    active: row.version === activeVersion,
    etag: policyEtag(row.version, row.contentHash),
    content_hash: row.contentHash,
    policy: storedPolicy(row),
    source: { job_id: row.sourceJobId, run: row.sourceRun, iteration: row.sourceIteration },
    evaluation: evaluation?.success ? evaluation.data : null,
    rollback_of: row.rollbackOf,
    reason: row.reason,
    refusal: row.refusal,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
  };
}

function activeBody(row: PolicyVersionRow): ActivePolicy {
  const policy = storedPolicy(row);
  return {
    agent_id: row.agentId,
    tenant_id: row.tenantId,
    version: row.version,
    kind: row.kind as ActivePolicy['kind'],
    etag: policyEtag(row.version, row.contentHash),
    content_hash: row.contentHash,
    policy,
    system_prompt: renderSystemPrompt(policy as Policy),
    source: { job_id: row.sourceJobId, run: row.sourceRun, iteration: row.sourceIteration },
    promoted_by: row.createdBy,
    promoted_at: row.createdAt.toISOString(),
  };
}

/** The JSON-RPC handlers of the registry methods, for createMethodHandlers. */
export function policyMethodHandlers(registry: PolicyRegistry) {
  return {
    'training.get_policy': (params: z.infer<typeof GetPolicyParamsSchema>, caller: Principal) => registry.getPolicy(params, caller),
    'agents.promote_policy': (params: z.infer<typeof PromotePolicyParamsSchema>, caller: Principal) => registry.promote(params, caller),
    'agents.rollback': (params: z.infer<typeof RollbackParamsSchema>, caller: Principal) => registry.rollback(params, caller),
    'agents.list_policy_versions': (params: z.infer<typeof ListPolicyVersionsParamsSchema>, caller: Principal) => registry.list(params, caller),
    'agents.get_active_policy': (params: z.infer<typeof GetActivePolicyParamsSchema>, caller: Principal) => registry.getActive(params, caller),
  };
}

const HTTP_STATUS: Partial<Record<RpcErrorName, number>> = { PERMISSION_DENIED: 403, POLICY_NOT_FOUND: 404, INVALID_PARAMS: 400, UNAVAILABLE: 503 };

/** True when an If-None-Match header names this ETag (a list, weak tags and `*` included). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  // What a client that stored the ETag sends back, checked before any parsing.
  if (header === etag) return true;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * GET /agents/{agent_id}/policy: the active version with its ETag; `If-None-Match` with that ETag
 * is a 304 without a body. A token with `policy:read` reads its own tenant's agents (an admin may
 * name another with `?tenant_id=`). Errors are JSON-RPC error objects under `error`, with the
 * HTTP status that fits (401 for token problems). Not counted by the per-token JSON-RPC call
 * limit: an answer from the cache costs less than the limiter's own bookkeeping. Logged at warn
 * and above only: an agent fleet polls it.
 */
export function registerPolicyRoutes(app: FastifyInstance, { verifier, registry }: { verifier: TokenVerifier; registry: PolicyRegistry }): void {
  // The policy is read-only here (agents.promote_policy and agents.rollback change it): other
  // methods are told which ones the path has, in the route's error shape. Answered before any
  // body is parsed (whatever it is, not JSON or too large, the method is the answer), after
  // what is left of it has been read, within bounds (api/drainBody.ts).
  const notAllowed = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!(await drain(request.raw))) reply.header('connection', 'close');
    reply.header('allow', POLICY_ROUTE_METHODS);
    if (request.method === 'OPTIONS') return reply.code(204).send();
    const detail = `${request.method} is not allowed on /agents/{agent_id}/policy (allowed: ${POLICY_ROUTE_METHODS}); agents.promote_policy and agents.rollback change an agent's policy`;
    return reply.code(405).send({ error: rpcErrorBody('INVALID_REQUEST', detail, { request_id: request.id }) });
  };
  app.route({
    method: ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: '/agents/:agent_id/policy',
    logLevel: 'warn',
    onRequest: notAllowed,
    handler: notAllowed,
  });
  app.get<{ Params: { agent_id: string }; Querystring: { tenant_id?: string } }>('/agents/:agent_id/policy', { logLevel: 'warn' }, async (request, reply) => {
    const fail = (name: RpcErrorName, detail?: string) => {
      const status = HTTP_STATUS[name] ?? (RPC_TOKEN_ERRORS.has(name) ? 401 : 500);
      if (status === 401) reply.header('www-authenticate', 'Bearer');
      return reply.code(status).send({ error: rpcErrorBody(name, detail, { request_id: request.id }) });
    };
    const caller = await verifier.authenticate(request.headers.authorization);
    if (caller instanceof FlowRpcError) return fail(caller.errorName, caller.message.replace(/^[^:]*: /, ''));
    if (!caller.permissions.has('policy:read')) return fail('PERMISSION_DENIED', `reading an agent's policy needs the "policy:read" permission, which roles [${caller.roles.join(', ')}] do not grant`);
    const agentId = request.params.agent_id;
    if (!AGENT_ID_PATTERN.test(agentId)) return fail('INVALID_PARAMS', `agent_id: ${AGENT_ID_RULE}`);
    const named = request.query.tenant_id;
    if (named !== undefined && (typeof named !== 'string' || named.length === 0 || named.length > 200)) return fail('INVALID_PARAMS', 'tenant_id: one tenant id, 1-200 characters');
    if (named !== undefined && named !== caller.tenantId && !caller.admin) return fail('PERMISSION_DENIED', "only an admin token may read another tenant's agents");
    let entry: ActiveEntry | null;
    try {
      entry = await registry.active(named ?? caller.tenantId, agentId);
    } catch (error) {
      request.log.warn({ err: error }, 'policy read failed');
      return fail('UNAVAILABLE', 'PostgreSQL did not answer; retry later');
    }
    if (!entry) return fail('POLICY_NOT_FOUND', noActiveVersion(agentId));
    reply.header('etag', entry.etag).headers(POLICY_CACHING);
    if (etagMatches(request.headers['if-none-match'], entry.etag)) return reply.code(304).send();
    return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(entry.json);
  });
}

const POLICY_ROUTE_METHODS = 'GET, HEAD, OPTIONS';

/**
 * Revalidate every time (the ETag makes that a 304), and keep it out of shared caches: the answer
 * depends on the token's tenant. RFC 9111 already forbids a shared cache to store a response to
 * a request with Authorization unless told otherwise; this says it outright, for caches that guess.
 */
const POLICY_CACHING = { 'cache-control': 'private, no-cache', vary: 'Authorization' } as const;

const RPC_TOKEN_ERRORS = new Set<RpcErrorName>(['TOKEN_MISSING', 'TOKEN_MALFORMED', 'TOKEN_EXPIRED', 'TOKEN_BAD_SIGNATURE', 'TOKEN_ALGORITHM_REJECTED', 'TOKEN_CLAIMS_INVALID']);

/** Answers a request itself and returns true, or returns false and leaves it to fastify. */
export type FastPath = (request: IncomingMessage, response: ServerResponse) => boolean;

const FAST_POLICY_PATH = /^\/agents\/([^/?#]+)\/policy$/;

/**
 * The common case of GET /agents/{agent_id}/policy answered before fastify sees the request: a
 * token verified within the last few seconds (TokenVerifier.remembered) with `policy:read`, its
 * own tenant's agent (no query string), and a fresh cache entry; then a 200 with the serialised
 * body or a 304, the same headers as the route's. Everything else (an unknown or new token, no
 * entry or a stale one, any error, another tenant) falls through to the fastify route, which stays
 * the one implementation of the rules; this only skips fastify's per-request work (routing,
 * hooks, the request's logger and trace span), which a profile at 500 requests a second put at
 * about a quarter of the route's CPU. Unlike the route it opens no trace span.
 */
export function policyFastPath({ verifier, registry, requestId }: { verifier: TokenVerifier; registry: PolicyRegistry; requestId: (request: IncomingMessage) => string }): FastPath {
  return (request, response) => {
    if (request.method !== 'GET' || request.url === undefined) return false;
    const match = FAST_POLICY_PATH.exec(request.url);
    if (!match) return false;
    const caller = verifier.remembered(request.headers.authorization);
    if (!caller || !caller.permissions.has('policy:read')) return false;
    let agentId: string;
    try {
      agentId = decodeURIComponent(match[1]);
    } catch {
      return false;
    }
    if (!AGENT_ID_PATTERN.test(agentId)) return false;
    const entry = registry.fresh(caller.tenantId, agentId);
    if (!entry) return false;
    const headers = { etag: entry.etag, ...POLICY_CACHING, 'x-request-id': requestId(request) };
    if (etagMatches(request.headers['if-none-match'], entry.etag)) {
      response.writeHead(304, headers).end();
    } else {
      response.writeHead(200, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': entry.bytes.length }).end(entry.bytes);
    }
    return true;
  };
}

/**
 * An HTTP server for fastify's `serverFactory` that offers each request to `fastPath` first, with
 * the timeouts fastify gives the servers it creates itself.
 */
export function serverWithFastPath(
  handler: RequestListener,
  options: { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number; maxConnections?: number },
  fastPath: FastPath,
): Server {
  // The request and headers timeouts, and how often Node checks them, are fixed at creation.
  const server = createServer(httpTimeouts(options.requestTimeout ?? 0), (request, response) => {
    if (!admitted(request.socket)) return;
    if (!fastPath(request, response)) handler(request, response);
  });
  const admitted = limitConnections(server, options.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
  if (options.keepAliveTimeout !== undefined) server.keepAliveTimeout = options.keepAliveTimeout;
  server.setTimeout(options.connectionTimeout ?? 0);
  return server;
}
