import { describeZodError } from './zodErrors';
import { LessonOperationSchema, MAX_EVIDENCE_REFS, type LessonOperation } from './lessonOperations';

/**
 * Issue 16 item 6, two-level consolidation (as Training-Free GRPO): per group the updater proposes
 * lesson operations from that group's trajectories; once per iteration this pass merges every
 * group's proposals into one list of operations against the library, which
 * training/lessonOperations.ts then applies. Everything here is a vote counted over sets and
 * emitted in a fixed order, so the order the groups finished in never decides the policy:
 *
 * - the same new lesson (same text, ignoring case and spacing) proposed by several groups is one
 *   `add` citing all their evidence;
 * - per existing lesson, each group votes for it (an edit or a reweight up) or against it (a
 *   reweight down or a drop); the majority decides, with the evidence of its side; a tie changes
 *   nothing (recorded as a conflict: no group's word outranks another's). Among several edits of
 *   one lesson, the one with the most cited evidence wins (then the smallest text).
 *
 * Evidence refs are trajectory ids (or `<id>.s<step>`), unique across groups, not the per-prompt
 * refs T1, T2…: the proposing activity translates them.
 */

/** One group's proposal: its operations, evidence cited by trajectory id. */
export interface GroupProposal {
  operations: readonly unknown[];
}

export interface Consolidation {
  /** The operations to apply, in a fixed order: drops, edits, reweights, adds. */
  operations: LessonOperation[];
  /** Proposals that were not valid operations, with why (sorted). */
  malformed: string[];
  /** Lessons the groups disagreed on so evenly that nothing changed (sorted). */
  conflicts: string[];
}

const normalText = (text: string) => text.trim().replace(/\s+/g, ' ').toLowerCase();
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const union = (lists: readonly (readonly string[])[]) => [...new Set(lists.flat())].sort(byString).slice(0, MAX_EVIDENCE_REFS);

interface LessonVotes {
  /** Edits, each with the proposals' evidence. */
  edits: { text: string; evidence: string[] }[];
  up: string[][];
  down: string[][];
  drops: (string | undefined)[];
}

function votesFor(byLesson: Map<string, LessonVotes>, id: string): LessonVotes {
  let votes = byLesson.get(id);
  if (!votes) {
    votes = { edits: [], up: [], down: [], drops: [] };
    byLesson.set(id, votes);
  }
  return votes;
}

/** The winning edit: most evidence, then the smallest text; its evidence is every edit's. */
function winningEdit(id: string, edits: LessonVotes['edits']): LessonOperation {
  const best = [...edits].sort((a, b) => b.evidence.length - a.evidence.length || byString(a.text, b.text))[0];
  return { op: 'edit', lesson_id: id, text: best.text, evidence: union(edits.map((edit) => edit.evidence)) };
}

export function consolidateProposals(proposals: readonly GroupProposal[]): Consolidation {
  const adds = new Map<string, { texts: string[]; evidence: string[][] }>();
  const byLesson = new Map<string, LessonVotes>();
  const malformed: string[] = [];
  for (const proposal of proposals) {
    for (const proposed of proposal.operations) {
      const parsed = LessonOperationSchema.safeParse(proposed);
      if (!parsed.success) {
        malformed.push(`malformed operation: ${describeZodError(parsed.error, proposed)}`);
        continue;
      }
      const op = parsed.data;
      if (op.op === 'none') continue;
      if (op.op === 'add') {
        const key = normalText(op.text);
        const entry = adds.get(key) ?? { texts: [], evidence: [] };
        entry.texts.push(op.text.trim());
        entry.evidence.push(op.evidence);
        adds.set(key, entry);
        continue;
      }
      const votes = votesFor(byLesson, op.lesson_id);
      if (op.op === 'edit') votes.edits.push({ text: op.text.trim(), evidence: [...new Set(op.evidence)] });
      else if (op.op === 'reweight') (op.direction === 'up' ? votes.up : votes.down).push(op.evidence);
      else votes.drops.push(op.reason);
    }
  }

  const drops: LessonOperation[] = [];
  const edits: LessonOperation[] = [];
  const reweights: LessonOperation[] = [];
  const conflicts: string[] = [];
  for (const id of [...byLesson.keys()].sort(byString)) {
    const votes = byLesson.get(id)!;
    const forIt = votes.edits.length + votes.up.length;
    const against = votes.down.length + votes.drops.length;
    if (forIt > 0 && forIt === against) {
      conflicts.push(`lesson "${id}": ${forIt} group(s) for it, ${against} against: left as it was`);
      continue;
    }
    if (forIt > against) {
      if (votes.edits.length > 0) edits.push(winningEdit(id, votes.edits));
      if (votes.up.length > 0) reweights.push({ op: 'reweight', lesson_id: id, direction: 'up', evidence: union(votes.up) });
      continue;
    }
    // Against: a drop proposed by any group wins over lowering (the groups that voted against agree it goes).
    if (votes.drops.length > 0) {
      const reasons = [...new Set(votes.drops.filter((reason): reason is string => reason !== undefined))].sort(byString);
      drops.push({ op: 'drop', lesson_id: id, ...(reasons.length > 0 ? { reason: reasons.join('; ').slice(0, 1000) } : {}) });
    } else {
      reweights.push({ op: 'reweight', lesson_id: id, direction: 'down', evidence: union(votes.down) });
    }
  }
  const added: LessonOperation[] = [...adds.keys()].sort(byString).map((key) => {
    const entry = adds.get(key)!;
    return { op: 'add', text: [...entry.texts].sort(byString)[0], evidence: union(entry.evidence) };
  });
  return { operations: [...drops, ...edits, ...reweights, ...added], malformed: malformed.sort(byString), conflicts };
}
