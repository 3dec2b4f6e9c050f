/**
 * The JSON contract between Flow and an external agent service (docs/guides/http_agent.md).
 * Flow POSTs an HttpAgentRequest; the service runs the task under the policy and answers with
 * an HttpAgentResponse, its trajectory. Both are zod schemas: Flow validates what it receives
 * and a service written in TypeScript can import the same types.
 */
import { z } from 'zod';
import { TaskSchema } from '../../training/task';
import { TokenUsageSchema } from '../../training/trajectory';

/**
 * Version 2: the task carries `expected_answer` and `expected_tool` only when the job sets
 * `agent.expose_expected: true` (version 1 always sent them, handing agents the answer key).
 */
export const HTTP_AGENT_PROTOCOL = 'flow-agent/2';

export const HttpAgentRequestSchema = z
  .object({
    protocol: z.literal(HTTP_AGENT_PROTOCOL),
    /** Which trajectory this is; the same ids on a retried attempt (see the Idempotency-Key header). */
    trajectory: z
      .object({
        job_id: z.string(),
        run: z.number().int().min(1),
        iteration: z.number().int().min(0),
        query_index: z.number().int().min(0),
        sample_index: z.number().int().min(0),
        attempt: z.number().int().min(1),
      })
      .strict(),
    /** The task; `expected_answer`/`expected_tool` only with `agent.expose_expected: true`. */
    task: TaskSchema,
    policy: z
      .object({
        /** The whole policy rendered as a system prompt: base prompt plus the weighted lessons. */
        system_prompt: z.string(),
        /** The same lessons as data, strongest first. */
        lessons: z.array(z.object({ weight: z.number().min(0).max(1), text: z.string() }).strict()),
      })
      .strict(),
    /** The job's `environment`: `simulated` or `tools`. */
    environment: z.string(),
    model: z.string(),
    max_steps: z.number().int().min(1),
    max_tokens: z.number().int().min(1),
    /** For services that can be seeded, so reruns agree. */
    seed: z.number().int(),
    /** How long this attempt may take before Flow gives up on it. */
    timeout_ms: z.number().int().positive(),
  })
  .strict();
export type HttpAgentRequest = z.infer<typeof HttpAgentRequestSchema>;

export const HttpAgentToolCallSchema = z.object({
  id: z.string().max(200).optional(),
  name: z.string().min(1).max(200),
  arguments: z.record(z.string(), z.unknown()).default({}),
});

export const HttpAgentStepSchema = z.object({
  /** What the agent saw before acting (for example the last message). */
  state: z.string().max(20_000),
  action: z.object({ type: z.enum(['tool_call', 'final_answer']), content: z.string().max(20_000).nullable() }),
  tool_calls: z.array(HttpAgentToolCallSchema).max(50).default([]),
  result: z.string().max(100_000).nullable().default(null),
  /** Tokens and USD the step's model calls cost; they count against the job's budget. */
  usage: TokenUsageSchema.default({ prompt_tokens: 0, completion_tokens: 0 }),
  cost_usd: z.number().min(0).max(1_000).default(0),
  logprob: z.number().max(0).nullable().default(null),
  error: z.string().max(5_000).nullable().default(null),
  started_at: z.iso.datetime({ offset: true }).optional(),
  ended_at: z.iso.datetime({ offset: true }).optional(),
});
export type HttpAgentStep = z.infer<typeof HttpAgentStepSchema>;

export const HttpAgentResponseSchema = z.object({
  steps: z.array(HttpAgentStepSchema).max(1_000),
  final_answer: z.string().max(20_000).nullable(),
  /** The service's own verdict; when absent Flow compares final_answer with the task's expected_answer. */
  success: z.boolean().optional(),
  /** The agent checked its answer with a verification tool before answering. */
  verified: z.boolean().default(false),
  /** Why the run did not finish normally (the trajectory is then recorded as failed). */
  error: z.string().max(5_000).nullable().default(null),
});
export type HttpAgentResponse = z.infer<typeof HttpAgentResponseSchema>;
export type HttpAgentResponseInput = z.input<typeof HttpAgentResponseSchema>;
