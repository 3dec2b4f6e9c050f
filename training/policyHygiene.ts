import type { Lesson, Policy } from './policy';
import { applyLessonOperations, type LessonChurn, type LessonOperation, type LessonUpdateOptions } from './lessonOperations';
import { consolidateProposals, type GroupProposal } from './consolidation';
import { countLessonOutcomes, DEFAULT_HARM_RULE, type HarmRule, type LessonObservation, mostHarmful, originOf, type UpdateContext, withOrigin } from './lessonProvenance';
import { mergeNearDuplicates, type LessonMerge } from './lessonDedup';
import { collapseRefusal, type CountTokens, fitToTokenBudget, measureRemoval, renderedPolicyTokens } from './tokenBudget';

/**
 * Policy hygiene (issue 16 items 4–6): one iteration's update of the library, in this order.
 *
 * 1. Counters: the iteration's trajectories are counted into the lessons they ran with.
 * 2. Consolidation: every group's proposed operations become one list (order-free), applied.
 * 3. Provenance: each lesson added or edited records the job, run, iteration, operation and the
 *    trajectories its evidence cited.
 * 4. The collapse guard: an update whose operations would remove more than `maxUpdateRemovalShare`
 *    of the library's lesson tokens (more than one lesson) is refused, and reported so.
 * 5. The lesson that keeps hurting most (counters) is dropped, with its reason: one per update,
 *    so the guard's bound is never needed against it.
 * 6. Near-duplicates are merged (provenance and counters of both kept).
 * 7. The token budget: the weakest lessons go until the rendered policy fits `maxPolicyTokens`
 *    (it can only remove what the update put over the budget: the parent fitted).
 *
 * Steps 5–7 are the code's own, bounded removals; the guard stands between the optimizer's
 * proposals and the library. Deterministic in its input, so a retried activity returns the same.
 */

export interface HygieneOptions {
  maxPolicyTokens: number;
  maxUpdateRemovalShare: number;
  mergeSimilarity: number;
  harmRule?: HarmRule;
}

export interface HygieneInput {
  parent: Policy;
  proposals: readonly GroupProposal[];
  /** What each cited trajectory (and step) earned, by trajectory id. */
  credits: Record<string, number>;
  /** The iteration's trajectories, for the counters. */
  observations: readonly LessonObservation[];
  context: UpdateContext;
  update: LessonUpdateOptions;
  hygiene: HygieneOptions;
}

export interface HygieneReport {
  policy: Policy;
  applied: LessonOperation[];
  /** Operations refused (malformed or by the lesson arithmetic), and group conflicts, with why. */
  rejected: string[];
  conflicts: string[];
  churn: LessonChurn;
  /** Why the collapse guard refused the optimizer's operations, or null. */
  collapse_refusal: string | null;
  /** Share of the library's lesson tokens the operations would have removed. */
  removal_share: number;
  harmful_dropped: { lesson_id: string; text: string; reason: string }[];
  merged: LessonMerge[];
  trimmed: { lesson_id: string; text: string }[];
  /** Tokens of the rendered policy the update ends with. */
  tokens: number;
  /**
   * The parent with this iteration's counts: what stays if a later step (the gate) refuses the
   * update, so the iteration's trajectories are still counted once.
   */
  counted_parent: Policy;
  parent_tokens: number;
}

const NO_CHURN: LessonChurn = { added: 0, edited: 0, reweighted: 0, dropped: 0 };

/** Records where each added or edited lesson came from. */
function attachProvenance(before: readonly Lesson[], after: readonly Lesson[], applied: readonly LessonOperation[], context: UpdateContext): Lesson[] {
  const existed = new Set(before.map((lesson) => lesson.id));
  const origins = new Map<string, ReturnType<typeof originOf>>();
  for (const op of applied) {
    if (op.op === 'add') {
      const added = after.find((lesson) => !existed.has(lesson.id) && lesson.text === op.text.trim());
      if (added) origins.set(added.id, originOf(context, 'add', op.evidence));
    } else if (op.op === 'edit') {
      origins.set(op.lesson_id, originOf(context, 'edit', op.evidence));
    }
  }
  return after.map((lesson) => {
    const origin = origins.get(lesson.id);
    return origin ? withOrigin(lesson, origin) : lesson;
  });
}

const contentOf = (lessons: readonly Lesson[]) => JSON.stringify(lessons.map(({ id, text, weight }) => [id, text, weight]).sort());

export function revisePolicy(input: HygieneInput, count: CountTokens): HygieneReport {
  const { parent, context, hygiene } = input;
  const counted: Policy = { ...parent, lessons: countLessonOutcomes(parent.lessons, input.observations, context) };

  const consolidation = consolidateProposals(input.proposals);
  const result = applyLessonOperations(counted, consolidation.operations, input.credits, input.update);
  const proposed = attachProvenance(counted.lessons, result.policy.lessons, result.applied, context);
  const removal = measureRemoval(counted.lessons, proposed, count);
  const refusal = collapseRefusal(removal, hygiene.maxUpdateRemovalShare);
  let lessons = refusal ? counted.lessons : proposed;

  const harmful = mostHarmful(lessons, hygiene.harmRule ?? DEFAULT_HARM_RULE);
  const harmfulDropped = harmful ? [{ lesson_id: harmful.lesson.id, text: harmful.lesson.text, reason: harmful.reason }] : [];
  if (harmful) lessons = lessons.filter((lesson) => lesson !== harmful.lesson);

  const tools = new Set(input.observations.flatMap((observation) => observation.tools));
  const dedup = mergeNearDuplicates(lessons, hygiene.mergeSimilarity, context, tools);
  const fit = fitToTokenBudget({ ...parent, lessons: dedup.lessons }, hygiene.maxPolicyTokens, count);
  const changed = contentOf(fit.policy.lessons) !== contentOf(parent.lessons);
  const policy: Policy = { base_prompt: parent.base_prompt, lessons: fit.policy.lessons, version: changed ? parent.version + 1 : parent.version };
  const churn = refusal ? NO_CHURN : result.churn;
  return {
    policy,
    applied: refusal ? [] : result.applied,
    rejected: [...consolidation.malformed, ...result.rejected.map((r) => `${r.operation.op}: ${r.reason}`)],
    conflicts: consolidation.conflicts,
    // The code's own removals (harm, merges, the budget) are lessons dropped too.
    churn: { ...churn, dropped: churn.dropped + harmfulDropped.length + dedup.merges.length + fit.trimmed.length },
    collapse_refusal: refusal,
    removal_share: removal.share,
    harmful_dropped: harmfulDropped,
    merged: dedup.merges,
    trimmed: fit.trimmed.map((lesson) => ({ lesson_id: lesson.id, text: lesson.text })),
    tokens: fit.tokens,
    counted_parent: counted,
    parent_tokens: renderedPolicyTokens(parent, count),
  };
}
