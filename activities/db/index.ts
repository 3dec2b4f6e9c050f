import { poolOf, type PrismaClient } from './prismaClient';
import { ProgressRepository } from './progressRepository';
import { SettingsRepository } from './settingsRepository';
import { TrainingJobRepository } from './trainingJobRepository';
import { TrajectoryRepository } from './trajectoryRepository';

export { createPrismaClient, requireDatabaseUrl } from './prismaClient';
export type { PrismaClient } from './prismaClient';
export * from './progressRepository';
export * from './settingsRepository';
export * from './trainingJobRepository';
export * from './trajectoryRepository';

/** The repository layer: the only code that talks to the database. */
export interface Repositories {
  jobs: TrainingJobRepository;
  trajectories: TrajectoryRepository;
  progress: ProgressRepository;
  /** Global settings, e.g. the kill switch. */
  settings: SettingsRepository;
}

export function createRepositories(prisma: PrismaClient): Repositories {
  return {
    jobs: new TrainingJobRepository(prisma),
    trajectories: new TrajectoryRepository(prisma, poolOf(prisma)),
    progress: new ProgressRepository(prisma),
    settings: new SettingsRepository(prisma),
  };
}
