import { z } from 'zod';
import { ModelPriceSchema } from './budget';
import { EvaluationEpisodeSchema, EvaluationSummarySchema } from './evaluation';
import { IterationMetricsSchema } from './iterationMetrics';
import { PolicySchema } from './policy';

/**
 * What a workflow run hands to the next one when its history grows long (continue-as-new), with
 * the policy and the last iteration's metrics in their own schemas.
 */
export const JobCarryOverSchema = z
  .object({
    iteration: z.number().int().min(0),
    policy: PolicySchema,
    spend_usd: z.number().min(0),
    budget_usd: z.number().positive(),
    trajectories: z.number().int().min(0),
    success_rates: z.array(z.number()),
    last_metrics: IterationMetricsSchema.nullable(),
    alerts_raised: z.array(z.number()),
    paused: z.boolean(),
    prices: z.object({ agent: ModelPriceSchema, optimizer: ModelPriceSchema }).strict().nullable(),
    /** The untrained policy's held-out episodes (run once per run, then compared against). */
    baseline_episodes: z.array(EvaluationEpisodeSchema).nullable().optional(),
    evaluation: EvaluationSummarySchema.nullable().optional(),
    /** What the costliest trajectory so far was billed: an evaluation's estimate under call admission; absent in older carry-overs. */
    costliest_trajectory_usd: z.number().min(0).optional(),
  })
  .strict();
export type JobCarryOver = z.infer<typeof JobCarryOverSchema>;
