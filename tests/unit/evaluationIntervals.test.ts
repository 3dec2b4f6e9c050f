/**
 * Intervals stay inside the metric's range (issue 15): a t interval of rewards near 1 reached 1.05.
 */
import { meanEstimate, REWARD_RANGE } from '../../training/evaluationStatistics';

test('an avg_reward interval is clamped to [0, 1]; without a range the t interval is left as it is', () => {
  const rewards = [1, 1, 1, 1, 0.6, 1, 1, 1];
  const open = meanEstimate(rewards);
  expect(open.ci_high!).toBeGreaterThan(1);
  const clamped = meanEstimate(rewards, REWARD_RANGE);
  expect(clamped).toEqual({ value: open.value, ci_low: open.ci_low, ci_high: 1, n: 8 });
  const low = meanEstimate([0, 0, 0, 0.4, 0, 0], REWARD_RANGE);
  expect(low.ci_low).toBe(0);
  expect(low.ci_high!).toBeLessThan(1);
});
