/** Small, dependency-free statistics for benchmark figures. */
import { seededRandom } from '../../training/statistics';

/** The q-quantile (0..1) by linear interpolation between closest ranks (R-7, as numpy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
}

export const median = (values: readonly number[]) => quantile(values, 0.5);

export const round = (value: number, digits = 3) => Number(value.toFixed(digits));

/**
 * Arrival times (ms from the start, ascending) of a Poisson process at `rate` a second over
 * `seconds`: independent callers, the same times for the same seed (openLoopGenerator.cjs).
 */
export function poissonArrivals(rate: number, seconds: number, seed: number): Float64Array {
  const random = seededRandom(seed);
  const times: number[] = [];
  for (let t = (-Math.log(1 - random()) / rate) * 1000; t < seconds * 1000; t += (-Math.log(1 - random()) / rate) * 1000) times.push(t);
  return Float64Array.from(times);
}
