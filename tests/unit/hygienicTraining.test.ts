/**
 * Policy hygiene (issue 16) in the in-process GRPO loop: per-group proposals, one consolidation per
 * iteration, counters, the collapse guard, the token budget and the cheap gate, as
 * `npm run bench:learning` runs them over 30 seeds.
 */
import { tokenCounterFor } from '../../adapters/llm/tokenCounter';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import { initialPolicy, renderSystemPrompt } from '../../training/policy';
import { outcomeReward } from '../../training/rewards';
import { SIMULATED_FAMILIES, simulatedTaskSet } from '../../training/simulation/environment';
import { emptyTally, hygienicUpdate, type SimulatedHygiene } from '../../training/simulation/hygienicUpdate';
import { runSimulatedTraining, type SimulatedTrainingOptions } from '../../training/simulation/simulatedTraining';

const count = tokenCounterFor('flow-sim-1').count;

function options(seed: number, hygiene: SimulatedHygiene | undefined): SimulatedTrainingOptions {
  return {
    trainingTasks: simulatedTaskSet({ queriesPerFamily: 3, seed, families: SIMULATED_FAMILIES }),
    heldOutTasks: simulatedTaskSet({ queriesPerFamily: 2, seed: seed + 100_000, families: SIMULATED_FAMILIES }),
    iterations: 6,
    groupSize: 8,
    batchSize: 4,
    maxTurns: 6,
    seed,
    gamma: 0.99,
    creditAssignment: false,
    policyUpdate: 'positive_only',
    reward: outcomeReward,
    update: { learningRate: 0.5, clip: 0.2, maxLessons: 20 },
    evalSamples: 1,
    ...(hygiene ? { hygiene } : {}),
  };
}

const hygiene = (maxPolicyTokens: number, gate: boolean): SimulatedHygiene => ({
  options: { maxPolicyTokens, maxUpdateRemovalShare: 0.3, mergeSimilarity: 0.8 },
  count,
  gate: gate ? { queries: 4, samples: 2 } : null,
});

describe('training with policy hygiene', () => {
  it('learns, with lessons carrying provenance and counters, never over the token budget', () => {
    const result = runSimulatedTraining(options(2, hygiene(2000, false)), initialPolicy(DEFAULT_BASE_PROMPT));
    expect(result.heldOutSuccess[result.heldOutSuccess.length - 1]).toBeGreaterThan(result.heldOutSuccess[0]);
    expect(result.hygiene).toMatchObject({ updates: 6, budget_violations: 0, gate_refusals: 0 });
    const lessons = result.policy.lessons;
    expect(lessons.length).toBeGreaterThan(0);
    for (const lesson of lessons) {
      expect(lesson.provenance![0]).toMatchObject({ job_id: 'simulated', run: 1, operation: 'add' });
      expect(lesson.provenance![0].trajectory_ids.length).toBeGreaterThan(0);
    }
    // Every lesson older than the last iteration has been counted against later trajectories.
    expect(lessons.some((lesson) => (lesson.counters?.helpful ?? 0) > 0)).toBe(true);
  });

  it('a tight budget trims, and the rendered policy never exceeds it', () => {
    const base = count(DEFAULT_BASE_PROMPT);
    const result = runSimulatedTraining(options(3, hygiene(base + 40, false)), initialPolicy(DEFAULT_BASE_PROMPT));
    expect(result.hygiene!.trimmed).toBeGreaterThan(0);
    expect(result.hygiene!.budget_violations).toBe(0);
    expect(count(renderSystemPrompt(result.policy))).toBeLessThanOrEqual(base + 40);
  });

  it('the gate keeps the parent when the candidate does worse beyond chance on its minibatch', () => {
    // A seed whose run has such an update (seeds 3, 50 and 62 of the first 80: the sign test refuses rarely).
    const result = runSimulatedTraining(options(3, hygiene(2000, true)), initialPolicy(DEFAULT_BASE_PROMPT));
    expect(result.hygiene!.gate_refusals).toBeGreaterThan(0);
    expect(result.hygiene!.gate_refusals).toBeLessThan(result.hygiene!.updates);
  });

  it('a group with nothing to learn from proposes nothing; an unchanged policy skips the gate', () => {
    const tally = emptyTally();
    const policy = initialPolicy(DEFAULT_BASE_PROMPT);
    const next = hygienicUpdate(
      { policy, groups: [[]], iteration: 1, seed: 1, mode: 'positive_only', update: { learningRate: 0.5, clip: 0.2, maxLessons: 20 }, hygiene: hygiene(2000, true), validation: [], succeeds: () => true },
      tally,
    );
    expect(next).toEqual(policy);
    expect(tally).toEqual({ ...emptyTally(), updates: 1 });
  });
});
