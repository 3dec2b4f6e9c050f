/**
 * `npm run worker` / `flow worker`: a training worker process. Configuration comes from the
 * environment: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE (and for Temporal
 * Cloud TEMPORAL_API_KEY or TEMPORAL_TLS_*: adapters/temporalConnection.ts), FLOW_TASK_QUEUE,
 * DATABASE_URL, the LLM endpoint (FLOW_LLM_BASE_URL or PORTKEY_API_KEY), FLOW_WORKER_POOL
 * (all | workflow | trajectory | cpu, or a comma-separated list), the pools' concurrency
 * (workers/pools.ts POOL_ENV), FLOW_WORKER_HEALTH_PORT (default 8081; /healthz, /readyz) and
 * FLOW_WORKER_NICE (default 10: the worker gives way to the API on shared cores, cpuPriority.ts).
 * SIGINT/SIGTERM drain it gracefully: in-flight tasks finish (up to the shutdown grace time,
 * then they are handed back to Temporal for another worker), and the process exits 0.
 */
import os from 'node:os';
import { NativeConnection } from '@temporalio/worker';
import { createPrismaClient } from '../adapters/db';
import { integerFromEnv, SettingError } from '../adapters/envIntegers';
import { temporalConnectionFromEnv } from '../adapters/temporalConnection';
import { checkFlowNamespace } from '../deploy/registerSearchAttributes';
import { llmSettingsFromEnv } from '../adapters/llm/chatClient';
import { localModelParallelFromEnv, localModelThreadsFromEnv } from '../adapters/llm/localModelSettings';
import { TRAINING_TASK_QUEUE, WORKER_POOLS, type WorkerPoolName } from '../workflows/taskQueues';
import { healthPortFromEnv, startHealthServer, type HealthServer } from './health';
import { lowerCpuPriority, workerNiceFromEnv } from './cpuPriority';
import { lazyLocalModel, wantsLocalModel } from './localModelServer';
import { parsePoolSelection, poolSettingsFromEnv } from './pools';
import { startWorkerTelemetry } from './telemetry';
import { createTrainingWorker, DEFAULT_SHUTDOWN_GRACE_S, type TrainingWorker } from './trainingWorker';

export interface WorkerProcess {
  worker: TrainingWorker;
  pools: WorkerPoolName[];
  health: HealthServer;
  /** Settles when the worker has stopped and its connections are closed. */
  finished: Promise<void>;
  /** Drains the worker (in-flight work finishes first) and waits for `finished`. */
  stop(): Promise<void>;
}

/** Connects and starts polling; the process entry waits on `finished`. */
export async function startWorker(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = console.log): Promise<WorkerProcess> {
  if (!env.DATABASE_URL) throw new SettingError('DATABASE_URL is not set; start the stack with `npm start` or export a PostgreSQL URL');
  // Bad settings are refused before anything connects.
  const pools = parsePoolSelection(env.FLOW_WORKER_POOL);
  const poolSettings = poolSettingsFromEnv(env);
  const healthPort = healthPortFromEnv(env);
  const poolSize = integerFromEnv(env, 'FLOW_DB_POOL_SIZE', 10, { min: 1, max: 1000, unit: 'connections' });
  // Set it below the supervisor's own grace (Kubernetes' terminationGracePeriodSeconds, compose's
  // stop_grace_period), or the process is killed before it hands its tasks back.
  const shutdownGraceS = integerFromEnv(env, 'FLOW_WORKER_SHUTDOWN_GRACE_S', DEFAULT_SHUTDOWN_GRACE_S, { min: 0, max: 86_400, unit: 's' });
  // Read where the local model first starts (workers/localModelServer.ts, the chat client's slots):
  // checked here so a wrong value stops the worker at once, not an hour later or never.
  localModelParallelFromEnv(env);
  localModelThreadsFromEnv(env);
  const temporalSettings = temporalConnectionFromEnv(env);
  const nice = workerNiceFromEnv(env);
  lowerCpuPriority(nice);
  // The port first: a taken port fails before anything connects.
  let group: TrainingWorker | undefined;
  const prisma = createPrismaClient(env.DATABASE_URL, { poolSize });
  let connection: NativeConnection | undefined;
  const health = await startHealthServer({
    port: healthPort,
    host: env.FLOW_WORKER_HEALTH_HOST || undefined,
    probe: {
      workerStates: () => (group ? Object.fromEntries(group.members.map((m) => [m.pool, m.worker.getState()])) : Object.fromEntries(pools.map((pool) => [pool, 'STARTING']))),
      // The queues the running Workers poll (not the configuration they were built from).
      serving: () => ({
        temporal_namespace: temporalSettings.namespace,
        task_queues: group ? Object.fromEntries(group.members.map((m) => [m.pool, m.worker.options.taskQueue])) : {},
      }),
      dependencies: {
        temporal: async () => {
          if (!connection) throw new Error('not connected yet');
          await connection.workflowService.getSystemInfo({});
        },
        postgres: () => prisma.$queryRaw`SELECT 1`,
        // Workflows this worker runs set Flow's search attributes; without them every job fails.
        namespace: async () => {
          if (!connection) throw new Error('not connected yet');
          await checkFlowNamespace(connection, temporalSettings.namespace, temporalSettings.address);
        },
      },
    },
  }).catch(async (error: unknown) => {
    await prisma.$disconnect().catch(() => undefined);
    throw error;
  });
  // `local:*` models are served by a llama.cpp server this process starts on first use, or at
  // once with FLOW_LLM=local (issue 13; workers/localModelServer.ts).
  const localModel = lazyLocalModel({ log: env.FLOW_LOCAL_MODEL_LOG === '1' ? (line) => log(`local model: ${line}`) : undefined }, env);
  try {
    if (wantsLocalModel(env)) log(`local model server at ${await localModel.baseURL()}`);
    connection = await NativeConnection.connect(temporalSettings.connectionOptions);
    group = await createTrainingWorker({
      connection,
      namespace: temporalSettings.namespace,
      taskQueue: env.FLOW_TASK_QUEUE || undefined,
      pools,
      poolSettings,
      prisma,
      llm: { ...llmSettingsFromEnv(env), local: () => localModel.baseURL() },
      identity: `flow-worker-${process.pid}`,
      shutdownGraceMs: shutdownGraceS * 1000,
    });
  } catch (error) {
    await localModel.stop();
    await health.close();
    await connection?.close().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    throw error;
  }
  const baseQueue = env.FLOW_TASK_QUEUE || TRAINING_TASK_QUEUE;
  const allPools = pools.length === WORKER_POOLS.length;
  log(`flow worker ${process.pid} polling task queue ${allPools ? baseQueue : `${group.taskQueues.join(', ')} (pool ${pools.join(', ')})`} at nice ${os.getPriority()}`);
  // Worker.run() already shuts down on SIGINT/SIGTERM, finishing in-flight work first.
  const [worker, temporal] = [group, connection];
  const finished = worker.run().finally(async () => {
    await localModel.stop();
    await health.close();
    await temporal.close();
    await prisma.$disconnect();
  });
  return {
    worker,
    pools,
    health,
    finished,
    async stop() {
      worker.shutdown();
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
