import { z } from 'zod';
import { ModelPriceSchema } from './budget';
import { EvaluationEpisodeSchema, EvaluationSummarySchema } from './evaluation';

/**
 * One zod schema per concept; every type here is `z.infer` of its schema. These are pure and
 * run inside the workflow sandbox too, so the workflow validates its own input with the very
 * schema the API uses.
 */

export const PRIORITIES = ['P0', 'P1', 'P2'] as const;
export const PrioritySchema = z.enum(PRIORITIES);
export type Priority = z.infer<typeof PrioritySchema>;

/**
 * Learning controls for experiments: `no_policy_update` never changes the policy;
 * `shuffled_advantages` shuffles advantages within each group before the update. Neither should
 * show a significant held-out improvement; that is how the evaluation is shown to discriminate.
 */
export const LEARNING_CONTROLS = ['none', 'no_policy_update', 'shuffled_advantages'] as const;
export type LearningControl = (typeof LEARNING_CONTROLS)[number];

export const POLICY_UPDATE_MODES = ['positive_only', 'contrastive'] as const;
export type PolicyUpdateMode = (typeof POLICY_UPDATE_MODES)[number];

const positiveInt = (max: number) => z.number().int().min(1).max(max);

export const GRPOConfigSchema = z
  .object({
    /** Trajectories per query (the GRPO group). */
    group_size: z.number().int().min(2).max(64).default(8),
    /** Trajectory activities in flight per job. */
    max_parallel: positiveInt(64).default(8),
    /** Training queries per iteration. */
    batch_size: positiveInt(256).default(4),
    iterations: positiveInt(100_000).default(10),
    /** For a text policy: lesson-weight change per unit of advantage. */
    learning_rate: z.number().gt(0).max(1).default(0.5),
    /** Largest change of one lesson's weight in one update (the text policy's gradient clip). */
    clip: z.number().gt(0).max(1).default(0.2),
    max_lessons: positiveInt(200).default(20),
    checkpoint_interval: positiveInt(100_000).default(10),
    eval_interval: positiveInt(100_000).default(10),
    budget_usd: z.number().positive().max(1_000_000).default(10),
    gamma: z.number().gt(0).max(1).default(0.99),
    credit_assignment: z.boolean().default(false),
    /**
     * Held-out evaluation (FLOW-010). false: every query is trained on and no evaluation runs
     * (for benchmarks and tiny task sets); training.evaluate then needs evaluation_queries.
     */
    evaluate: z.boolean().default(true),
    /**
     * Fraction of the training queries held out for validation when no evaluation_queries are
     * given (by seed): scheduled evaluations run on it and score checkpoints ("best").
     */
    eval_fraction: z.number().gt(0).lt(1).default(0.2),
    /**
     * Fraction held out as the test split (by seed, after validation; 0: none): evaluated at the
     * end and on demand, it only reports, so the reported result is not the one that picked "best".
     * With evaluation_queries, they are divided between validation and test in this ratio.
     */
    test_fraction: z.number().min(0).lt(1).default(0.2),
    /** Runs per held-out query and policy in one evaluation. */
    eval_samples: positiveInt(64).default(4),
    control: z.enum(LEARNING_CONTROLS).default('none'),
    /**
     * What the policy updater is shown: `positive_only`, the trajectories that beat their group;
     * `contrastive` (as Training-Free GRPO), per group what the best did that the worst did not.
     * Either way only positive-advantage evidence may change a lesson.
     */
    policy_update: z.enum(POLICY_UPDATE_MODES).default('positive_only'),
    /**
     * A name in the reward registry (training/rewards.ts); absent, the registry's default for
     * the job's agent type ('outcome' for both).
     */
    reward_strategy: z.string().min(1).max(100).optional(),
    /** The LLM judge of the 'llm_judge' and 'ruler' reward strategies. */
    judge: z
      .object({
        /** The judge's model, as named to Portkey; absent, `optimizer_model`. */
        model: z.string().min(1).max(200).optional(),
        /** What a good trajectory looks like; absent, the built-in rubric (activities/prompts/judge.md). */
        rubric: z.string().min(1).max(10_000).optional(),
      })
      .strict()
      .optional(),
    priority: PrioritySchema.default('P1'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
    /** The agent's model, as named to Portkey. */
    model: z.string().min(1).max(200).default('flow-sim-1'),
    /** The model the policy updater distils lessons with. */
    optimizer_model: z.string().min(1).max(200).default('flow-sim-1'),
    max_steps: positiveInt(50).default(6),
    /** Every LLM call sets max_tokens (the budget reserves against it). */
    max_tokens: positiveInt(32_768).default(512),
    trajectory_timeout_seconds: z.number().positive().max(3600).default(60),
    /**
     * How long an activity that failed for lack of its infrastructure (the database or blob store
     * unreachable, a worker lost) is retried before the job fails. Agent and model errors are not
     * retried this way: they become failed trajectories.
     */
    infrastructure_retry_minutes: z.number().positive().max(24 * 60).default(30),
    /** USD per million tokens by model name; overrides the price table (needed for unlisted models). */
    prices: z
      .record(z.string().min(1).max(200), ModelPriceSchema)
      .refine((prices) => Object.keys(prices).length <= 20, 'at most 20 model prices')
      .optional(),
  })
  .strict();
export type GRPOConfig = z.infer<typeof GRPOConfigSchema>;
export type GRPOConfigInput = z.input<typeof GRPOConfigSchema>;

/** A training or evaluation query. `family` groups tasks that share hidden rules. */
export const TaskSchema = z
  .object({
    id: z.string().min(1).max(200),
    prompt: z.string().min(1).max(20_000),
    family: z.string().min(1).max(100).optional(),
    expected_answer: z.string().max(20_000).optional(),
    /** The tool a correct run calls, where the task defines one (evaluation's tool_accuracy). */
    expected_tool: z.string().min(1).max(100).optional(),
  })
  .strict();
export type Task = z.infer<typeof TaskSchema>;

/**
 * Which agent runs the trajectories. `llm`: the tool-using LLM agent in this worker (through
 * portkey-ai), in the job's `environment`. `http`: an external agent service that receives the
 * task and the current policy and answers with its trajectory (activities/agents/httpAgent.ts).
 */
export const AgentSpecSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('llm'),
      /**
       * How the agent calls tools: `native` (the provider's `tools`) or `schema` (a JSON schema in
       * `response_format` forces `{"tool", "arguments"}`, for models without native tool calls).
       * Absent: `schema` for local models (`local:*`), `native` for the rest.
       */
      tool_calls: z.enum(['native', 'schema']).optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('http'),
      // A plain pattern, not z.url(): this schema also runs in the workflow sandbox.
      url: z.string().max(2000).regex(/^https?:\/\/[^\s/?#]+[^\s]*$/, 'an http:// or https:// URL'),
      timeout_seconds: z.number().positive().max(3600).default(30),
      max_attempts: z.number().int().min(1).max(10).default(3),
      /**
       * Send the task's expected_answer and expected_tool to the service. Off by default: an agent
       * under training must not see the answer key; only a service that grades itself needs them.
       */
      expose_expected: z.boolean().default(false),
    })
    .strict(),
]);
export type AgentSpec = z.infer<typeof AgentSpecSchema>;
export type AgentType = AgentSpec['type'];


export const DEFAULT_BASE_PROMPT =
  'You are a careful assistant that solves tasks with the tools provided. Use a tool when it helps, then give the final answer.';

/**
 * What a workflow run hands to the next one when its history grows long (continue-as-new).
 * Policy and metrics are kept as validated-elsewhere JSON: they were produced by this code.
 */
export const JobCarryOverSchema = z
  .object({
    iteration: z.number().int().min(0),
    policy: z.record(z.string(), z.unknown()),
    spend_usd: z.number().min(0),
    budget_usd: z.number().positive(),
    trajectories: z.number().int().min(0),
    success_rates: z.array(z.number()),
    last_metrics: z.record(z.string(), z.unknown()).nullable(),
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

export const TokenUsageSchema = z.object({
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
});
export type TokenUsage = z.infer<typeof TokenUsageSchema>;

export const ToolCallSchema = z.object({
  id: z.string(),
  name: z.string(),
  arguments: z.record(z.string(), z.unknown()),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

/** One step of an agent run: what it saw, what it did, what came back. */
export const TrajectoryStepSchema = z.object({
  index: z.number().int().min(0),
  state: z.string(),
  action: z.object({
    type: z.enum(['tool_call', 'final_answer']),
    content: z.string().nullable(),
  }),
  tool_calls: z.array(ToolCallSchema),
  result: z.string().nullable(),
  started_at: z.string(),
  ended_at: z.string(),
  usage: TokenUsageSchema,
  cost_usd: z.number().min(0),
  /** Log-probability of the step's action when the model returned log-probs, else null. */
  logprob: z.number().nullable(),
  error: z.string().nullable(),
});
export type TrajectoryStep = z.infer<typeof TrajectoryStepSchema>;

export const TrajectorySchema = z.object({
  job_id: z.string(),
  run: z.number().int().min(1),
  iteration: z.number().int().min(0),
  query_index: z.number().int().min(0),
  sample_index: z.number().int().min(0),
  query_id: z.string(),
  agent_id: z.string(),
  steps: z.array(TrajectoryStepSchema),
  final_answer: z.string().nullable(),
  success: z.boolean(),
  /** The run checked its answer with a verification tool before answering. */
  verified: z.boolean(),
  /** Why the run failed to finish (threw, timed out, ran out of steps), else null. */
  error: z.string().nullable(),
  usage: TokenUsageSchema,
  cost_usd: z.number().min(0),
  /** Sum of the steps' log-probs, or null when any step had none. */
  log_prob: z.number().nullable(),
  started_at: z.string(),
  ended_at: z.string(),
});
export type Trajectory = z.infer<typeof TrajectorySchema>;

/**
 * Names the offending field and value, so an API caller or a `temporal workflow start` user
 * sees what to fix: "config.group_size: Too small: expected number to be >=2 (got 1)".
 */
export function describeZodError(error: z.ZodError, input?: unknown): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length ? issue.path.join('.') : '(input)';
      const got = valueAt(input, issue.path);
      const shown = got === undefined ? '' : ` (got ${preview(got)})`;
      return `${path}: ${issue.message}${shown}`;
    })
    .join('; ');
}

/** The value's JSON, cut at 80 characters; a value too deep to serialise (stack overflow) is shown by its kind. */
function preview(value: unknown): string | undefined {
  try {
    return JSON.stringify(value)?.slice(0, 80);
  } catch {
    return Array.isArray(value) ? '[…]' : '{…}';
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value: unknown = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}
