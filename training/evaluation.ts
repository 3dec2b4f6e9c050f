import { z } from 'zod';
import type { Task } from './task';
import type { GRPOConfig } from './grpoConfig';
import { seededRandom } from './statistics';

/**
 * FLOW-010, the held-out split and the shape of an evaluation. Pure and sandbox-safe (zod and
 * seeded randomness only): the workflow imports it to choose which queries it never trains on.
 * The statistics (confidence intervals, Welch's t-test) are in evaluationStatistics.ts, which
 * only activities import.
 */

/** One run of one policy on one held-out query. */
export const EvaluationEpisodeSchema = z
  .object({
    reward: z.number().min(0).max(1),
    success: z.boolean(),
    steps: z.number().int().min(0),
    /** Tool calls that count for tool accuracy (the task names its correct tool), else 0. */
    scored_tool_calls: z.number().int().min(0),
    correct_tool_calls: z.number().int().min(0),
    error: z.string().nullable(),
    /**
     * The query the episode ran (its index among the evaluated queries) and the query's family:
     * episodes of one query are not independent, so the verdict compares per-query means.
     * Absent in episodes recorded before they were kept (then the order gives the query).
     */
    query_index: z.number().int().min(0).optional(),
    family: z.string().optional(),
  })
  .strict();
export type EvaluationEpisode = z.infer<typeof EvaluationEpisodeSchema>;

/** A task's family: its `family`, else its `[family]` tag, else "untagged". */
export function taskFamily(task: Pick<Task, 'family' | 'prompt'>): string {
  return task.family ?? /^\s*\[([a-z][a-z0-9_-]*)\]/i.exec(task.prompt)?.[1] ?? 'untagged';
}

/** A mean with its 95% confidence interval; the bounds are null below two observations. */
export const EstimateSchema = z
  .object({ value: z.number(), ci_low: z.number().nullable(), ci_high: z.number().nullable(), n: z.number().int().min(0) })
  .strict();
export type Estimate = z.infer<typeof EstimateSchema>;

export const EvaluationMetricsSchema = z
  .object({
    success_rate: EstimateSchema,
    avg_reward: EstimateSchema,
    avg_steps: EstimateSchema,
    /** Correct tool calls / tool calls, over tasks that define their correct tool; null if none did. */
    tool_accuracy: EstimateSchema.nullable(),
    episodes: z.number().int().min(0),
    /** Episodes that ended in an error (timed out, agent failure, budget allowance). */
    failed_episodes: z.number().int().min(0),
  })
  .strict();
export type EvaluationMetrics = z.infer<typeof EvaluationMetricsSchema>;

/** Welch's two-sample t-test of per-episode reward, trained policy against the baseline. */
export const WelchResultSchema = z
  .object({
    /** null when both samples are constant and differ (the statistic is infinite). */
    t: z.number().nullable(),
    df: z.number().nullable(),
    /** Two-sided p-value. */
    p: z.number().min(0).max(1),
    mean_difference: z.number(),
  })
  .strict();
export type WelchResult = z.infer<typeof WelchResultSchema>;

/**
 * The run-level comparison of one metric, with the query as the unit: per query, the trained
 * policy's mean minus the baseline's over the same seeds; then a paired t-test of those
 * differences (equivalently a one-sample t-test of them against 0) and a percentile bootstrap
 * over queries of their mean. Episodes of one query share the query's difficulty, so they are
 * not independent observations; queries are.
 */
export const QueryPairedTestSchema = z
  .object({
    metric: z.enum(['success', 'reward']),
    /** Queries compared (the unit of the test). */
    queries: z.number().int().min(0),
    /** Mean over queries of (trained − baseline) per-query mean. */
    mean_difference: z.number(),
    /** null when the test is undefined: under two queries, or every difference equal and non-zero. */
    t: z.number().nullable(),
    df: z.number().nullable(),
    /** Two-sided p of the paired t-test; null under two queries. */
    p: z.number().min(0).max(1).nullable(),
    /** Percentile bootstrap 95% interval of mean_difference, resampling queries; null under two queries. */
    bootstrap: z
      .object({ ci_low: z.number(), ci_high: z.number(), resamples: z.number().int().min(1), seed: z.number().int() })
      .strict()
      .nullable(),
  })
  .strict();
export type QueryPairedTest = z.infer<typeof QueryPairedTestSchema>;

/** Success by family: what improved where. */
export const FamilyBreakdownSchema = z
  .object({
    family: z.string(),
    queries: z.number().int().min(0),
    episodes: z.number().int().min(0),
    current_success_rate: z.number().min(0).max(1),
    baseline_success_rate: z.number().min(0).max(1),
    /** Mean over the family's queries of (trained − baseline) success rate. */
    difference: z.number(),
  })
  .strict();
export type FamilyBreakdown = z.infer<typeof FamilyBreakdownSchema>;

/** Which queries an evaluation ran on: `validation` scores checkpoints, `test` only reports. */
export const EVALUATION_SPLITS = ['validation', 'test'] as const;
export type EvaluationSplitName = (typeof EVALUATION_SPLITS)[number];

/** `scheduled`: validation split during training; `test`: the test split at the end; `on_demand`: training.evaluate. */
export const EVALUATION_KINDS = ['scheduled', 'on_demand', 'test'] as const;

export const EvaluationSummarySchema = z
  .object({
    job_id: z.string(),
    run: z.number().int().min(1),
    /** The iteration of the policy evaluated (0 = the untrained policy). */
    iteration: z.number().int().min(0),
    kind: z.enum(EVALUATION_KINDS),
    held_out_queries: z.number().int().min(0),
    samples_per_query: z.number().int().min(1),
    current: EvaluationMetricsSchema,
    baseline: EvaluationMetricsSchema,
    /** Per-episode Welch's t-test of rewards: shown beside the verdict, never instead (episodes of a query are not independent). */
    welch: WelchResultSchema,
    /** The significance level the verdict uses (two-sided). */
    alpha: z.number(),
    /**
     * The verdict, on task success with queries as the unit: success_test's mean difference is
     * positive, its p < alpha and its bootstrap interval lies above 0. (Evaluations recorded
     * before success_test existed: Welch on rewards.)
     */
    significant_improvement: z.boolean(),
    cost_usd: z.number().min(0),
    /** Absent on evaluations recorded before it was kept: then `validation`. */
    split: z.enum(EVALUATION_SPLITS).optional(),
    /** The primary, cluster-aware test: per-query success rates, paired. */
    success_test: QueryPairedTestSchema.optional(),
    /** The same test on the job's reward, beside it. */
    reward_test: QueryPairedTestSchema.optional(),
    families: z.array(FamilyBreakdownSchema).optional(),
    /** What a reader should not miss, e.g. the reward improved while success did not. */
    warnings: z.array(z.string()).optional(),
  })
  .strict();
export type EvaluationSummary = z.infer<typeof EvaluationSummarySchema>;

/**
 * Indices of the queries held out for evaluation: round(count * fraction), at least one, and
 * at least one left to train on; none when there is a single query. Chosen by a seeded shuffle,
 * so the same seed always holds out the same queries (across runs, resumes and replays).
 */
export function heldOutIndices(count: number, fraction: number, seed: number): number[] {
  return splitIndices(count, fraction, 0, seed).validation;
}

/**
 * The validation and test indices among `count` training queries: one seeded shuffle; the first
 * round(count * validationFraction) (at least one) validate, the next round(count * testFraction)
 * (at least one when the fraction is above 0) test, and at least one query is left to train on
 * (the test split shrinks first). The validation part is what heldOutIndices always held out.
 */
export function splitIndices(count: number, validationFraction: number, testFraction: number, seed: number): { validation: number[]; test: number[] } {
  if (!(Number.isInteger(count) && count >= 0)) throw new Error(`heldOutIndices: count must be a non-negative integer, got ${count}`);
  if (!(validationFraction > 0 && validationFraction < 1)) throw new Error(`heldOutIndices: fraction must be in (0, 1), got ${validationFraction}`);
  if (!(testFraction >= 0 && testFraction < 1)) throw new Error(`splitIndices: test fraction must be in [0, 1), got ${testFraction}`);
  if (count < 2) return { validation: [], test: [] };
  const validationSize = Math.min(count - 1, Math.max(1, Math.round(count * validationFraction)));
  const testSize = testFraction === 0 ? 0 : Math.min(count - 1 - validationSize, Math.max(1, Math.round(count * testFraction)));
  const random = seededRandom(`held-out:${seed}`);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  return { validation: sorted(order.slice(0, validationSize)), test: sorted(order.slice(validationSize, validationSize + testSize)) };
}

export interface EvaluationSplit {
  /** Indices into `training_queries` that training may use. */
  trainingIndices: number[];
  /** The validation queries: they score checkpoints (which one is "best"). */
  heldOut: Task[];
  /** The test queries: evaluated at the end and on demand, they only report; never train, never select. */
  test: Task[];
}

/**
 * Training, validation and test queries. Without `evaluation_queries`, validation and test are
 * held out of the training queries (eval_fraction, test_fraction, by seed). With them, every
 * training query trains and the evaluation queries are divided between validation and test in
 * the ratio eval_fraction : test_fraction (by seed, at least one validation query).
 * `withTest: false` is the two-way split of workflows started before the test split existed.
 */
/** What evaluationSplit reads of a job's input (TrainingJobInput has it). */
export interface EvaluationSplitInput {
  training_queries: Task[];
  evaluation_queries: Task[];
  config: Pick<GRPOConfig, 'eval_fraction' | 'test_fraction' | 'seed'>;
}

export function evaluationSplit(input: EvaluationSplitInput, options: { withTest?: boolean } = {}): EvaluationSplit {
  const { config } = input;
  const testFraction = options.withTest === false ? 0 : config.test_fraction;
  const all = input.training_queries.map((_, i) => i);
  if (input.evaluation_queries.length > 0) {
    const queries = input.evaluation_queries;
    const share = testFraction / (config.eval_fraction + testFraction);
    const testSize = queries.length < 2 || testFraction === 0 ? 0 : Math.min(queries.length - 1, Math.max(1, Math.round(queries.length * share)));
    const random = seededRandom(`evaluation-queries:${config.seed}`);
    const order = queries.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const test = new Set(order.slice(0, testSize));
    return { trainingIndices: all, heldOut: queries.filter((_, i) => !test.has(i)), test: queries.filter((_, i) => test.has(i)) };
  }
  const { validation, test } = splitIndices(input.training_queries.length, config.eval_fraction, testFraction, config.seed);
  const held = new Set([...validation, ...test]);
  return {
    trainingIndices: all.filter((i) => !held.has(i)),
    heldOut: validation.map((i) => input.training_queries[i]),
    test: test.map((i) => input.training_queries[i]),
  };
}

/** Evaluations run every `eval_interval` iterations and after the last one. */
export function evaluationDue(iteration: number, config: { eval_interval: number; iterations: number }): boolean {
  return iteration % config.eval_interval === 0 || iteration === config.iterations;
}
