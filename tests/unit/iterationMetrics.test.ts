import { IterationMetricsSchema, iterationMetrics } from '../../training/iterationMetrics';

const noChurn = { added: 0, edited: 0, reweighted: 0, dropped: 0 };

describe('iterationMetrics', () => {
  it('aggregates groups (hand-computed)', () => {
    const metrics = iterationMetrics(
      [
        { rewards: [1, 0, 0, 1], successes: [true, false, false, true], advantages: [1, -1, -1, 1], logProbs: [-1, -2, null, -0.5] },
        { rewards: [0.5, 0.5], successes: [false, false], advantages: [0, 0], logProbs: [null, -3] },
      ],
      { added: 1, edited: 2, reweighted: 3, dropped: 4 },
    );
    // Losses: 1, -2, 0.5 and 0 (-(-3) * 0)  ->  mean -0.5 / 4 = -0.125.
    expect(metrics).toEqual({
      trajectories: 6,
      mean_reward: 3 / 6,
      success_rate: 2 / 6,
      loss: -0.125,
      advantage_spread: (2 + 0) / 2,
      lesson_churn: 10,
    });
    expect(IterationMetricsSchema.parse(metrics)).toEqual(metrics);
  });

  it('reports a null loss without log-probs and zeros for an empty iteration', () => {
    expect(iterationMetrics([{ rewards: [1], successes: [true], advantages: [0], logProbs: [null] }], noChurn).loss).toBeNull();
    expect(iterationMetrics([{ rewards: [], successes: [], advantages: [], logProbs: [] }], noChurn)).toEqual({
      trajectories: 0,
      mean_reward: 0,
      success_rate: 0,
      loss: null,
      advantage_spread: 0,
      lesson_churn: 0,
    });
  });

  it('names a group whose arrays disagree in length', () => {
    expect(() =>
      iterationMetrics(
        [
          { rewards: [1], successes: [true], advantages: [0], logProbs: [null] },
          { rewards: [1, 0], successes: [true], advantages: [0, 0], logProbs: [null, null] },
        ],
        noChurn,
      ),
    ).toThrow('iterationMetrics: group 1 has 2 rewards, 1 successes, 2 advantages and 2 log-probs; all must be equal');
    expect(() =>
      iterationMetrics([{ rewards: [1], successes: [true], advantages: [], logProbs: [null] }], noChurn),
    ).toThrow('group 0');
    expect(() =>
      iterationMetrics([{ rewards: [1], successes: [true], advantages: [1], logProbs: [] }], noChurn),
    ).toThrow('0 log-probs');
  });
});
