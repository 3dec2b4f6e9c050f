import { z } from 'zod';
import { JobCarryOverSchema } from './carryOver';
import { GRPOConfigSchema } from './grpoConfig';
import { AgentSpecSchema, TaskSchema } from './task';
import { InitialPolicySchema } from './startingPolicy';

/**
 * The `trainingJob` workflow's input, which the API validates and stores and the workflow
 * validates again with this very schema (pure, sandbox-safe).
 */

const positiveInt = (max: number) => z.number().int().min(1).max(max);

export const DEFAULT_BASE_PROMPT =
  'You are a careful assistant that solves tasks with the tools provided. Use a tool when it helps, then give the final answer.';

/** The `trainingJob` workflow's input; the workflow id equals `job_id`. */
export const TrainingJobInputSchema = z
  .object({
    job_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'job_id: letters, digits, _ . : - (max 128)'),
    agent_id: z.string().min(1).max(200),
    tenant_id: z.string().min(1).max(200).default('default'),
    owner_id: z.string().min(1).max(200).default('anonymous'),
    /** A run is one training run of a job; resuming from a checkpoint starts the next run. */
    run: positiveInt(1_000_000).default(1),
    base_prompt: z.string().min(1).max(20_000).default(DEFAULT_BASE_PROMPT),
    /** `simulated`: the built-in environment with hidden rules; `tools`: real tools (calculator, allow-listed HTTP fetch). */
    environment: z.enum(['simulated', 'tools']).default('simulated'),
    agent: AgentSpecSchema.default({ type: 'llm' }),
    training_queries: z.array(TaskSchema).min(1).max(2000),
    evaluation_queries: z.array(TaskSchema).max(2000).default([]),
    config: GRPOConfigSchema.default(() => GRPOConfigSchema.parse({})),
    /** `base: "active"`: the agent's active policy version the job starts from (training/startingPolicy.ts). */
    initial_policy: InitialPolicySchema.optional(),
    /** A resumed run starts from this checkpoint of an earlier run of the same job. */
    resume_from: z.object({ run: positiveInt(1_000_000), iteration: z.number().int().min(0) }).strict().optional(),
    /** Spend of the job's earlier runs, which a resumed run keeps counting against the budget. */
    prior_spend_usd: z.number().min(0).default(0),
    /** The global kill switch was on when the job started: it waits until it is lifted. */
    start_paused: z.boolean().default(false),
    /** State carried across continue-as-new: the job goes on exactly where it was. */
    carry_over: JobCarryOverSchema.optional(),
  })
  .strict();
export type TrainingJobInput = z.infer<typeof TrainingJobInputSchema>;

export type TrainingJobRequest = z.input<typeof TrainingJobInputSchema>;
