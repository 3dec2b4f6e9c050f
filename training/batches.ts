import { seededRandom } from './statistics';

/**
 * Which training queries an iteration uses. Stateless (a function of its arguments only), so a
 * resumed or replayed workflow picks exactly the same batch. Queries are walked in a seeded
 * permutation per epoch: every query is used once per epoch before any query is used again.
 */

function requirePositiveInteger(value: number, what: string): void {
  if (!(Number.isInteger(value) && value >= 1)) {
    throw new Error(`selectBatch: ${what} must be a positive integer, got ${value}`);
  }
}

/** Fisher-Yates shuffle of 0..n-1 with its own seed per epoch. */
function epochPermutation(queryCount: number, epoch: number, seed: number): number[] {
  const random = seededRandom(`batches:${seed}:${epoch}`);
  const order = Array.from({ length: queryCount }, (_, i) => i);
  for (let i = queryCount - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * Query indices for a 1-based iteration. An epoch is ceil(n / size) iterations; when the size
 * does not divide n, the epoch's last batch is topped up from the start of the same permutation,
 * so every batch has the same size (and cost) and never holds a query twice.
 */
export function selectBatch(queryCount: number, iteration: number, batchSize: number, seed: number): number[] {
  requirePositiveInteger(queryCount, 'queryCount');
  requirePositiveInteger(iteration, 'iteration');
  requirePositiveInteger(batchSize, 'batchSize');
  if (!Number.isFinite(seed)) throw new Error(`selectBatch: seed must be a finite number, got ${seed}`);

  const size = Math.min(batchSize, queryCount);
  const batchesPerEpoch = Math.ceil(queryCount / size);
  const epoch = Math.floor((iteration - 1) / batchesPerEpoch);
  const start = ((iteration - 1) % batchesPerEpoch) * size;
  const order = epochPermutation(queryCount, epoch, seed);
  const batch = order.slice(start, start + size);
  return batch.concat(order.slice(0, size - batch.length));
}
