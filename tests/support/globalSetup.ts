/**
 * Jest global setup for integration tests: real PostgreSQL (a fresh, migrated database per
 * run) and a real Temporal dev server (the official CLI, in memory), plus the workflow bundle
 * built once for every test file. Nothing is downloaded: scripts/install-infra.sh installed it.
 * FLOW_TEST_TEMPORAL=cluster runs them against a multi-service Temporal cluster on PostgreSQL
 * instead (scripts/temporal-cluster.ts; `npm run test:cluster` runs the declared subset).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WorkflowCoverage } from '@temporalio/nyc-test-coverage';
import type { Config } from '@jest/types';
import { prepareCoverageDir } from './workflowCoverage';
import { createDatabase, dropDatabase, ensurePostgres, freePort, migrateDatabase, PROJECT_ROOT, startTemporal } from '../../workers/dev/devStack';
import { freeBasePort, startCluster } from '../../scripts/temporal-cluster';

declare global {
  // eslint-disable-next-line no-var
  var __flowTemporal: SuiteTemporal | undefined;
}

// One partition per task queue, so priority order across a whole queue is observable
// (tests/integration/priority.test.ts); with several, each partition orders only its own.
const ONE_PARTITION = { 'matching.numTaskqueueReadPartitions': 1, 'matching.numTaskqueueWritePartitions': 1 };
// Task-queue backlog gauges every second instead of every minute, so a test sees its own queue's
// (tests/integration/observability.test.ts: the dashboard's backlog panel reads them).
const BACKLOG_METRICS_EVERY_SECOND = { 'matching.backlogMetricsEmitInterval': '1s' };

/** The suite's Temporal server: its frontend, and the /metrics that carries its task-queue series. */
interface SuiteTemporal {
  address: string;
  metricsUrl: string;
  stop(): Promise<void>;
}

/** The suite's Temporal: the dev server, or with FLOW_TEST_TEMPORAL=cluster a cluster of its own (fresh databases, dropped after). */
async function startSuiteTemporal(workDir: string, adminUrl: string): Promise<SuiteTemporal> {
  const mode = process.env.FLOW_TEST_TEMPORAL ?? 'dev';
  if (mode === 'dev') {
    // A known metrics port, so a test reads the server's series without probing the machine's ports.
    const server = await startTemporal({ headless: true, logFile: path.join(workDir, 'temporal.log'), dynamicConfig: { ...ONE_PARTITION, ...BACKLOG_METRICS_EVERY_SECOND }, metricsPort: await freePort() });
    return { address: server.address, metricsUrl: server.metricsUrl!, stop: () => server.stop() };
  }
  if (mode !== 'cluster') throw new Error(`FLOW_TEST_TEMPORAL must be "dev" (the default) or "cluster", got ${JSON.stringify(mode)}`);
  const name = `test-${process.pid}`;
  const database = `temporal_test_${process.pid}`;
  const started = Date.now();
  const cluster = await startCluster({ name, database, fresh: true, basePort: await freeBasePort(), namespace: 'default', dynamicConfig: { ...ONE_PARTITION, ...BACKLOG_METRICS_EVERY_SECOND } });
  console.log(`\nintegration tests against the Temporal cluster at ${cluster.address} (4 services, PostgreSQL; up in ${Math.round((Date.now() - started) / 1000)} s; logs in ${cluster.dir})`);
  return {
    address: cluster.address,
    // Task-queue series (backlogs) come from the matching service.
    metricsUrl: cluster.metricsUrls.matching,
    async stop() {
      await cluster.stop();
      await dropDatabase(adminUrl, database);
      await dropDatabase(adminUrl, `${database}_visibility`);
    },
  };
}

export default async function globalSetup(globalConfig: Config.GlobalConfig): Promise<void> {
  const workDir = path.join(PROJECT_ROOT, '.flow', 'test');
  mkdirSync(workDir, { recursive: true });
  const postgres = await ensurePostgres();
  const databaseName = `flow_test_${process.pid}_${Date.now()}`;
  const databaseUrl = await createDatabase(postgres.adminUrl, databaseName, { fresh: true });
  migrateDatabase(databaseUrl);

  const temporal = await startSuiteTemporal(workDir, postgres.adminUrl);
  globalThis.__flowTemporal = temporal;

  const bundle = await bundleWorkflowCode(workflowBundleOptions(globalConfig.collectCoverage)).finally(forgetCoverageGlobal);
  const bundlePath = path.join(workDir, `workflow-bundle-${process.pid}.js`);
  writeFileSync(bundlePath, bundle.code);

  // Test workers are forked after this, so they inherit these.
  process.env.DATABASE_URL = databaseUrl;
  process.env.FLOW_TEST_DATABASE_NAME = databaseName;
  process.env.FLOW_TEST_ADMIN_URL = postgres.adminUrl;
  process.env.TEMPORAL_ADDRESS = temporal.address;
  process.env.FLOW_TEST_TEMPORAL_SERVER_METRICS_URL = temporal.metricsUrl;
  // The suite's namespace, whatever a developer's shell names (a file with an install of its own
  // gets another, tests/support/suiteEnvironment.ts).
  process.env.TEMPORAL_NAMESPACE = 'default';
  process.env.FLOW_TEST_WORKFLOW_BUNDLE = bundlePath;
  // Worker and API processes tests spawn expose no metrics endpoints unless a test asks (observability.test.ts).
  process.env.FLOW_METRICS_PORT = process.env.FLOW_TEMPORAL_METRICS_PORT = '0';
  if (globalConfig.collectCoverage) {
    removeStaleCoverageDirs(workDir);
    const coverageDir = path.join(workDir, `workflow-coverage-${process.pid}`);
    prepareCoverageDir(coverageDir);
    process.env.FLOW_WORKFLOW_COVERAGE_DIR = coverageDir;
    // Processes the tests spawn write V8 coverage here (tests/support/processCoverageEnv.ts);
    // tests/support/coverageReport.ts counts it at the end of the run.
    const processCoverageDir = path.join(workDir, `process-coverage-${process.pid}`);
    prepareCoverageDir(processCoverageDir);
    process.env.FLOW_PROCESS_COVERAGE_DIR = processCoverageDir;
  }
}

/** Earlier runs' coverage folders (hundreds of MB of V8 reports each), unless their run is still going. */
function removeStaleCoverageDirs(workDir: string): void {
  for (const name of readdirSync(workDir)) {
    const pid = /^(?:process|workflow)-coverage-(\d+)$/.exec(name)?.[1];
    if (pid && !isRunning(Number(pid))) rmSync(path.join(workDir, name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

/**
 * Workflow code runs in Temporal's sandbox, out of jest's sight; with coverage on, the bundle
 * is instrumented (Temporal's nyc-test-coverage) and the harness merges what workflows report.
 */
function workflowBundleOptions(collectCoverage: boolean) {
  const options = { workflowsPath: require.resolve('../../workflows'), logger: quietLogger };
  if (!collectCoverage) return options;
  // WorkflowCoverage instruments only while a coverage global exists (checked again during
  // bundling); this parent process has none, so one stands in until the bundle is built.
  const global = globalThis as { __coverage__?: object };
  if (!('__coverage__' in global)) {
    global.__coverage__ = {};
    standInCoverageGlobal = true;
  }
  return new WorkflowCoverage().augmentBundleOptions(options);
}

let standInCoverageGlobal = false;
function forgetCoverageGlobal() {
  if (standInCoverageGlobal) delete (globalThis as { __coverage__?: object }).__coverage__;
  standInCoverageGlobal = false;
}
