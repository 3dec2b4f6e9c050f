import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keptSections, writeMarkdown } from '../perf/results';

const learning = '<!-- learning:start -->\n## Learning across runs\n\nΔ +0.700\n<!-- learning:end -->';
const realModel = '<!-- bench:real-model start -->\n## The real local model\n\n| a | 1 |\n<!-- bench:real-model end -->';

test('npm run bench rewrites its own figures and keeps the sections other benchmarks wrote between markers', () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-md-')), 'benchmark_results.md');
  writeFileSync(file, `# Benchmark results\n\n| old figure | 1 |\n\n${learning}\n\n## Machine\n\nold\n\n${realModel}\n`);
  writeMarkdown(file, { measured_at: 'now', get_status_cpu_ms_per_call: 0.2 }, [{ key: 'get_status_cpu_ms_per_call', label: 'CPU per call', value: 0.2, unit: 'ms', bar: { op: '<=', value: 0.25 } }], []);
  const written = readFileSync(file, 'utf8');
  expect(written).not.toContain('old figure');
  expect(written).toContain('| CPU per call (`get_status_cpu_ms_per_call`) | 0.20 ms | ≤ 0.25 ms | met |');
  expect(keptSections(written)).toEqual([learning, realModel]);
  // Written again, nothing is doubled.
  writeMarkdown(file, { measured_at: 'later' }, [], []);
  expect(keptSections(readFileSync(file, 'utf8'))).toEqual([learning, realModel]);
});

test('an unterminated or mismatched marker is not a section', () => {
  expect(keptSections('<!-- learning:start -->\ntext\n<!-- cluster:end -->')).toEqual([]);
});
