import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import libCoverage from 'istanbul-lib-coverage';
import type { Config } from '@jest/types';
import { Client as PgClient } from 'pg';
import { dropDatabase } from '../../workers/dev/devStack';
import { checkCoverage } from './coverageReport';

export default async function globalTeardown(globalConfig: Config.GlobalConfig): Promise<void> {
  await globalThis.__flowTemporal?.stop();
  const { FLOW_TEST_ADMIN_URL: adminUrl, FLOW_TEST_DATABASE_NAME: suiteDatabase } = process.env;
  if (adminUrl && suiteDatabase) {
    // With what an isolated file (tests/support/suiteEnvironment.ts) left if its worker died.
    const names = [suiteDatabase, ...(await ownDatabasesOf(adminUrl, suiteDatabase))];
    await Promise.all(names.map((name) => dropDatabase(adminUrl, name)));
  }
  // jest's reporters (its coverage report included) have finished by now; a shortfall fails the run.
  const jestCoverage = path.join(globalConfig.coverageDirectory, 'coverage-final.json');
  if (!globalConfig.collectCoverage || !existsSync(jestCoverage)) return;
  const shortfalls = await checkCoverage(libCoverage.createCoverageMap(JSON.parse(readFileSync(jestCoverage, 'utf8'))), {
    processes: process.env.FLOW_PROCESS_COVERAGE_DIR,
    workflows: process.env.FLOW_WORKFLOW_COVERAGE_DIR,
  });
  if (shortfalls.length > 0) throw new Error(`coverage below its floor: ${shortfalls.join(', ')}`);
}

async function ownDatabasesOf(adminUrl: string, suiteDatabase: string): Promise<string[]> {
  const pg = new PgClient({ connectionString: adminUrl });
  await pg.connect();
  try {
    const { rows } = await pg.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [`${suiteDatabase}_iso_`]);
    return rows.map((row) => row.datname);
  } finally {
    await pg.end();
  }
}
