import { z } from 'zod';
import { describeZodError, type Trajectory } from './config';
import { mean } from './statistics';

/**
 * FLOW-006: the policy is text. A policy is a base system prompt plus a library of lessons, each
 * with a weight in [0, 1] that says how confident the training is in it. As in youtu-agent's
 * Training-Free GRPO, an update is a list of typed operations proposed by an LLM; this file
 * validates and applies them. Edits are allowed only on the evidence of trajectories that beat
 * their group (positive advantage), and no weight moves by more than `clip` in one update.
 */

export const LESSON_TEXT_MAX_CHARS = 500;
export const MAX_OPERATIONS_PER_UPDATE = 20;

/** How many times the policy updater asks the optimizer model before it gives up (and the budget reserves). */
export const MAX_OPTIMIZER_ATTEMPTS = 3;

export const LessonSchema = z.object({
  id: z.string().min(1).max(100),
  text: z.string().min(1).max(LESSON_TEXT_MAX_CHARS),
  weight: z.number().min(0).max(1),
});
export type Lesson = z.infer<typeof LessonSchema>;

export const PolicySchema = z.object({
  base_prompt: z.string().min(1),
  lessons: z
    .array(LessonSchema)
    .refine((lessons) => new Set(lessons.map((lesson) => lesson.id)).size === lessons.length, {
      message: 'lesson ids must be unique',
    }),
  version: z.number().int().min(0),
});
export type Policy = z.infer<typeof PolicySchema>;

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

/** What the optimizer LLM must answer with. */
export const LessonOperationsAnswerSchema = z.object({
  operations: z.array(LessonOperationSchema).max(MAX_OPERATIONS_PER_UPDATE),
});
export type LessonOperationsAnswer = z.infer<typeof LessonOperationsAnswerSchema>;

/**
 * What the optimizer is shown: the current lessons and the trajectories it may cite, each with
 * the ref to cite it by and its group-relative advantage.
 */
/** A tool choice: `tool` called first (`after` null) or right after the tool `after`. */
export const DecisionSchema = z.object({ after: z.string().nullable(), tool: z.string() });
export type Decision = z.infer<typeof DecisionSchema>;

/**
 * Contrastive distillation (as Training-Free GRPO): for one group (one query), the best and the
 * worst trajectories by advantage, and the tool choices only one side made.
 */
export const ContrastSchema = z.object({
  query: z.string(),
  best: z.array(z.string().min(1)),
  worst: z.array(z.string().min(1)),
  best_only: z.array(DecisionSchema),
  worst_only: z.array(DecisionSchema),
});
export type Contrast = z.infer<typeof ContrastSchema>;

export const PolicyUpdateEvidenceSchema = z.object({
  lessons: z.array(LessonSchema),
  trajectories: z.array(
    z.object({
      ref: z.string().min(1),
      advantage: z.number(),
      query: z.string(),
      success: z.boolean(),
      steps: z.array(
        z.object({
          action: z.enum(['tool_call', 'final_answer']),
          tool: z.string().nullable(),
          result: z.string().nullable(),
          /** With credit assignment: the step's own advantage (training/advantages.ts stepCredits). */
          credit: z.number().optional(),
        }),
      ),
      final_answer: z.string().nullable(),
    }),
  ),
  contrasts: z.array(ContrastSchema).optional(),
});
export type PolicyUpdateEvidence = z.infer<typeof PolicyUpdateEvidenceSchema>;

export type EvidenceTrajectory = PolicyUpdateEvidence['trajectories'][number];

/**
 * A recorded trajectory as the optimizer is shown it: what each step did and saw, nothing more.
 * A tool-call step names its first tool call (the agent makes one call per step).
 */
export function toEvidenceTrajectory(
  trajectory: Pick<Trajectory, 'steps' | 'success' | 'final_answer'>,
  ref: string,
  advantage: number,
  query: string,
  stepCredits: readonly number[] | null = null,
): EvidenceTrajectory {
  if (stepCredits !== null && stepCredits.length !== trajectory.steps.length) {
    throw new Error(`toEvidenceTrajectory: ${ref} has ${trajectory.steps.length} steps but ${stepCredits.length} step credits`);
  }
  return {
    ref,
    advantage,
    query,
    success: trajectory.success,
    steps: trajectory.steps.map((step, i) => ({
      action: step.action.type,
      tool: step.action.type === 'tool_call' ? (step.tool_calls[0]?.name ?? null) : null,
      result: step.result,
      ...(stepCredits !== null ? { credit: stepCredits[i] } : {}),
    })),
    final_answer: trajectory.final_answer,
  };
}

/** How an operation cites one step of a trajectory, e.g. "T3.s1" (step 1 of T3). */
export function stepRef(trajectoryRef: string, stepIndex: number): string {
  return `${trajectoryRef}.s${stepIndex}`;
}

/**
 * What each citable ref earned: a trajectory ref its advantage, a step ref (`stepRef`) its step
 * credit. An operation citing steps is weighted by what those steps earned, not by the run.
 */
export function evidenceCredits(evidence: Pick<PolicyUpdateEvidence, 'trajectories'>): Record<string, number> {
  const credits: Record<string, number> = {};
  for (const trajectory of evidence.trajectories) {
    credits[trajectory.ref] = trajectory.advantage;
    trajectory.steps.forEach((step, i) => {
      if (step.credit !== undefined) credits[stepRef(trajectory.ref, i)] = step.credit;
    });
  }
  return credits;
}

/** The tool choices of a trajectory, with the step that made each. */
export function trajectoryDecisions(steps: EvidenceTrajectory['steps']): (Decision & { step: number })[] {
  const decisions: (Decision & { step: number })[] = [];
  let previous: string | null = null;
  steps.forEach((step, i) => {
    if (step.action !== 'tool_call' || step.tool === null) return;
    decisions.push({ after: previous, tool: step.tool, step: i });
    previous = step.tool;
  });
  return decisions;
}

const decisionKey = (decision: Decision) => JSON.stringify([decision.after, decision.tool]);

/**
 * One group's contrast: up to `perSide` best trajectories (positive advantage, best first) and
 * worst (negative advantage, worst first), and the decisions made by some of one side and none
 * of the other. Null when the group has no positive or no negative advantage (nothing to contrast).
 */
export function contrastGroup(group: readonly EvidenceTrajectory[], perSide: number): Contrast | null {
  if (!(Number.isInteger(perSide) && perSide >= 1)) {
    throw new Error(`contrastGroup: perSide must be a positive integer, got ${perSide}`);
  }
  const ranked = group.map((trajectory, index) => ({ trajectory, index })).sort((a, b) => b.trajectory.advantage - a.trajectory.advantage || a.index - b.index);
  const best = ranked.filter(({ trajectory }) => trajectory.advantage > 0).slice(0, perSide).map(({ trajectory }) => trajectory);
  const worst = ranked.filter(({ trajectory }) => trajectory.advantage < 0).reverse().slice(0, perSide).map(({ trajectory }) => trajectory);
  if (best.length === 0 || worst.length === 0) return null;
  const decisionsOf = (side: EvidenceTrajectory[]) => {
    const byKey = new Map<string, Decision>();
    for (const trajectory of side) {
      for (const { after, tool } of trajectoryDecisions(trajectory.steps)) byKey.set(decisionKey({ after, tool }), { after, tool });
    }
    return byKey;
  };
  const bestDecisions = decisionsOf(best);
  const worstDecisions = decisionsOf(worst);
  return {
    query: best[0].query,
    best: best.map((trajectory) => trajectory.ref),
    worst: worst.map((trajectory) => trajectory.ref),
    best_only: [...bestDecisions].filter(([key]) => !worstDecisions.has(key)).map(([, decision]) => decision),
    worst_only: [...worstDecisions].filter(([key]) => !bestDecisions.has(key)).map(([, decision]) => decision),
  };
}

export function initialPolicy(basePrompt: string): Policy {
  if (basePrompt.trim() === '') {
    throw new Error(`initialPolicy: base prompt must not be blank, got ${JSON.stringify(basePrompt)}`);
  }
  return { base_prompt: basePrompt, lessons: [], version: 0 };
}

export const LESSONS_HEADER = 'Lessons learned (weight = confidence):';

/** Strongest lessons first so the model reads them first; ties by id (ids are unique) keep the order stable. */
export function renderSystemPrompt(policy: Policy): string {
  if (policy.lessons.length === 0) return policy.base_prompt;
  const lines = [...policy.lessons]
    .sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : 1))
    // One lesson per line: the line format is what the agent (and the simulated model) parses.
    .map((lesson) => `- [${lesson.weight.toFixed(2)}] ${lesson.text.replace(/\s+/g, ' ').trim()}`);
  return `${policy.base_prompt}\n\n${LESSONS_HEADER}\n${lines.join('\n')}`;
}

const EVIDENCE_FENCE = /```json[ \t]*\r?\n([\s\S]*?)\r?\n```/;

/** The fenced JSON block the optimizer prompt carries; `parsePolicyUpdateEvidence` reads it back. */
export function renderPolicyUpdateEvidence(evidence: PolicyUpdateEvidence): string {
  const valid = PolicyUpdateEvidenceSchema.parse(evidence);
  return '```json\n' + JSON.stringify(valid, null, 2) + '\n```';
}

/** Finds the first fenced ```json block in a message and validates it as policy-update evidence. */
export function parsePolicyUpdateEvidence(message: string): PolicyUpdateEvidence {
  const match = EVIDENCE_FENCE.exec(message);
  if (!match) {
    throw new Error('policy-update evidence: no fenced ```json block found in the message');
  }
  let json: unknown;
  try {
    json = JSON.parse(match[1]);
  } catch (error) {
    throw new Error(`policy-update evidence: the json block is not valid JSON (${(error as Error).message})`);
  }
  const parsed = PolicyUpdateEvidenceSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`policy-update evidence: ${describeZodError(parsed.error, json)}`);
  }
  return parsed.data;
}

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

export interface LessonUpdateResult {
  policy: Policy;
  applied: LessonOperation[];
  /** `operation` is exactly what was proposed, which for a malformed proposal is not a valid operation. */
  rejected: { operation: LessonOperation; reason: string }[];
  churn: LessonChurn;
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

  const newVersion = policy.version + 1;
  let lessons: Lesson[] = policy.lessons.map((lesson) => ({ ...lesson }));
  const applied: LessonOperation[] = [];
  const rejected: LessonUpdateResult['rejected'] = [];
  const churn: LessonChurn = { added: 0, edited: 0, reweighted: 0, dropped: 0 };
  let addedCount = 0;

  /** The step a cited set of trajectories earns, or why it earns none. */
  const stepFor = (evidence: string[]): { step: number } | { rejection: string } => {
    const advantages: number[] = [];
    for (const ref of evidence) {
      if (!Object.prototype.hasOwnProperty.call(evidenceAdvantages, ref)) {
        return { rejection: `evidence "${ref}" is not a trajectory of this update` };
      }
      const advantage = evidenceAdvantages[ref];
      if (!(Number.isFinite(advantage) && advantage > 0)) {
        return {
          rejection: `evidence "${ref}" has advantage ${advantage}; lessons may change only on positive-advantage trajectories`,
        };
      }
      advantages.push(advantage);
    }
    // Bigger advantage, bigger step; never beyond clip (the text policy's gradient clip).
    const step = roundWeight(Math.min(opts.clip, opts.learningRate * mean(advantages)));
    return step > 0 ? { step } : { rejection: `evidence advantages are too small to move a weight (step ${step})` };
  };

  const findLesson = (lessonId: string): Lesson | { rejection: string } => {
    const lesson = lessons.find((candidate) => candidate.id === lessonId);
    return (
      lesson ?? {
        rejection: `unknown lesson_id "${lessonId}"; known ids: ${lessons.map((l) => l.id).join(', ') || '(none)'}`,
      }
    );
  };

  const nextLessonId = (): string => {
    let id: string;
    do {
      addedCount += 1;
      id = `L${newVersion}-${addedCount}`;
    } while (lessons.some((lesson) => lesson.id === id));
    return id;
  };

  const reweight = (lesson: Lesson, delta: number): void => {
    lesson.weight = roundWeight(lesson.weight + delta);
    if (lesson.weight === 0) {
      lessons = lessons.filter((candidate) => candidate !== lesson);
      churn.dropped += 1;
    } else {
      churn.reweighted += 1;
    }
  };

  /** Applies one validated operation; returns the operation as applied, or why it was not. */
  const applyOne = (op: LessonOperation): LessonOperation | { rejection: string } => {
    switch (op.op) {
      case 'none':
        return op;
      case 'drop': {
        const lesson = findLesson(op.lesson_id);
        if ('rejection' in lesson) return lesson;
        lessons = lessons.filter((candidate) => candidate !== lesson);
        churn.dropped += 1;
        return op;
      }
      case 'add': {
        const step = stepFor(op.evidence);
        if ('rejection' in step) return step;
        const existing = lessons.find((lesson) => sameText(lesson.text, op.text));
        if (existing) {
          // Proposing a lesson the policy already has is a vote for it, not a duplicate.
          reweight(existing, step.step);
          return { op: 'reweight', lesson_id: existing.id, direction: 'up', evidence: op.evidence };
        }
        lessons.push({ id: nextLessonId(), text: op.text.trim(), weight: step.step });
        churn.added += 1;
        return op;
      }
      case 'edit': {
        const lesson = findLesson(op.lesson_id);
        if ('rejection' in lesson) return lesson;
        const duplicate = lessons.find((other) => other !== lesson && sameText(other.text, op.text));
        if (duplicate) {
          return { rejection: `edit would duplicate lesson "${duplicate.id}"; reweight that lesson instead` };
        }
        const step = stepFor(op.evidence);
        if ('rejection' in step) return step;
        lesson.text = op.text.trim();
        lesson.weight = roundWeight(lesson.weight + step.step);
        churn.edited += 1;
        return op;
      }
      case 'reweight': {
        const lesson = findLesson(op.lesson_id);
        if ('rejection' in lesson) return lesson;
        const step = stepFor(op.evidence);
        if ('rejection' in step) return step;
        reweight(lesson, op.direction === 'up' ? step.step : -step.step);
        return op;
      }
    }
  };

  for (const proposed of operations) {
    const parsed = LessonOperationSchema.safeParse(proposed);
    if (!parsed.success) {
      rejected.push({ operation: proposed, reason: `malformed operation: ${describeZodError(parsed.error, proposed)}` });
      continue;
    }
    const outcome = applyOne(parsed.data);
    if ('rejection' in outcome) rejected.push({ operation: proposed, reason: outcome.rejection });
    else applied.push(outcome);
  }

  if (!applied.some((op) => op.op !== 'none')) {
    return { policy, applied, rejected, churn };
  }

  if (lessons.length > opts.maxLessons) {
    // Keep the strongest; among equal weights keep the older (earlier) lessons.
    const doomed = new Set(
      lessons
        .map((lesson, index) => ({ lesson, index }))
        .sort((a, b) => a.lesson.weight - b.lesson.weight || b.index - a.index)
        .slice(0, lessons.length - opts.maxLessons)
        .map(({ lesson }) => lesson),
    );
    lessons = lessons.filter((lesson) => !doomed.has(lesson));
    churn.dropped += doomed.size;
  }

  return { policy: { base_prompt: policy.base_prompt, lessons, version: newVersion }, applied, rejected, churn };
}

/** Trajectories shown to the optimizer at most in one update (the best evidence first). */
export const MAX_EVIDENCE_TRAJECTORIES = 16;
/** Contrastive evidence: best and worst trajectories shown per group. */
export const CONTRAST_PER_SIDE = 2;

/** A scored trajectory the policy updater may show; `stepCredits` when credit assignment ran. */
export interface EvidenceCandidate {
  trajectory: Pick<Trajectory, 'steps' | 'success' | 'final_answer'>;
  advantage: number;
  query: string;
  stepCredits: readonly number[] | null;
}

/** The most a candidate earned anywhere: its advantage or, with credit assignment, its best step. */
function bestCredit(candidate: EvidenceCandidate): number {
  return Math.max(candidate.advantage, ...(candidate.stepCredits ?? []));
}

/**
 * What the optimizer is shown (training/policy.ts is its one definition, used by the activity and
 * by the pure training loops). `positive_only`: the candidates that earned positive credit, best
 * first: a positive advantage or, with credit assignment, a step with positive credit (a failed
 * run's correct steps). `contrastive`: per group (same query), the best and the worst
 * trajectories and the decisions only one side made, groups with the best winner first.
 */
export function buildPolicyUpdateEvidence(
  lessons: readonly Lesson[],
  candidates: readonly EvidenceCandidate[],
  mode: 'positive_only' | 'contrastive',
  maxTrajectories: number = MAX_EVIDENCE_TRAJECTORIES,
): PolicyUpdateEvidence {
  if (!(Number.isInteger(maxTrajectories) && maxTrajectories >= 1)) {
    throw new Error(`buildPolicyUpdateEvidence: maxTrajectories must be a positive integer, got ${maxTrajectories}`);
  }
  const show = (candidate: EvidenceCandidate, ref: string) =>
    toEvidenceTrajectory(candidate.trajectory, ref, candidate.advantage, candidate.query, candidate.stepCredits);
  if (mode === 'positive_only') {
    const shown = candidates
      .map((candidate, index) => ({ candidate, index, credit: bestCredit(candidate) }))
      .filter(({ credit }) => credit > 0)
      .sort((a, b) => b.credit - a.credit || a.index - b.index)
      .slice(0, maxTrajectories);
    return { lessons: [...lessons], trajectories: shown.map(({ candidate }, i) => show(candidate, `T${i + 1}`)) };
  }

  const groups = new Map<string, EvidenceCandidate[]>();
  for (const candidate of candidates) groups.set(candidate.query, [...(groups.get(candidate.query) ?? []), candidate]);
  const contrasted = [...groups.values()]
    .map((group) => {
      const draft = group.map((candidate, i) => show(candidate, `c${i}`));
      return { group, contrast: contrastGroup(draft, CONTRAST_PER_SIDE) };
    })
    .filter((entry): entry is { group: EvidenceCandidate[]; contrast: Contrast } => entry.contrast !== null)
    .map((entry) => ({ ...entry, top: Math.max(...entry.group.map((candidate) => candidate.advantage)) }))
    .sort((a, b) => b.top - a.top);

  const trajectories: EvidenceTrajectory[] = [];
  const contrasts: Contrast[] = [];
  for (const { group, contrast } of contrasted) {
    const members = [...contrast.best, ...contrast.worst];
    if (trajectories.length + members.length > maxTrajectories) break;
    const refs = new Map(members.map((draftRef, i) => [draftRef, `T${trajectories.length + i + 1}`]));
    for (const draftRef of members) trajectories.push(show(group[Number(draftRef.slice(1))], refs.get(draftRef)!));
    contrasts.push({
      ...contrast,
      best: contrast.best.map((draftRef) => refs.get(draftRef)!),
      worst: contrast.worst.map((draftRef) => refs.get(draftRef)!),
    });
  }
  return { lessons: [...lessons], trajectories, contrasts };
}
