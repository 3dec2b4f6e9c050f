import type { Trajectory } from './config';

/**
 * FLOW-004: reward functions. A reward maps a finished trajectory to a number in [0, 1]; the
 * registry lets a job pick one by name (`config.reward_strategy`) and rejects any function that
 * returns something outside [0, 1] instead of quietly clipping it, so a broken custom reward
 * shows up as an error rather than as a job that silently learns nothing.
 */

export type RewardInput = Pick<Trajectory, 'success' | 'steps' | 'verified' | 'error'>;
export type RewardFunction = (trajectory: RewardInput) => number;

/** 1 when the task was solved, else 0. */
export function outcomeReward(trajectory: RewardInput): number {
  return trajectory.success ? 1 : 0;
}

/** Small nudges towards good habits; far smaller than the outcome so they never outrank success. */
export const SHAPING = { toolUse: 0.1, verification: 0.05, perStep: -0.01 } as const;

/**
 * Outcome plus shaping, defined as clamped to [0, 1]: a bonus for at least one tool call that
 * worked, a bonus for checking the answer, a small cost per step so shorter runs win ties.
 */
export function shapedReward(trajectory: RewardInput): number {
  const usedToolSuccessfully = trajectory.steps.some(
    (step) => step.action.type === 'tool_call' && step.error === null,
  );
  const raw =
    outcomeReward(trajectory) +
    (usedToolSuccessfully ? SHAPING.toolUse : 0) +
    (trajectory.verified ? SHAPING.verification : 0) +
    SHAPING.perStep * trajectory.steps.length;
  return Math.min(1, Math.max(0, raw));
}

/** A reward function returned something other than a finite number in [0, 1]. */
export class RewardValidationError extends Error {
  readonly rewardName: string;
  readonly value: unknown;

  constructor(rewardName: string, value: unknown) {
    super(
      `reward function "${rewardName}" returned ${describeValue(value)}; a reward must be a finite number in [0, 1]`,
    );
    this.name = 'RewardValidationError';
    this.rewardName = rewardName;
    this.value = value;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${String(value)} (${typeof value})`;
}

export interface RegisteredReward {
  name: string;
  description: string;
}

export class RewardRegistry {
  private readonly rewards = new Map<string, { fn: RewardFunction; description: string }>();

  register(name: string, fn: RewardFunction, description = ''): this {
    if (name.trim() === '') {
      throw new Error(`reward name must not be blank, got ${JSON.stringify(name)}`);
    }
    if (this.rewards.has(name)) {
      throw new Error(`reward "${name}" is already registered; pick another name`);
    }
    this.rewards.set(name, { fn, description });
    return this;
  }

  has(name: string): boolean {
    return this.rewards.has(name);
  }

  names(): string[] {
    return [...this.rewards.keys()];
  }

  /** Names with descriptions, in registration order (for docs and the API). */
  list(): RegisteredReward[] {
    return [...this.rewards.entries()].map(([name, { description }]) => ({ name, description }));
  }

  get(name: string): RewardFunction {
    const entry = this.rewards.get(name);
    if (!entry) {
      throw new Error(`unknown reward "${name}"; known rewards: ${this.names().join(', ') || '(none)'}`);
    }
    return entry.fn;
  }

  /** Runs the named reward and insists on a finite number in [0, 1]. */
  score(name: string, trajectory: RewardInput): number {
    const value: unknown = this.get(name)(trajectory);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new RewardValidationError(name, value);
    }
    return value;
  }
}

export function createDefaultRewardRegistry(): RewardRegistry {
  return new RewardRegistry()
    .register('outcome', outcomeReward, '1 when the task was solved, else 0')
    .register(
      'shaped',
      shapedReward,
      'outcome + 0.1 for a working tool call + 0.05 for verifying - 0.01 per step, clamped to [0, 1]',
    );
}
