/**
 * One Temporal namespace, two Flow installs (two databases): with distinct task queues
 * (FLOW_TASK_QUEUE) each demo's job runs on its own workers only and both complete, every
 * trajectory in its own database. A third install pointed at a queue a running worker of another
 * install polls is refused before it starts anything, naming the queue and the settings that fix it.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { createPrismaClient } from '../../adapters/db';
import { registerSearchAttributes } from '../../deploy/registerSearchAttributes';
import { runDemo } from '../../workers/dev/demo';
import { createDatabase, dropDatabase, freePort, migrateDatabase } from '../../workers/dev/devStack';
import { waitFor } from '../support/apiHarness';
import { requireEnv } from '../support/harness';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';

jest.setTimeout(300_000);

const suffix = randomUUID().slice(0, 8);
const namespace = `flow-shared-${suffix}`;
const adminUrl = requireEnv('FLOW_TEST_ADMIN_URL');
const databases: string[] = [];

/** The suite's servers, with none of the LLM, JWT or queue settings a developer's shell may carry. */
function demoEnv(databaseUrl: string, taskQueue: string, port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of ['PORTKEY_API_KEY', 'FLOW_LLM_BASE_URL', 'FLOW_MODEL', 'FLOW_JWT_SECRET', 'FLOW_JWKS_URL', 'FLOW_JWKS_FILE', 'FLOW_LLM', 'FLOW_DEMO_SHARE_TASK_QUEUE']) delete env[key];
  return {
    ...env,
    DATABASE_URL: databaseUrl,
    TEMPORAL_NAMESPACE: namespace,
    FLOW_TASK_QUEUE: taskQueue,
    FLOW_API_PORT: String(port),
    FLOW_API_LOG_LEVEL: 'silent',
    FLOW_DEMO_EXIT: '1',
    FLOW_DEMO_ITERATIONS: '2',
    FLOW_SIM_LATENCY_MS: '2',
  };
}

async function installDatabase(name: string): Promise<string> {
  const url = await createDatabase(adminUrl, name, { fresh: true });
  databases.push(name);
  migrateDatabase(url);
  return url;
}

beforeAll(async () => {
  const connection = await Connection.connect({ address: requireEnv('TEMPORAL_ADDRESS') });
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(86_400_000) });
    // Registration retries while the frontend's namespace cache catches up.
    await waitFor(
      () => registerSearchAttributes(connection, namespace).then(() => true, () => false),
      (ok) => ok,
      30_000,
      500,
    );
  } finally {
    await connection.close();
  }
});

afterAll(async () => {
  for (const name of databases) await dropDatabase(adminUrl, name).catch(() => undefined);
});

test('two installs on one namespace with distinct task queues both complete their jobs, each in its own database; a third on a queue in use is refused', async () => {
  const installs = await Promise.all(
    ['a', 'b'].map(async (name) => ({
      name,
      databaseUrl: await installDatabase(`flow_install_${name}_${process.pid}_${suffix.slice(0, 6)}`),
      taskQueue: `install-${name}-${suffix}`,
      lines: [] as string[],
    })),
  );
  await Promise.all(
    installs.map(async (install) =>
      runDemo({
        env: demoEnv(install.databaseUrl, install.taskQueue, await freePort()),
        home: mkdtempSync(path.join(os.tmpdir(), `flow-install-${install.name}-`)),
        say: (line) => install.lines.push(line),
      }),
    ),
  );

  const jobIds = installs.map((install) => /started training job (\S+)/.exec(install.lines.join('\n'))?.[1]);
  for (const [i, install] of installs.entries()) {
    expect(install.lines).toContain(`worker polling task queue ${install.taskQueue} in namespace ${namespace}`);
    expect(install.lines).toContainEqual(expect.stringMatching(/^job completed: success rate/));
    const prisma = createPrismaClient(install.databaseUrl, { poolSize: 1 });
    try {
      const jobs = await prisma.trainingJob.findMany({ select: { id: true, status: true } });
      expect(jobs).toEqual([{ id: jobIds[i], status: 'completed' }]);
      // At least 2 iterations × 6 queries × a group of 8 in this install's database; none of the other's job.
      expect(await prisma.trajectory.count({ where: { jobId: jobIds[i] } })).toBeGreaterThanOrEqual(2 * 6 * 8);
      expect(await prisma.trajectory.count({ where: { jobId: jobIds[1 - i] } })).toBe(0);
    } finally {
      await prisma.$disconnect();
    }
  }

  // A third install (its own database) on install a's queue while a worker of install a polls it.
  // (A worker that stopped cleanly is forgotten by the server at once: frontend.enableCancelWorkerPollsOnShutdown.)
  const third = await installDatabase(`flow_install_c_${process.pid}_${suffix.slice(0, 6)}`);
  const lines: string[] = [];
  const worker = await spawnWorkerProcess({
    taskQueue: installs[0].taskQueue,
    temporalAddress: requireEnv('TEMPORAL_ADDRESS'),
    databaseUrl: installs[0].databaseUrl,
    llmBaseUrl: 'http://127.0.0.1:9/v1', // no job runs on it
    env: { TEMPORAL_NAMESPACE: namespace },
  });
  let refused: unknown;
  try {
    refused = await runDemo({ env: demoEnv(third, installs[0].taskQueue, await freePort()), home: mkdtempSync(path.join(os.tmpdir(), 'flow-install-c-')), say: (line) => lines.push(line) }).catch(
      (error: unknown) => error as Error,
    );
  } finally {
    expect(await stopProcess(worker, 'SIGTERM')).toBe(0);
  }
  expect(refused).toBeInstanceOf(Error);
  expect((refused as Error).message).toContain(`task queue ${installs[0].taskQueue} in namespace ${namespace} is polled by workers this demo did not start`);
  expect((refused as Error).message).toContain('Set FLOW_TASK_QUEUE to a queue of its own');
  expect((refused as Error).message).toContain('FLOW_DEMO_SHARE_TASK_QUEUE=1');
  expect(lines.some((line) => line.startsWith('API (JSON-RPC) at'))).toBe(false);
  const prisma = createPrismaClient(third, { poolSize: 1 });
  try {
    expect(await prisma.trainingJob.count()).toBe(0);
  } finally {
    await prisma.$disconnect();
  }
});
