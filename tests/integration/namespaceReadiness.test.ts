/**
 * Readiness that tells the truth (issue 18): a Temporal namespace without Flow's search
 * attributes makes the API's and the worker's /readyz answer 503 naming the missing ones, and
 * training.start_grpo answer NAMESPACE_NOT_READY with the command that registers them, writing
 * nothing. The namespaces are created here, on the suite's Temporal, without the attributes.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { FlowApiError } from '../../api/client/flowClient';
import { RPC_ERRORS } from '../../api/errors';
import { resolveTemporalCli } from '../../workers/dev/devStack';
import { startWorker } from '../../workers/main';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { startApiHarness, type ApiHarness } from '../support/apiHarness';
import { startHarness, type Harness } from '../support/harness';
import { waitFor } from '../support/apiHarness';

jest.setTimeout(120_000);

const ALL = ['FlowAgentId', 'FlowJobStatus', 'FlowPriority'];
const address = process.env.TEMPORAL_ADDRESS!;
const suffix = randomUUID().slice(0, 8);
const bare = `flow-bare-${suffix}`;
const partial = `flow-partial-${suffix}`;
let connection: Connection;
let h: Harness;

async function createNamespace(namespace: string): Promise<void> {
  await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(86_400_000) });
  // The frontend's namespace cache catches up within seconds.
  await waitFor(
    () => connection.operatorService.listSearchAttributes({ namespace }).then(() => true, () => false),
    (ok) => ok,
    30_000,
  );
}

beforeAll(async () => {
  connection = await Connection.connect({ address });
  await createNamespace(bare);
  await createNamespace(partial);
  await connection.operatorService.addSearchAttributes({
    namespace: partial,
    searchAttributes: { FlowAgentId: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD },
  });
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
  await connection?.close();
});

async function apiOn(namespace: string): Promise<ApiHarness> {
  return startApiHarness({ harness: { ...h, client: new Client({ connection: h.client.connection as Connection, namespace }), close: async () => undefined } });
}

test('the API on a namespace without the attributes: /readyz 503 naming them; start_grpo answers NAMESPACE_NOT_READY with the command and writes nothing; after the command, ready', async () => {
  const api = await apiOn(bare);
  try {
    const ready = await fetch(`${api.url}/readyz`);
    const body = (await ready.json()) as Record<string, string>;
    expect(ready.status).toBe(503);
    expect(body).toMatchObject({ status: 'not_ready', temporal: 'ok', postgres: 'ok' });
    expect(body.namespace).toContain(`not ready: Temporal namespace ${bare} has no search attribute ${ALL.join(', ')}`);

    const agentId = `bare-ns-agent-${suffix}`;
    const flow = await api.client();
    const refused = (await flow.startGrpo({ agent_id: agentId, training_queries: simulatedTaskSet({ queriesPerFamily: 1, seed: 1 }) }).catch((error: unknown) => error)) as FlowApiError;
    expect(refused).toBeInstanceOf(FlowApiError);
    expect(refused.code).toBe(RPC_ERRORS.NAMESPACE_NOT_READY.code);
    expect(refused.code).not.toBe(-32603);
    const data = refused.data as { namespace: string; missing_search_attributes: string[]; command: string };
    expect(data.namespace).toBe(bare);
    expect(data.missing_search_attributes).toEqual(ALL);
    expect(data.command).toBe(ALL.map((name) => `temporal operator search-attribute create --address ${address} --namespace ${bare} --name ${name} --type Keyword`).join(' && '));
    expect(refused.message).toContain(data.command);
    expect(await h.prisma.trainingJob.count({ where: { agentId } })).toBe(0);

    // The command the error names is the one that fixes it.
    for (const command of data.command.split(' && ')) execFileSync(resolveTemporalCli(), command.split(' ').slice(1), { stdio: 'pipe' });
    const after = await waitFor(() => fetch(`${api.url}/readyz`).then(async (r) => ({ status: r.status, body: await r.json() })), (r) => r.status === 200, 30_000);
    expect(after.body).toEqual({ status: 'ready', temporal: 'ok', postgres: 'ok', namespace: 'ok' });
  } finally {
    await api.close();
  }
});

test('a namespace that does not exist: /readyz 503 saying so', async () => {
  const api = await apiOn(`flow-missing-${suffix}`);
  try {
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as Record<string, string>).namespace).toContain(`Temporal namespace flow-missing-${suffix} does not exist`);
  } finally {
    await api.close();
  }
});

test('the worker on a namespace with only some of the attributes: /readyz 503 naming the missing ones', async () => {
  const worker = await startWorker(
    {
      ...process.env,
      TEMPORAL_NAMESPACE: partial,
      FLOW_TASK_QUEUE: `readiness-${suffix}`,
      FLOW_LLM_BASE_URL: h.model.url,
      FLOW_WORKER_HEALTH_PORT: '0',
      FLOW_WORKER_HEALTH_HOST: '127.0.0.1',
      FLOW_DB_POOL_SIZE: '2',
    },
    () => undefined,
  );
  try {
    const ready = await fetch(`${worker.health.url}/readyz`);
    const body = (await ready.json()) as Record<string, unknown>;
    expect(ready.status).toBe(503);
    expect(body).toMatchObject({ status: 'not_ready', workers: { workflow: 'RUNNING', trajectory: 'RUNNING', cpu: 'RUNNING' }, temporal: 'ok', postgres: 'ok' });
    expect(body.namespace).toContain(`Temporal namespace ${partial} has no search attribute FlowJobStatus, FlowPriority, which Flow's jobs set`);
    expect(body.namespace).not.toContain('FlowAgentId');
  } finally {
    await worker.stop();
  }
});
