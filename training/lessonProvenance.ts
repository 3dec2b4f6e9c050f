import { z } from 'zod';

/**
 * Issue 16 item 4: every lesson says where it came from and how it has done since (ACE's
 * helpful/harmful counters). Both are optional on a lesson (training/policy.ts LessonSchema):
 * policies written before them, and jobs without policy hygiene, carry neither.
 *
 * "Followed", for the counters: the lesson was in the system prompt the trajectory ran with (the
 * policy of that iteration: every lesson is rendered), the lesson speaks of the trajectory's
 * query (a lesson whose text names a scope, "For billing tasks, …", counts only queries that
 * share one of its scope words: its words other than tool names and the function words of
 * FUNCTION_WORDS; a lesson with no scope word counts every query), AND the trajectory called
 * every tool the lesson prescribes: the tool names of that iteration's calls that the lesson's
 * text names, except those named after "instead of" (which it advises against). A lesson that
 * names no tool called that iteration is not counted: nothing says whether the agent followed
 * it. A followed trajectory that succeeded counts as helpful, one that failed as harmful.
 */

/** Origins kept per lesson (the first and the latest ones): the policy travels in workflow history. */
export const MAX_LESSON_ORIGINS = 6;
/** Trajectory ids kept per origin. */
export const MAX_ORIGIN_TRAJECTORIES = 8;

export const LESSON_ORIGIN_OPERATIONS = ['add', 'edit', 'merge'] as const;

export const LessonOriginSchema = z.object({
  job_id: z.string().min(1).max(200),
  run: z.number().int().min(1),
  iteration: z.number().int().min(0),
  operation: z.enum(LESSON_ORIGIN_OPERATIONS),
  /** The trajectories whose evidence the operation cited (step refs reduced to their trajectory). */
  trajectory_ids: z.array(z.string().min(1).max(200)).max(MAX_ORIGIN_TRAJECTORIES),
  /** For a merge: the id of the near-duplicate lesson folded into this one. */
  merged_lesson_id: z.string().min(1).max(100).optional(),
});
export type LessonOrigin = z.infer<typeof LessonOriginSchema>;

export const LessonCountersSchema = z.object({
  helpful: z.number().int().min(0),
  harmful: z.number().int().min(0),
  /** The last (run, iteration) whose trajectories were counted: counting it again changes nothing. */
  counted_run: z.number().int().min(0),
  counted_iteration: z.number().int().min(0),
});
export type LessonCounters = z.infer<typeof LessonCountersSchema>;

export const LessonProvenanceFields = {
  provenance: z.array(LessonOriginSchema).max(MAX_LESSON_ORIGINS).optional(),
  counters: LessonCountersSchema.optional(),
};

/** The fields of a lesson these functions read and write (training/policy.ts Lesson has them). */
export interface TrackedLesson {
  id: string;
  text: string;
  provenance?: LessonOrigin[];
  counters?: LessonCounters;
}

/** Where an update happens. */
export interface UpdateContext {
  job_id: string;
  run: number;
  iteration: number;
}

/** "T3.s1" (a step of trajectory T3) → "T3"; an id with no step suffix is itself. */
export function trajectoryOfRef(ref: string): string {
  return ref.replace(/\.s\d+$/, '');
}

/** Keeps the first origin (where the lesson was born) and the latest ones. */
export function boundedOrigins(origins: readonly LessonOrigin[]): LessonOrigin[] {
  if (origins.length <= MAX_LESSON_ORIGINS) return [...origins];
  return [origins[0], ...origins.slice(origins.length - (MAX_LESSON_ORIGINS - 1))];
}

export function originOf(context: UpdateContext, operation: LessonOrigin['operation'], evidence: readonly string[]): LessonOrigin {
  const trajectoryIds = [...new Set(evidence.map(trajectoryOfRef))].slice(0, MAX_ORIGIN_TRAJECTORIES);
  return { job_id: context.job_id, run: context.run, iteration: context.iteration, operation, trajectory_ids: trajectoryIds };
}

/** The lesson with one more origin (a copy; the input is not changed). */
export function withOrigin<L extends TrackedLesson>(lesson: L, origin: LessonOrigin): L {
  return { ...lesson, provenance: boundedOrigins([...(lesson.provenance ?? []), origin]) };
}

const IDENTIFIER_CHAR = /[A-Za-z0-9_]/;

/** Whether `text` names `tool` as a whole word (tool names are identifiers: `lookup_invoice`). */
function names(text: string, tool: string): number {
  let at = text.indexOf(tool);
  while (at >= 0) {
    const before = at === 0 ? '' : text[at - 1];
    const after = text[at + tool.length] ?? '';
    if (!IDENTIFIER_CHAR.test(before) && !IDENTIFIER_CHAR.test(after)) return at;
    at = text.indexOf(tool, at + 1);
  }
  return -1;
}

/** The tools (among `tools`) a lesson tells the agent to call: those it names, except after "instead of". */
export function prescribedTools(text: string, tools: Iterable<string>): string[] {
  const insteadOf = text.toLowerCase().indexOf('instead of');
  const prescribed = new Set<string>();
  for (const tool of tools) {
    const at = names(text, tool);
    if (at < 0) continue;
    if (insteadOf >= 0 && at > insteadOf) continue;
    prescribed.add(tool);
  }
  return [...prescribed].sort();
}

/** One trajectory of an iteration, as the counters see it. */
export interface LessonObservation {
  trajectory_id: string;
  success: boolean;
  /** The tools it called, in any order. */
  tools: readonly string[];
  /** The query it answered; absent: every lesson's scope is taken to match. */
  query?: string;
}

/** Words that say how to act, not what about: never a lesson's scope. */
export const FUNCTION_WORDS = new Set(
  'a an the and or of to for in on at by with as is are be it its this that these those then than when where which while first last next after before instead use using call calling calls tool tools task tasks query queries question questions request requests like such kind kinds type types answer answers answering always never do does not no yes if'.split(' '),
);

const wordsOf = (text: string) => text.toLowerCase().match(/[a-z0-9_]+/g) ?? [];

/** The words of a lesson that name what it is about: not tool names, not function words, not numbers. */
export function scopeWords(text: string, tools: ReadonlySet<string>): string[] {
  const lowerTools = new Set([...tools].map((tool) => tool.toLowerCase()));
  return [...new Set(wordsOf(text).filter((word) => !FUNCTION_WORDS.has(word) && !lowerTools.has(word) && !/^\d+$/.test(word)))].sort();
}

/** Whether a lesson with these scope words speaks of the query. */
function inScope(scope: readonly string[], query: string | undefined): boolean {
  if (scope.length === 0 || query === undefined) return true;
  const words = new Set(wordsOf(query));
  return scope.some((word) => words.has(word));
}

function countedAt(counters: LessonCounters | undefined, context: UpdateContext): boolean {
  if (!counters) return false;
  return counters.counted_run > context.run || (counters.counted_run === context.run && counters.counted_iteration >= context.iteration);
}

/**
 * Counts an iteration's trajectories into the counters of the lessons they ran with. Each
 * trajectory counts once however often it is listed (keyed by trajectory id), and an iteration a
 * lesson has already counted is not counted again (the (run, iteration) watermark), so a retried
 * or replayed update leaves the counters as one count left them.
 */
export function countLessonOutcomes<L extends TrackedLesson>(lessons: readonly L[], observations: readonly LessonObservation[], context: UpdateContext): L[] {
  const byId = new Map<string, LessonObservation>();
  for (const observation of observations) if (!byId.has(observation.trajectory_id)) byId.set(observation.trajectory_id, observation);
  const unique = [...byId.values()];
  const vocabulary = new Set(unique.flatMap((observation) => observation.tools));
  return lessons.map((lesson) => {
    if (countedAt(lesson.counters, context)) return lesson;
    const prescribed = prescribedTools(lesson.text, vocabulary);
    const scope = scopeWords(lesson.text, vocabulary);
    let helpful = lesson.counters?.helpful ?? 0;
    let harmful = lesson.counters?.harmful ?? 0;
    if (prescribed.length > 0) {
      for (const observation of unique) {
        if (!prescribed.every((tool) => observation.tools.includes(tool)) || !inScope(scope, observation.query)) continue;
        if (observation.success) helpful += 1;
        else harmful += 1;
      }
    }
    return { ...lesson, counters: { helpful, harmful, counted_run: context.run, counted_iteration: context.iteration } };
  });
}

export interface HarmRule {
  /** Followed at least this often before a verdict. */
  minFollowed: number;
  /** Dropped when fewer than this share of the trajectories that followed it succeeded. */
  minHelpfulShare: number;
}

/** The default: 8 followed trajectories, fewer than a quarter of them successes. */
export const DEFAULT_HARM_RULE: HarmRule = { minFollowed: 8, minHelpfulShare: 0.25 };

/** Why the lesson keeps hurting, or null when it does not (yet). */
export function harmReason(lesson: TrackedLesson, rule: HarmRule = DEFAULT_HARM_RULE): string | null {
  const { helpful, harmful } = lesson.counters ?? { helpful: 0, harmful: 0 };
  const followed = helpful + harmful;
  if (followed < rule.minFollowed || helpful / followed >= rule.minHelpfulShare) return null;
  return `keeps hurting: of ${followed} trajectories that followed it, ${harmful} failed and ${helpful} succeeded (under ${Math.round(rule.minHelpfulShare * 100)}% helpful)`;
}

/** The lesson that hurts most (lowest helpful share, then most followed, then id), with why, or null. */
export function mostHarmful<L extends TrackedLesson>(lessons: readonly L[], rule: HarmRule = DEFAULT_HARM_RULE): { lesson: L; reason: string } | null {
  let worst: { lesson: L; reason: string; share: number; followed: number } | null = null;
  for (const lesson of lessons) {
    const reason = harmReason(lesson, rule);
    if (reason === null) continue;
    const { helpful, harmful } = lesson.counters!;
    const followed = helpful + harmful;
    const share = helpful / followed;
    const worse = worst === null || share < worst.share || (share === worst.share && (followed > worst.followed || (followed === worst.followed && lesson.id < worst.lesson.id)));
    if (worse) worst = { lesson, reason, share, followed };
  }
  return worst && { lesson: worst.lesson, reason: worst.reason };
}
