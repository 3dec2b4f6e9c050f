/**
 * training/ runs inside Temporal's workflow sandbox as well as in activities, so it must stay
 * pure: no Node I/O, no clock, no unseeded randomness, and no imports from the I/O layers.
 */
import { readdirSync, readFileSync, statSync } from 'fs';
import { dirname, join, relative, resolve } from 'path';

const TRAINING = resolve(__dirname, '../../training');
// Pure-JS statistics: @stdlib's t distribution and Welch test have no I/O and no randomness.
const ALLOWED_PACKAGES = new Set(['zod', 'simple-statistics', '@stdlib/stats-ttest', '@stdlib/stats-ttest2', '@stdlib/stats-base-dists-t-quantile']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const files = sourceFiles(TRAINING);

describe('training/ is pure', () => {
  it('has source files to check', () => {
    expect(files.map((file) => relative(TRAINING, file))).toEqual(
      expect.arrayContaining(['advantages.ts', 'policy.ts', 'simulation/simulatedModel.ts']),
    );
  });

  it.each(files.map((file) => [relative(TRAINING, file), file]))('%s imports only zod, simple-statistics, @stdlib statistics and training/', (_name, file) => {
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(/(?:import|export)[^'"`;]*?from\s+['"]([^'"]+)['"]/g)].map((match) => match[1]);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) {
        const target = resolve(dirname(file), specifier);
        expect(relative(TRAINING, target).startsWith('..')).toBe(false);
      } else {
        expect(ALLOWED_PACKAGES.has(specifier)).toBe(true);
      }
    }
    expect(source).not.toMatch(/\brequire\s*\(|\bimport\s*\(/);
    expect(source).not.toMatch(/Math\.random\s*\(|Date\.now\s*\(|new Date\s*\(|\bprocess\./);
  });
});
