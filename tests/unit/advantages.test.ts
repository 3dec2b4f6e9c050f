import {
  MIN_GROUP_STD,
  groupAdvantages,
  selectPositiveAdvantage,
  stepAdvantages,
  stepRewards,
  surrogateLoss,
  trajectoryLoss,
} from '../../training/advantages';

describe('groupAdvantages', () => {
  it('normalises [1, 0, 0, 1] to [1, -1, -1, 1] (mean 0.5, population std 0.5)', () => {
    expect(groupAdvantages([1, 0, 0, 1])).toEqual([1, -1, -1, 1]);
  });

  it('matches a hand computation for one success in four', () => {
    // mean 0.25; variance (0.75^2 + 3 * 0.25^2) / 4 = 0.1875; std = sqrt(0.1875) = 0.4330127...
    const [winner, ...losers] = groupAdvantages([1, 0, 0, 0]);
    expect(winner).toBeCloseTo(0.75 / Math.sqrt(0.1875), 12);
    expect(winner).toBeCloseTo(Math.sqrt(3), 12);
    for (const loser of losers) expect(loser).toBeCloseTo(-1 / Math.sqrt(3), 12);
  });

  it('sums to zero and has unit population std', () => {
    const advantages = groupAdvantages([0.2, 0.9, 0.4, 0.4, 1, 0]);
    expect(advantages.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 12);
    const variance = advantages.reduce((a, b) => a + b * b, 0) / advantages.length;
    expect(variance).toBeCloseTo(1, 12);
  });

  it('gives all zeros, never NaN, when std == 0 or is float noise', () => {
    expect(groupAdvantages([1, 1, 1, 1])).toEqual([0, 0, 0, 0]);
    expect(groupAdvantages([0, 0])).toEqual([0, 0]);
    expect(groupAdvantages([0.7])).toEqual([0]);
    // mean of three 0.1s is 0.10000000000000002: the spread is pure rounding noise.
    expect(groupAdvantages([0.1, 0.1, 0.1])).toEqual([0, 0, 0]);
    expect(MIN_GROUP_STD).toBe(1e-12);
  });

  it('returns [] for an empty group', () => {
    expect(groupAdvantages([])).toEqual([]);
  });

  it('names a non-finite reward', () => {
    expect(() => groupAdvantages([1, Number.NaN])).toThrow(
      'groupAdvantages rewards: value at index 1 is NaN, expected a finite number',
    );
  });
});

describe('stepRewards and stepAdvantages', () => {
  it('discount back from the last step', () => {
    // finalReward * gamma^(n - i - 1) with n = 3, gamma = 0.5: [0.25, 0.5, 1] * 1
    expect(stepRewards(1, 3, 0.5)).toEqual([0.25, 0.5, 1]);
    expect(stepAdvantages(-2, 3, 0.5)).toEqual([-0.5, -1, -2]);
    expect(stepAdvantages(1.5, 2, 1)).toEqual([1.5, 1.5]);
    expect(stepRewards(1, 0, 0.9)).toEqual([]);
  });

  it('reject a bad step count or gamma, naming it', () => {
    expect(() => stepRewards(1, -1, 0.9)).toThrow('stepRewards: nSteps must be a non-negative integer, got -1');
    expect(() => stepAdvantages(1, 2.5, 0.9)).toThrow('stepAdvantages: nSteps must be a non-negative integer, got 2.5');
    expect(() => stepRewards(1, 2, 0)).toThrow('stepRewards: gamma must be in (0, 1], got 0');
    expect(() => stepAdvantages(1, 2, 1.5)).toThrow('gamma must be in (0, 1], got 1.5');
    expect(() => stepAdvantages(1, 2, Number.NaN)).toThrow('got NaN');
  });
});

describe('trajectoryLoss and surrogateLoss', () => {
  it('is -logProb * advantage, null when there is no log-prob', () => {
    expect(trajectoryLoss(-2, 0.5)).toBe(1);
    expect(trajectoryLoss(-2, -0.5)).toBe(-1);
    expect(trajectoryLoss(null, 3)).toBeNull();
    expect(Object.is(trajectoryLoss(-1, 0), 0)).toBe(true);
  });

  it('averages the trajectories that have log-probs (hand-computed)', () => {
    // Losses: -(-1)(1) = 1, -(-2)(-1) = -2, null, -(-0.5)(1) = 0.5  ->  (1 - 2 + 0.5) / 3 = -1/6
    const loss = surrogateLoss([
      { logProb: -1, advantage: 1 },
      { logProb: -2, advantage: -1 },
      { logProb: null, advantage: -1 },
      { logProb: -0.5, advantage: 1 },
    ]);
    expect(loss).toBeCloseTo(-1 / 6, 12);
  });

  it('is null when no trajectory has a log-prob', () => {
    expect(surrogateLoss([{ logProb: null, advantage: 1 }])).toBeNull();
    expect(surrogateLoss([])).toBeNull();
  });
});

describe('selectPositiveAdvantage', () => {
  it('keeps advantage > 0, best first, ties in input order', () => {
    const items = [
      { ref: 'a', advantage: 0.5 },
      { ref: 'b', advantage: 0 },
      { ref: 'c', advantage: 1.2 },
      { ref: 'd', advantage: -1 },
      { ref: 'e', advantage: 0.5 },
    ];
    expect(selectPositiveAdvantage(items).map((item) => item.ref)).toEqual(['c', 'a', 'e']);
    expect(selectPositiveAdvantage([{ advantage: 0 }])).toEqual([]);
  });
});
