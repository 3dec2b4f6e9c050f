import { z } from 'zod';
import type { Task, TrainingJobInput } from './config';
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
  })
  .strict();
export type EvaluationEpisode = z.infer<typeof EvaluationEpisodeSchema>;

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

export const EVALUATION_KINDS = ['scheduled', 'on_demand'] as const;

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
    welch: WelchResultSchema,
    /** The significance level the verdict uses (two-sided). */
    alpha: z.number(),
    /** The trained policy's mean reward is higher and p < alpha. */
    significant_improvement: z.boolean(),
    cost_usd: z.number().min(0),
  })
  .strict();
export type EvaluationSummary = z.infer<typeof EvaluationSummarySchema>;

/**
 * Indices of the queries held out for evaluation: round(count * fraction), at least one, and
 * at least one left to train on; none when there is a single query. Chosen by a seeded shuffle,
 * so the same seed always holds out the same queries (across runs, resumes and replays).
 */
export function heldOutIndices(count: number, fraction: number, seed: number): number[] {
  if (!(Number.isInteger(count) && count >= 0)) throw new Error(`heldOutIndices: count must be a non-negative integer, got ${count}`);
  if (!(fraction > 0 && fraction < 1)) throw new Error(`heldOutIndices: fraction must be in (0, 1), got ${fraction}`);
  if (count < 2) return [];
  const size = Math.min(count - 1, Math.max(1, Math.round(count * fraction)));
  const random = seededRandom(`held-out:${seed}`);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.slice(0, size).sort((a, b) => a - b);
}

export interface EvaluationSplit {
  /** Indices into `training_queries` that training may use. */
  trainingIndices: number[];
  /** The evaluation queries: the explicit `evaluation_queries`, else the held-out part. */
  heldOut: Task[];
}

/** Explicit evaluation queries leave every training query for training; else hold some out. */
export function evaluationSplit(input: Pick<TrainingJobInput, 'training_queries' | 'evaluation_queries' | 'config'>): EvaluationSplit {
  const all = input.training_queries.map((_, i) => i);
  if (input.evaluation_queries.length > 0) return { trainingIndices: all, heldOut: input.evaluation_queries };
  const held = new Set(heldOutIndices(input.training_queries.length, input.config.eval_fraction, input.config.seed));
  return {
    trainingIndices: all.filter((i) => !held.has(i)),
    heldOut: input.training_queries.filter((_, i) => held.has(i)),
  };
}

/** Evaluations run every `eval_interval` iterations and after the last one. */
export function evaluationDue(iteration: number, config: { eval_interval: number; iterations: number }): boolean {
  return iteration % config.eval_interval === 0 || iteration === config.iterations;
}
