import { renderSystemPrompt, type Lesson, type Policy } from './policy';

/**
 * Issue 16 item 5: the policy's size in tokens, bounded two ways. (1) The rendered system prompt
 * never exceeds `max_policy_tokens`: when an update leaves it over, the weakest lessons go until
 * it fits. (2) The guard against context collapse (ACE saw one rewrite shrink an 18,282-token
 * context to 122 tokens): one update may not remove more than a share of the library's lesson
 * tokens (default 30%), unless all it removes is one lesson, so a small library can still lose a
 * bad lesson. Pure: the tokenizer is passed in as `count` (adapters/llm/tokenCounter.ts), because
 * this file is bundled into the deterministic workflow sandbox, which must not carry one.
 */

export type CountTokens = (text: string) => number;

export const DEFAULT_MAX_POLICY_TOKENS = 2000;
export const DEFAULT_MAX_UPDATE_REMOVAL_SHARE = 0.3;

/** Tokens of the system prompt the agent is sent. */
export function renderedPolicyTokens(policy: Policy, count: CountTokens): number {
  return count(renderSystemPrompt(policy));
}

/** A lesson's own tokens: its text (the weight prefix is rendering, not content). */
export function lessonTokens(lesson: Pick<Lesson, 'text'>, count: CountTokens): number {
  return count(lesson.text);
}

/** The library's tokens: the sum over its lessons' texts. */
export function libraryTokens(lessons: readonly Pick<Lesson, 'text'>[], count: CountTokens): number {
  return lessons.reduce((sum, lesson) => sum + lessonTokens(lesson, count), 0);
}

export interface BudgetFit {
  policy: Policy;
  /** The lessons removed to fit, weakest first. */
  trimmed: Lesson[];
  /** Tokens of the rendered policy after fitting. */
  tokens: number;
}

/**
 * The policy within `maxTokens`: while its rendering is over, the weakest lesson goes (the newest
 * among equal weights: the older one has been in more prompts). Counted on the whole rendering
 * every time, so what the agent is sent is what was measured. A base prompt over the budget on
 * its own cannot be fitted: that job's config is refused (it is an error here).
 */
export function fitToTokenBudget(policy: Policy, maxTokens: number, count: CountTokens): BudgetFit {
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) {
    throw new Error(`fitToTokenBudget: maxTokens must be a positive integer, got ${maxTokens}`);
  }
  const baseTokens = count(policy.base_prompt);
  if (baseTokens > maxTokens) {
    throw new Error(`fitToTokenBudget: the base prompt alone is ${baseTokens} tokens, over max_policy_tokens ${maxTokens}; raise max_policy_tokens or shorten the base prompt`);
  }
  let tokens = renderedPolicyTokens(policy, count);
  if (tokens <= maxTokens) return { policy, trimmed: [], tokens };
  const byWeakness = policy.lessons.map((lesson, index) => ({ lesson, index })).sort((a, b) => a.lesson.weight - b.lesson.weight || b.index - a.index);
  const trimmed: Lesson[] = [];
  let lessons = policy.lessons;
  for (const { lesson } of byWeakness) {
    trimmed.push(lesson);
    lessons = lessons.filter((kept) => kept !== lesson);
    tokens = renderedPolicyTokens({ ...policy, lessons }, count);
    if (tokens <= maxTokens) break;
  }
  return { policy: { ...policy, lessons }, trimmed, tokens };
}

export interface RemovalMeasure {
  /** Lesson tokens of the parent the candidate no longer holds (dropped lessons, text cut by edits). */
  removedTokens: number;
  libraryTokens: number;
  /** removedTokens ÷ libraryTokens (0 for an empty library). */
  share: number;
  /** Lessons dropped or shortened. */
  lessonsRemoved: number;
}

/**
 * What an update removed from the library. A lesson merged into a near-duplicate (`mergedIds`)
 * is not counted: its advice is still there, in the lesson it was merged into.
 */
export function measureRemoval(parent: readonly Lesson[], candidate: readonly Lesson[], count: CountTokens, mergedIds: ReadonlySet<string> = new Set()): RemovalMeasure {
  const after = new Map(candidate.map((lesson) => [lesson.id, lesson]));
  let removedTokens = 0;
  let lessonsRemoved = 0;
  for (const lesson of parent) {
    if (mergedIds.has(lesson.id)) continue;
    const kept = after.get(lesson.id);
    const lost = kept === undefined ? lessonTokens(lesson, count) : Math.max(0, lessonTokens(lesson, count) - lessonTokens(kept, count));
    if (lost > 0) {
      removedTokens += lost;
      lessonsRemoved += 1;
    }
  }
  const total = libraryTokens(parent, count);
  return { removedTokens, libraryTokens: total, share: total === 0 ? 0 : removedTokens / total, lessonsRemoved };
}

/** Why the guard refuses the update, or null when it may apply. */
export function collapseRefusal(removal: RemovalMeasure, maxShare: number): string | null {
  if (!(maxShare > 0 && maxShare <= 1)) {
    throw new Error(`collapseRefusal: maxShare must be in (0, 1], got ${maxShare}`);
  }
  if (removal.share <= maxShare || removal.lessonsRemoved <= 1) return null;
  return `the update would remove ${removal.removedTokens} of the library's ${removal.libraryTokens} lesson tokens (${(100 * removal.share).toFixed(1)}%, ${removal.lessonsRemoved} lessons), over the ${(100 * maxShare).toFixed(0)}% one update may remove; the policy was kept as it was`;
}
