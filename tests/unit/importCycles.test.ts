/**
 * No import cycles among the project's source folders (issue 17). The graph is built with the
 * TypeScript compiler that is already a dependency (`ts.preProcessFile` lists a file's imports,
 * `ts.resolveModuleName` resolves them with tsconfig.json's options), so no tool is needed.
 *
 * Every kind of import counts: value imports, `import type`, re-exports and dynamic `import()`.
 * A type-only cycle costs nothing at run time today, but it still ties two modules together (one
 * cannot move or be read without the other), and one edit that turns the `import type` into a
 * value import makes it a run-time cycle, where CommonJS hands one side a half-initialised module.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..', '..');
const FOLDERS = ['training', 'workflows', 'activities', 'adapters', 'workers', 'api', 'scripts'];
const SOURCE = /\.(ts|tsx|js|mjs|cjs)$/;

type Graph = ReadonlyMap<string, readonly string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** file -> the project files it imports, by path relative to the repository. */
function importGraph(): Graph {
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), ts.sys.readFile);
  const options = { ...ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options, allowJs: true };
  const files = FOLDERS.flatMap((folder) => sourceFiles(join(ROOT, folder)));
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .map((imported) => ts.resolveModuleName(imported.fileName, file, options, ts.sys).resolvedModule?.resolvedFileName)
      .filter((target): target is string => target !== undefined && known.has(target));
    graph.set(relative(ROOT, file), [...new Set(targets.map((target) => relative(ROOT, target)))]);
  }
  return graph;
}

/** One cycle per strongly connected component (Tarjan), each as a path a -> b -> ... -> a. */
function findCycles(graph: Graph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component = new Set<string>();
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.add(member);
    } while (member !== node);
    if (component.size > 1 || (graph.get(node) ?? []).includes(node)) cycles.push(cycleThrough(graph, node, component));
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

/** A shortest path from `start` back to itself inside its component (breadth first). */
function cycleThrough(graph: Graph, start: string, component: ReadonlySet<string>): string[] {
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of graph.get(node) ?? []) {
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(previous.get(path[0])!);
        return [...path, start];
      }
      if (component.has(next) && !previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}

describe('findCycles', () => {
  test('finds a cycle, a self-import, and nothing in a tree', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c', 'd']],
      ['c', ['a']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    expect(findCycles(graph)).toEqual([['a', 'b', 'c', 'a'], ['e', 'e']]);
    expect(findCycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });
});

describe('the import graph of ' + FOLDERS.join(', '), () => {
  const graph = importGraph();

  test('is read from the real tree (value and type imports)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get(join('workflows', 'trainingJob.ts'))).toContain(join('training', 'jobInput.ts'));
    // `import type { TrainingActivities } from '../activities'` counts too.
    expect(graph.get(join('workflows', 'trainingJobActivities.ts'))).toContain(join('activities', 'index.ts'));
  });

  test('has no cycles', () => {
    const cycles = findCycles(graph).map((cycle) => cycle.join(' -> '));
    expect(cycles).toEqual([]);
  });
});
