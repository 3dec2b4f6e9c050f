/**
 * Jest global setup for integration tests: real PostgreSQL (a fresh, migrated database per
 * run) and a real Temporal dev server (the official CLI, in memory), plus the workflow bundle
 * built once for every test file. Nothing is downloaded: scripts/install-infra.sh installed it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, startTemporal, type TemporalServer } from '../../workers/devStack';

declare global {
  // eslint-disable-next-line no-var
  var __flowTemporal: TemporalServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  const workDir = path.join(PROJECT_ROOT, '.flow', 'test');
  mkdirSync(workDir, { recursive: true });
  const postgres = await ensurePostgres();
  const databaseName = `flow_test_${process.pid}_${Date.now()}`;
  const databaseUrl = await createDatabase(postgres.adminUrl, databaseName, { fresh: true });
  migrateDatabase(databaseUrl);

  const temporal = await startTemporal({ headless: true, logFile: path.join(workDir, 'temporal.log') });
  globalThis.__flowTemporal = temporal;

  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietLogger });
  const bundlePath = path.join(workDir, `workflow-bundle-${process.pid}.js`);
  writeFileSync(bundlePath, bundle.code);

  // Test workers are forked after this, so they inherit these.
  process.env.DATABASE_URL = databaseUrl;
  process.env.FLOW_TEST_DATABASE_NAME = databaseName;
  process.env.FLOW_TEST_ADMIN_URL = postgres.adminUrl;
  process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.FLOW_TEST_WORKFLOW_BUNDLE = bundlePath;
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
