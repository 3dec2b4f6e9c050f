import { z } from 'zod';

/** What a job trains on (its queries) and which agent runs them; pure, sandbox-safe schemas. */

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
