import { z } from 'zod';
import type { Policy } from './policy';

/**
 * Which checkpoints of a job matter (FLOW-012), as pure functions: the best one to resume or
 * deploy from, the latest one a resume continues from, and the rest, which the checkpoint store
 * deletes. The store (adapters/checkpoints/checkpointStore.ts) and the API (api/trainingJobs.ts)
 * pick a checkpoint with the one `selectCheckpoint` here.
 */

/** A checkpoint's place in its job: run (a resume starts the next run), then iteration. */
export const CheckpointPositionSchema = z.object({ run: z.number().int().min(0), iteration: z.number().int().min(0) });
export type CheckpointPosition = z.infer<typeof CheckpointPositionSchema>;

/** Which checkpoint to use: the best (see `compareBestFirst`), the latest, or one by position. */
export const CheckpointNameSchema = z.enum(['best', 'latest']);
export const CheckpointSelectorSchema = z.union([CheckpointNameSchema, CheckpointPositionSchema]);
export type CheckpointSelector = z.infer<typeof CheckpointSelectorSchema>;

/** What the workflow keeps of its optimizer beside the policy (fields absent in older checkpoints). */
export interface OptimizerState {
  spend_usd?: number;
  success_rates?: number[];
  trajectories?: number;
}

/** A checkpoint's blob: the policy, the optimizer's state, the iteration's metrics (with its evaluation, if one ran). */
export interface CheckpointPayload {
  policy: Policy;
  optimizer_state: OptimizerState;
  metrics: Record<string, unknown>;
}

/**
 * What a checkpoint is ranked by. `eval_score` is the latest held-out evaluation score and wins
 * when present; `score` is the mean training reward. Either may be missing or null.
 */
export interface ScoredCheckpoint extends CheckpointPosition {
  score?: number | null;
  eval_score?: number | null;
}

/** How many of the best checkpoints cleanup keeps by default (the latest is always kept too). */
export const DEFAULT_KEEP_BEST = 5;

const isScore = (value: number | null | undefined): value is number => typeof value === 'number' && Number.isFinite(value);

/**
 * A checkpoint's score: its held-out evaluation score when it has one, else its mean training
 * reward; null when it has neither (or only non-finite numbers), and such a checkpoint ranks last.
 */
export function checkpointScore(checkpoint: Pick<ScoredCheckpoint, 'score' | 'eval_score'>): number | null {
  if (isScore(checkpoint.eval_score)) return checkpoint.eval_score;
  return isScore(checkpoint.score) ? checkpoint.score : null;
}

/** Negative when `a` comes first in (run, iteration) order. */
export function comparePositions(a: CheckpointPosition, b: CheckpointPosition): number {
  return a.run - b.run || a.iteration - b.iteration;
}

/**
 * Best first: the higher score, a scored checkpoint before an unscored one, and on a tie the
 * later (run, iteration). Use with `Array.prototype.sort`.
 */
export function compareBestFirst(a: ScoredCheckpoint, b: ScoredCheckpoint): number {
  const scoreA = checkpointScore(a);
  const scoreB = checkpointScore(b);
  if (scoreA !== scoreB) {
    if (scoreA === null) return 1;
    if (scoreB === null) return -1;
    return scoreB - scoreA;
  }
  return comparePositions(b, a);
}

/** The best checkpoint (see `compareBestFirst`), or undefined for none. */
export function bestCheckpoint<T extends ScoredCheckpoint>(checkpoints: readonly T[]): T | undefined {
  return [...checkpoints].sort(compareBestFirst)[0];
}

/** The checkpoint with the latest (run, iteration), or undefined for none. */
export function latestCheckpoint<T extends CheckpointPosition>(checkpoints: readonly T[]): T | undefined {
  return [...checkpoints].sort((a, b) => comparePositions(b, a))[0];
}

/**
 * The checkpoints cleanup deletes: all but the `keepBest` best and the latest (which a resume
 * needs whatever its score). Returned in (run, iteration) order.
 */
export function checkpointsToDelete<T extends ScoredCheckpoint>(checkpoints: readonly T[], keepBest: number = DEFAULT_KEEP_BEST): T[] {
  if (!Number.isInteger(keepBest) || keepBest < 0) throw new RangeError(`keepBest must be a non-negative integer, got ${keepBest}`);
  const keep = new Set<T>([...checkpoints].sort(compareBestFirst).slice(0, keepBest));
  const latest = latestCheckpoint(checkpoints);
  if (latest) keep.add(latest);
  return checkpoints.filter((checkpoint) => !keep.has(checkpoint)).sort(comparePositions);
}

/** The checkpoint `which` names among a job's checkpoints, or undefined when it has none such. */
export function selectCheckpoint<T extends ScoredCheckpoint>(checkpoints: readonly T[], which: CheckpointSelector): T | undefined {
  if (which === 'best') return bestCheckpoint(checkpoints);
  if (which === 'latest') return latestCheckpoint(checkpoints);
  return checkpoints.find((checkpoint) => checkpoint.run === which.run && checkpoint.iteration === which.iteration);
}

/** "best checkpoint", "checkpoint at run 2, iteration 3": for messages that say which was missing. */
export function describeCheckpointSelector(which: CheckpointSelector): string {
  return typeof which === 'string' ? `${which} checkpoint` : `checkpoint at run ${which.run}, iteration ${which.iteration}`;
}
