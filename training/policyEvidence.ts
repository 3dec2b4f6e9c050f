import { z } from 'zod';
import type { Trajectory } from './trajectory';
import { describeZodError } from './zodErrors';
import { LessonSchema, type Lesson } from './policy';
import { groupTaskKinds } from './taskKinds';
import { boundedArguments, MAX_ARGUMENT_CHARS } from './toolArguments';
import { failurePatterns } from './failurePatterns';

/**
 * What the optimizer is shown to update the policy (the one definition, used by the policy-update
 * activity and by the pure training loops): the current lessons and the trajectories it may
 * cite, each with the ref to cite it by and its group-relative advantage (with credit
 * assignment, each step's credit too), and, contrastive, per group the best and the worst
 * trajectories and the tool choices only one side made. Each step shows its tool call's arguments
 * (bounded, training/toolArguments.ts); the trajectories are grouped into task kinds, by
 * `Task.family` or else by the words their queries share (training/taskKinds.ts); with failure
 * patterns on, the choices common to a kind's failures and absent from its successes
 * (training/failurePatterns.ts). The optimizer prompt carries it as one fenced JSON block
 * (renderPolicyUpdateEvidence; parsePolicyUpdateEvidence reads it back).
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

/** Trajectories shown that are about the same kind of task: a family, or the words their queries share. */
export const TaskKindEvidenceSchema = z.object({
  id: z.string().min(1),
  family: z.string().nullable(),
  words: z.array(z.string().min(1)),
  refs: z.array(z.string().min(1)),
});
export type TaskKindEvidence = z.infer<typeof TaskKindEvidenceSchema>;

/** A choice common to a kind's failures and absent from its successes, cited by those successes. */
export const FailurePatternSchema = z.object({
  task_kind: z.string().min(1),
  after: z.string().nullable(),
  tool: z.string(),
  failures: z.number().int().min(1),
  evidence: z.array(z.string().min(1)).min(1),
});

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
          /** The call's arguments as JSON, at most MAX_ARGUMENT_CHARS (training/toolArguments.ts). */
          arguments: z.string().max(MAX_ARGUMENT_CHARS).nullable().optional(),
          result: z.string().nullable(),
          /** With credit assignment: the step's own advantage (training/advantages.ts stepCredits). */
          credit: z.number().optional(),
        }),
      ),
      final_answer: z.string().nullable(),
    }),
  ),
  contrasts: z.array(ContrastSchema).optional(),
  task_kinds: z.array(TaskKindEvidenceSchema).optional(),
  failure_patterns: z.array(FailurePatternSchema).optional(),
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
      arguments: step.action.type === 'tool_call' && step.tool_calls[0] !== undefined ? boundedArguments(step.tool_calls[0].arguments) : null,
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
  /** The task's `Task.family`, when it names one: evidence is grouped by it. */
  family?: string | null;
}

/** The most a candidate earned anywhere: its advantage or, with credit assignment, its best step. */
function bestCredit(candidate: EvidenceCandidate): number {
  return Math.max(candidate.advantage, ...(candidate.stepCredits ?? []));
}

/** A shown trajectory and the index of the candidate it shows. */
interface Shown {
  index: number;
  trajectory: EvidenceTrajectory;
}

/** The candidates that earned positive credit, best first (ties in candidate order), refs T1, T2, …. */
function positiveOnlyEvidence(candidates: readonly EvidenceCandidate[], maxTrajectories: number): Shown[] {
  return candidates
    .map((candidate, index) => ({ candidate, index, credit: bestCredit(candidate) }))
    .filter(({ credit }) => credit > 0)
    .sort((a, b) => b.credit - a.credit || a.index - b.index)
    .slice(0, maxTrajectories)
    .map(({ candidate, index }, i) => ({ index, trajectory: showCandidate(candidate, `T${i + 1}`) }));
}

function showCandidate(candidate: EvidenceCandidate, ref: string): EvidenceTrajectory {
  return toEvidenceTrajectory(candidate.trajectory, ref, candidate.advantage, candidate.query, candidate.stepCredits);
}

/**
 * Per group (same query), its contrast, groups with the best winner first, as many whole groups
 * as fit in `maxTrajectories`; each group's members are renumbered T1, T2, … in the order shown.
 */
function contrastiveEvidence(candidates: readonly EvidenceCandidate[], maxTrajectories: number): { shown: Shown[]; contrasts: Contrast[] } {
  const groups = new Map<string, number[]>();
  candidates.forEach((candidate, index) => groups.set(candidate.query, [...(groups.get(candidate.query) ?? []), index]));
  const contrasted = [...groups.values()]
    .map((group) => {
      const draft = group.map((index, i) => showCandidate(candidates[index], `c${i}`));
      return { group, contrast: contrastGroup(draft, CONTRAST_PER_SIDE) };
    })
    .filter((entry): entry is { group: number[]; contrast: Contrast } => entry.contrast !== null)
    .map((entry) => ({ ...entry, top: Math.max(...entry.group.map((index) => candidates[index].advantage)) }))
    .sort((a, b) => b.top - a.top);

  const shown: Shown[] = [];
  const contrasts: Contrast[] = [];
  for (const { group, contrast } of contrasted) {
    const members = [...contrast.best, ...contrast.worst];
    if (shown.length + members.length > maxTrajectories) break;
    const refs = new Map(members.map((draftRef, i) => [draftRef, `T${shown.length + i + 1}`]));
    for (const draftRef of members) {
      const index = group[Number(draftRef.slice(1))];
      shown.push({ index, trajectory: showCandidate(candidates[index], refs.get(draftRef)!) });
    }
    contrasts.push({
      ...contrast,
      best: contrast.best.map((draftRef) => refs.get(draftRef)!),
      worst: contrast.worst.map((draftRef) => refs.get(draftRef)!),
    });
  }
  return { shown, contrasts };
}

/**
 * The kinds of task the shown trajectories are about (K1, K2, … in order of first shown ref),
 * grouped over every candidate (training/taskKinds.ts); with `failurePatterns`, the choices
 * common to a kind's negative-advantage candidates and absent from its positive ones.
 */
function kindEvidence(candidates: readonly EvidenceCandidate[], shown: readonly Shown[], withPatterns: boolean): Pick<PolicyUpdateEvidence, 'task_kinds' | 'failure_patterns'> {
  const kinds = groupTaskKinds(candidates);
  const kindOf: number[] = [];
  kinds.forEach((kind, k) => kind.members.forEach((index) => (kindOf[index] = k)));
  const ids = new Map<number, TaskKindEvidence>();
  for (const { index, trajectory } of shown) {
    const k = kindOf[index];
    const entry = ids.get(k) ?? { id: `K${ids.size + 1}`, family: kinds[k].family, words: kinds[k].words, refs: [] };
    entry.refs.push(trajectory.ref);
    ids.set(k, entry);
  }
  const task_kinds = [...ids.values()];
  if (!withPatterns) return { task_kinds };
  const refOf = new Map(shown.map(({ index, trajectory }) => [index, trajectory.ref]));
  const members = candidates.flatMap((candidate, index) => {
    const kind = ids.get(kindOf[index]);
    if (kind === undefined) return [];
    const decisions = trajectoryDecisions(showCandidate(candidate, 'c').steps).map(({ after, tool }) => ({ after, tool }));
    return [{ kind: kind.id, advantage: candidate.advantage, decisions, ref: refOf.get(index) ?? null }];
  });
  return { task_kinds, failure_patterns: failurePatterns(task_kinds.map((kind) => kind.id), members) };
}

/**
 * What the optimizer is shown. `positive_only`: the candidates that earned positive credit, best
 * first: a positive advantage or, with credit assignment, a step with positive credit (a failed
 * run's correct steps). `contrastive`: per group (same query), the best and the worst
 * trajectories and the decisions only one side made, groups with the best winner first. Either
 * way, the task kinds of what is shown and, with `failurePatterns`, the kinds' failure patterns.
 */
export function buildPolicyUpdateEvidence(
  lessons: readonly Lesson[],
  candidates: readonly EvidenceCandidate[],
  mode: 'positive_only' | 'contrastive',
  maxTrajectories: number = MAX_EVIDENCE_TRAJECTORIES,
  options: { failurePatterns?: boolean } = {},
): PolicyUpdateEvidence {
  if (!(Number.isInteger(maxTrajectories) && maxTrajectories >= 1)) {
    throw new Error(`buildPolicyUpdateEvidence: maxTrajectories must be a positive integer, got ${maxTrajectories}`);
  }
  const withPatterns = options.failurePatterns === true;
  if (mode === 'positive_only') {
    const shown = positiveOnlyEvidence(candidates, maxTrajectories);
    return { lessons: [...lessons], trajectories: shown.map((s) => s.trajectory), ...kindEvidence(candidates, shown, withPatterns) };
  }
  const { shown, contrasts } = contrastiveEvidence(candidates, maxTrajectories);
  return { lessons: [...lessons], trajectories: shown.map((s) => s.trajectory), contrasts, ...kindEvidence(candidates, shown, withPatterns) };
}
