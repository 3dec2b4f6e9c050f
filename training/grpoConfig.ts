import { z } from 'zod';
import { ModelPriceSchema } from './budget';
import { PrioritySchema } from './priority';

/**
 * A job's GRPO config: group and batch sizes, iterations, the update's step size and clip, the
 * held-out evaluation, the budget, models and priority. Pure (zod only): it runs inside the
 * workflow sandbox too, so the workflow validates its own input with the schema the API uses.
 */

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
     * Either way only positive-advantage evidence may change a lesson. Contrastive is the default:
     * positive-only updates lock in whatever the policy already does (its group's winners mostly
     * follow the current lessons), so under shuffled advantages a run was called "improved" in
     * ~20% of runs against ~2% contrastive (tests/perf/learningBench.ts, the amendment).
     */
    policy_update: z.enum(POLICY_UPDATE_MODES).default('contrastive'),
    /**
     * Failures as evidence (issue 14 item 5): the updater is also shown, per kind of task, the tool
     * choices common to its negative-advantage trajectories and absent from its positive ones, and
     * may write "do not call" lessons from them (cited by those positive ones).
     */
    avoid_lessons: z.boolean().default(false),
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
    /**
     * Issue 16: the rendered policy (base prompt and lessons) never exceeds this many tokens of the
     * agent model's tokenizer (adapters/llm/tokenCounter.ts); the weakest lessons go first.
     */
    max_policy_tokens: z.number().int().min(16).max(200_000).default(2000),
    /**
     * Policy hygiene (issue 16 items 4-6): the updater proposes per group and one consolidation
     * per iteration merges the proposals (order-free); lessons keep provenance and helpful/harmful
     * counters, a lesson that keeps hurting is dropped, near-duplicates are merged and no update
     * may remove more than `max_update_removal_share` of the library's lesson tokens.
     */
    policy_hygiene: z.boolean().default(false),
    /** With policy_hygiene: lessons at least this similar (word-set Jaccard) are merged. */
    lesson_merge_similarity: z.number().gt(0).max(1).default(0.8),
    /** With policy_hygiene: the collapse guard's bound on one update's removal. */
    max_update_removal_share: z.number().gt(0).max(1).default(0.3),
    /**
     * With policy_hygiene, the cheap gate (issue 16 item 7): the updated policy runs `queries`
     * validation queries `samples` times each beside its parent, same seeds, and is kept only if
     * not worse. Absent: off (docs/performance: the learning benchmark measures whether it pays).
     */
    update_gate: z
      .object({ queries: positiveInt(64).default(4), samples: positiveInt(16).default(2) })
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
