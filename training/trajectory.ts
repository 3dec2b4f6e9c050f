import { z } from 'zod';

/**
 * One agent run as it is recorded: its steps (tool calls, results, token usage, cost) and its
 * outcome. The trajectories table, the export and the reward and policy-update code read this.
 */

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
