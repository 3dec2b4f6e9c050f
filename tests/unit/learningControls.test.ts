/**
 * Controls that can fail, over many seeds (issue 14): the product's per-run verdict
 * (training/evaluationStatistics.ts runLevelEvidence, on each run's test queries) must rarely
 * call a control run "improved". Each run is a whole in-process training run of the learning
 * benchmark (tests/perf/learningBench.ts), ~25 ms.
 *
 * Why these could fail: shuffled advantages still reach the updater, which still writes and
 * reweights lessons, so lock-in of whatever lessons get ahead can make a control run better or
 * worse than its baseline (an earlier audit saw 3 of 9 runs "significant" under per-episode
 * statistics); and the unchanged policy on fresh episodes differs from its baseline by sampling
 * noise alone, which an anti-conservative verdict would report. The seeds are fixed, so the
 * outcome is fixed; a verdict that over-claims would exceed the bound.
 */
import { neededBySimulatedRule, runArm } from '../perf/learningBench';

const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);

test('shuffled advantages: at most 10% of 20 runs are called an improvement; trained runs all are', () => {
  const shuffled = SEEDS.map((seed) => runArm('shuffled', seed));
  expect(shuffled.filter((run) => run.significant).length / SEEDS.length).toBeLessThanOrEqual(0.1);
  const trained = SEEDS.slice(0, 3).map((seed) => runArm('trained', seed));
  expect(trained.every((run) => run.significant && run.delta > 0.3)).toBe(true);
});

test('no policy update, fresh episodes: at most 10% of 20 runs are called an improvement', () => {
  const fresh = SEEDS.map((seed) => runArm('no_update_fresh', seed));
  expect(fresh.filter((run) => run.significant).length / SEEDS.length).toBeLessThanOrEqual(0.1);
  // Not the same episodes as the baseline: some runs differ from it at all.
  expect(fresh.some((run) => run.delta !== 0)).toBe(true);
});

test("the removal floor's judge: a lesson is needed only if it is its family's required first tool, or verification where the family requires it", () => {
  // billing needs query_database then verification; geography needs web_search and no verification.
  expect(neededBySimulatedRule('For billing tasks like "outstanding balance account", call query_database first.')).toBe(true);
  expect(neededBySimulatedRule('For billing tasks like "outstanding balance account", call verify_answer before answering.')).toBe(true);
  expect(neededBySimulatedRule('For billing tasks like "outstanding balance account", call web_search first.')).toBe(false);
  expect(neededBySimulatedRule('For geography tasks like "population postal code", call verify_answer before answering.')).toBe(false);
  expect(neededBySimulatedRule('For tasks like "population postal code", call web_search first.')).toBe(false);
  expect(neededBySimulatedRule('For constructor tasks, call web_search first.')).toBe(false);
  expect(neededBySimulatedRule('Always be careful.')).toBe(false);
});
