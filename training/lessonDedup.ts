import type { Lesson } from './policy';
import { boundedOrigins, type LessonCounters, type UpdateContext } from './lessonProvenance';

/**
 * Issue 16 item 5: near-duplicate lessons are merged, so the library does not fill up with the
 * same advice in other words (ACE's "the playbook only ever grows"). Similarity is the Jaccard
 * index of the two texts' word sets (lower case, words = runs of letters, digits and `_`):
 * cheap, deterministic and order-free. Two lessons whose differing words include a tool name are
 * never merged, however similar: "call lookup_invoice first" and "call search first" are
 * opposite advice that differs in one word.
 */

export const DEFAULT_MERGE_SIMILARITY = 0.8;

export function lessonWords(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[a-z0-9_]+/g) ?? []);
}

/** |A ∩ B| ÷ |A ∪ B| of the word sets; 1 for two texts with no words. */
export function lessonSimilarity(a: string, b: string): number {
  const wordsA = lessonWords(a);
  const wordsB = lessonWords(b);
  const union = new Set([...wordsA, ...wordsB]);
  if (union.size === 0) return 1;
  let shared = 0;
  for (const word of wordsA) if (wordsB.has(word)) shared += 1;
  return shared / union.size;
}

/** Whether the texts differ in one of the `distinct` words (tool names, lower case). */
function differIn(a: string, b: string, distinct: ReadonlySet<string>): boolean {
  const wordsA = lessonWords(a);
  const wordsB = lessonWords(b);
  for (const word of distinct) if (wordsA.has(word) !== wordsB.has(word)) return true;
  return false;
}

export interface LessonMerge {
  kept: string;
  merged: string;
  similarity: number;
}

export interface DedupResult {
  lessons: Lesson[];
  merges: LessonMerge[];
}

/**
 * Merges each lesson into the strongest earlier-ranked lesson it is at least `threshold` similar
 * to (ranked by weight, then id, so the result does not depend on the lessons' order). The kept
 * lesson keeps its text and id, takes the larger weight, adds up both counters and keeps both
 * provenances with a `merge` origin between them.
 */
export function mergeNearDuplicates(
  lessons: readonly Lesson[],
  threshold: number,
  context: UpdateContext,
  distinctWords: Iterable<string> = [],
): DedupResult {
  if (!(threshold > 0 && threshold <= 1)) {
    throw new Error(`mergeNearDuplicates: threshold must be in (0, 1], got ${threshold}`);
  }
  const distinct = new Set([...distinctWords].map((word) => word.toLowerCase()));
  const ranked = [...lessons].sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : 1));
  const kept: Lesson[] = [];
  const merges: LessonMerge[] = [];
  for (const lesson of ranked) {
    let target = -1;
    let similarity = 0;
    for (let i = 0; i < kept.length && target < 0; i++) {
      const s = lessonSimilarity(kept[i].text, lesson.text);
      if (s >= threshold && !differIn(kept[i].text, lesson.text, distinct)) {
        target = i;
        similarity = s;
      }
    }
    if (target < 0) {
      kept.push(lesson);
      continue;
    }
    kept[target] = mergeInto(kept[target], lesson, context);
    merges.push({ kept: kept[target].id, merged: lesson.id, similarity });
  }
  // The survivors in the library's own order.
  const survivors = new Map(kept.map((lesson) => [lesson.id, lesson]));
  return { lessons: lessons.flatMap((lesson) => survivors.get(lesson.id) ?? []), merges };
}

function mergeInto(kept: Lesson, other: Lesson, context: UpdateContext): Lesson {
  const merged: Lesson = { ...kept, weight: Math.max(kept.weight, other.weight) };
  const origin = { job_id: context.job_id, run: context.run, iteration: context.iteration, operation: 'merge' as const, trajectory_ids: [], merged_lesson_id: other.id };
  merged.provenance = boundedOrigins([...(kept.provenance ?? []), origin, ...(other.provenance ?? [])]);
  const counters = mergeCounters(kept.counters, other.counters);
  if (counters) merged.counters = counters;
  return merged;
}

const NO_COUNTS: LessonCounters = { helpful: 0, harmful: 0, counted_run: 0, counted_iteration: 0 };

/** Both lessons' counts added up, watermarked at the later of the two. */
function mergeCounters(a: LessonCounters | undefined, b: LessonCounters | undefined): LessonCounters | undefined {
  if (!a && !b) return undefined;
  const x = a ?? NO_COUNTS;
  const y = b ?? NO_COUNTS;
  const later = x.counted_run > y.counted_run || (x.counted_run === y.counted_run && x.counted_iteration >= y.counted_iteration) ? x : y;
  return { helpful: x.helpful + y.helpful, harmful: x.harmful + y.harmful, counted_run: later.counted_run, counted_iteration: later.counted_iteration };
}
