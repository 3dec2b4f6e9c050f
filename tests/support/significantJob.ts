/**
 * A training job that improves test-split success significantly on the simulated environment:
 * the evaluation test shows it, and the policy registry's promotion relies on it. 6 queries per
 * family give a 7-query test split, enough for the paired per-query test to see a trained
 * policy's gain (with 5, a 0.125 -> 0.55 gain under the contrastive default gave p = 0.096).
 */
import { simulatedTaskSet } from '../../training/simulation/environment';

export const SIGNIFICANT_JOB = {
  training_queries: simulatedTaskSet({ queriesPerFamily: 6, seed: 5 }),
  config: { iterations: 10, batch_size: 4, group_size: 8, eval_samples: 8, checkpoint_interval: 5, eval_interval: 5, seed: 21 },
};
