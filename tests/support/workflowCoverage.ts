/**
 * Coverage of workflow code, which runs in Temporal's sandbox from a bundle that
 * @temporalio/nyc-test-coverage instrumented after TypeScript was compiled. Its statement maps
 * speak of the compiled lines, and jest would remap them a second time through its own source
 * maps, scrambling them; so workflow coverage is kept out of jest's map: each harness writes
 * what its workers reported to a folder, and at the end of the run coverageReport.ts maps it
 * back to the .ts files (istanbul-lib-source-maps), prints it and enforces its floors.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import libCoverage from 'istanbul-lib-coverage';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createSourceMapStore } = require('istanbul-lib-source-maps') as {
  createSourceMapStore(): { transformCoverage(map: libCoverage.CoverageMap): Promise<libCoverage.CoverageMap> };
};

const WORKFLOWS_DIR = `${path.resolve(__dirname, '../../workflows')}${path.sep}`;

/** Workflow files' branch floor, measured in the sandbox (lines: coverageReport.ts); raise it as tests are added. */
export const WORKFLOW_BRANCH_THRESHOLD = 80;

/** An empty folder for coverage reports of one run. */
export function prepareCoverageDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

/** Called by each harness with what its workers' sandboxes reported. */
export function saveWorkflowCoverage(dataSets: object[]): void {
  const dir = process.env.FLOW_WORKFLOW_COVERAGE_DIR;
  if (!dir || dataSets.length === 0) return;
  const workflowsOnly = dataSets.map((data) => Object.fromEntries(Object.entries(data).filter(([file]) => file.startsWith(WORKFLOWS_DIR))));
  writeFileSync(path.join(dir, `${process.pid}-${randomUUID()}.json`), JSON.stringify(workflowsOnly));
}

/** Maps everything saved back to the sources and prints a table; null when nothing was saved. */
export async function readWorkflowCoverage(dir: string): Promise<libCoverage.CoverageSummary | null> {
  const reported = libCoverage.createCoverageMap({});
  for (const file of readdirSync(dir)) {
    for (const data of JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as libCoverage.CoverageMapData[]) reported.merge(data);
  }
  if (reported.files().length === 0) return null;
  const map = await createSourceMapStore().transformCoverage(reported);
  const total = libCoverage.createCoverageSummary();
  const rows = map.files().map((file) => {
    const summary = map.fileCoverageFor(file).toSummary();
    total.merge(summary);
    return `  ${path.relative(path.dirname(WORKFLOWS_DIR), file).padEnd(36)} lines ${summary.lines.pct.toFixed(2).padStart(6)}%  branches ${summary.branches.pct.toFixed(2).padStart(6)}%`;
  });
  const all = `  ${'workflows/ (all)'.padEnd(36)} lines ${total.lines.pct.toFixed(2).padStart(6)}%  branches ${total.branches.pct.toFixed(2).padStart(6)}%`;
  console.log(`\nWorkflow coverage (measured in Temporal's sandbox):\n${[...rows, all].join('\n')}`);
  return total;
}
