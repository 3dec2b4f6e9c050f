import type { LessonOperation } from './lessonOperations';
import { evidenceCredits, toEvidenceTrajectory, type EvidenceCandidate, type PolicyUpdateEvidence } from './policyEvidence';

/**
 * A group's proposal cites its trajectories as the prompt showed them (T1, T2… and T1.s0 for a
 * step); consolidation (training/consolidation.ts) needs refs that mean the same in every group
 * and that provenance can link to: the trajectory ids. This file translates one into the other.
 */

/** A candidate the updater may show, with the id of its stored trajectory. */
export interface IdentifiedCandidate extends EvidenceCandidate {
  trajectory_id: string;
}

/**
 * Which trajectory each shown ref is: the candidate that, shown under that ref, reads exactly as
 * the evidence does (each candidate used once, the first that fits). Two candidates that read
 * the same are the same evidence; either id is a true source.
 */
export function evidenceSources(evidence: Pick<PolicyUpdateEvidence, 'trajectories'>, candidates: readonly IdentifiedCandidate[]): Map<string, string> {
  const used = new Set<number>();
  const sources = new Map<string, string>();
  for (const shown of evidence.trajectories) {
    const wanted = JSON.stringify(shown);
    const index = candidates.findIndex(
      (candidate, i) => !used.has(i) && JSON.stringify(toEvidenceTrajectory(candidate.trajectory, shown.ref, candidate.advantage, candidate.query, candidate.stepCredits)) === wanted,
    );
    if (index < 0) throw new Error(`evidenceSources: no candidate reads as evidence ${shown.ref}`);
    used.add(index);
    sources.set(shown.ref, candidates[index].trajectory_id);
  }
  return sources;
}

/** "T3" → its trajectory id, "T3.s1" → "<id>.s1"; a ref the prompt did not show stays as it is (and is rejected later). */
export function toTrajectoryRef(ref: string, sources: ReadonlyMap<string, string>): string {
  const step = /^(.*)(\.s\d+)$/.exec(ref);
  const trajectory = step ? step[1] : ref;
  const id = sources.get(trajectory);
  return id === undefined ? ref : `${id}${step ? step[2] : ''}`;
}

/** The operations with their evidence cited by trajectory id. */
export function withTrajectoryRefs(operations: readonly LessonOperation[], sources: ReadonlyMap<string, string>): LessonOperation[] {
  return operations.map((op) => ('evidence' in op ? { ...op, evidence: op.evidence.map((ref) => toTrajectoryRef(ref, sources)) } : op));
}

/** What each trajectory (and step) earned, keyed by trajectory id. */
export function creditsByTrajectory(evidence: Pick<PolicyUpdateEvidence, 'trajectories'>, sources: ReadonlyMap<string, string>): Record<string, number> {
  const credits: Record<string, number> = {};
  for (const [ref, credit] of Object.entries(evidenceCredits(evidence))) credits[toTrajectoryRef(ref, sources)] = credit;
  return credits;
}
