import { Prisma, type PolicyVersion, type PrismaClient } from '../../generated/prisma/client';

export type PolicyVersionRow = PolicyVersion;

/** A new version as the registry writes it; `version` is the one it expects to be next. */
export interface NewPolicyVersion {
  tenantId: string;
  agentId: string;
  version: number;
  kind: 'promote' | 'force' | 'rollback';
  policy: Prisma.InputJsonValue;
  contentHash: string;
  sourceJobId: string;
  sourceRun: number;
  sourceIteration: number;
  evaluation: Prisma.InputJsonValue | null;
  rollbackOf: number | null;
  reason: string | null;
  refusal: string | null;
  createdBy: string;
}

/** Another version of this agent was written first: the caller's view of the active one is stale. */
export class PolicyVersionTakenError extends Error {
  constructor(readonly tenantId: string, readonly agentId: string, readonly version: number) {
    super(`version ${version} of agent "${agentId}" was written by another request meanwhile`);
    this.name = 'PolicyVersionTakenError';
  }
}

/** The policy registry's rows (`policy_versions`): written once, never updated or deleted. */
export class PolicyVersionRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** The active version: the highest one; null when the agent has none. */
  active(tenantId: string, agentId: string): Promise<PolicyVersionRow | null> {
    return this.prisma.policyVersion.findFirst({ where: { tenantId, agentId }, orderBy: { version: 'desc' } });
  }

  /** Only the active version's number (a cheap freshness check for caches); 0 when none. */
  async activeVersion(tenantId: string, agentId: string): Promise<number> {
    const row = await this.prisma.policyVersion.findFirst({ where: { tenantId, agentId }, orderBy: { version: 'desc' }, select: { version: true } });
    return row?.version ?? 0;
  }

  get(tenantId: string, agentId: string, version: number): Promise<PolicyVersionRow | null> {
    return this.prisma.policyVersion.findUnique({ where: { tenantId_agentId_version: { tenantId, agentId, version } } });
  }

  /** The agent's versions, newest first: all of them, or `limit` of those below `beforeVersion`. */
  list(tenantId: string, agentId: string, page: { limit?: number; beforeVersion?: number } = {}): Promise<PolicyVersionRow[]> {
    return this.prisma.policyVersion.findMany({
      where: { tenantId, agentId, ...(page.beforeVersion !== undefined ? { version: { lt: page.beforeVersion } } : {}) },
      orderBy: { version: 'desc' },
      ...(page.limit !== undefined ? { take: page.limit } : {}),
    });
  }

  /**
   * Writes the version; PolicyVersionTakenError when that number exists already (a concurrent
   * promotion or rollback won), so a decision taken against a stale active version never lands.
   */
  async create(row: NewPolicyVersion): Promise<PolicyVersionRow> {
    try {
      return await this.prisma.policyVersion.create({
        data: { ...row, evaluation: row.evaluation === null ? Prisma.DbNull : row.evaluation },
      });
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
        throw new PolicyVersionTakenError(row.tenantId, row.agentId, row.version);
      }
      throw error;
    }
  }
}
