/**
 * Policy hygiene, level two (issue 16 items 4-6): once per iteration, every group's proposed
 * operations (activities/policyUpdate.ts proposeLessonOperations) are consolidated against the
 * library and applied by pure code (training/policyHygiene.ts revisePolicy): counters, provenance,
 * the collapse guard, harmful lessons, near-duplicates and the token budget. An activity, not
 * workflow code, because it counts tokens with the model's tokenizer and reads the iteration's
 * trajectories for the counters; deterministic in its input (trajectory rows never change once
 * written), so a retried attempt returns what the first would have, and the workflow applies the
 * one result its history records: each trajectory is counted once.
 */
import type { TrajectoryStep } from '../training/trajectory';
import type { Policy } from '../training/policy';
import type { LessonOperation } from '../training/lessonOperations';
import { revisePolicy, type HygieneReport } from '../training/policyHygiene';
import { tokenCounterFor } from '../adapters/llm/tokenCounter';
import type { TrajectoryRepository } from '../adapters/db';
import { loadInOrder } from './trajectoryRows';

export interface ConsolidatePolicyInput {
  job_id: string;
  run: number;
  iteration: number;
  /** The policy the iteration's trajectories ran with. */
  policy: Policy;
  /** Each group's proposal (activities/policyUpdate.ts GroupProposalResult.operations). */
  proposals: { operations: LessonOperation[] }[];
  /** What each cited trajectory and step earned, by trajectory id (all groups'). */
  credits: Record<string, number>;
  /** Every trajectory of the iteration, for the helpful/harmful counters. */
  trajectory_ids: string[];
  /** The query of each of `trajectory_ids` (same order): a lesson counts only queries in its scope. */
  queries?: string[];
  learning_rate: number;
  clip: number;
  max_lessons: number;
  /** The agent's model: its tokenizer counts the policy. */
  model: string;
  max_policy_tokens: number;
  lesson_merge_similarity: number;
  max_update_removal_share: number;
}

export type ConsolidatePolicyResult = HygieneReport;

export function createPolicyConsolidationActivities(deps: { trajectories: TrajectoryRepository }) {
  return {
    async consolidatePolicy(input: ConsolidatePolicyInput): Promise<ConsolidatePolicyResult> {
      const rows = await loadInOrder(deps.trajectories, input.trajectory_ids);
      const observations = rows.map((row, i) => ({
        ...(input.queries ? { query: input.queries[i] } : {}),
        trajectory_id: row.id,
        success: row.success,
        tools: (row.steps as unknown as TrajectoryStep[]).flatMap((step) => step.tool_calls.map((call) => call.name)),
      }));
      return revisePolicy(
        {
          parent: input.policy,
          proposals: input.proposals,
          credits: input.credits,
          observations,
          context: { job_id: input.job_id, run: input.run, iteration: input.iteration },
          update: { learningRate: input.learning_rate, clip: input.clip, maxLessons: input.max_lessons },
          hygiene: {
            maxPolicyTokens: input.max_policy_tokens,
            maxUpdateRemovalShare: input.max_update_removal_share,
            mergeSimilarity: input.lesson_merge_similarity,
          },
        },
        tokenCounterFor(input.model).count,
      );
    },
  };
}
