import { hashString, mean, populationStd, seededRandom } from '../../training/statistics';

describe('mean and populationStd', () => {
  it('compute the mean and the population (divide-by-n) standard deviation', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    // Population std of [1, 0, 0, 1]: every deviation is 0.5, so std = 0.5 (sample std would be 0.577).
    expect(populationStd([1, 0, 0, 1])).toBe(0.5);
    expect(populationStd([3, 3, 3])).toBe(0);
  });

  it('refuse an empty array with a message naming the function', () => {
    expect(() => mean([])).toThrow('mean: expected at least one number, got an empty array');
    expect(() => populationStd([])).toThrow('populationStd: expected at least one number, got an empty array');
  });
});

describe('hashString', () => {
  it('is 32-bit FNV-1a', () => {
    // Published FNV-1a 32-bit test vectors.
    expect(hashString('')).toBe(0x811c9dc5);
    expect(hashString('a')).toBe(0xe40c292c);
    expect(hashString('foobar')).toBe(0xbf9cf968);
  });
});

describe('seededRandom', () => {
  it('repeats the same sequence for the same seed, in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    // Roughly uniform: mean near 0.5.
    expect(Math.abs(mean(xs) - 0.5)).toBeLessThan(0.05);
  });

  it('hashes string seeds, and different seeds give different sequences', () => {
    expect(seededRandom('abc')()).toBe(seededRandom(hashString('abc'))());
    expect(seededRandom(1)()).not.toBe(seededRandom(2)());
  });

  it('rejects a seed that is not a finite number', () => {
    expect(() => seededRandom(Number.NaN)).toThrow('seed must be a finite number or a string, got NaN');
    expect(() => seededRandom(Infinity)).toThrow('got Infinity');
  });
});
