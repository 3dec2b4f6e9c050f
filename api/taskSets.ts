/** Named built-in task sets a caller can train on instead of sending queries inline. */
import type { Task } from '../training/config';
import { simulatedTaskSet } from '../training/simulation/environment';

export const TASK_SET_NAMES = ['simulated-small', 'simulated'] as const;
export type TaskSetName = (typeof TASK_SET_NAMES)[number];

export function builtInTaskSet(name: TaskSetName): Task[] {
  return simulatedTaskSet({ queriesPerFamily: name === 'simulated-small' ? 2 : 4, seed: 1 });
}
