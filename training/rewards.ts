import { z } from 'zod';
import type { AgentType, Task } from './task';
import type { Trajectory } from './trajectory';

/**
 * FLOW-004 / FLOW-017: reward functions and their registry. A reward maps a finished trajectory
 * to a number in [0, 1]; a job picks one by name (`config.reward_strategy`), or gets the
 * registry's default for its agent type. Every value a reward returns is validated: one that is
 * not a finite number in [0, 1] is never clipped; the trajectory is marked with an error naming
 * the function and left out of its group's advantages, so a broken custom reward shows up on
 * the rows it broke instead of as a job that silently learns nothing (or as a failed job).
 */

/** What a reward may read of the task the trajectory solved. */
export type RewardTask = Pick<Task, 'prompt' | 'expected_answer' | 'expected_tool'>;

export type RewardInput = Pick<Trajectory, 'success' | 'steps' | 'verified' | 'error'> & {
  final_answer?: string | null;
  task?: RewardTask;
};

/** Scores one trajectory; pure and synchronous. Throwing marks the trajectory. */
export type RewardFunction = (trajectory: RewardInput) => number;

/**
 * A reward whose value is not its own business alone: one that scores the whole group together
 * (a group-relative judge) or needs the worker's help (a model to ask, a sandbox to run code
 * in), given through `context`. Returns one value per trajectory, in order; a `RewardFailure`
 * marks that trajectory. A thrown error is the activity's (an LLM call failed: retried).
 */
export type GroupRewardFunction = (group: readonly RewardInput[], context: RewardContext) => Promise<readonly unknown[]> | readonly unknown[];

/** A judge's verdict on one trajectory (activities/llm/judge.ts asks the model and validates it). */
export interface JudgeVerdict {
  score: number;
  reason: string;
}

/** The LLM judge, supplied by the reward activity: Portkey calls under the job's budget guard. */
export interface RewardJudge {
  /** Scores one trajectory against the rubric. */
  one(trajectory: RewardInput): Promise<JudgeVerdict | RewardFailure>;
  /** Scores a query's whole group at once, each trajectory relative to the others (RULER). */
  group(trajectories: readonly RewardInput[]): Promise<(JudgeVerdict | RewardFailure)[]>;
}

/** Test cases for the `code_tests` reward, given by the task as JSON in `expected_answer`. */
export const CodeTestsSpecSchema = z
  .object({
    /** The function the answer must define, e.g. "add". */
    function: z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]{0,99}$/, 'a JavaScript identifier'),
    cases: z
      .array(z.object({ args: z.array(z.unknown()).max(20), expected: z.unknown() }).strict())
      .min(1)
      .max(100),
  })
  .strict();
export type CodeTestsSpec = z.infer<typeof CodeTestsSpecSchema>;

/** Runs `source` and calls `spec.function` on each case: true where it returned `expected`. */
export type CodeRunner = (source: string, spec: CodeTestsSpec) => boolean[];

/** What group rewards get from the worker (activities/rewards.ts builds it per group). */
export interface RewardContext {
  judge?: RewardJudge;
  runCode?: CodeRunner;
}

/** A reward could not score this trajectory; the trajectory is marked with `reason`. */
export class RewardFailure {
  constructor(readonly reason: string) {}
}

/** The result for one trajectory: a validated reward, or the error its row is marked with. */
export type RewardOutcome = { reward: number; error: null } | { reward: null; error: string };

/** 1 when the task was solved, else 0. */
export function outcomeReward(trajectory: RewardInput): number {
  return trajectory.success ? 1 : 0;
}

/** Small nudges towards good habits; far smaller than the outcome so they never outrank success. */
export const SHAPING = { toolUse: 0.1, verification: 0.05, perStep: -0.01 } as const;

/** The shaping terms alone: a working tool call, a verified answer, a small cost per step. */
function shapingOf(trajectory: RewardInput): number {
  const usedToolSuccessfully = trajectory.steps.some((step) => step.action.type === 'tool_call' && step.error === null);
  return (usedToolSuccessfully ? SHAPING.toolUse : 0) + (trajectory.verified ? SHAPING.verification : 0) + SHAPING.perStep * trajectory.steps.length;
}

/**
 * The old default, kept for jobs that ask for it by name: outcome plus shaping, clamped to
 * [0, 1]. Within a group of failures, shaping alone decides who gets a positive advantage, so
 * it can teach habits that do not solve the task (ending early, a wrong first tool). Where a
 * job uses it, the evaluation warns when its verdict and the success verdict disagree.
 */
export function shapedReward(trajectory: RewardInput): number {
  return Math.min(1, Math.max(0, outcomeReward(trajectory) + shapingOf(trajectory)));
}

/** Where a success's reward sits before shaping, and the least it can fall to. */
export const OUTCOME_SHAPED = { base: 0.85, floor: 0.5 } as const;

/**
 * Outcome first, shaping only among successes: a failure is 0 whatever it did, a success is
 * 0.85 + shaping, clamped to [0.5, 1]. So a success always outranks a failure in its group, and
 * failures, all equal, never get a positive advantage from shaping (in an all-failure group
 * every advantage is 0); shaping can only order successes.
 */
export function outcomeShapedReward(trajectory: RewardInput): number {
  if (!trajectory.success) return 0;
  return Math.min(1, Math.max(OUTCOME_SHAPED.floor, OUTCOME_SHAPED.base + shapingOf(trajectory)));
}

/**
 * Canonical form of a short answer: case, surrounding quotes, trailing full stop and runs of
 * white space do not matter; numbers compare by value ("42.0" is "42", "1,000" is "1000").
 */
export function normaliseAnswer(answer: string): string {
  const text = answer
    .trim()
    .replace(/^["'`]+|["'`]+$/g, '')
    .replace(/[.!]+$/, '')
    .replace(/\s+/g, ' ')
    .toLowerCase();
  const numeric = text.replace(/,/g, '');
  return /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/.test(numeric) ? String(Number(numeric)) : text;
}

/** Example (question answering): 1 when the final answer equals the task's expected answer, else 0. */
export function exactAnswerReward(trajectory: RewardInput): number {
  const expected = trajectory.task?.expected_answer;
  if (expected === undefined) throw new Error('the task has no expected_answer to compare the final answer with');
  const answer = trajectory.final_answer;
  if (answer === null || answer === undefined) return 0;
  return normaliseAnswer(answer) === normaliseAnswer(expected) ? 1 : 0;
}

/** Tool calls the trajectory made, in order. */
function toolCallNames(trajectory: RewardInput): string[] {
  return trajectory.steps.flatMap((step) => step.tool_calls.map((call) => call.name));
}

/**
 * Example (tool use): 0 unless the task's expected tool was called; then 1 for a single call,
 * less for every extra call (2 calls 0.67, 3 calls 0.5), so the run that needed fewest wins.
 */
export function toolEfficiencyReward(trajectory: RewardInput): number {
  const expected = trajectory.task?.expected_tool;
  if (expected === undefined) throw new Error('the task has no expected_tool to check the tool calls against');
  const calls = toolCallNames(trajectory);
  if (!calls.includes(expected)) return 0;
  return 1 / (1 + 0.5 * (calls.length - 1));
}

/** The code in an answer: the first fenced block if there is one, else the whole answer. */
export function extractCode(answer: string): string {
  const fenced = /```[A-Za-z]*\n([\s\S]*?)```/.exec(answer);
  return (fenced ? fenced[1] : answer).trim();
}

/** The task's test cases; a task without valid ones is a configuration error, said plainly. */
export function codeTestsSpecOf(task: RewardTask | undefined): CodeTestsSpec {
  const raw = task?.expected_answer;
  if (raw === undefined) throw new Error('the task has no expected_answer holding its test cases as JSON {"function", "cases"}');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new Error(`the task's expected_answer is not JSON test cases {"function", "cases"}: ${raw.slice(0, 80)}`);
  }
  const parsed = CodeTestsSpecSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`the task's test cases are invalid: ${issue.path.join('.') || '(spec)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Example (coding): the fraction of the task's test cases that the JavaScript function in the
 * final answer passes. `runCode` executes it (activities/rewards.ts: node:vm with a timeout).
 */
export function codeTestsReward(trajectory: RewardInput, runCode: CodeRunner): number {
  const spec = codeTestsSpecOf(trajectory.task);
  const answer = trajectory.final_answer;
  if (answer === null || answer === undefined || answer.trim() === '') return 0;
  const passed = runCode(extractCode(answer), spec);
  return passed.filter(Boolean).length / spec.cases.length;
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

/** A strategy name the registry does not know, or one not meant for the job's agent type. */
export class UnknownRewardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnknownRewardError';
  }
}

/** A reward broke its contract with the registry (wrong number of values, missing context). */
export class RewardContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RewardContractError';
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${String(value)} (${typeof value})`;
}

/** The check every reward value passes before it is used: a finite number in [0, 1]. */
export function validateReward(rewardName: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new RewardValidationError(rewardName, value);
  }
  return value;
}

export interface RegisteredReward {
  name: string;
  description: string;
  kind: 'trajectory' | 'group';
  /** The agent types it may be chosen for; null: any. */
  agent_types: AgentType[] | null;
}

export interface RewardOptions {
  description?: string;
  /** Restricts the reward to these agent types (e.g. one that reads the LLM agent's tool calls). */
  agent_types?: AgentType[];
}

type Entry = { description: string; agentTypes: AgentType[] | null } & (
  | { kind: 'trajectory'; fn: RewardFunction }
  | { kind: 'group'; fn: GroupRewardFunction }
);

/**
 * The strategy used when a job names none, for both agent types: the outcome. A shaped reward
 * can improve while success does not; the verdict is on success, so the default rewards it.
 */
export const DEFAULT_REWARD_STRATEGY = 'outcome';

export class RewardRegistry {
  private readonly rewards = new Map<string, Entry>();
  private readonly defaults = new Map<AgentType, string>();

  /** Registers a per-trajectory reward. The third argument may be just a description. */
  register(name: string, fn: RewardFunction, options: string | RewardOptions = {}): this {
    return this.add(name, { kind: 'trajectory', fn }, options);
  }

  /** Registers a reward that scores a group at once or needs the worker's context. */
  registerGroup(name: string, fn: GroupRewardFunction, options: string | RewardOptions = {}): this {
    return this.add(name, { kind: 'group', fn }, options);
  }

  private add(name: string, reward: Pick<Entry, 'kind' | 'fn'>, options: string | RewardOptions): this {
    if (name.trim() === '') {
      throw new Error(`reward name must not be blank, got ${JSON.stringify(name)}`);
    }
    if (this.rewards.has(name)) {
      throw new Error(`reward "${name}" is already registered; pick another name`);
    }
    const { description = '', agent_types } = typeof options === 'string' ? { description: options } : options;
    this.rewards.set(name, { ...reward, description, agentTypes: agent_types ? [...agent_types] : null } as Entry);
    return this;
  }

  /** Makes `name` the strategy of jobs of `agentType` that name none. */
  setDefault(agentType: AgentType, name: string): this {
    this.requireFor(name, agentType);
    this.defaults.set(agentType, name);
    return this;
  }

  /** The strategy a job of `agentType` gets when it names none. */
  defaultFor(agentType: AgentType): string {
    const name = this.defaults.get(agentType) ?? DEFAULT_REWARD_STRATEGY;
    this.requireFor(name, agentType);
    return name;
  }

  /**
   * The strategy a job uses: the one it names (known and allowed for its agent type) or the
   * default for its agent type. Throws UnknownRewardError naming the registered rewards.
   */
  resolve(strategy: string | undefined, agentType: AgentType): string {
    if (strategy === undefined) return this.defaultFor(agentType);
    this.requireFor(strategy, agentType);
    return strategy;
  }

  private requireFor(name: string, agentType: AgentType): Entry {
    const entry = this.entry(name);
    if (entry.agentTypes && !entry.agentTypes.includes(agentType)) {
      throw new UnknownRewardError(
        `reward "${name}" is for ${entry.agentTypes.join(', ')} agents, not ${agentType}; rewards for ${agentType} agents: ${this.namesFor(agentType).join(', ')}`,
      );
    }
    return entry;
  }

  private entry(name: string): Entry {
    const entry = this.rewards.get(name);
    if (!entry) {
      throw new UnknownRewardError(`unknown reward "${name}"; known rewards: ${this.names().join(', ') || '(none)'}`);
    }
    return entry;
  }

  has(name: string): boolean {
    return this.rewards.has(name);
  }

  names(): string[] {
    return [...this.rewards.keys()];
  }

  /** The rewards a job of `agentType` may choose. */
  namesFor(agentType: AgentType): string[] {
    return [...this.rewards.entries()].filter(([, entry]) => !entry.agentTypes || entry.agentTypes.includes(agentType)).map(([name]) => name);
  }

  /** Names with descriptions, in registration order (for docs and the API). */
  list(): RegisteredReward[] {
    return [...this.rewards.entries()].map(([name, entry]) => ({
      name,
      description: entry.description,
      kind: entry.kind,
      agent_types: entry.agentTypes,
    }));
  }

  /** The per-trajectory function registered as `name`. */
  get(name: string): RewardFunction {
    const entry = this.entry(name);
    if (entry.kind !== 'trajectory') {
      throw new RewardContractError(`reward "${name}" scores whole groups; use scoreGroup`);
    }
    return entry.fn;
  }

  /** Runs the named per-trajectory reward and insists on a finite number in [0, 1]. */
  score(name: string, trajectory: RewardInput): number {
    return validateReward(name, this.get(name)(trajectory));
  }

  /**
   * Scores a group with the named reward, of either kind. Each value is validated; a value
   * that fails, a RewardFailure, or a per-trajectory function that throws marks only that
   * trajectory, with a message naming the reward.
   */
  async scoreGroup(name: string, group: readonly RewardInput[], context: RewardContext = {}): Promise<RewardOutcome[]> {
    const entry = this.entry(name);
    if (entry.kind === 'trajectory') {
      return group.map((trajectory) => {
        let value: unknown;
        try {
          value = entry.fn(trajectory);
        } catch (error) {
          return marked(`reward function "${name}" failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        return checked(name, value);
      });
    }
    const values = await entry.fn(group, context);
    if (!Array.isArray(values) || values.length !== group.length) {
      throw new RewardContractError(
        `reward function "${name}" returned ${Array.isArray(values) ? `${values.length} values` : describeValue(values)} for a group of ${group.length}; it must return one per trajectory`,
      );
    }
    return values.map((value) =>
      value instanceof RewardFailure ? marked(`reward function "${name}" could not score this trajectory: ${value.reason}`) : checked(name, value),
    );
  }
}

function marked(error: string): RewardOutcome {
  return { reward: null, error };
}

function checked(name: string, value: unknown): RewardOutcome {
  try {
    return { reward: validateReward(name, value), error: null };
  } catch (error) {
    return marked((error as RewardValidationError).message);
  }
}

function requireContext<K extends keyof RewardContext>(name: string, context: RewardContext, key: K): NonNullable<RewardContext[K]> {
  const value = context[key];
  if (!value) throw new RewardContractError(`reward "${name}" needs the worker's ${key}; score it through the reward activity`);
  return value;
}

const verdictScore = (verdict: JudgeVerdict | RewardFailure) => (verdict instanceof RewardFailure ? verdict : verdict.score);

/** The rewards every worker knows. Register your own on the registry this returns. */
export function createDefaultRewardRegistry(): RewardRegistry {
  return new RewardRegistry()
    .register('outcome', outcomeReward, '1 when the task was solved, else 0')
    .register(
      'shaped',
      shapedReward,
      'outcome + 0.1 for a working tool call + 0.05 for verifying - 0.01 per step, clamped to [0, 1] (legacy: shaping can reward failures; status warns when its verdict and the success verdict disagree)',
    )
    .register(
      'outcome_shaped',
      outcomeShapedReward,
      'failure 0; success 0.85 + 0.1 for a working tool call + 0.05 for verifying - 0.01 per step, clamped to [0.5, 1]: shaping only orders successes',
    )
    .register('exact_answer', exactAnswerReward, "1 when the final answer equals the task's expected_answer (normalised), else 0")
    .register(
      'tool_efficiency',
      toolEfficiencyReward,
      "0 unless the task's expected_tool was called; then 1 / (1 + 0.5 x extra tool calls)",
    )
    .registerGroup(
      'code_tests',
      (group, context) => {
        const runCode = requireContext('code_tests', context, 'runCode');
        return group.map((trajectory) => {
          try {
            return codeTestsReward(trajectory, runCode);
          } catch (error) {
            return new RewardFailure((error as Error).message);
          }
        });
      },
      "fraction of the task's test cases (expected_answer JSON) the JavaScript function in the final answer passes",
    )
    .registerGroup(
      'llm_judge',
      async (group, context) => {
        const judge = requireContext('llm_judge', context, 'judge');
        return (await Promise.all(group.map((trajectory) => judge.one(trajectory)))).map(verdictScore);
      },
      "an LLM judge scores each trajectory against the job's rubric (config.judge)",
    )
    .registerGroup(
      'ruler',
      async (group, context) => (await requireContext('ruler', context, 'judge').group(group)).map(verdictScore),
      "an LLM judge scores the query's whole group at once, each trajectory relative to the others (OpenPipe's RULER)",
    )
    .setDefault('llm', DEFAULT_REWARD_STRATEGY)
    .setDefault('http', DEFAULT_REWARD_STRATEGY);
}
