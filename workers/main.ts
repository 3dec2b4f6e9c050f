/**
 * `npm run worker`: a training worker process. Configuration comes from the environment:
 * TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, DATABASE_URL, and the LLM
 * endpoint (FLOW_LLM_BASE_URL or PORTKEY_API_KEY). SIGINT/SIGTERM drain it gracefully.
 */
import { NativeConnection } from '@temporalio/worker';
import { createPrismaClient } from '../activities/db';
import { llmSettingsFromEnv } from '../activities/llm/chatClient';
import { createTrainingWorker } from './trainingWorker';

async function main() {
  const prisma = createPrismaClient(undefined, { poolSize: Number(process.env.FLOW_DB_POOL_SIZE ?? 10) });
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  const worker = await createTrainingWorker({
    connection,
    namespace: process.env.TEMPORAL_NAMESPACE,
    prisma,
    llm: llmSettingsFromEnv(),
    identity: `flow-worker-${process.pid}`,
  });
  console.log(`flow worker ${process.pid} polling task queue ${worker.options.taskQueue}`);
  // Worker.run() already shuts down on SIGINT/SIGTERM, finishing in-flight work first.
  await worker.run();
  await connection.close();
  await prisma.$disconnect();
}

main().catch((error) => {
  console.error(`flow worker: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
