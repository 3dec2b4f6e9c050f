/**
 * FLOW-004 / FLOW-017, the reward engine's activity: scores a finished group of trajectories
 * with the job's reward strategy (a name in the reward registry, or the registry's default for
 * the job's agent type). Every value is validated to [0, 1] by the registry; a trajectory
 * whose reward failed validation is marked on its row (`reward_error`) and left out of the
 * group's advantages; the job goes on. Judges call their model through the budget guard, and
 * what they spent comes back as `cost_usd` for the job's spend.
 */
import { isDeepStrictEqual } from 'node:util';
import vm from 'node:vm';
import { ApplicationFailure } from '@temporalio/common';
import type { AgentType } from '../training/task';
import type { TrajectoryStep } from '../training/trajectory';
import { countInvalidOutputs, type InvalidOutputCounts } from '../training/iterationMetrics';
import {
  DEFAULT_REWARD_STRATEGY,
  RewardContractError,
  RewardRegistry,
  UnknownRewardError,
  type CodeRunner,
  type CodeTestsSpec,
  type RewardContext,
  type RewardInput,
  type RewardTask,
} from '../training/rewards';
import { allowanceOf, type GuardedChatFactory } from './budgetGuard';
import type { TrajectoryRepository, TrajectoryRow } from '../adapters/db';
import { LlmJudge } from './llm/judge';
import type { ModelPrices } from '../adapters/llm/pricing';

export interface RewardGroupInput {
  trajectory_ids: string[];
  /** The job's `config.reward_strategy`; absent, the registry's default for `agent_type`. */
  reward_strategy?: string;
  /** The job's `agent.type`; absent (histories from before it existed), 'llm'. */
  agent_type?: AgentType;
  /** The query the group answered: rewards may compare with its expected answer or tool. */
  task?: RewardTask;
  /** The judge of 'llm_judge' and 'ruler': its model and rubric (absent, the built-in one). */
  judge?: { model: string; rubric?: string };
  max_tokens?: number;
  seed?: number;
  /** USD the judge may spend in this activity; absent, no cap. */
  allowance_usd?: number | null;
  prices?: ModelPrices;
}

export interface ScoredGroup {
  /** The strategy that scored the group (the job's, or its agent type's default). */
  reward_strategy: string;
  /**
   * Validated rewards; 0 for a trajectory whose reward failed (it counts as 0 in the
   * iteration's mean reward only: its row keeps reward null and gets advantage 0).
   */
  rewards: number[];
  /** Why each trajectory could not be scored (also on its row), or null. */
  reward_errors: (string | null)[];
  successes: boolean[];
  step_counts: number[];
  log_probs: (number | null)[];
  /** The group's agent steps that were invalid model outputs, by kind (issue 13). */
  invalid_outputs?: InvalidOutputCounts;
  /** What the judge's LLM calls cost (0 for rewards that call no model). */
  cost_usd: number;
}

/** How long a candidate function may run on all of a task's test cases together. */
export const CODE_TESTS_TIMEOUT_MS = 1_000;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]{0,99}$/;

/**
 * Runs untrusted candidate code for the `code_tests` reward in a fresh node:vm context with
 * no globals of ours (no require, process or module), no eval/new Function inside it, and a
 * time limit on everything it runs, the calls included. Only JSON crosses the boundary. A vm
 * context is not a hard security boundary (node's own docs say so): run workers that score
 * code from unknown sources in a container with no credentials.
 */
export const runCodeTests: CodeRunner = (source: string, spec: CodeTestsSpec): boolean[] => {
  const failedAll = () => spec.cases.map(() => false);
  if (!IDENTIFIER.test(spec.function)) return failedAll();
  const context = vm.createContext(Object.create(null), {
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: 'afterEvaluate',
  });
  const argsJson = JSON.stringify(JSON.stringify(spec.cases.map((c) => c.args)));
  const program = `${source}
;(() => {
  const candidate = typeof ${spec.function} === 'function' ? ${spec.function} : null;
  return JSON.stringify(JSON.parse(${argsJson}).map((args) => {
    if (!candidate) return { ok: false };
    try { return { ok: true, value: candidate(...args) }; } catch { return { ok: false }; }
  }));
})()`;
  let output: unknown;
  try {
    output = vm.runInContext(program, context, { timeout: CODE_TESTS_TIMEOUT_MS, filename: 'candidate.js' });
  } catch {
    // A syntax error, a throw at the top level or the time limit: no test passes.
    return failedAll();
  }
  if (typeof output !== 'string') return failedAll();
  const results = JSON.parse(output) as { ok: boolean; value?: unknown }[];
  return spec.cases.map((c, i) => results[i].ok && isDeepStrictEqual(results[i].value, JSON.parse(JSON.stringify(c.expected))));
};

function rewardInputOf(row: TrajectoryRow, task: RewardTask | undefined): RewardInput {
  return {
    success: row.success,
    verified: row.verified,
    error: row.error,
    steps: row.steps as unknown as TrajectoryStep[],
    final_answer: row.finalAnswer,
    task,
  };
}

export function createRewardActivities(deps: { rewards: RewardRegistry; trajectories: TrajectoryRepository; chats?: GuardedChatFactory }) {
  return {
    async rewardGroup(input: RewardGroupInput): Promise<ScoredGroup> {
      let strategy: string;
      try {
        strategy = deps.rewards.resolve(input.reward_strategy, input.agent_type ?? 'llm');
      } catch (error) {
        const names = deps.rewards.names().join(', ');
        throw ApplicationFailure.nonRetryable(
          `reward_strategy ${JSON.stringify(input.reward_strategy)}: ${(error as Error).message} (registered: ${names})`,
          'UnknownRewardStrategy',
        );
      }
      const rows = await loadInOrder(deps.trajectories, input.trajectory_ids);
      const chat = deps.chats && input.judge ? deps.chats.open({ allowanceUsd: allowanceOf(input), prices: input.prices }) : null;
      const context: RewardContext = { runCode: runCodeTests };
      if (chat && input.judge) {
        context.judge = new LlmJudge(chat, { model: input.judge.model, rubric: input.judge.rubric, max_tokens: input.max_tokens ?? 512, seed: input.seed });
      }
      let outcomes;
      try {
        outcomes = await deps.rewards.scoreGroup(strategy, rows.map((row) => rewardInputOf(row, input.task)), context);
      } catch (error) {
        if (error instanceof RewardContractError || error instanceof UnknownRewardError) {
          throw ApplicationFailure.nonRetryable(error.message, error.name);
        }
        throw error;
      }
      const rewardErrors = outcomes.map((outcome) => outcome.error);
      // A retry may score differently (a judge): the rows say what this attempt found.
      const changed = rows.flatMap((row, i) => (row.rewardError === rewardErrors[i] ? [] : [{ id: row.id, rewardError: rewardErrors[i] }]));
      if (changed.length > 0) await deps.trajectories.markRewardErrors(changed);
      return {
        reward_strategy: strategy,
        rewards: outcomes.map((outcome) => outcome.reward ?? 0),
        reward_errors: rewardErrors,
        successes: rows.map((row) => row.success),
        step_counts: rows.map((row) => (row.steps as unknown[]).length),
        log_probs: rows.map((row) => row.logProb),
        invalid_outputs: countInvalidOutputs(rows.flatMap((row) => (row.steps as { error?: string | null }[]).map((step) => step.error))),
        cost_usd: chat?.spentUsd ?? 0,
      };
    },
  };
}

/** Rows in the order of `ids`; a missing row is a bug upstream, so it fails loudly. */
export async function loadInOrder(trajectories: TrajectoryRepository, ids: string[]): Promise<TrajectoryRow[]> {
  const rows = await trajectories.findByIds(ids);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => {
    const row = byId.get(id);
    if (!row) throw ApplicationFailure.nonRetryable(`trajectory ${id} is not in the database`, 'MissingTrajectory');
    return row;
  });
}

/** The part of the GRPO step's input that marked trajectories concern. */
interface AdvantagesInput {
  trajectory_ids: string[];
  rewards: number[];
  step_counts: number[];
}

/**
 * Wraps the GRPO step (activities/grpo.ts) so trajectories whose reward failed (the reward
 * step's `reward_errors`) are left out: the group's advantages are computed over the validly
 * scored ones only, and a marked one is stored with reward null and advantage 0 (so the
 * policy update neither learns from it nor against it).
 */
export function excludingMarkedTrajectories<I extends AdvantagesInput, A extends object>(
  activities: A & { computeGroupAdvantages: (input: I) => Promise<{ advantages: number[] }> },
  trajectories: TrajectoryRepository,
): Omit<A, 'computeGroupAdvantages'> & { computeGroupAdvantages(input: I & { reward_errors?: (string | null)[] }): Promise<{ advantages: number[] }> } {
  const inner = activities.computeGroupAdvantages;
  return {
    ...activities,
    async computeGroupAdvantages(input: I & { reward_errors?: (string | null)[] }): Promise<{ advantages: number[] }> {
      const { reward_errors: errors, ...rest } = input;
      const kept = input.trajectory_ids.flatMap((_, i) => (errors?.[i] ? [] : [i]));
      if (kept.length === input.trajectory_ids.length) return inner(rest as unknown as I);
      const pick = <T>(xs: T[]) => kept.map((i) => xs[i]);
      const valid = kept.length > 0
        ? (await inner({ ...rest, trajectory_ids: pick(input.trajectory_ids), rewards: pick(input.rewards), step_counts: pick(input.step_counts) } as unknown as I)).advantages
        : [];
      const markedIds = input.trajectory_ids.filter((_, i) => !kept.includes(i));
      await trajectories.score(markedIds.map((id) => ({ id, reward: null, advantage: 0, stepAdvantages: null })));
      const advantages = input.trajectory_ids.map(() => 0);
      kept.forEach((index, j) => {
        advantages[index] = valid[j];
      });
      return { advantages };
    },
  };
}

/**
 * Rewards for held-out evaluation episodes (activities/evaluation.ts), which are scored one at a
 * time, synchronously and outside the training groups: the job's strategy when it scores a
 * trajectory alone; for a group or judge strategy (code_tests, llm_judge, ruler) the built-in
 * 'shaped', so evaluation makes no judge calls of its own. A value that fails validation has
 * no row to be marked on here, so it counts as 0 (the same trajectory in training is marked).
 */
export function evaluationRewardOf(registry: RewardRegistry, agentType: AgentType = 'llm') {
  return (strategy: string | undefined, episode: RewardInput): number => {
    const name = registry.resolve(strategy, agentType);
    const kind = registry.list().find((entry) => entry.name === name)!.kind;
    try {
      return registry.score(kind === 'trajectory' ? name : DEFAULT_REWARD_STRATEGY, episode);
    } catch {
      return 0;
    }
  };
}
