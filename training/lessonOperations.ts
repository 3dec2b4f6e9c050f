import { z } from 'zod';
import { describeZodError } from './zodErrors';
import { LESSON_TEXT_MAX_CHARS, PolicySchema, type Lesson, type Policy } from './policy';
import { mean } from './statistics';

/**
 * How a policy update changes the lessons: as in youtu-agent's Training-Free GRPO, an update is a
 * list of typed operations proposed by an LLM (add, edit, reweight, drop, none); this file
 * validates and applies them. Edits are allowed only on the evidence of trajectories that beat
 * their group (positive advantage), and no weight moves by more than `clip` in one update.
 */

export const MAX_OPERATIONS_PER_UPDATE = 20;

/** How many times the policy updater asks the optimizer model before it gives up (and the budget reserves). */
export const MAX_OPTIMIZER_ATTEMPTS = 3;

const LessonTextSchema = z.string().trim().min(1).max(LESSON_TEXT_MAX_CHARS);
/** Trajectory refs (keys of the advantages map) that justify the operation. */
export const MAX_EVIDENCE_REFS = 1000;
const EvidenceSchema = z.array(z.string().min(1)).min(1).max(MAX_EVIDENCE_REFS);

export const LessonOperationSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), text: LessonTextSchema, evidence: EvidenceSchema }),
  z.object({ op: z.literal('edit'), lesson_id: z.string().min(1), text: LessonTextSchema, evidence: EvidenceSchema }),
  z.object({
    op: z.literal('reweight'),
    lesson_id: z.string().min(1),
    direction: z.enum(['up', 'down']),
    evidence: EvidenceSchema,
  }),
  z.object({ op: z.literal('drop'), lesson_id: z.string().min(1), reason: z.string().max(1000).optional() }),
  z.object({ op: z.literal('none') }),
]);
export type LessonOperation = z.infer<typeof LessonOperationSchema>;
type OperationOf<Op extends LessonOperation['op']> = Extract<LessonOperation, { op: Op }>;

/** What the optimizer LLM must answer with. */
export const LessonOperationsAnswerSchema = z.object({
  operations: z.array(LessonOperationSchema).max(MAX_OPERATIONS_PER_UPDATE),
});
export type LessonOperationsAnswer = z.infer<typeof LessonOperationsAnswerSchema>;

export interface LessonUpdateOptions {
  /** Weight change per unit of mean evidence advantage. */
  learningRate: number;
  /** Largest weight change of one lesson by one operation. */
  clip: number;
  maxLessons: number;
}

export interface LessonChurn {
  added: number;
  edited: number;
  reweighted: number;
  dropped: number;
}

/** Lessons touched by an update, all kinds together (the iteration's lesson_churn). */
export function totalChurn(churn: LessonChurn): number {
  return churn.added + churn.edited + churn.reweighted + churn.dropped;
}

export interface LessonUpdateResult {
  policy: Policy;
  applied: LessonOperation[];
  /** `operation` is exactly what was proposed, which for a malformed proposal is not a valid operation. */
  rejected: { operation: LessonOperation; reason: string }[];
  churn: LessonChurn;
}

/** Why an operation changes nothing. */
interface Rejection {
  rejection: string;
}

/** The lessons while one update applies its operations in order: a copy of the policy's. */
interface LessonDraft {
  lessons: Lesson[];
  churn: LessonChurn;
  /** The version the update makes; lessons it adds are L<version>-<n>. */
  version: number;
  /** Lesson ids handed out so far (the <n> of the last one). */
  added: number;
  /** What each citable ref earned (training/policyEvidence.ts evidenceCredits). */
  evidenceAdvantages: Record<string, number>;
  opts: LessonUpdateOptions;
}

/** Weights are rounded so repeated +/- steps land exactly on 0 and 1 instead of float dust. */
function roundWeight(weight: number): number {
  return Math.round(Math.min(1, Math.max(0, weight)) * 1e9) / 1e9;
}

function sameText(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

function requireUpdateOptions(opts: LessonUpdateOptions): void {
  if (!(Number.isFinite(opts.learningRate) && opts.learningRate > 0)) {
    throw new Error(`applyLessonOperations: learningRate must be a positive number, got ${opts.learningRate}`);
  }
  if (!(opts.clip > 0 && opts.clip <= 1)) {
    throw new Error(`applyLessonOperations: clip must be in (0, 1], got ${opts.clip}`);
  }
  if (!(Number.isInteger(opts.maxLessons) && opts.maxLessons >= 1)) {
    throw new Error(`applyLessonOperations: maxLessons must be a positive integer, got ${opts.maxLessons}`);
  }
}

/** The weight step a cited set of trajectories earns, or why it earns none. */
function evidenceStep(draft: LessonDraft, evidence: readonly string[]): { step: number } | Rejection {
  const advantages: number[] = [];
  for (const ref of evidence) {
    if (!Object.prototype.hasOwnProperty.call(draft.evidenceAdvantages, ref)) {
      return { rejection: `evidence "${ref}" is not a trajectory of this update` };
    }
    const advantage = draft.evidenceAdvantages[ref];
    if (!(Number.isFinite(advantage) && advantage > 0)) {
      return {
        rejection: `evidence "${ref}" has advantage ${advantage}; lessons may change only on positive-advantage trajectories`,
      };
    }
    advantages.push(advantage);
  }
  // Bigger advantage, bigger step; never beyond clip (the text policy's gradient clip).
  const step = roundWeight(Math.min(draft.opts.clip, draft.opts.learningRate * mean(advantages)));
  return step > 0 ? { step } : { rejection: `evidence advantages are too small to move a weight (step ${step})` };
}

function findLesson(draft: LessonDraft, lessonId: string): Lesson | Rejection {
  const lesson = draft.lessons.find((candidate) => candidate.id === lessonId);
  return (
    lesson ?? {
      rejection: `unknown lesson_id "${lessonId}"; known ids: ${draft.lessons.map((l) => l.id).join(', ') || '(none)'}`,
    }
  );
}

function nextLessonId(draft: LessonDraft): string {
  let id: string;
  do {
    draft.added += 1;
    id = `L${draft.version}-${draft.added}`;
  } while (draft.lessons.some((lesson) => lesson.id === id));
  return id;
}

function removeLesson(draft: LessonDraft, lesson: Lesson): void {
  draft.lessons = draft.lessons.filter((candidate) => candidate !== lesson);
  draft.churn.dropped += 1;
}

/** Moves a lesson's weight; one that reaches 0 is dropped. */
function moveWeight(draft: LessonDraft, lesson: Lesson, delta: number): void {
  lesson.weight = roundWeight(lesson.weight + delta);
  if (lesson.weight === 0) removeLesson(draft, lesson);
  else draft.churn.reweighted += 1;
}

/** A new lesson at the evidence's step; proposing a lesson the policy already has is a vote for it, not a duplicate. */
function applyAdd(draft: LessonDraft, op: OperationOf<'add'>): LessonOperation | Rejection {
  const step = evidenceStep(draft, op.evidence);
  if ('rejection' in step) return step;
  const existing = draft.lessons.find((lesson) => sameText(lesson.text, op.text));
  if (existing) {
    moveWeight(draft, existing, step.step);
    return { op: 'reweight', lesson_id: existing.id, direction: 'up', evidence: op.evidence };
  }
  draft.lessons.push({ id: nextLessonId(draft), text: op.text.trim(), weight: step.step });
  draft.churn.added += 1;
  return op;
}

/** New text for a lesson, whose weight rises by the evidence's step; never a copy of another lesson. */
function applyEdit(draft: LessonDraft, op: OperationOf<'edit'>): LessonOperation | Rejection {
  const lesson = findLesson(draft, op.lesson_id);
  if ('rejection' in lesson) return lesson;
  const duplicate = draft.lessons.find((other) => other !== lesson && sameText(other.text, op.text));
  if (duplicate) {
    return { rejection: `edit would duplicate lesson "${duplicate.id}"; reweight that lesson instead` };
  }
  const step = evidenceStep(draft, op.evidence);
  if ('rejection' in step) return step;
  lesson.text = op.text.trim();
  lesson.weight = roundWeight(lesson.weight + step.step);
  draft.churn.edited += 1;
  return op;
}

function applyReweight(draft: LessonDraft, op: OperationOf<'reweight'>): LessonOperation | Rejection {
  const lesson = findLesson(draft, op.lesson_id);
  if ('rejection' in lesson) return lesson;
  const step = evidenceStep(draft, op.evidence);
  if ('rejection' in step) return step;
  moveWeight(draft, lesson, op.direction === 'up' ? step.step : -step.step);
  return op;
}

function applyDrop(draft: LessonDraft, op: OperationOf<'drop'>): LessonOperation | Rejection {
  const lesson = findLesson(draft, op.lesson_id);
  if ('rejection' in lesson) return lesson;
  removeLesson(draft, lesson);
  return op;
}

/** Applies one validated operation; returns the operation as applied, or why it was not. */
function applyOperation(draft: LessonDraft, op: LessonOperation): LessonOperation | Rejection {
  switch (op.op) {
    case 'none':
      return op;
    case 'add':
      return applyAdd(draft, op);
    case 'edit':
      return applyEdit(draft, op);
    case 'reweight':
      return applyReweight(draft, op);
    case 'drop':
      return applyDrop(draft, op);
  }
}

/** Keeps the `maxLessons` strongest; among equal weights keeps the older (earlier) lessons. */
function keepStrongest(draft: LessonDraft, maxLessons: number): void {
  if (draft.lessons.length <= maxLessons) return;
  const doomed = new Set(
    draft.lessons
      .map((lesson, index) => ({ lesson, index }))
      .sort((a, b) => a.lesson.weight - b.lesson.weight || b.index - a.index)
      .slice(0, draft.lessons.length - maxLessons)
      .map(({ lesson }) => lesson),
  );
  draft.lessons = draft.lessons.filter((lesson) => !doomed.has(lesson));
  draft.churn.dropped += doomed.size;
}

/**
 * Applies the operations in order to a copy of the policy. Each operation is validated on its
 * own; a rejected one is reported with its reason and changes nothing. When no operation other
 * than 'none' applies, the input policy object itself is returned, so an empty or wholly bad
 * update leaves the policy byte-identical (same version).
 */
export function applyLessonOperations(
  policy: Policy,
  operations: readonly LessonOperation[],
  evidenceAdvantages: Record<string, number>,
  opts: LessonUpdateOptions,
): LessonUpdateResult {
  requireUpdateOptions(opts);
  const validPolicy = PolicySchema.safeParse(policy);
  if (!validPolicy.success) {
    throw new Error(`applyLessonOperations: invalid policy: ${describeZodError(validPolicy.error, policy)}`);
  }
  const draft: LessonDraft = {
    lessons: policy.lessons.map((lesson) => ({ ...lesson })),
    churn: { added: 0, edited: 0, reweighted: 0, dropped: 0 },
    version: policy.version + 1,
    added: 0,
    evidenceAdvantages,
    opts,
  };
  const applied: LessonOperation[] = [];
  const rejected: LessonUpdateResult['rejected'] = [];
  for (const proposed of operations) {
    const parsed = LessonOperationSchema.safeParse(proposed);
    if (!parsed.success) {
      rejected.push({ operation: proposed, reason: `malformed operation: ${describeZodError(parsed.error, proposed)}` });
      continue;
    }
    const outcome = applyOperation(draft, parsed.data);
    if ('rejection' in outcome) rejected.push({ operation: proposed, reason: outcome.rejection });
    else applied.push(outcome);
  }
  const { churn } = draft;
  if (!applied.some((op) => op.op !== 'none')) return { policy, applied, rejected, churn };
  keepStrongest(draft, opts.maxLessons);
  return { policy: { base_prompt: policy.base_prompt, lessons: draft.lessons, version: draft.version }, applied, rejected, churn };
}
