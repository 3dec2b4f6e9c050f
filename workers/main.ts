/**
 * `npm run worker`: a training worker process. Configuration comes from the environment:
 * TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, FLOW_TASK_QUEUE, DATABASE_URL, and the LLM
 * endpoint (FLOW_LLM_BASE_URL or PORTKEY_API_KEY). SIGINT/SIGTERM drain it gracefully.
 */
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createPrismaClient } from '../activities/db';
import { llmSettingsFromEnv } from '../activities/llm/chatClient';
import { startWorkerTelemetry } from './telemetry';
import { createTrainingWorker } from './trainingWorker';

export interface WorkerProcess {
  worker: Worker;
  /** Settles when the worker has stopped and its connections are closed. */
  finished: Promise<void>;
  /** Drains the worker (in-flight work finishes first) and waits for `finished`. */
  stop(): Promise<void>;
}

/** Connects and starts polling; the process entry waits on `finished`. */
export async function startWorker(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = console.log): Promise<WorkerProcess> {
  if (!env.DATABASE_URL) throw new Error('DATABASE_URL is not set; start the stack with `npm start` or export a PostgreSQL URL');
  const prisma = createPrismaClient(env.DATABASE_URL, { poolSize: Number(env.FLOW_DB_POOL_SIZE ?? 10) });
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  const worker = await createTrainingWorker({
    connection,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.FLOW_TASK_QUEUE || undefined,
    prisma,
    llm: llmSettingsFromEnv(env),
    identity: `flow-worker-${process.pid}`,
  });
  log(`flow worker ${process.pid} polling task queue ${worker.options.taskQueue}`);
  // Worker.run() already shuts down on SIGINT/SIGTERM, finishing in-flight work first.
  const finished = worker.run().then(async () => {
    await connection.close();
    await prisma.$disconnect();
  });
  return {
    worker,
    finished,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await finished;
    },
  };
}

if (require.main === module) {
  // Telemetry first: Temporal's runtime (and its metrics endpoint) must exist before any connection.
  startWorkerTelemetry()
    .then((telemetry) => startWorker().then(({ finished }) => finished.finally(() => telemetry.shutdown())))
    .catch((error) => {
      console.error(`flow worker: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    });
}
