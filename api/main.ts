/**
 * The API process: `npm run api`. Needs DATABASE_URL, TEMPORAL_ADDRESS (default
 * 127.0.0.1:7233) and a JWT key (FLOW_JWT_SECRET, or FLOW_JWKS_URL / FLOW_JWKS_FILE).
 */
import { Client, Connection } from '@temporalio/client';
import { createPrismaClient, createRepositories, requireDatabaseUrl } from '../activities/db';
import { authConfigFromEnv } from './auth';
import { buildApiServer } from './server';

export async function startApi(env: NodeJS.ProcessEnv = process.env) {
  const prisma = createPrismaClient(requireDatabaseUrl(), { poolSize: Number(env.FLOW_API_DB_POOL_SIZE ?? 10) });
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE ?? 'default' });
  const app = await buildApiServer(
    { client, prisma, repos: createRepositories(prisma) },
    {
      auth: authConfigFromEnv(env),
      rateLimit: env.FLOW_RATE_LIMIT_PER_MINUTE ? { max: Number(env.FLOW_RATE_LIMIT_PER_MINUTE), timeWindowMs: 60_000 } : undefined,
    },
  );
  const url = await app.listen({ host: env.FLOW_API_HOST ?? '127.0.0.1', port: Number(env.FLOW_API_PORT ?? 8080) });
  return {
    url,
    async close() {
      await app.close();
      await connection.close();
      await prisma.$disconnect();
    },
  };
}

if (require.main === module) {
  startApi()
    .then(({ url, close }) => {
      console.log(`flow api: listening on ${url}`);
      const stop = () => void close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch((error: Error) => {
      console.error(`flow api: ${error.message}`);
      process.exit(1);
    });
}
