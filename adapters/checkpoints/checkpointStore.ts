/**
 * Policy checkpoints (FLOW-012): the payload {policy, optimizer_state, metrics} is a JSON blob
 * in the blob store, and the `policy_checkpoints` row says where, with its sha256 and size.
 *
 * - A save writes the blob, then upserts the row, then deletes what `checkpointsToDelete`
 *   (training/checkpoints.ts) says: rows first, then their blobs, then any blob under the job's
 *   prefix no row points at. No row ever points at a missing blob, and a retried save (Temporal
 *   retries activities) writes the same bytes and finishes a cleanup a crash interrupted.
 * - A load verifies the blob's sha256 against the row before anything is parsed; a mismatch is
 *   a `CheckpointIntegrityError`, never a silent load.
 */
import { createHash } from 'node:crypto';
import type { PolicyCheckpoint, Prisma } from '../../generated/prisma/client';
import {
  checkpointScore,
  checkpointsToDelete,
  CheckpointSelectorSchema,
  DEFAULT_KEEP_BEST,
  describeCheckpointSelector,
  selectCheckpoint,
  type CheckpointPayload,
  type CheckpointPosition,
  type CheckpointSelector,
} from '../../training/checkpoints';
import type { Policy } from '../../training/policy';
import type { ProgressRepository } from '../db/progressRepository';
import { BlobNotFoundError, type BlobStore } from './blobStore';

type JsonObject = Record<string, unknown>;

/** A checkpoint to keep: its position, its payload (one shape with what a load returns) and its scores. */
export interface SaveCheckpointInput extends CheckpointPayload {
  job_id: string;
  run: number;
  iteration: number;
  /** Mean training reward. */
  score: number | null;
  /** Latest held-out evaluation score; ranks the checkpoint instead of `score` when present. */
  eval_score?: number | null;
}

export interface LoadedCheckpoint extends CheckpointPosition, CheckpointPayload {
  /** The score the checkpoint is ranked by (evaluation score, else mean training reward). */
  score: number | null;
}

export interface CheckpointSummary {
  run: number;
  iteration: number;
  score: number | null;
  blob_key: string;
  content_hash: string;
  size_bytes: number;
  created_at: string;
}

/** The stored bytes do not match what the row records (or are missing, or are not a payload). */
export class CheckpointIntegrityError extends Error {
  readonly jobId: string;
  readonly run: number;
  readonly iteration: number;
  readonly blobKey: string;
  /** The sha256 the row records. */
  readonly expectedHash: string;
  /** The sha256 of the bytes found; null when there were none. */
  readonly actualHash: string | null;
  /**
   * What a client may be told: the message without where the blob store is (a path on the
   * server or a bucket), which only operators need and the logs keep.
   */
  readonly summary: string;

  constructor(details: { jobId: string; run: number; iteration: number; blobKey: string; expectedHash: string; actualHash: string | null; problem: string; kind: 'missing' | 'altered' | 'not_a_payload' }) {
    super(
      `checkpoint run ${details.run}, iteration ${details.iteration} of job ${details.jobId} failed its integrity check: ${details.problem}; ` +
        `expected sha256 ${details.expectedHash}, found ${details.actualHash ?? 'no blob'}; it was not loaded`,
    );
    this.name = 'CheckpointIntegrityError';
    this.jobId = details.jobId;
    this.run = details.run;
    this.iteration = details.iteration;
    this.blobKey = details.blobKey;
    this.expectedHash = details.expectedHash;
    this.actualHash = details.actualHash;
    const what = { missing: 'its stored payload is missing', altered: 'its stored payload does not match the sha256 its row records', not_a_payload: 'its stored payload is not a checkpoint' }[details.kind];
    this.summary = `checkpoint run ${details.run}, iteration ${details.iteration} of job ${details.jobId} failed its integrity check: ${what}; it was not loaded`;
  }
}

export class CheckpointNotFoundError extends Error {
  constructor(
    readonly jobId: string,
    readonly which: CheckpointSelector,
  ) {
    super(`job ${jobId} has no ${describeCheckpointSelector(which)}`);
    this.name = 'CheckpointNotFoundError';
  }
}

export class InvalidCheckpointSelectorError extends Error {
  constructor(which: unknown) {
    super(`checkpoint selector must be "best", "latest" or {run, iteration} with non-negative integers, got ${JSON.stringify(which)}`);
    this.name = 'InvalidCheckpointSelectorError';
  }
}

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The blob key of a checkpoint: `checkpoints/<job_id>/<run>-<iteration>.json`. */
export function checkpointBlobKey(jobId: string, run: number, iteration: number): string {
  return `${jobPrefix(jobId)}${run}-${iteration}.json`;
}

/** With the trailing slash, so job `a` never matches job `ab`'s blobs. */
function jobPrefix(jobId: string): string {
  if (jobId.length === 0) throw new Error('a checkpoint needs a job id');
  return `checkpoints/${encodeURIComponent(jobId)}/`;
}

const isPosition = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0;
const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

function assertSelector(which: unknown): asserts which is CheckpointSelector {
  if (!CheckpointSelectorSchema.safeParse(which).success) throw new InvalidCheckpointSelectorError(which);
}

function summary(row: PolicyCheckpoint): CheckpointSummary {
  return {
    run: row.run,
    iteration: row.iteration,
    score: row.score,
    blob_key: row.blobKey,
    content_hash: row.contentHash,
    size_bytes: row.sizeBytes,
    created_at: row.createdAt.toISOString(),
  };
}

export interface CheckpointStoreOptions {
  /** How many of the best checkpoints a save keeps besides the latest (default 5). */
  keepBest?: number;
}

export class CheckpointStore {
  private readonly keepBest: number;

  constructor(
    private readonly progress: ProgressRepository,
    readonly blobs: BlobStore,
    options: CheckpointStoreOptions = {},
  ) {
    this.keepBest = options.keepBest ?? DEFAULT_KEEP_BEST;
  }

  /** Writes the checkpoint and cleans up; idempotent, so a retried activity may call it again. */
  async save(input: SaveCheckpointInput): Promise<CheckpointSummary> {
    if (!isPosition(input.run) || !isPosition(input.iteration)) {
      throw new Error(`checkpoint run and iteration must be non-negative integers, got run ${input.run}, iteration ${input.iteration}`);
    }
    const bytes = Buffer.from(JSON.stringify({ policy: input.policy, optimizer_state: input.optimizer_state, metrics: input.metrics }), 'utf8');
    const blobKey = checkpointBlobKey(input.job_id, input.run, input.iteration);
    // Blob before row: a row that exists always has its blob.
    await this.blobs.put(blobKey, bytes);
    const row = await this.progress.saveCheckpoint({
      jobId: input.job_id,
      run: input.run,
      iteration: input.iteration,
      blobKey,
      contentHash: sha256Hex(bytes),
      sizeBytes: bytes.byteLength,
      metrics: input.metrics as Prisma.InputJsonValue,
      score: checkpointScore(input),
    });
    await this.cleanUp(input.job_id);
    return summary(row);
  }

  /**
   * Deletes the checkpoints `checkpointsToDelete` picks: their rows, then their blobs, then any
   * blob under the job's prefix that no row points at (left by a cleanup that crashed between
   * the two). Returns the deleted positions.
   */
  async cleanUp(jobId: string): Promise<{ run: number; iteration: number }[]> {
    const rows = await this.progress.checkpoints(jobId);
    const doomed = checkpointsToDelete(rows, this.keepBest);
    await this.progress.deleteCheckpoints(jobId, doomed);
    for (const row of doomed) await this.blobs.delete(row.blobKey);
    const kept = new Set(rows.filter((row) => !doomed.includes(row)).map((row) => row.blobKey));
    for (const key of await this.blobs.list(jobPrefix(jobId))) {
      if (!kept.has(key)) await this.blobs.delete(key);
    }
    return doomed.map(({ run, iteration }) => ({ run, iteration }));
  }

  /** Reads and verifies a checkpoint; throws `CheckpointNotFoundError` or `CheckpointIntegrityError`. */
  async load(jobId: string, which: CheckpointSelector): Promise<LoadedCheckpoint> {
    assertSelector(which);
    const row = await this.find(jobId, which);
    if (!row) throw new CheckpointNotFoundError(jobId, which);
    const integrityError = (actualHash: string | null, kind: 'missing' | 'altered' | 'not_a_payload', problem: string) =>
      new CheckpointIntegrityError({ jobId, run: row.run, iteration: row.iteration, blobKey: row.blobKey, expectedHash: row.contentHash, actualHash, kind, problem });

    let bytes: Buffer;
    try {
      bytes = await this.blobs.get(row.blobKey);
    } catch (error) {
      if (!(error instanceof BlobNotFoundError)) throw error;
      // A cleanup may have deleted the checkpoint (row, then blob) since it was read.
      if (!(await this.progress.checkpoint(jobId, row))) throw new CheckpointNotFoundError(jobId, which);
      throw integrityError(null, 'missing', `its blob "${row.blobKey}" is missing from ${this.blobs.location}`);
    }
    const actualHash = sha256Hex(bytes);
    if (actualHash !== row.contentHash) {
      throw integrityError(actualHash, 'altered', `blob "${row.blobKey}" in ${this.blobs.location} (${bytes.byteLength} bytes, the row records ${row.sizeBytes}) does not match its recorded hash`);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(bytes.toString('utf8'));
    } catch {
      payload = undefined;
    }
    if (!isObject(payload) || !isObject(payload.policy) || !isObject(payload.optimizer_state) || !isObject(payload.metrics)) {
      throw integrityError(actualHash, 'not_a_payload', `blob "${row.blobKey}" is not a checkpoint payload {policy, optimizer_state, metrics}`);
    }
    // The hash matched the bytes this store wrote from a CheckpointPayload, so the policy is one.
    const policy = payload.policy as Policy;
    return { run: row.run, iteration: row.iteration, policy, optimizer_state: payload.optimizer_state, metrics: payload.metrics, score: row.score };
  }

  /** The job's checkpoints in (run, iteration) order, without payloads. */
  async list(jobId: string): Promise<CheckpointSummary[]> {
    return (await this.progress.checkpoints(jobId)).map(summary);
  }

  private async find(jobId: string, which: CheckpointSelector): Promise<PolicyCheckpoint | undefined> {
    return selectCheckpoint(await this.progress.checkpoints(jobId), which);
  }
}
