/**
 * The run's line-coverage floors, checked once every test has finished, by the integration
 * project's global teardown (a shortfall fails jest's run). Three measurements feed them:
 * - jest's own map: code the tests load in-process (istanbul, through @swc/jest);
 * - V8 coverage written by the processes tests spawn (NODE_V8_COVERAGE: worker and API
 *   processes, `npm start`, the `flow` CLI), converted by c8. Process entry points run nowhere
 *   else. Two instrumenters' statement maps cannot be merged statement by statement, so these
 *   count line by line: a line jest instruments is covered when either measurement ran it;
 * - workflows/, measured inside Temporal's sandbox (workflowCoverage.ts).
 * Line figures come from all three; jest's own thresholds (jest.config.js) keep holding branches.
 */
import path from 'node:path';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import libCoverage, { type CoverageMap } from 'istanbul-lib-coverage';
import { readWorkflowCoverage, WORKFLOW_BRANCH_THRESHOLD } from './workflowCoverage';

const ROOT = path.resolve(__dirname, '../..');

/**
 * Line floors (percent) per folder, and for every measured file together ('all'). training/ is
 * not here: jest itself holds it at 100% lines and branches in-process (jest.config.js).
 */
export const LINE_COVERAGE_THRESHOLDS: Record<string, number> = {
  'activities/': 95,
  'adapters/': 95,
  'workers/': 95,
  'workflows/': 95,
  'api/': 90,
  all: 90,
};

interface LineCount {
  covered: number;
  total: number;
}

type FileLines = Map<string, LineCount>;

/** Per file, the lines jest instruments, covered if jest or a spawned process ran them. */
export function mergeLineCoverage(inProcess: CoverageMap, spawned: CoverageMap | null): FileLines {
  const files: FileLines = new Map();
  for (const file of inProcess.files()) {
    const lines = inProcess.fileCoverageFor(file).getLineCoverage();
    const spawnedLines = spawned?.data[file] ? spawned.fileCoverageFor(file).getLineCoverage() : {};
    const numbers = Object.keys(lines);
    const covered = numbers.filter((line) => lines[Number(line)] > 0 || (spawnedLines[Number(line)] ?? 0) > 0).length;
    files.set(path.relative(ROOT, file), { covered, total: numbers.length });
  }
  return files;
}

/** The V8 coverage spawned processes wrote under `dir`, as istanbul data for the project's sources. */
export async function readProcessCoverage(dir: string): Promise<CoverageMap | null> {
  if (!existsSync(dir)) return null;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const createReport = require('c8/lib/report') as (options: object) => { getCoverageMapFromAllCoverageFiles(): Promise<CoverageMap> };
  const report = createReport({
    include: ['activities/**', 'adapters/**', 'api/**', 'training/**', 'workers/**'],
    exclude: [],
    extension: ['.ts'],
    reporter: [],
    tempDirectory: dir,
    src: [ROOT],
    resolve: ROOT,
    excludeNodeModules: true,
    // One process at a time: the folder holds hundreds of reports (every node process tests start).
    mergeAsync: true,
  });
  const cwd = process.cwd();
  // c8 matches include globs relative to the working directory.
  process.chdir(ROOT);
  try {
    return libCoverage.createCoverageMap(await report.getCoverageMapFromAllCoverageFiles());
  } finally {
    process.chdir(cwd);
  }
}

export interface CoverageVerdict {
  table: string;
  shortfalls: string[];
}

/** Sums lines per folder, prints them and names every floor missed. */
export function judgeLineCoverage(files: FileLines, workflows: LineCount | null): CoverageVerdict {
  const folders = new Map<string, LineCount>();
  const add = (key: string, count: LineCount) => {
    const sum = folders.get(key) ?? { covered: 0, total: 0 };
    folders.set(key, { covered: sum.covered + count.covered, total: sum.total + count.total });
  };
  for (const [file, count] of files) {
    add(`${file.split(path.sep)[0]}/`, count);
    add('all', count);
  }
  if (workflows) {
    add('workflows/', workflows);
    add('all', workflows);
  }
  const percent = ({ covered, total }: LineCount) => (total === 0 ? 100 : (100 * covered) / total);
  const rows = [...folders].map(([folder, count]) => {
    const floor = LINE_COVERAGE_THRESHOLDS[folder];
    return `  ${folder.padEnd(14)} lines ${percent(count).toFixed(2).padStart(6)}%  (${count.covered}/${count.total})${floor === undefined ? '' : `  floor ${floor}%`}`;
  });
  const shortfalls = [...folders]
    .filter(([folder, count]) => LINE_COVERAGE_THRESHOLDS[folder] !== undefined && percent(count) < LINE_COVERAGE_THRESHOLDS[folder])
    .map(([folder, count]) => `${folder} lines ${percent(count).toFixed(2)}% < ${LINE_COVERAGE_THRESHOLDS[folder]}%`);
  const missing = Object.keys(LINE_COVERAGE_THRESHOLDS).filter((folder) => !folders.has(folder));
  return {
    table: `\nLine coverage (in-process, spawned processes and the workflow sandbox together):\n${rows.join('\n')}`,
    shortfalls: [...shortfalls, ...missing.map((folder) => `${folder} was not measured`)],
  };
}

/**
 * The whole check: jest's map, the spawned processes' and the sandbox's, printed and written to
 * coverage/line-coverage.json. Resolves to the floors missed (none: an empty list).
 */
export async function checkCoverage(inProcess: CoverageMap, dirs: { processes?: string; workflows?: string }): Promise<string[]> {
  const spawned = dirs.processes ? await readProcessCoverage(dirs.processes) : null;
  const workflows = dirs.workflows ? await readWorkflowCoverage(dirs.workflows) : null;
  const files = mergeLineCoverage(inProcess, spawned);
  const verdict = judgeLineCoverage(files, workflows && { covered: workflows.lines.covered, total: workflows.lines.total });
  console.log(verdict.table);
  if (workflows && workflows.branches.pct < WORKFLOW_BRANCH_THRESHOLD) verdict.shortfalls.push(`workflows/ branches ${workflows.branches.pct}% < ${WORKFLOW_BRANCH_THRESHOLD}%`);
  mkdirSync(path.join(ROOT, 'coverage'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'coverage', 'line-coverage.json'),
    JSON.stringify({ files: Object.fromEntries(files), workflows: workflows?.lines ?? null, shortfalls: verdict.shortfalls }, null, 2),
  );
  return verdict.shortfalls;
}
