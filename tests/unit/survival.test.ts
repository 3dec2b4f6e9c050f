/**
 * The benchmark's log-rank test (tests/perf/survival.ts) against SciPy 1.17.1:
 *   a = CensoredData(uncensored=[3,5,5,8,12,7,9,15], right=[40,40])
 *   b = CensoredData(uncensored=[2,3,4,4,6,9,10,5,3], right=[40])
 *   scipy.stats.logrank(a, b) -> statistic -1.3729877741629828 (a signed z; z² = 1.885095428001022),
 *                                pvalue 0.16975614747118384
 */
import { logRankTest, type SurvivalSample } from '../perf/survival';

const samples = (times: number[], events: number[]): SurvivalSample[] => times.map((time, i) => ({ time, event: events[i] === 1 }));
const a = samples([3, 5, 5, 8, 12, 40, 40, 7, 9, 15], [1, 1, 1, 1, 1, 0, 0, 1, 1, 1]);
const b = samples([2, 3, 4, 4, 6, 9, 10, 40, 5, 3], [1, 1, 1, 1, 1, 1, 1, 0, 1, 1]);

test('agrees with scipy.stats.logrank, censored runs included', () => {
  const result = logRankTest(a, b);
  expect(result.statistic).toBeCloseTo(1.885095428001022, 10);
  expect(result.p).toBeCloseTo(0.16975614747118384, 10);
  expect(result.observedA).toBe(8);
  expect(result.observedB).toBe(9);
  expect(result.expectedA + result.expectedB).toBeCloseTo(17, 10);
  expect(logRankTest(b, a).p).toBeCloseTo(result.p, 12);
});

test('identical groups give p = 1; no events at all give p = 1; empty groups are refused', () => {
  expect(logRankTest(a, a).p).toBeCloseTo(1, 12);
  expect(logRankTest([{ time: 40, event: false }], [{ time: 40, event: false }])).toMatchObject({ statistic: 0, p: 1 });
  expect(() => logRankTest([], b)).toThrow('both groups need samples, got 0 and 10');
});
