/**
 * The facade's contract: one zod schema for the params and one for the result of every method.
 * The server validates with them, the typed client's types are inferred from them, and
 * `rpc.discover` turns them into the OpenRPC document, so the docs cannot drift from the code.
 */
import { z } from 'zod';
import { CheckpointNameSchema, CheckpointPositionSchema } from '../training/checkpoints';
import { EvaluationSummarySchema } from '../training/evaluation';
import { PrioritySchema } from '../training/priority';
import { GRPOConfigSchema } from '../training/grpoConfig';
import { AgentSpecSchema, TaskSchema } from '../training/task';
import { TokenUsageSchema, TrajectorySchema } from '../training/trajectory';
import { LessonSchema } from '../training/policy';
import { IterationMetricsSchema } from '../training/iterationMetrics';
import { JobStatusReportSchema, JobStatusSchema } from '../training/jobStatus';
import { MAX_BUDGET_USD } from '../training/budget';
import { EVALUATION_TASK_SOURCES, MAX_TASK_BYTES, TASK_SET_NAMES, TRAINING_TASK_SOURCES } from './taskSets';
import { createDefaultRewardRegistry } from '../training/rewards';

/** The reward strategies a job may name (the default registry's). */
const REWARD_STRATEGIES = createDefaultRewardRegistry().names();

/** The most trajectories one `training.export_trajectories` call returns. */
export const EXPORT_HARD_CAP = 10_000;

const JobIdSchema = z.string().min(1).max(128).describe('The job id (also its Temporal workflow id).');
/** Runs, iterations and offsets are PostgreSQL `integer` (int4) columns: nothing above 2^31 − 1 can match. */
export const INT4_MAX = 2 ** 31 - 1;
const int4 = (min: number) => z.number().int().min(min).max(INT4_MAX);
const Timestamp = z.string().describe('ISO 8601 timestamp');
/**
 * A date-time a client filters by: ISO 8601 with an offset, in years 1-9999 once in UTC (what
 * PostgreSQL's timestamptz and the database client both take; year 0 or 10000 failed inside them).
 */
const FilterDateTime = z.iso
  .datetime({ offset: true })
  .refine((value) => {
    const year = new Date(value).getUTCFullYear();
    return year >= 1 && year <= 9999;
  }, 'a date-time from 0001-01-01 to 9999-12-31 in UTC')
  .describe('ISO 8601 date-time with an offset, from 0001-01-01 to 9999-12-31 in UTC');

/**
 * An agent id as every method and GET /agents/{agent_id}/policy take it: a path segment too, so no
 * control characters (an HTTP client cannot send them in a URL), and not "." or ".." (URL
 * parsers, fetch and browsers among them, resolve those segments away, even percent-encoded).
 */
export const AGENT_ID_RULE = '1-200 characters, no control characters, not "." or ".."';
/** The same rule as one test, for the policy route's fast path (no zod per poll). */
export const AGENT_ID_PATTERN = /^(?!\.\.?$)[^\u0000-\u001f\u007f]{1,200}$/;
export const AgentIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^(?!\.\.?$)[^\u0000-\u001f\u007f]*$/, 'no control characters, and not "." or ".." (a URL path cannot carry them)')
  .describe(`The agent's id (the agent_id its jobs train): ${AGENT_ID_RULE}.`);

// ---- training.start_grpo
export const StartGrpoParamsSchema = z
  .object({
    agent_id: AgentIdSchema,
    training_queries: z.array(TaskSchema).min(1).max(2000).optional().describe('Inline training queries; or name a task_set.'),
    task_set: z.enum(TASK_SET_NAMES).optional().describe('A named built-in task set instead of inline queries.'),
    training_queries_jsonl: z
      .string()
      .max(MAX_TASK_BYTES)
      .optional()
      .describe('Training queries as JSONL text, one task object a line (what `flow start --tasks file.jsonl` sends).'),
    task_file: z
      .string()
      .min(1)
      .max(1000)
      .optional()
      .describe("A JSONL file of training queries in the API server's task directory (FLOW_TASK_DIR, default ./tasks)."),
    evaluation_queries: z.array(TaskSchema).max(2000).optional(),
    evaluation_queries_jsonl: z.string().max(MAX_TASK_BYTES).optional().describe('Held-out evaluation queries as JSONL text.'),
    evaluation_task_file: z.string().min(1).max(1000).optional().describe("A JSONL file of evaluation queries in the API server's task directory."),
    environment: z.enum(['simulated', 'tools']).optional().describe('`simulated` (default): the built-in environment; `tools`: calculator and allow-listed HTTP fetch.'),
    agent: AgentSpecSchema.optional().describe('`{type: "llm"}` (default) or `{type: "http", url, timeout_seconds, max_attempts, expose_expected}`: an external agent service (it is sent `expected_answer`/`expected_tool` only with `expose_expected: true`).'),
    base_prompt: z.string().min(1).max(20_000).optional(),
    base: z
      .literal('active')
      .optional()
      .describe("`active`: start from the agent's active policy version (agents.promote_policy), resolved now; its held-out evaluations compare against that version. Not with base_prompt."),
    config: GRPOConfigSchema.optional(),
    idempotency_key: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'idempotency_key: 1-100 letters, digits, _ . : -')
      .optional()
      .describe('Retries (even concurrent ones) with the same key start one job and get its id back.'),
    tenant_id: z.string().min(1).max(200).optional().describe("Admin tokens only: start the job for this tenant instead of the token's."),
  })
  .strict()
  .refine((p) => TRAINING_TASK_SOURCES.filter((key) => p[key] !== undefined).length === 1, {
    message: `give exactly one of ${TRAINING_TASK_SOURCES.join(', ')}`,
    path: ['training_queries'],
  })
  .refine((p) => p.base === undefined || p.base_prompt === undefined, {
    message: 'give base_prompt or base: "active", not both (the active version brings its own base prompt)',
    path: ['base'],
  })
  .refine((p) => EVALUATION_TASK_SOURCES.filter((key) => p[key] !== undefined).length <= 1, {
    message: `give at most one of ${EVALUATION_TASK_SOURCES.join(', ')}`,
    path: ['evaluation_queries'],
  })
  // Refused at the start, not after the first group has run (training/rewards.ts).
  .refine((p) => p.config?.reward_strategy === undefined || REWARD_STRATEGIES.includes(p.config.reward_strategy), {
    message: `unknown reward strategy; registered: ${REWARD_STRATEGIES.join(', ')}`,
    path: ['config', 'reward_strategy'],
  });
export const StartGrpoResultSchema = z.object({
  job_id: JobIdSchema,
  status: JobStatusSchema,
  /** False when an idempotency key matched a job started earlier. */
  created: z.boolean(),
});

// ---- training.get_status
export const GetStatusParamsSchema = z.object({ job_id: JobIdSchema }).strict();
export const CheckpointSummarySchema = z.object({
  run: z.number().int(),
  iteration: z.number().int(),
  score: z.number().nullable(),
  created_at: Timestamp,
});
export const BudgetAlertSchema = z.object({
  threshold: z.number().describe('The fraction of the budget crossed (0.75, 0.9).'),
  spend_usd: z.number(),
  budget_usd: z.number(),
  at: Timestamp,
});
/**
 * training/jobStatus.ts's status report on the wire, with what the `training_jobs` row adds. The
 * shared fields are taken from the report's shape one by one, in the documented order.
 */
const report = JobStatusReportSchema.shape;
export const JobStatusResultSchema = z.object({
  job_id: JobIdSchema,
  agent_id: report.agent_id,
  tenant_id: z.string(),
  owner_id: z.string(),
  status: report.status,
  priority: PrioritySchema,
  run: report.run,
  iteration: report.iteration,
  iterations: report.iterations,
  /** The row's phase: null before the workflow's first progress report. */
  phase: z.string().nullable(),
  last_metrics: report.last_metrics,
  spend_usd: report.spend_usd,
  budget_usd: report.budget_usd,
  budget_used_ratio: z.number(),
  committed_usd: z
    .number()
    .describe(
      "What the job's model calls have cost or may still cost, from its spend ledger: each call as billed, and a call not settled (given up on, broken off, or killed mid-call) at its worst case until the provider's record settles it. The budget is held against this, so it can exceed spend_usd and stop a job before spend_usd reaches budget_usd; once every call is settled the two agree.",
    ),
  best_checkpoint: CheckpointSummarySchema.nullable(),
  evaluation: report.evaluation.describe(
    "The latest evaluation on the validation split (it scores checkpoints), or an on-demand one: the trained policy against the untrained baseline, each metric with its 95% interval; the verdict is a paired test of per-query success rates with a bootstrap interval over queries; Welch's per-episode t-test of rewards beside it; success per family.",
  ),
  test_evaluation: EvaluationSummarySchema.nullable()
    .optional()
    .describe('The test-split evaluation after the last iteration (same shape): it only reports; it never scored a checkpoint.'),
  budget_alerts: z.array(BudgetAlertSchema).describe('Budget alerts raised so far, each threshold once, oldest first.'),
  reason: report.reason,
  created_at: Timestamp,
  updated_at: Timestamp,
  started_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
});

// ---- training.list_jobs
export const ListJobsParamsSchema = z
  .object({
    agent_id: AgentIdSchema.optional(),
    status: JobStatusSchema.optional(),
    priority: PrioritySchema.optional(),
    created_after: FilterDateTime.optional(),
    created_before: FilterDateTime.optional(),
    tenant_id: z.string().min(1).max(200).optional().describe('Admin tokens only; others always see their own tenant.'),
    limit: z.number().int().min(1).max(500).default(50),
    cursor: z.string().min(1).max(200).optional().describe('`next_cursor` of the previous page.'),
  })
  .strict();
export const JobSummarySchema = JobStatusResultSchema.omit({ best_checkpoint: true, last_metrics: true, budget_alerts: true, evaluation: true, test_evaluation: true });
export const ListJobsResultSchema = z.object({
  jobs: z.array(JobSummarySchema),
  next_cursor: z.string().nullable(),
});

// ---- training.cancel
export const CancelParamsSchema = z
  .object({ job_id: JobIdSchema, reason: z.string().min(1).max(1000).optional() })
  .strict();
export const CancelResultSchema = z.object({
  job_id: JobIdSchema,
  /**
   * `cancelling`: cancellation is requested; the job's status becomes `cancelled` once the workflow
   * has ended. `cancelled`: the job's workflow had never started, so it is cancelled already.
   */
  status: z.enum(['cancelling', 'cancelled']),
});

// ---- training.export_trajectories
export const ExportParamsSchema = z
  .object({
    job_id: JobIdSchema,
    success_only: z.boolean().default(false),
    min_reward: z.number().min(0).max(1).optional(),
    iteration_from: int4(0).optional(),
    iteration_to: int4(0).optional().describe('Inclusive.'),
    run: int4(1).optional(),
    limit: int4(1).default(1000).describe(`At most ${EXPORT_HARD_CAP}; above that is an error, never a truncated answer.`),
    offset: int4(0).default(0),
    format: z.enum(['json', 'jsonl_chat']).default('json'),
  })
  .strict();
/**
 * A stored trajectory as exported: training/trajectory.ts's TrajectorySchema with its row id,
 * reward and advantages added, token usage as two counts and job_id left out (the call names it).
 */
export const ExportedTrajectorySchema = TrajectorySchema.omit({ job_id: true, usage: true }).extend({
  id: z.string(),
  reward: z.number().nullable(),
  advantage: z.number().nullable(),
  step_advantages: z.array(z.number()).nullable(),
  prompt_tokens: TokenUsageSchema.shape.prompt_tokens,
  completion_tokens: TokenUsageSchema.shape.completion_tokens,
  started_at: Timestamp,
  ended_at: Timestamp,
});
export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string().nullable(),
  tool_calls: z
    .array(z.object({ id: z.string(), type: z.literal('function'), function: z.object({ name: z.string(), arguments: z.string() }) }))
    .optional(),
  tool_call_id: z.string().optional(),
});
export const ExportResultSchema = z.object({
  job_id: JobIdSchema,
  format: z.enum(['json', 'jsonl_chat']),
  /** Trajectories matching the filters, before paging. */
  total: z.number().int(),
  offset: z.number().int(),
  count: z.number().int(),
  /** format json: the trajectories of this page. */
  trajectories: z.array(ExportedTrajectorySchema).optional(),
  /** format jsonl_chat: one `{"messages": [...]}` line per successful trajectory of this page. */
  lines: z.array(z.string()).optional(),
});

// ---- training.update_budget
export const UpdateBudgetParamsSchema = z
  .object({
    job_id: JobIdSchema,
    budget_usd: z
      .number()
      .positive()
      .max(MAX_BUDGET_USD)
      .describe('The new limit in USD; it must be above the current one (a running budget is only ever raised).'),
  })
  .strict();
export const UpdateBudgetResultSchema = z.object({
  job_id: JobIdSchema,
  /** `applied`: the limit now in force, recorded on the job. `pending`: the limit asked for. */
  budget_usd: z.number(),
  /**
   * `pending`: Temporal holds the update and the job has not applied it yet (no worker has taken
   * it, or its record in PostgreSQL is still being retried); it applies when it is recorded, and
   * calling again with the same budget waits for that same update.
   */
  status: z.enum(['applied', 'pending']),
});

// ---- training.kill_switch and training.get_kill_switch
export const KillSwitchParamsSchema = z
  .object({
    on: z.boolean().describe('true: every running job pauses at its next batch boundary and new jobs start paused; false: they go on.'),
    reason: z.string().min(1).max(1000).optional(),
  })
  .strict();
export const KillSwitchResultSchema = z.object({
  on: z.boolean(),
  reason: z.string().nullable(),
  signalled: z.number().int().describe('How many running job workflows were sent the new state.'),
});
export const GetKillSwitchParamsSchema = z.object({}).strict();
export const KillSwitchStateSchema = z.object({
  on: z.boolean(),
  reason: z.string().nullable(),
  at: Timestamp.nullable().describe('When it was last set; null if never.'),
  by: z.string().nullable().describe('Who set it last (token subject); null if never.'),
});

// ---- training.resume
const optionalUsd = (description: string) => z.number().positive().max(MAX_BUDGET_USD).optional().describe(description);
/** training/checkpoints.ts's selector on the wire: strict, runs from 1, within int4. */
export const CheckpointSelectorSchema = z
  .union(
    [
      CheckpointNameSchema,
      CheckpointPositionSchema.extend({ run: int4(1), iteration: int4(0) }).strict(),
    ],
    { error: 'must be "best", "latest" or {"run": <run from 1>, "iteration": <iteration from 0>}' },
  )
  .describe('"best" (highest score, ties to the latest), "latest", or one checkpoint by {run, iteration}.');
export const ResumeParamsSchema = z
  .object({
    job_id: JobIdSchema,
    checkpoint: CheckpointSelectorSchema.default('best'),
    budget_usd: optionalUsd("The new run's budget in USD (default: the job's current budget); the spend of earlier runs counts against it."),
  })
  .strict();
export const ResumeResultSchema = z.object({
  job_id: JobIdSchema,
  /** The new run's number (the previous run + 1); its trajectories carry it. */
  run: z.number().int(),
  /** The checkpoint the new run starts from; it trains from the next iteration on. */
  from: z.object({ run: z.number().int(), iteration: z.number().int() }),
  status: JobStatusSchema,
});

// ---- training.evaluate
export const EvaluateParamsSchema = z
  .object({
    job_id: JobIdSchema,
    checkpoint: CheckpointSelectorSchema.default('best'),
    budget_usd: optionalUsd("The most this evaluation may spend on LLM calls (default: what is left of the job's budget)."),
  })
  .strict();
export const EvaluateResultSchema = EvaluationSummarySchema.describe(
  "The checkpoint's policy against the untrained baseline on the job's test split (validation before the job has one): metrics with 95% intervals, the verdict on task success per query (paired t-test, bootstrap over queries) and Welch's per-episode t-test beside it; stored as an on_demand evaluation.",
);

// ---- training.get_history, training.list_checkpoints, training.get_server_info (the dashboard's reads)
export const GetHistoryParamsSchema = z.object({ job_id: JobIdSchema }).strict();
export const IterationHistoryEntrySchema = z.object({
  run: z.number().int(),
  iteration: z.number().int(),
  metrics: IterationMetricsSchema.nullable().describe('Null when the stored row is not well-formed metrics.'),
  policy_version: z.number().int(),
  spend_usd: z.number().describe("The job's total spend when the iteration was recorded."),
  at: Timestamp,
});
export const GetHistoryResultSchema = z.object({
  job_id: JobIdSchema,
  iterations: z.array(IterationHistoryEntrySchema).describe('Every recorded iteration, in (run, iteration) order.'),
  spend_usd: z.number(),
  budget_usd: z.number(),
  budget_alerts: z.array(BudgetAlertSchema),
});
export const ListCheckpointsParamsSchema = z.object({ job_id: JobIdSchema }).strict();
/** A checkpoint's lesson: training/policy.ts's LessonSchema (id, text, weight). */
export const CheckpointLessonSchema = LessonSchema.pick({ id: true, text: true, weight: true });
export const CheckpointDetailSchema = z.object({
  run: z.number().int(),
  iteration: z.number().int(),
  score: z.number().nullable(),
  created_at: Timestamp,
  metrics: z.record(z.string(), z.unknown()),
  policy: z
    .object({ version: z.number().int(), base_prompt: z.string(), lessons: z.array(CheckpointLessonSchema) })
    .nullable()
    .describe('The policy the checkpoint holds; null when its payload could not be loaded (see policy_error).'),
  policy_error: z.string().nullable(),
});
export const ListCheckpointsResultSchema = z.object({
  job_id: JobIdSchema,
  checkpoints: z.array(CheckpointDetailSchema).describe('The kept checkpoints in (run, iteration) order, each with its verified policy.'),
});
export const GetServerInfoParamsSchema = z.object({}).strict();
export const ServerInfoSchema = z.object({
  temporal_ui_url: z.string().nullable().describe("The Temporal Web UI's base URL (FLOW_TEMPORAL_UI_URL); null when none is configured."),
  temporal_namespace: z.string(),
});

// ---- training.get_policy and the policy registry (agents.*): issue 16
const RegistryTenantSchema = z.string().min(1).max(200).optional().describe("Admin tokens only: the agent of this tenant instead of the token's.");
/** A lesson as stored: id, text, weight, and whatever provenance the checkpoint holds beside them. */
export const PolicyBodySchema = z.object({
  version: z.number().int().describe('Policy updates applied since its job started.'),
  base_prompt: z.string(),
  /** The lessons as the policy holds them (with provenance and counters when the job kept them). */
  lessons: z.array(LessonSchema),
});
export const PolicySourceSchema = z.object({
  job_id: JobIdSchema,
  run: z.number().int(),
  iteration: z.number().int(),
});
export const GetPolicyParamsSchema = z
  .object({
    job_id: JobIdSchema,
    checkpoint: CheckpointSelectorSchema.default('best'),
    format: z.enum(['json', 'text']).default('json').describe('`json`: the policy (lessons with ids and weights); `text`: the system prompt exactly as the agent is sent it.'),
  })
  .strict();
export const GetPolicyResultSchema = z.object({
  job_id: JobIdSchema,
  agent_id: z.string(),
  format: z.enum(['json', 'text']),
  checkpoint: CheckpointSummarySchema,
  content_hash: z.string().describe('sha256 of the base prompt and lessons: equal content, equal hash.'),
  policy: PolicyBodySchema.optional().describe('format json.'),
  system_prompt: z.string().optional().describe('format text: the rendered system prompt (training/policy.ts renderSystemPrompt).'),
});
export const PolicyVersionKindSchema = z.enum(['promote', 'force', 'rollback']);
export const PolicyVersionSchema = z.object({
  agent_id: z.string(),
  tenant_id: z.string(),
  version: z.number().int().describe('1, 2, … per agent; never rewritten.'),
  kind: PolicyVersionKindSchema.describe('`promote`: its evaluation showed a significant improvement; `force`: an admin overrode the refusal; `rollback`: the content of `rollback_of`.'),
  active: z.boolean(),
  etag: z.string().describe('The ETag GET /agents/{agent_id}/policy answers with while this version is active.'),
  content_hash: z.string(),
  policy: PolicyBodySchema,
  source: PolicySourceSchema.describe('The checkpoint the content came from.'),
  evaluation: EvaluationSummarySchema.nullable().describe('The test-split evaluation that justified it (null for a rollback, or a forced promotion without one).'),
  rollback_of: z.number().int().nullable(),
  reason: z.string().nullable(),
  refusal: z.string().nullable().describe('What a forced promotion overrode: why it would have been refused.'),
  created_by: z.string(),
  created_at: Timestamp,
});
export const PromotePolicyParamsSchema = z
  .object({
    agent_id: AgentIdSchema,
    job_id: JobIdSchema,
    checkpoint: CheckpointSelectorSchema,
    reason: z.string().min(1).max(1000).optional(),
    force: z.boolean().default(false).describe('Admin tokens only, with a reason: promote although the evidence does not allow it; the refusal is recorded.'),
    tenant_id: RegistryTenantSchema,
  })
  .strict();
export const RollbackParamsSchema = z
  .object({ agent_id: AgentIdSchema, to_version: int4(1), reason: z.string().min(1).max(1000).optional(), tenant_id: RegistryTenantSchema })
  .strict();
export const ListPolicyVersionsParamsSchema = z
  .object({
    agent_id: AgentIdSchema,
    tenant_id: RegistryTenantSchema,
    limit: z.number().int().min(1).max(500).default(50).describe('Versions per page (each carries its policy).'),
    cursor: z.string().min(1).max(200).optional().describe('`next_cursor` of the previous page: the versions older than it.'),
  })
  .strict();
export const ListPolicyVersionsResultSchema = z.object({
  agent_id: z.string(),
  tenant_id: z.string(),
  active_version: z.number().int().nullable(),
  versions: z.array(PolicyVersionSchema).describe('Newest first, at most `limit`.'),
  next_cursor: z.string().nullable().describe('Pass it as `cursor` for the older versions; null on the last page.'),
  can_promote: z.boolean().describe('The caller may promote and roll back (policy:promote).'),
  can_force: z.boolean().describe('The caller may force a promotion (an admin token).'),
});
export const GetActivePolicyParamsSchema = z.object({ agent_id: AgentIdSchema, tenant_id: RegistryTenantSchema }).strict();
export const ActivePolicySchema = z.object({
  agent_id: z.string(),
  tenant_id: z.string(),
  version: z.number().int(),
  kind: PolicyVersionKindSchema,
  etag: z.string(),
  content_hash: z.string(),
  policy: PolicyBodySchema,
  system_prompt: z.string().describe('The policy rendered as the agent should be sent it.'),
  source: PolicySourceSchema,
  promoted_by: z.string(),
  promoted_at: Timestamp,
});

// ---- rpc.discover
export const DiscoverParamsSchema = z.union([z.object({}).strict(), z.array(z.never()).max(0)]).optional();
export const DiscoverResultSchema = z.looseObject({ openrpc: z.string(), info: z.looseObject({}), methods: z.array(z.looseObject({})) });

export const PERMISSIONS = ['training:start', 'training:view', 'training:cancel', 'training:budget', 'data_export', 'policy:promote', 'policy:read'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface MethodSpec<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  summary: string;
  params: P;
  result: R;
  permission: Permission;
  /** Only admin tokens may call it (besides the permission). */
  adminOnly?: boolean;
  /** Application errors the method can answer with, besides the auth and protocol ones. */
  errors: readonly string[];
}

const method = <P extends z.ZodType, R extends z.ZodType>(spec: MethodSpec<P, R>) => spec;

export const METHODS = {
  'training.start_grpo': method({
    summary: 'Start a GRPO training job; returns its id. With an idempotency_key, retries start one job.',
    params: StartGrpoParamsSchema,
    result: StartGrpoResultSchema,
    permission: 'training:start',
    errors: ['IDEMPOTENCY_CONFLICT', 'UNAVAILABLE'],
  }),
  'training.get_status': method({
    summary: "A job's iteration, phase, last metrics, spend vs budget and best checkpoint (at most one group, plus the API's 250 ms copy, behind).",
    params: GetStatusParamsSchema,
    result: JobStatusResultSchema,
    permission: 'training:view',
    errors: ['JOB_NOT_FOUND'],
  }),
  'training.list_jobs': method({
    summary: 'Jobs of your tenant, newest first, filtered by agent, status, priority and creation time; cursor pagination.',
    params: ListJobsParamsSchema,
    result: ListJobsResultSchema,
    permission: 'training:view',
    errors: [],
  }),
  'training.cancel': method({
    summary: 'Cancel a running job through Temporal; it ends `cancelled` with the reason recorded.',
    params: CancelParamsSchema,
    result: CancelResultSchema,
    permission: 'training:cancel',
    errors: ['JOB_NOT_FOUND', 'JOB_ALREADY_FINISHED', 'UNAVAILABLE'],
  }),
  'training.export_trajectories': method({
    summary: `A job's trajectories (full steps, rewards, advantages, tokens, cost) as JSON, or the successful ones as chat fine-tuning lines; at most ${EXPORT_HARD_CAP} per call.`,
    params: ExportParamsSchema,
    result: ExportResultSchema,
    permission: 'data_export',
    errors: ['JOB_NOT_FOUND', 'EXPORT_LIMIT_EXCEEDED'],
  }),
  'training.update_budget': method({
    summary:
      "Raise a running job's budget (never lower it); the job's workflow validates and records the new limit, and takes it once it is recorded. UNAVAILABLE when Temporal did not confirm the raise, or when it could not be recorded (not applied): a retry with the same budget_usd is safe.",
    params: UpdateBudgetParamsSchema,
    result: UpdateBudgetResultSchema,
    permission: 'training:budget',
    errors: ['JOB_NOT_FOUND', 'JOB_ALREADY_FINISHED', 'UNAVAILABLE'],
  }),
  'training.kill_switch': method({
    summary: 'Turn the global kill switch on (every running job pauses at its next batch boundary, new jobs start paused) or off (they go on). Admin tokens only.',
    params: KillSwitchParamsSchema,
    result: KillSwitchResultSchema,
    permission: 'training:budget',
    adminOnly: true,
    errors: ['UNAVAILABLE'],
  }),
  'training.get_kill_switch': method({
    summary: 'Whether the global kill switch is on, why, since when and set by whom.',
    params: GetKillSwitchParamsSchema,
    result: KillSwitchStateSchema,
    permission: 'training:view',
    errors: [],
  }),
  'training.resume': method({
    summary:
      'Start a new run of a finished job (completed, failed, cancelled or budget_exceeded) from one of its checkpoints, with the same input; spend of earlier runs counts against the budget.',
    params: ResumeParamsSchema,
    result: ResumeResultSchema,
    permission: 'training:start',
    errors: ['JOB_NOT_FOUND', 'JOB_STILL_RUNNING', 'NO_CHECKPOINT', 'JOB_NOT_RESUMABLE', 'UNAVAILABLE'],
  }),
  'training.evaluate': method({
    summary:
      "Evaluate one of a job's checkpoints (default: the best) against the untrained baseline on the job's held-out queries; waits for the result, which is also stored.",
    params: EvaluateParamsSchema,
    result: EvaluateResultSchema,
    permission: 'training:start',
    errors: ['JOB_NOT_FOUND', 'NO_CHECKPOINT', 'CHECKPOINT_UNREADABLE', 'JOB_NOT_RESUMABLE', 'UNAVAILABLE'],
  }),
  'training.get_history': method({
    summary: "A job's metrics per iteration (reward, success rate, loss, spend so far) with its budget and budget alerts: the dashboard's curves.",
    params: GetHistoryParamsSchema,
    result: GetHistoryResultSchema,
    permission: 'training:view',
    errors: ['JOB_NOT_FOUND'],
  }),
  'training.list_checkpoints': method({
    summary: "A job's kept checkpoints with their metrics and policies (base prompt and lessons), so the lesson library can be compared between checkpoints.",
    params: ListCheckpointsParamsSchema,
    result: ListCheckpointsResultSchema,
    permission: 'training:view',
    errors: ['JOB_NOT_FOUND'],
  }),
  'training.get_server_info': method({
    summary: 'Where the Temporal Web UI is (FLOW_TEMPORAL_UI_URL) and which namespace jobs run in, for links to a job\'s workflow.',
    params: GetServerInfoParamsSchema,
    result: ServerInfoSchema,
    permission: 'training:view',
    errors: [],
  }),
  'training.get_policy': method({
    summary: "A checkpoint's policy (default the best): lessons with ids and weights as JSON, or the system prompt exactly as the agent is sent it.",
    params: GetPolicyParamsSchema,
    result: GetPolicyResultSchema,
    permission: 'training:view',
    errors: ['JOB_NOT_FOUND', 'NO_CHECKPOINT', 'CHECKPOINT_UNREADABLE'],
  }),
  'agents.promote_policy': method({
    summary:
      "Make a checkpoint the agent's active policy version (v1, v2, …), if its test-split evaluation shows a significant improvement over the active version (for v1: over the job's untrained start); force (admin, with a reason) overrides and is recorded.",
    params: PromotePolicyParamsSchema,
    result: PolicyVersionSchema,
    permission: 'policy:promote',
    errors: ['JOB_NOT_FOUND', 'NO_CHECKPOINT', 'CHECKPOINT_UNREADABLE', 'PROMOTION_REFUSED', 'POLICY_VERSION_CONFLICT'],
  }),
  'agents.rollback': method({
    summary: "Make an earlier version's content active again, as a new version that records the rollback.",
    params: RollbackParamsSchema,
    result: PolicyVersionSchema,
    permission: 'policy:promote',
    errors: ['POLICY_NOT_FOUND', 'POLICY_VERSION_CONFLICT'],
  }),
  'agents.list_policy_versions': method({
    summary: "An agent's policy versions, newest first, with who made each, when, why and on what evaluation; which is active.",
    params: ListPolicyVersionsParamsSchema,
    result: ListPolicyVersionsResultSchema,
    permission: 'training:view',
    errors: [],
  }),
  'agents.get_active_policy': method({
    summary: "The agent's active policy version (what GET /agents/{agent_id}/policy answers, without the ETag round trip).",
    params: GetActivePolicyParamsSchema,
    result: ActivePolicySchema,
    permission: 'policy:read',
    errors: ['POLICY_NOT_FOUND'],
  }),
  'rpc.discover': method({
    summary: 'This service described as an OpenRPC 1.x document.',
    params: DiscoverParamsSchema,
    result: DiscoverResultSchema,
    permission: 'training:view',
    errors: [],
  }),
};

export type MethodName = keyof typeof METHODS;
export type MethodParams<M extends MethodName> = z.input<(typeof METHODS)[M]['params']>;
export type MethodResult<M extends MethodName> = z.infer<(typeof METHODS)[M]['result']>;

export type StartGrpoParams = z.input<typeof StartGrpoParamsSchema>;
export type JobStatusResult = z.infer<typeof JobStatusResultSchema>;
export type JobSummary = z.infer<typeof JobSummarySchema>;
export type ListJobsResult = z.infer<typeof ListJobsResultSchema>;
export type ExportResult = z.infer<typeof ExportResultSchema>;
export type ExportedTrajectory = z.infer<typeof ExportedTrajectorySchema>;
export type { CheckpointSelector } from '../training/checkpoints';
export type KillSwitchState = z.infer<typeof KillSwitchStateSchema>;
export type GetHistoryResult = z.infer<typeof GetHistoryResultSchema>;
export type ListCheckpointsResult = z.infer<typeof ListCheckpointsResultSchema>;
export type ServerInfo = z.infer<typeof ServerInfoSchema>;
export type GetPolicyResult = z.infer<typeof GetPolicyResultSchema>;
export type PolicyVersionResult = z.infer<typeof PolicyVersionSchema>;
export type ActivePolicy = z.infer<typeof ActivePolicySchema>;
export type ListPolicyVersionsResult = z.infer<typeof ListPolicyVersionsResultSchema>;
