import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client';

export type { PrismaClient };

/**
 * A Prisma client on the node-postgres driver adapter, with the query compiler: no native
 * engine is loaded. `poolSize` bounds this process's connections.
 */
export function createPrismaClient(databaseUrl = requireDatabaseUrl(), { poolSize = 10 } = {}): PrismaClient {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: poolSize }, {
    onPoolError: (error) => console.error(`postgres pool error: ${error.message}`),
  });
  return new PrismaClient({ adapter });
}

export function requireDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set; start the stack with `npm start` or export a PostgreSQL URL');
  return url;
}
