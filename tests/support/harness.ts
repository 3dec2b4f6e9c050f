/**
 * One test's Flow: a simulated model server (real HTTP), a Prisma client on the run's test
 * database (or the file's own, tests/support/suiteEnvironment.ts), a Temporal client on the
 * suite's namespace (or the file's own), and a training worker on a task queue of its own, built
 * from the suite's single workflow bundle.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { WorkflowCoverage } from '@temporalio/nyc-test-coverage';
import { createPrismaClient, createRepositories, type PrismaClient, type Repositories } from '../../adapters/db';
import type { AgentRuntime } from '../../activities/agents/agentRuntime';
import type { TrainingJobRequest } from '../../training/jobInput';
import { parsePolicyUpdateEvidence, type PolicyUpdateEvidence } from '../../training/policyEvidence';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { startSimulatedModelServer, type ChatCompletionRequestBody, type SimulatedModelServer, type SimulatedModelServerOptions } from '../../workers/dev/simulatedModelServer';
import { createTrainingWorker, type TrainingWorker as Worker } from '../../workers/trainingWorker';
import { requireEnv } from './requireEnv';
import { saveWorkflowCoverage } from './workflowCoverage';

export { requireEnv };

let runtimeInstalled = false;
function quietRuntime() {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

export interface Harness {
  model: SimulatedModelServer;
  prisma: PrismaClient;
  repos: Repositories;
  client: Client;
  taskQueue: string;
  /** Runs `fn` with a fresh worker polling the harness's task queue (a worker runs once). */
  run<T>(fn: Promise<T> | (() => Promise<T>)): Promise<T>;
  newWorker(): Promise<Worker>;
  close(): Promise<void>;
}

export async function startHarness(options: { model?: SimulatedModelServerOptions; agent?: AgentRuntime } = {}): Promise<Harness> {
  quietRuntime();
  const address = requireEnv('TEMPORAL_ADDRESS');
  const model = await startSimulatedModelServer(options.model);
  const prisma = createPrismaClient(requireEnv('DATABASE_URL'), { poolSize: 10 });
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  // The suite's namespace (globalSetup), or the file's own (tests/support/suiteEnvironment.ts).
  const namespace = requireEnv('TEMPORAL_NAMESPACE');
  const client = new Client({ connection, namespace });
  const taskQueue = `test-${randomUUID()}`;
  const workers: Worker[] = [];
  const coverage = new WorkflowCoverage();
  const newWorker = async () => {
    const worker = await createTrainingWorker({
      connection: nativeConnection,
      namespace,
      taskQueue,
      prisma,
      llm: { baseURL: model.url },
      agent: options.agent,
      workflowBundle: { codePath: requireEnv('FLOW_TEST_WORKFLOW_BUNDLE') },
      workerOptionsHook: (workerOptions) => coverage.augmentWorkerOptionsWithBundle(workerOptions as never),
    });
    workers.push(worker);
    return worker;
  };
  return {
    model,
    prisma,
    repos: createRepositories(prisma),
    client,
    taskQueue,
    newWorker,
    async run(fn) {
      const worker = await newWorker();
      return worker.runUntil(fn);
    },
    async close() {
      // A test that timed out leaves its worker running: stop it before closing connections.
      for (const worker of workers) if (worker.getState() === 'RUNNING') worker.shutdown();
      while (workers.some((w) => !['STOPPED', 'FAILED'].includes(w.getState()))) await new Promise((r) => setTimeout(r, 50));
      saveWorkflowCoverage(coverage.coverageMapsData);
      coverage.coverageMapsData = [];
      await connection.close();
      await nativeConnection.close();
      await prisma.$disconnect();
      await model.close();
    },
  };
}

/** A small job on the simulated environment, unique per call. */
/**
 * Model options under which the simulated model answers every call and the policy updater's
 * requests (the ones without tools) are kept in `requests`, for tests of what the updater is shown.
 */
export function recordOptimizerRequests(): { requests: ChatCompletionRequestBody[]; model: SimulatedModelServerOptions } {
  const requests: ChatCompletionRequestBody[] = [];
  return {
    requests,
    model: {
      respond: (body) => {
        if (!body.tools || body.tools.length === 0) requests.push(body);
        return undefined;
      },
    },
  };
}

/** The evidence the policy updater was shown in one of its requests. */
export const updaterEvidenceOf = (body: ChatCompletionRequestBody): PolicyUpdateEvidence =>
  parsePolicyUpdateEvidence(body.messages.find((m) => m.role === 'user')!.content!);

export function jobRequest(overrides: Partial<TrainingJobRequest> & { config?: TrainingJobRequest['config'] } = {}): TrainingJobRequest {
  const { config, ...rest } = overrides;
  return {
    job_id: `job-${randomUUID()}`,
    agent_id: 'support-agent',
    tenant_id: 'tenant-a',
    owner_id: 'alice',
    training_queries: simulatedTaskSet({ queriesPerFamily: 2, seed: 11 }),
    ...rest,
    config: { iterations: 2, batch_size: 2, group_size: 8, seed: 3, ...config },
  };
}
