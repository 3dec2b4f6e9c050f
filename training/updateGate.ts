import { binomialDistribution } from 'simple-statistics';
import { hashString, seededRandom } from './statistics';

/**
 * Issue 16 item 7, a cheap gate before a full evaluation (as GEPA does): the updated policy and
 * its parent each run the same small minibatch of validation queries with the same seeds, and the
 * update is refused only if the candidate is worse beyond chance: an exact one-sided sign test on
 * the episodes where they differ (losses against wins, p < GATE_ALPHA). A plain "fewer successes"
 * rule refused every update that lost one episode of eight to sampling noise (the learning
 * benchmark: 84 of 600 updates refused, test success 0.13 below no gate). A refused update keeps
 * the parent and is recorded. Off by default: the learning benchmark (tests/perf/learningBench.ts)
 * says whether it pays for its episodes.
 */

/** The sign test's level: a candidate is refused when losing this many of the differing episodes by chance is less likely than this. */
export const GATE_ALPHA = 0.1;

export interface GateVerdict {
  accepted: boolean;
  parent_successes: number;
  candidate_successes: number;
  /** Episodes per policy. */
  episodes: number;
  /** Episodes the parent succeeded in and the candidate failed, and the other way round. */
  losses: number;
  wins: number;
  /** One-sided exact sign test: the chance of at least `losses` of `losses + wins` by chance alone. */
  p_worse: number;
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

/**
 * How a verdict is reached: `sign_test` (worse beyond chance), or `not_fewer` (any loss in
 * successes refuses), the first rule, which jobs that started with it keep on replay.
 */
export type GateRule = 'sign_test' | 'not_fewer';

/** Paired outcomes of the same episodes (same queries, same seeds) under the parent and the candidate. */
export function gateVerdict(parent: readonly boolean[], candidate: readonly boolean[], rule: GateRule = 'sign_test'): GateVerdict {
  if (parent.length !== candidate.length) {
    throw new Error(`gateVerdict: the parent ran ${parent.length} episodes and the candidate ${candidate.length}; they must run the same ones`);
  }
  const parentSuccesses = parent.filter(Boolean).length;
  const candidateSuccesses = candidate.filter(Boolean).length;
  const losses = parent.filter((won, i) => won && !candidate[i]).length;
  const wins = candidate.filter((won, i) => won && !parent[i]).length;
  // The distribution is defined for any whole number of trials >= 1 at p = 0.5, and losses >= 1 here.
  const pWorse = losses === 0 ? 1 : Math.min(1, binomialDistribution(losses + wins, 0.5)!.slice(losses).reduce((sum, p) => sum + p, 0));
  const accepted = rule === 'sign_test' ? pWorse >= GATE_ALPHA : candidateSuccesses >= parentSuccesses;
  return {
    accepted,
    parent_successes: parentSuccesses,
    candidate_successes: candidateSuccesses,
    episodes: parent.length,
    losses,
    wins,
    p_worse: pWorse,
    reason: accepted
      ? null
      : rule === 'sign_test'
        ? `the update did worse than its parent on the gate's minibatch beyond chance: ${candidateSuccesses} of ${candidate.length} episodes succeeded against ${parentSuccesses} (lost ${losses}, won ${wins} of the episodes where they differ; sign test p = ${pWorse.toFixed(3)} < ${GATE_ALPHA}); the parent was kept`
        : `the update did worse than its parent on the gate's minibatch: ${candidateSuccesses} of ${candidate.length} episodes succeeded against ${parentSuccesses}; the parent was kept`,
  };
}
