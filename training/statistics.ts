import { mean as simpleMean, standardDeviation } from 'simple-statistics';

/**
 * Small numeric helpers shared by the training code. Everything here is deterministic so it can
 * run inside Temporal's workflow sandbox: randomness comes from a seed, never from Math.random.
 */

function requireNonEmpty(xs: readonly number[], what: string): void {
  if (xs.length === 0) {
    throw new Error(`${what}: expected at least one number, got an empty array`);
  }
}

export function mean(xs: number[]): number {
  requireNonEmpty(xs, 'mean');
  return simpleMean(xs);
}

/** Standard deviation over the whole group (divide by n, not n - 1), as GRPO normalises a group. */
export function populationStd(xs: number[]): number {
  requireNonEmpty(xs, 'populationStd');
  return standardDeviation(xs);
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a over the string's UTF-16 code units; an unsigned integer. */
export function hashString(s: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (let i = 0; i < s.length; i++) {
    hash ^= s.charCodeAt(i);
    hash = Math.imul(hash, FNV_PRIME) >>> 0;
  }
  return hash >>> 0;
}

/**
 * mulberry32: a tiny, fast generator whose whole state is one 32-bit integer, so the same seed
 * gives the same sequence on every worker and on replay. Strings are hashed to a seed first.
 * Returns floats in [0, 1).
 */
export function seededRandom(seed: number | string): () => number {
  if (typeof seed === 'number' && !Number.isFinite(seed)) {
    throw new Error(`seededRandom: seed must be a finite number or a string, got ${seed}`);
  }
  let state = (typeof seed === 'string' ? hashString(seed) : seed) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
