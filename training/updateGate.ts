import { hashString, seededRandom } from './statistics';

/**
 * Issue 16 item 7, a cheap gate before a full evaluation (as GEPA does): the updated policy and
 * its parent each run the same small minibatch of validation queries with the same seeds, and the
 * update is accepted only if the candidate is not worse (at least as many successes). A refused
 * update keeps the parent and is recorded. Off by default: the learning benchmark
 * (tests/perf/learningBench.ts) says whether it pays for its episodes.
 */

export interface GateVerdict {
  accepted: boolean;
  parent_successes: number;
  candidate_successes: number;
  /** Episodes per policy. */
  episodes: number;
  reason: string | null;
}

/** The minibatch: `size` distinct indices into the validation queries, a fresh draw per iteration. */
export function gateMinibatch(validationQueries: number, size: number, iteration: number, seed: number): number[] {
  if (!(Number.isInteger(size) && size >= 1)) throw new Error(`gateMinibatch: size must be a positive integer, got ${size}`);
  const indices = Array.from({ length: validationQueries }, (_, i) => i);
  const random = seededRandom(hashString(`gate:${seed}:${iteration}`));
  for (let i = indices.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [indices[i], indices[j]] = [indices[j], indices[i]];
  }
  return indices.slice(0, size).sort((a, b) => a - b);
}

/** Paired outcomes of the same episodes (same queries, same seeds) under the parent and the candidate. */
export function gateVerdict(parent: readonly boolean[], candidate: readonly boolean[]): GateVerdict {
  if (parent.length !== candidate.length) {
    throw new Error(`gateVerdict: the parent ran ${parent.length} episodes and the candidate ${candidate.length}; they must run the same ones`);
  }
  const parentSuccesses = parent.filter(Boolean).length;
  const candidateSuccesses = candidate.filter(Boolean).length;
  const accepted = candidateSuccesses >= parentSuccesses;
  return {
    accepted,
    parent_successes: parentSuccesses,
    candidate_successes: candidateSuccesses,
    episodes: parent.length,
    reason: accepted
      ? null
      : `the update did worse than its parent on the gate's minibatch: ${candidateSuccesses} of ${candidate.length} episodes succeeded against ${parentSuccesses}; the parent was kept`,
  };
}
