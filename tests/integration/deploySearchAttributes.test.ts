/**
 * deploy/registerSearchAttributes.ts, which the compose `temporal-setup` service and the Helm
 * hook Job run, against the real Temporal dev server: on a namespace of its own that has none of
 * Flow's attributes, it adds them as Keyword; a second run adds nothing and succeeds; an
 * attribute of the wrong type is refused with its name.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { FLOW_SEARCH_ATTRIBUTES } from '../../workflows/searchAttributes';
import { main, registerSearchAttributes } from '../../deploy/registerSearchAttributes';
import { requireEnv } from '../support/harness';

const ROOT = path.resolve(__dirname, '..', '..');
const { IndexedValueType } = temporal.api.enums.v1;

async function newNamespace(connection: Connection): Promise<string> {
  const namespace = `flow-deploy-${randomUUID().slice(0, 8)}`;
  await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
  return namespace;
}

async function customAttributes(connection: Connection, namespace: string) {
  return (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
}

describe('deploy/registerSearchAttributes.ts', () => {
  let connection: Connection;
  beforeAll(async () => {
    connection = await Connection.connect({ address: requireEnv('TEMPORAL_ADDRESS') });
  });
  afterAll(async () => {
    await connection?.close();
  });

  test('as a process (the container command): registers every Flow attribute as Keyword, then finds them on a second run', async () => {
    const namespace = await newNamespace(connection);
    expect(Object.keys(await customAttributes(connection, namespace))).not.toContain('FlowAgentId');
    const run = () =>
      spawnSync('node', ['--import', 'tsx', 'deploy/registerSearchAttributes.ts'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 90_000,
        env: { ...process.env, TEMPORAL_ADDRESS: requireEnv('TEMPORAL_ADDRESS'), TEMPORAL_NAMESPACE: namespace },
      });
    const first = run();
    expect({ status: first.status, stderr: first.stderr }).toEqual({ status: 0, stderr: '' });
    expect(first.stdout).toContain(`namespace ${namespace}: added [FlowAgentId, FlowJobStatus, FlowPriority], already there []`);
    const registered = await customAttributes(connection, namespace);
    for (const key of FLOW_SEARCH_ATTRIBUTES) expect({ [key.name]: registered[key.name] }).toEqual({ [key.name]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD });

    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('added [], already there [FlowAgentId, FlowJobStatus, FlowPriority]');
  });

  test('adds only what is missing', async () => {
    const namespace = await newNamespace(connection);
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: { FlowPriority: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD },
    });
    await expect(registerSearchAttributes(connection, namespace)).resolves.toEqual({ added: ['FlowAgentId', 'FlowJobStatus'], existing: ['FlowPriority'] });
  });

  test('an attribute that exists with another type is refused, naming it and both types', async () => {
    const namespace = await newNamespace(connection);
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: { FlowJobStatus: IndexedValueType.INDEXED_VALUE_TYPE_TEXT } });
    await expect(registerSearchAttributes(connection, namespace)).rejects.toThrow(
      `search attribute FlowJobStatus exists on namespace ${namespace} as INDEXED_VALUE_TYPE_TEXT, but Flow needs INDEXED_VALUE_TYPE_KEYWORD`,
    );
    const lines: string[] = [];
    await expect(main({ TEMPORAL_ADDRESS: requireEnv('TEMPORAL_ADDRESS'), TEMPORAL_NAMESPACE: namespace }, (line) => lines.push(line))).resolves.toBe(1);
    expect(lines.join('\n')).toContain(`Temporal at ${requireEnv('TEMPORAL_ADDRESS')}, namespace ${namespace}: search attribute FlowJobStatus exists`);
    // Nothing else was added alongside the refused one.
    expect(Object.keys(await customAttributes(connection, namespace))).not.toContain('FlowAgentId');
  });

  test('an unreachable server: it retries until FLOW_SETUP_TIMEOUT_MS, then exits 1 with the connection error', async () => {
    const lines: string[] = [];
    const started = Date.now();
    await expect(main({ TEMPORAL_ADDRESS: '127.0.0.1:1', FLOW_SETUP_TIMEOUT_MS: '3000' }, (line) => lines.push(line))).resolves.toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^register-search-attributes: Temporal at 127\.0\.0\.1:1, namespace default: \S/);
  });

  test('without TEMPORAL_ADDRESS it exits 1 and says what to set', async () => {
    const lines: string[] = [];
    await expect(main({}, (line) => lines.push(line))).resolves.toBe(1);
    expect(lines).toEqual(['register-search-attributes: TEMPORAL_ADDRESS is not set (host:port of the Temporal frontend)']);
  });

  test('a FLOW_SETUP_TIMEOUT_MS that is not a number is refused at once (NaN was a deadline never passed: retries for ever)', async () => {
    const lines: string[] = [];
    await expect(main({ TEMPORAL_ADDRESS: '127.0.0.1:1', FLOW_SETUP_TIMEOUT_MS: '2m' }, (line) => lines.push(line))).resolves.toBe(1);
    expect(lines).toEqual(['register-search-attributes: FLOW_SETUP_TIMEOUT_MS must be an integer from 0 to 86400000 (ms), got "2m"']);
  });
});
