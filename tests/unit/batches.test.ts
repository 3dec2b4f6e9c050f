import { selectBatch } from '../../training/batches';

describe('selectBatch', () => {
  it('is deterministic and depends on the seed', () => {
    expect(selectBatch(20, 3, 5, 7)).toEqual(selectBatch(20, 3, 5, 7));
    const bySeed = new Set([1, 2, 3, 4, 5].map((seed) => JSON.stringify(selectBatch(20, 1, 5, seed))));
    expect(bySeed.size).toBeGreaterThan(1);
  });

  it('uses every query once per epoch before any repeats', () => {
    const epochOne = [1, 2, 3, 4].flatMap((iteration) => selectBatch(20, iteration, 5, 11));
    expect([...epochOne].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const epochTwo = [5, 6, 7, 8].flatMap((iteration) => selectBatch(20, iteration, 5, 11));
    expect([...epochTwo].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // A fresh permutation per epoch, not the same order again.
    expect(epochTwo).not.toEqual(epochOne);
  });

  it('tops up the last batch of an epoch from the same permutation, never repeating within a batch', () => {
    // 10 queries, batches of 4: an epoch is 3 iterations (4 + 4 + 2 fresh + 2 top-up).
    const batches = [1, 2, 3].map((iteration) => selectBatch(10, iteration, 4, 3));
    for (const batch of batches) {
      expect(batch).toHaveLength(4);
      expect(new Set(batch).size).toBe(4);
    }
    const fresh = [...batches[0], ...batches[1], ...batches[2].slice(0, 2)];
    expect(new Set(fresh).size).toBe(10);
    expect(batches[2].slice(2)).toEqual(batches[0].slice(0, 2));
  });

  it('uses each query once when the batch is larger than the query set', () => {
    const batch = selectBatch(3, 1, 10, 0);
    expect([...batch].sort()).toEqual([0, 1, 2]);
    expect(selectBatch(1, 5, 4, 0)).toEqual([0]);
  });

  it('names a bad argument', () => {
    expect(() => selectBatch(0, 1, 1, 0)).toThrow('selectBatch: queryCount must be a positive integer, got 0');
    expect(() => selectBatch(5, 0, 1, 0)).toThrow('iteration must be a positive integer, got 0');
    expect(() => selectBatch(5, 1, 1.5, 0)).toThrow('batchSize must be a positive integer, got 1.5');
    expect(() => selectBatch(5, 1, 1, Number.NaN)).toThrow('seed must be a finite number, got NaN');
  });
});
