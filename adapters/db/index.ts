import { poolOf, type PrismaClient } from './prismaClient';
import { PolicyVersionRepository } from './policyVersionRepository';
import { ProgressRepository } from './progressRepository';
import { SettingsRepository } from './settingsRepository';
import { SpendLedgerRepository } from './spendLedgerRepository';
import { TrainingJobRepository } from './trainingJobRepository';
import { TrajectoryRepository } from './trajectoryRepository';

export { createPrismaClient, requireDatabaseUrl } from './prismaClient';
export type { PrismaClient } from './prismaClient';
export * from './policyVersionRepository';
export * from './progressRepository';
export * from './settingsRepository';
export * from './spendLedgerRepository';
export * from './trainingJobRepository';
export * from './trajectoryRepository';

/** The repository layer: the only code that talks to the database. */
export interface Repositories {
  jobs: TrainingJobRepository;
  trajectories: TrajectoryRepository;
  progress: ProgressRepository;
  /** Global settings, e.g. the kill switch. */
  settings: SettingsRepository;
  /** Every model call's cost, as billed (`llm_calls`). */
  ledger: SpendLedgerRepository;
  /** The policy registry: each agent's policy versions (`policy_versions`). */
  policyVersions: PolicyVersionRepository;
}

export function createRepositories(prisma: PrismaClient): Repositories {
  return {
    jobs: new TrainingJobRepository(prisma),
    trajectories: new TrajectoryRepository(prisma, poolOf(prisma)),
    progress: new ProgressRepository(prisma),
    settings: new SettingsRepository(prisma),
    ledger: new SpendLedgerRepository(prisma),
    policyVersions: new PolicyVersionRepository(prisma),
  };
}
