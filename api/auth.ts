/**
 * Bearer-token authentication and role-based permissions. Tokens are JWTs verified with `jose`;
 * the accepted algorithm is pinned per key (HS256 for a shared secret, RS256 for a JWKS), and
 * `exp`, `iss`, `aud`, `sub` and the tenant claim are required. Every defect maps to its own
 * error, and nothing past this module runs for a request that fails here.
 */
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { FlowRpcError } from './errors';
import { stringProblem } from './paramsGuard';
import { PERMISSIONS, type Permission } from './schemas';

export interface RoleSpec {
  permissions: readonly Permission[];
  /** Sees and steers every tenant's jobs. */
  admin?: boolean;
}

export const DEFAULT_ROLES: Record<string, RoleSpec> = {
  admin: { permissions: PERMISSIONS, admin: true },
  trainer: { permissions: ['training:start', 'training:view', 'training:cancel', 'training:budget', 'data_export', 'policy:promote', 'policy:read'] },
  viewer: { permissions: ['training:view', 'policy:read'] },
  exporter: { permissions: ['training:view', 'data_export'] },
  /** A running agent: reads its tenant's active policies (GET /agents/{agent_id}/policy), nothing else. */
  agent: { permissions: ['policy:read'] },
};

export type VerificationKey =
  | { algorithm: 'HS256'; secret: string }
  | { algorithm: 'RS256'; jwksUrl: string }
  | { algorithm: 'RS256'; jwks: { keys: Record<string, unknown>[] } };

export interface AuthConfig {
  key: VerificationKey;
  issuer: string;
  audience: string;
  /** The claim holding the caller's tenant. */
  tenantClaim: string;
  roles: Record<string, RoleSpec>;
}

export interface Principal {
  subject: string;
  tenantId: string;
  roles: string[];
  permissions: ReadonlySet<Permission>;
  admin: boolean;
}

export const DEFAULT_ISSUER = 'flow';
export const DEFAULT_AUDIENCE = 'flow-api';

/**
 * From the environment: FLOW_JWT_SECRET (HS256) or FLOW_JWKS_URL / FLOW_JWKS_FILE (RS256),
 * FLOW_JWT_ISSUER, FLOW_JWT_AUDIENCE, FLOW_JWT_TENANT_CLAIM, FLOW_ROLES (JSON: role → spec).
 */
export function authConfigFromEnv(env: NodeJS.ProcessEnv = process.env, fallbackSecret?: string): AuthConfig {
  let key: VerificationKey;
  if (env.FLOW_JWKS_URL) key = { algorithm: 'RS256', jwksUrl: env.FLOW_JWKS_URL };
  else if (env.FLOW_JWKS_FILE) key = { algorithm: 'RS256', jwks: JSON.parse(readFileSync(env.FLOW_JWKS_FILE, 'utf8')) };
  else if (env.FLOW_JWT_SECRET ?? fallbackSecret) key = { algorithm: 'HS256', secret: (env.FLOW_JWT_SECRET ?? fallbackSecret)! };
  else throw new Error('no JWT key configured: set FLOW_JWT_SECRET (HS256) or FLOW_JWKS_URL / FLOW_JWKS_FILE (RS256)');
  if (key.algorithm === 'HS256' && key.secret.length < 32) throw new Error('FLOW_JWT_SECRET must be at least 32 characters');
  return {
    key,
    issuer: env.FLOW_JWT_ISSUER ?? DEFAULT_ISSUER,
    audience: env.FLOW_JWT_AUDIENCE ?? DEFAULT_AUDIENCE,
    tenantClaim: env.FLOW_JWT_TENANT_CLAIM ?? 'tenant',
    roles: env.FLOW_ROLES ? parseRoles(env.FLOW_ROLES) : DEFAULT_ROLES,
  };
}

function parseRoles(json: string): Record<string, RoleSpec> {
  const roles = JSON.parse(json) as Record<string, RoleSpec>;
  for (const [name, spec] of Object.entries(roles)) {
    for (const permission of spec.permissions ?? []) {
      if (!PERMISSIONS.includes(permission)) throw new Error(`FLOW_ROLES: role "${name}" has unknown permission "${permission}"`);
    }
  }
  return roles;
}

/** `Bearer <jwt>`; the scheme is case-insensitive (RFC 6750 §2.1 by RFC 9110 §11.1): `bearer` and `BEARER` too. */
const BEARER = /^Bearer +([A-Za-z0-9_\-.=]+)$/i;

/** How long a verified token's caller is remembered (never past the token's `exp`). */
export const VERIFIED_TOKEN_TTL_MS = 5_000;
/** How far into its time a remembered token (or a cached policy, api/policyRegistry.ts) is renewed in the background. */
export const REFRESH_AHEAD_SHARE = 0.8;
const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Verifies bearer tokens against one configuration; build it once per server. A token that
 * verified is remembered by its exact text for a few seconds (clients polling `get_status`
 * send the same token again and again), so its signature and claims are checked at most about
 * once per VERIFIED_TOKEN_TTL_MS; a remembered token still stops working at its `exp`. Failures
 * are never remembered.
 */
export class TokenVerifier {
  private readonly getKey: Uint8Array | JWTVerifyGetKey;
  /** Verified tokens by their text: the caller, and until when it is remembered (`now()` time). */
  private readonly verified = new LRUCache<string, { principal: Principal; until: number }>({ max: VERIFIED_TOKEN_CACHE_SIZE });
  /** Remembered tokens being verified again in the background (remembered). */
  private readonly renewing = new Set<string>();

  constructor(
    private readonly config: AuthConfig,
    /** How long a verified token is remembered, and the clock (tests set both). */
    private readonly remembering: { ms: number; now: () => number } = { ms: VERIFIED_TOKEN_TTL_MS, now: Date.now },
  ) {
    const { key } = config;
    if (key.algorithm === 'HS256') this.getKey = new TextEncoder().encode(key.secret);
    else if ('jwksUrl' in key) this.getKey = createRemoteJWKSet(new URL(key.jwksUrl));
    else this.getKey = createLocalJWKSet(key.jwks as never);
  }

  /**
   * The caller of a token that verified within the last few seconds (the same one
   * `authenticate` would return), without any other work; undefined for anything else, which
   * `authenticate` then answers. For hot paths that must not wait (GET /agents/{id}/policy).
   */
  remembered(authorization: string | undefined): Principal | undefined {
    const match = authorization === undefined ? null : BEARER.exec(authorization.trim());
    if (!match) return undefined;
    const token = match[1];
    const left = this.rememberedFor(token);
    if (left === undefined) return undefined;
    // Verified again in the background as its time runs out, so a steady poller never waits for
    // (or falls back to) verification; a token that no longer verifies is forgotten.
    if (left.ms < this.remembering.ms * (1 - REFRESH_AHEAD_SHARE) && !this.renewing.has(token)) {
      this.renewing.add(token);
      this.verifyToken(token)
        .catch(() => this.verified.delete(token))
        .finally(() => this.renewing.delete(token));
    }
    return left.principal;
  }

  /** A remembered token's caller and how much longer it is remembered; undefined once its time is up. */
  private rememberedFor(token: string): { principal: Principal; ms: number } | undefined {
    const entry = this.verified.get(token);
    const ms = entry ? entry.until - this.remembering.now() : 0;
    return entry && ms > 0 ? { principal: entry.principal, ms } : undefined;
  }

  /** The caller, or the error every method of the request answers with. */
  async authenticate(authorization: string | undefined): Promise<Principal | FlowRpcError> {
    try {
      return await this.verify(authorization);
    } catch (error) {
      return error instanceof FlowRpcError ? error : joseError(error);
    }
  }

  private async verify(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw new FlowRpcError('TOKEN_MISSING', 'send `Authorization: Bearer <token>` (mint one with `flow token`)');
    const match = BEARER.exec(authorization.trim());
    if (!match) throw new FlowRpcError('TOKEN_MALFORMED', 'the Authorization header must be `Bearer <jwt>`');
    const token = match[1];
    return this.rememberedFor(token)?.principal ?? this.verifyToken(token);
  }

  /** Checks the token's signature and claims, and remembers its caller for a few seconds. */
  private async verifyToken(token: string): Promise<Principal> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new FlowRpcError('TOKEN_MALFORMED', 'the bearer token is not a JWT');
    }
    if (alg !== this.config.key.algorithm) {
      throw new FlowRpcError('TOKEN_ALGORITHM_REJECTED', `alg "${alg ?? '(none)'}" is not accepted; this server takes ${this.config.key.algorithm} only`);
    }
    const { payload } = await jwtVerify(token, this.getKey as Uint8Array, {
      algorithms: [this.config.key.algorithm],
      issuer: this.config.issuer,
      audience: this.config.audience,
      requiredClaims: ['exp', 'iss', 'aud', 'sub'],
      clockTolerance: 5,
    });
    const principal = this.principal(payload);
    // Remembered a few seconds, never past the token's own expiry.
    const now = this.remembering.now();
    const until = Math.min(now + this.remembering.ms, payload.exp! * 1000);
    if (until > now) this.verified.set(token, { principal, until });
    return principal;
  }

  private principal(payload: JWTPayload): Principal {
    const tenant = payload[this.config.tenantClaim];
    if (typeof tenant !== 'string' || tenant.length === 0) {
      throw new FlowRpcError('TOKEN_CLAIMS_INVALID', `the "${this.config.tenantClaim}" claim (the caller's tenant) is missing`);
    }
    checkIdClaim(this.config.tenantClaim, tenant);
    checkIdClaim('sub', payload.sub!);
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
    const permissions = new Set<Permission>();
    let admin = false;
    for (const role of roles) {
      const spec = this.config.roles[role];
      if (!spec) continue;
      spec.permissions.forEach((p) => permissions.add(p));
      admin ||= spec.admin === true;
    }
    return { subject: payload.sub!, tenantId: tenant, roles, permissions, admin };
  }
}

/** The longest tenant or subject a token may carry: what the jobs' tenant_id and owner_id columns hold. */
const MAX_ID_CLAIM_CHARS = 200;

/**
 * A tenant or subject is stored with every job and written to logs: a signed token from an
 * identity provider is still refused (not answered -32603 later) if it could not be stored as it is.
 */
function checkIdClaim(claim: string, value: string): void {
  const problem = idClaimProblem(value);
  if (problem) throw new FlowRpcError('TOKEN_CLAIMS_INVALID', `claim "${claim}" ${problem}`);
}

/** Why a tenant or subject cannot be a token's (the API refuses it), or null; `flow token` asks too. */
export function idClaimProblem(value: string): string | null {
  if (value.length === 0) return 'is empty';
  if (value.length > MAX_ID_CLAIM_CHARS) return `is longer than ${MAX_ID_CLAIM_CHARS} characters`;
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains a control character';
  return stringProblem(value);
}

function joseError(error: unknown): FlowRpcError {
  if (error instanceof errors.JWTExpired) return new FlowRpcError('TOKEN_EXPIRED', 'the token has expired; mint a new one');
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new FlowRpcError('TOKEN_CLAIMS_INVALID', `claim "${error.claim}": ${error.message}`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey) {
    return new FlowRpcError('TOKEN_BAD_SIGNATURE', 'the token was not signed by a key this server trusts');
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new FlowRpcError('TOKEN_ALGORITHM_REJECTED', error.message);
  if (error instanceof errors.JOSEError) return new FlowRpcError('TOKEN_MALFORMED', error.message);
  throw error;
}

export function requirePermission(principal: Principal, permission: Permission, method: string): void {
  if (!principal.permissions.has(permission)) {
    throw new FlowRpcError('PERMISSION_DENIED', `${method} needs the "${permission}" permission, which roles [${principal.roles.join(', ')}] do not grant`);
  }
}

export interface TokenClaims {
  subject: string;
  tenant: string;
  roles: string[];
  /** A time span such as "12h", or a number of seconds from now. */
  expiresIn?: string | number;
}

/** Mints an HS256 token for development (`flow token`, `npm start`). */
export function mintToken(config: Pick<AuthConfig, 'issuer' | 'audience' | 'tenantClaim'> & { secret: string }, claims: TokenClaims): Promise<string> {
  return new SignJWT({ [config.tenantClaim]: claims.tenant, roles: claims.roles })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.subject)
    .setIssuer(config.issuer)
    .setAudience(config.audience)
    .setIssuedAt()
    // jose reads a number as an absolute time; ours is a duration.
    .setExpirationTime(typeof claims.expiresIn === 'number' ? Math.floor(Date.now() / 1000) + claims.expiresIn : (claims.expiresIn ?? '12h'))
    .sign(new TextEncoder().encode(config.secret));
}
