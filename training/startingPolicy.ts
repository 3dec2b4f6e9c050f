import { z } from 'zod';
import { initialPolicy, PolicySchema, type Policy } from './policy';

/**
 * The policy a job starts from (issue 16): its base prompt with no lessons, or, for a job started
 * with `base: "active"`, the agent's active registry version, which the API resolves once at the
 * start and the workflow input carries (so a replay reads the same policy, never the registry).
 * The held-out evaluation's baseline is this same policy: a job started from the active version
 * is evaluated against that version.
 */
export const InitialPolicySchema = z
  .object({
    /** The registry version it came from, and that version's content hash (api/policyRegistry.ts). */
    version: z.number().int().min(1),
    content_hash: z.string().regex(/^[0-9a-f]{64}$/),
    policy: PolicySchema,
  })
  .strict();
export type InitialPolicy = z.infer<typeof InitialPolicySchema>;

export function startingPolicy(input: { base_prompt: string; initial_policy?: InitialPolicy }): Policy {
  return input.initial_policy ? input.initial_policy.policy : initialPolicy(input.base_prompt);
}
