/**
 * Coverage of workflow code, which runs in Temporal's sandbox from a bundle that
 * @temporalio/nyc-test-coverage instrumented after TypeScript was compiled. Its statement maps
 * speak of the compiled lines, and jest would remap them a second time through its own source
 * maps, scrambling them; so workflow coverage is kept out of jest's map: each harness writes
 * what its workers reported to a folder, and the integration project's global teardown maps it
 * back to the .ts files (istanbul-lib-source-maps), prints it and enforces its threshold.
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

/** Workflow files' floor, measured in the sandbox; raise it as tests are added. */
export const WORKFLOW_COVERAGE_THRESHOLD = { lines: 95, branches: 80 };

export function prepareWorkflowCoverageDir(dir: string): void {
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

/** Maps everything saved back to the sources, prints a table and checks the threshold. */
export async function reportWorkflowCoverage(dir: string): Promise<void> {
  const reported = libCoverage.createCoverageMap({});
  for (const file of readdirSync(dir)) {
    for (const data of JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as libCoverage.CoverageMapData[]) reported.merge(data);
  }
  if (reported.files().length === 0) return;
  const map = await createSourceMapStore().transformCoverage(reported);
  const total = libCoverage.createCoverageSummary();
  const rows = map.files().map((file) => {
    const summary = map.fileCoverageFor(file).toSummary();
    total.merge(summary);
    return `  ${path.relative(path.dirname(WORKFLOWS_DIR), file).padEnd(36)} lines ${summary.lines.pct.toFixed(2).padStart(6)}%  branches ${summary.branches.pct.toFixed(2).padStart(6)}%`;
  });
  const all = `  ${'workflows/ (all)'.padEnd(36)} lines ${total.lines.pct.toFixed(2).padStart(6)}%  branches ${total.branches.pct.toFixed(2).padStart(6)}%`;
  console.log(`\nWorkflow coverage (measured in Temporal's sandbox):\n${[...rows, all].join('\n')}`);
  writeFileSync(path.join(dir, '..', 'workflow-coverage-summary.json'), JSON.stringify(total.toJSON(), null, 2));
  const short = (['lines', 'branches'] as const).filter((key) => total[key].pct < WORKFLOW_COVERAGE_THRESHOLD[key]);
  if (short.length) {
    throw new Error(`workflow coverage below its threshold: ${short.map((key) => `${key} ${total[key].pct}% < ${WORKFLOW_COVERAGE_THRESHOLD[key]}%`).join(', ')}`);
  }
}
