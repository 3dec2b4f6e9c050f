import { z } from 'zod';
import { surrogateLoss } from './advantages';
import { totalChurn, type LessonChurn } from './lessonOperations';

/**
 * What a real model can get wrong (issue 13), each a recorded outcome rather than a crash: prose
 * where a tool call was asked, an unknown tool, arguments off the tool's schema, max_tokens
 * reached, and a policy-updater answer that failed validation.
 */
export const INVALID_OUTPUT_KINDS = ['prose', 'unknown_tool', 'arguments_off_schema', 'max_tokens', 'updater_answer'] as const;
export type InvalidOutputKind = (typeof INVALID_OUTPUT_KINDS)[number];
export type InvalidOutputCounts = Record<InvalidOutputKind, number>;

export const InvalidOutputCountsSchema = z.object(
  Object.fromEntries(INVALID_OUTPUT_KINDS.map((kind) => [kind, z.number().int().min(0)])) as Record<InvalidOutputKind, z.ZodNumber>,
);

/** The kind of invalid output an error string records (`invalid_output:<kind>: …`), or null. */
export function invalidOutputKindOf(error: string | null | undefined): InvalidOutputKind | null {
  const kind = /^invalid_output:([a-z_]+):/.exec(error ?? '')?.[1];
  return (INVALID_OUTPUT_KINDS as readonly string[]).includes(kind ?? '') ? (kind as InvalidOutputKind) : null;
}

/** Counts the invalid outputs recorded in some steps' errors. */
export function countInvalidOutputs(errors: readonly (string | null | undefined)[]): InvalidOutputCounts {
  const counts = Object.fromEntries(INVALID_OUTPUT_KINDS.map((kind) => [kind, 0])) as InvalidOutputCounts;
  for (const error of errors) {
    const kind = invalidOutputKindOf(error);
    if (kind) counts[kind] += 1;
  }
  return counts;
}

/** What one training iteration reports (status, checkpoints, the metrics table). */
export const IterationMetricsSchema = z.object({
  trajectories: z.number().int().min(0),
  mean_reward: z.number().min(0).max(1),
  success_rate: z.number().min(0).max(1),
  /** Mean surrogate loss; null when no trajectory had log-probs. */
  loss: z.number().nullable(),
  /** Mean over groups of (max - min) advantage: 0 means no group taught anything. */
  advantage_spread: z.number().min(0),
  /** Lessons added + edited + reweighted + dropped by this iteration's update. */
  lesson_churn: z.number().int().min(0),
  /** The model's invalid outputs by kind (absent in iterations from before they were counted). */
  invalid_outputs: InvalidOutputCountsSchema.optional(),
  /**
   * With policy hygiene (issue 16): what the consolidation did beside the operations. A refusal
   * (the collapse guard, the gate) is recorded here with its reason, never silently skipped.
   */
  policy_hygiene: z
    .object({
      collapse_refusal: z.string().nullable(),
      gate_refusal: z.string().nullable(),
      harmful_dropped: z.array(z.object({ lesson_id: z.string(), text: z.string(), reason: z.string() })),
      merged: z.array(z.object({ kept: z.string(), merged: z.string(), similarity: z.number() })),
      trimmed: z.array(z.object({ lesson_id: z.string(), text: z.string() })),
      conflicts: z.array(z.string()),
      policy_tokens: z.number().int().min(0),
    })
    .optional(),
});
export type IterationMetrics = z.infer<typeof IterationMetricsSchema>;

export interface GroupOutcome {
  rewards: number[];
  successes: boolean[];
  advantages: number[];
  logProbs: (number | null)[];
  /** The group's agent steps that were invalid outputs, by kind (absent before they were counted). */
  invalidOutputs?: Partial<InvalidOutputCounts>;
}

function average(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((sum, x) => sum + x, 0) / xs.length;
}

/**
 * `updaterInvalidOutputs`: the policy update's answers that failed validation. When it is given,
 * the metrics carry `invalid_outputs` (the groups' counts plus the updater's).
 */
export function iterationMetrics(groups: GroupOutcome[], churn: LessonChurn, updaterInvalidOutputs?: number): IterationMetrics {
  groups.forEach((group, index) => {
    const n = group.rewards.length;
    if (group.successes.length !== n || group.advantages.length !== n || group.logProbs.length !== n) {
      throw new Error(
        `iterationMetrics: group ${index} has ${n} rewards, ${group.successes.length} successes, ` +
          `${group.advantages.length} advantages and ${group.logProbs.length} log-probs; all must be equal`,
      );
    }
  });
  const rewards = groups.flatMap((group) => group.rewards);
  const successes = groups.flatMap((group) => group.successes);
  const lossItems = groups.flatMap((group) =>
    group.advantages.map((advantage, i) => ({ logProb: group.logProbs[i], advantage })),
  );
  const spreads = groups
    .filter((group) => group.advantages.length > 0)
    .map((group) => Math.max(...group.advantages) - Math.min(...group.advantages));
  const invalid =
    updaterInvalidOutputs === undefined
      ? {}
      : {
          invalid_outputs: Object.fromEntries(
            INVALID_OUTPUT_KINDS.map((kind) => [
              kind,
              groups.reduce((sum, group) => sum + (group.invalidOutputs?.[kind] ?? 0), kind === 'updater_answer' ? updaterInvalidOutputs : 0),
            ]),
          ) as InvalidOutputCounts,
        };
  return {
    trajectories: rewards.length,
    mean_reward: average(rewards),
    success_rate: average(successes.map((success) => (success ? 1 : 0))),
    loss: surrogateLoss(lossItems),
    advantage_spread: average(spreads),
    lesson_churn: totalChurn(churn),
    ...invalid,
  };
}
