/**
 * Import boundaries the folder layout promises (docs/architecture.md), read from the sources'
 * relative imports: api/ never imports workers/ (`flow worker` is assembled by scripts/flow.ts),
 * and what the production image runs needs only what the Dockerfile copies into it, so the
 * dev-only tooling of workers/dev/ (dev stack, demo, simulated model server) stays out of it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** The processes the image runs (Dockerfile, helm/, docker-compose.yml) and the `flow` entry it ships. */
const PRODUCTION_ENTRIES = ['api/main.ts', 'workers/main.ts', 'scripts/flow.ts', 'deploy/registerSearchAttributes.ts'];
/** What the Dockerfile's runtime stage copies (workers/ without workers/dev/). */
const IN_IMAGE = ['training/', 'workflows/', 'activities/', 'adapters/', 'workers/', 'api/', 'generated/', 'scripts/flow.ts', 'deploy/registerSearchAttributes.ts'];

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm;

function resolveImport(fromFile: string, spec: string): string | null {
  const base = path.resolve(path.dirname(path.join(ROOT, fromFile)), spec);
  for (const candidate of [base, `${base}.ts`, `${base}.js`, path.join(base, 'index.ts'), path.join(base, 'index.js')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return path.relative(ROOT, candidate);
  }
  // A directory without an index (generated/prisma) is a module of its own.
  return existsSync(base) ? path.relative(ROOT, base) : null;
}

function importsOf(file: string): string[] {
  if (!/\.(ts|js)$/.test(file)) return [];
  const source = readFileSync(path.join(ROOT, file), 'utf8');
  return [...source.matchAll(IMPORT)].map((m) => resolveImport(file, m[2])).filter((f): f is string => f !== null);
}

function sourcesUnder(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

function closure(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const pending = [...entries];
  while (pending.length) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.startsWith('generated/')) pending.push(...importsOf(file));
  }
  return seen;
}

test('api/ imports nothing from workers/', () => {
  const upward = sourcesUnder('api').flatMap((file) => importsOf(file).filter((target) => target.startsWith('workers/')).map((target) => `${file} -> ${target}`));
  expect(upward).toEqual([]);
});

test('the production entry points need only what the image holds: no workers/dev/, tests/ or other scripts', () => {
  const needed = [...closure(PRODUCTION_ENTRIES)];
  expect(needed).toEqual(expect.arrayContaining(PRODUCTION_ENTRIES));
  expect(needed.filter((file) => file.startsWith('workers/dev/') || !IN_IMAGE.some((prefix) => file.startsWith(prefix)))).toEqual([]);
});

test('the check sees the imports it guards (dynamic ones included)', () => {
  expect(importsOf('scripts/flow.ts')).toEqual(expect.arrayContaining(['api/cli/flow.ts', 'workers/main.ts']));
  expect(closure(['workers/dev/demo.ts']).has('workers/dev/devStack.ts')).toBe(true);
});
