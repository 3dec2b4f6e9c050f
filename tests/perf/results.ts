/**
 * docs/performance/benchmark_results.json is ONE object of numbers that every benchmark adds
 * its keys to (plus `machine` and `measured_at`); benchmark_results.md is rendered from it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Machine {
  cpu_model: string;
  cpus: number;
  memory_gib: number;
  node: string;
  os: string;
  load_avg_1m_at_start?: number;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    memory_gib: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export type Results = Record<string, unknown> & { machine?: Machine; measured_at?: string };

/** A figure with its bar, for the console and the Markdown table. */
export interface Figure {
  key: string;
  label: string;
  value: number;
  unit: string;
  bar?: { op: '<=' | '>='; value: number };
}

export const meetsBar = (figure: Figure) =>
  !figure.bar || (figure.bar.op === '<=' ? figure.value <= figure.bar.value : figure.value >= figure.bar.value);

/**
 * Merges `figures` into the existing file: other benchmarks' keys are kept; keys this
 * benchmark owns (`ownedPrefixes`) but did not produce this time are dropped as stale.
 */
export function mergeResults(file: string, figures: Record<string, number>, ownedPrefixes: string[], extra: Pick<Results, 'machine' | 'measured_at'>): Results {
  let existing: Results = {};
  if (existsSync(file)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) existing = parsed as Results;
    } catch {
      throw new Error(`${file} is not valid JSON; fix or delete it, then rerun`);
    }
  }
  for (const key of Object.keys(existing)) {
    if (ownedPrefixes.some((prefix) => key.startsWith(prefix)) && !(key in figures)) delete existing[key];
  }
  const merged: Results = { ...existing, ...figures, ...extra };
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(merged, null, 2)}\n`);
  return merged;
}

export function formatValue(value: number, unit: string): string {
  const text = Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(unit === '×' ? 3 : 2);
  return unit === '×' ? `${text}×` : `${text} ${unit}`;
}

export interface MarkdownSection {
  title: string;
  lines: string[];
}

/** `alsoShown`: keys the sections already present, left out of the "other figures" list. */
export function writeMarkdown(file: string, results: Results, figures: Figure[], sections: MarkdownSection[], alsoShown: string[] = []): void {
  const m = results.machine;
  const shown = new Set([...figures.map((f) => f.key), ...alsoShown]);
  const others = Object.entries(results).filter(([key, value]) => !shown.has(key) && typeof value === 'number');
  const lines = [
    '# Benchmark results',
    '',
    `Measured ${results.measured_at ?? '?'} by \`npm run bench\` (tests/perf/bench.ts${typeof results.bench_seconds === 'number' ? `, ${results.bench_seconds} s` : ''}); the numbers are in [benchmark_results.json](benchmark_results.json).`,
    '',
    '| Figure | Value | Bar | |',
    '| --- | ---: | ---: | --- |',
    ...figures.map((f) => `| ${f.label} (\`${f.key}\`) | ${formatValue(f.value, f.unit)} | ${f.bar ? `${f.bar.op === '<=' ? '≤' : '≥'} ${formatValue(f.bar.value, f.unit)}` : ''} | ${f.bar ? (meetsBar(f) ? 'met' : '**MISSED**') : ''} |`),
    '',
    ...sections.flatMap((s) => [`## ${s.title}`, '', ...s.lines, '']),
    ...(others.length > 0 ? ['## Other figures in benchmark_results.json', '', '| Key | Value |', '| --- | ---: |', ...others.map(([k, v]) => `| \`${k}\` | ${v} |`), ''] : []),
    '## Machine',
    '',
    m ? `${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB RAM, Node ${m.node}, ${m.os}${m.load_avg_1m_at_start !== undefined ? `; 1-minute load average ${m.load_avg_1m_at_start} when the bench started` : ''}.` : 'unknown',
    '',
  ];
  // Other benchmarks (learning, cluster, real model, credit assignment) write their own sections
  // between markers: they are kept, not dropped with the rest of the old file.
  const kept = existsSync(file) ? keptSections(readFileSync(file, 'utf8')) : [];
  writeFileSync(file, [...lines, ...kept.flatMap((section) => [section, ''])].join('\n'));
}

/** The sections between `<!-- name:start -->` (or `<!-- name start -->`) and their end marker, in file order. */
export function keptSections(markdown: string): string[] {
  return [...markdown.matchAll(/<!-- (.+?)[: ]start -->[\s\S]*?<!-- \1[: ]end -->/g)].map((match) => match[0]);
}
