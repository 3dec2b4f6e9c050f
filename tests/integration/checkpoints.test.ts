/**
 * The checkpoint manager (FLOW-012) on real servers: both blob stores (a directory, and a local
 * S3-compatible server, s3rver), the checkpoint store on PostgreSQL (hash verification, best-5
 * cleanup, retried cleanups), a checkpoint written by another process, and a real training job
 * whose checkpoints load back with its final policy.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import {
  BlobNotFoundError,
  DEFAULT_BLOB_DIR,
  FsBlobStore,
  S3BlobStore,
  blobStoreFromEnv,
  type BlobStore,
} from '../../adapters/checkpoints/blobStore';
import {
  CheckpointIntegrityError,
  CheckpointNotFoundError,
  CheckpointStore,
  InvalidCheckpointSelectorError,
  checkpointBlobKey,
  sha256Hex,
  type SaveCheckpointInput,
} from '../../adapters/checkpoints/checkpointStore';
import { createPrismaClient, createRepositories, type PrismaClient, type Repositories } from '../../adapters/db';
import { createJobRecordActivities } from '../../activities/jobRecords';
import { startTrainingJob } from '../../api/trainingJobs';
import { PolicySchema } from '../../training/policy';
import { jobRequest, requireEnv, startHarness } from '../support/harness';

const ROOT = path.resolve(__dirname, '../..');
const run = promisify(execFile);

// s3rver ships no types; this is the part of its API the tests use.
interface S3rverServer {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver') as new (options: Record<string, unknown>) => S3rverServer;

const BUCKET = 'flow-checkpoints';
let tmp: string;
let s3rver: S3rverServer;
let s3Env: NodeJS.ProcessEnv;
let prisma: PrismaClient;
let repos: Repositories;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'flow-checkpoints-'));
  s3rver = new S3rver({ address: '127.0.0.1', port: 0, directory: path.join(tmp, 's3rver'), silent: true, configureBuckets: [{ name: BUCKET }] });
  const { port } = await s3rver.run();
  s3Env = {
    FLOW_BLOB_STORE: 's3',
    FLOW_S3_BUCKET: BUCKET,
    FLOW_S3_ENDPOINT: `http://127.0.0.1:${port}`,
    AWS_REGION: 'us-east-1',
    // s3rver's fixed development credentials.
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  };
  prisma = createPrismaClient(requireEnv('DATABASE_URL'), { poolSize: 4 });
  repos = createRepositories(prisma);
});

afterAll(async () => {
  await prisma?.$disconnect();
  await s3rver?.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** A fresh store of each kind: its own directory, or its own prefix-free view of the bucket. */
const stores: [string, () => BlobStore][] = [
  ['fs', () => new FsBlobStore(mkdtempSync(path.join(tmp, 'fs-')))],
  ['s3', () => blobStoreFromEnv(s3Env)],
];

describe.each(stores)('%s blob store', (_kind, makeStore) => {
  test('put, get, overwrite, list by prefix, and delete (idempotent)', async () => {
    const store = makeStore();
    const ns = `t-${randomUUID()}`;
    const bytes = Buffer.from(JSON.stringify({ hello: 'wörld', n: [1, 2, 3] }));
    await store.put(`${ns}/a/1.json`, bytes);
    expect(await store.get(`${ns}/a/1.json`)).toEqual(bytes);
    await store.put(`${ns}/a/1.json`, Buffer.from('second'));
    expect((await store.get(`${ns}/a/1.json`)).toString()).toBe('second');
    await store.put(`${ns}/a/2.json`, new Uint8Array([0, 255, 7]));
    expect([...(await store.get(`${ns}/a/2.json`))]).toEqual([0, 255, 7]);
    await store.put(`${ns}/ab/3.json`, Buffer.from('other job'));
    await store.put(`${ns}/empty`, Buffer.alloc(0));
    expect(await store.get(`${ns}/empty`)).toEqual(Buffer.alloc(0));

    expect(await store.list(`${ns}/a/`)).toEqual([`${ns}/a/1.json`, `${ns}/a/2.json`]);
    expect(await store.list(`${ns}/a`)).toEqual([`${ns}/a/1.json`, `${ns}/a/2.json`, `${ns}/ab/3.json`]);
    expect(await store.list(`${ns}/nothing/`)).toEqual([]);

    await store.delete(`${ns}/a/1.json`);
    await store.delete(`${ns}/a/1.json`);
    await store.delete(`${ns}/never-written`);
    expect(await store.list(`${ns}/a/`)).toEqual([`${ns}/a/2.json`]);
  });

  test('get of a missing blob is a clear BlobNotFoundError', async () => {
    const store = makeStore();
    const key = `t-${randomUUID()}/missing.json`;
    const error = await store.get(key).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BlobNotFoundError);
    expect((error as Error).message).toBe(`blob "${key}" does not exist in ${store.location}`);
  });

  test.each(['', '/abs', 'a/../b', 'a//b', './a', 'a/', 'a\\b'])('refuses the key %p', async (key) => {
    const store = makeStore();
    await expect(store.put(key, Buffer.from('x'))).rejects.toThrow(/^invalid blob key/);
    await expect(store.get(key)).rejects.toThrow(/^invalid blob key/);
    await expect(store.delete(key)).rejects.toThrow(/^invalid blob key/);
  });
});

describe('filesystem blob store', () => {
  test('a put is atomic: readers see the old blob or the new one, never a part, and no temp file is left', async () => {
    const root = mkdtempSync(path.join(tmp, 'atomic-'));
    const store = new FsBlobStore(root);
    const a = Buffer.alloc(8 << 20, 'a');
    const b = Buffer.alloc(8 << 20, 'b');
    await store.put('x/blob', a);
    let writing = true;
    const reads: string[] = [];
    const reader = (async () => {
      while (writing) {
        const bytes = await store.get('x/blob');
        reads.push(bytes.equals(a) ? 'a' : bytes.equals(b) ? 'b' : `torn (${bytes.length} bytes)`);
      }
    })();
    for (let i = 0; i < 6; i++) await store.put('x/blob', i % 2 === 0 ? b : a);
    writing = false;
    await reader;
    expect(reads.length).toBeGreaterThan(0);
    expect(reads.filter((r) => r !== 'a' && r !== 'b')).toEqual([]);
    expect(readdirSync(path.join(root, 'x'))).toEqual(['blob']);
  });

  test('a put that fails leaves neither the blob nor a temp file, and list ignores unfinished writes', async () => {
    const root = mkdtempSync(path.join(tmp, 'fail-'));
    const store = new FsBlobStore(root);
    // The target name is a directory, so the final rename fails after the temp file was written.
    await store.put('x/blob/inner', Buffer.from('keeps x/blob a directory'));
    await expect(store.put('x/blob', Buffer.from('new'))).rejects.toThrow();
    expect(readdirSync(path.join(root, 'x'))).toEqual(['blob']);
    // A crashed writer's temp file is not a blob.
    writeFileSync(path.join(root, 'x', '.other.json.1234.tmp'), 'half');
    expect(await store.list('x/')).toEqual(['x/blob/inner']);
    await expect(store.get('x/other.json')).rejects.toBeInstanceOf(BlobNotFoundError);
  });

  test('blobStoreFromEnv: .flow/blobs in the repository by default, FLOW_BLOB_DIR when set', () => {
    expect(DEFAULT_BLOB_DIR).toBe(path.join(ROOT, '.flow', 'blobs'));
    expect((blobStoreFromEnv({}) as FsBlobStore).root).toBe(DEFAULT_BLOB_DIR);
    expect((blobStoreFromEnv({ FLOW_BLOB_STORE: 'fs', FLOW_BLOB_DIR: tmp }) as FsBlobStore).root).toBe(tmp);
    expect(blobStoreFromEnv({ FLOW_BLOB_STORE: 'fs' }).location).toBe(`the filesystem blob store at ${DEFAULT_BLOB_DIR}`);
  });
});

describe('blobStoreFromEnv for S3', () => {
  test('bucket, endpoint, region and path style from the environment', async () => {
    const store = blobStoreFromEnv(s3Env) as S3BlobStore;
    expect(store).toBeInstanceOf(S3BlobStore);
    expect(store.location).toBe(`the S3 blob store s3://${BUCKET}`);
    expect(await store.client.config.region()).toBe('us-east-1');
    expect(store.client.config.forcePathStyle).toBe(true);
    const endpoint = await store.client.config.endpoint!();
    expect(`${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}`).toBe(s3Env.FLOW_S3_ENDPOINT);
    const aws = blobStoreFromEnv({ FLOW_BLOB_STORE: 's3', FLOW_S3_BUCKET: 'b', AWS_REGION: 'eu-west-1' }) as S3BlobStore;
    expect(await aws.client.config.region()).toBe('eu-west-1');
    expect(aws.client.config.forcePathStyle).toBe(false);
    const virtualHosted = blobStoreFromEnv({ ...s3Env, FLOW_S3_FORCE_PATH_STYLE: 'false' }) as S3BlobStore;
    expect(virtualHosted.client.config.forcePathStyle).toBe(false);
  });

  test('refuses an unknown store, a missing bucket and a bad path-style flag', () => {
    expect(() => blobStoreFromEnv({ FLOW_BLOB_STORE: 'gcs' })).toThrow('FLOW_BLOB_STORE must be "fs" or "s3", got "gcs"');
    expect(() => blobStoreFromEnv({ FLOW_BLOB_STORE: 's3' })).toThrow('FLOW_BLOB_STORE=s3 needs FLOW_S3_BUCKET');
    expect(() => blobStoreFromEnv({ ...s3Env, FLOW_S3_FORCE_PATH_STYLE: 'yes' })).toThrow('FLOW_S3_FORCE_PATH_STYLE must be "true" or "false", got "yes"');
  });

  test('a bucket that does not exist is an error, not a missing blob', async () => {
    const store = blobStoreFromEnv({ ...s3Env, FLOW_S3_BUCKET: `no-such-bucket-${Date.now()}` });
    for (const attempt of [store.get('a/b'), store.delete('a/b'), store.put('a/b', Buffer.from('x'))]) {
      const error = await attempt.then(() => undefined, (e: unknown) => e);
      expect(error).toMatchObject({ name: 'NoSuchBucket' });
    }
    // Creating it makes the same store work.
    await (store as S3BlobStore).client.send(new CreateBucketCommand({ Bucket: (store as S3BlobStore).bucket }));
    await store.put('a/b', Buffer.from('ok'));
    expect((await store.get('a/b')).toString()).toBe('ok');
  });
});

async function newJob(): Promise<string> {
  const id = `ckpt-${randomUUID()}`;
  await repos.jobs.create({ id, agentId: 'agent-c', tenantId: 'tenant-c', ownerId: 'carol', priority: 'P2', config: {}, budgetUsd: 1 });
  return id;
}

const checkpoint = (job_id: string, iteration: number, score: number | null, extra: Partial<SaveCheckpointInput> = {}): SaveCheckpointInput => ({
  job_id,
  run: 1,
  iteration,
  policy: { version: iteration, base_prompt: 'Be helpful.', lessons: [{ id: `L${iteration}`, text: `lesson ${iteration}`, weight: 0.5 }] },
  optimizer_state: { spend_usd: iteration / 10, success_rates: Array.from({ length: iteration }, (_, i) => i / 10), trajectories: iteration * 8 },
  metrics: { mean_reward: score, success_rate: 0.5 },
  score,
  ...extra,
});

describe.each(stores)('checkpoint store on PostgreSQL with the %s blob store', (kind, makeStore) => {
  test('save writes the blob and a row with its sha256 and size; load verifies and returns the payload', async () => {
    const blobs = makeStore();
    const store = new CheckpointStore(repos.progress, blobs);
    const jobId = await newJob();
    const input = checkpoint(jobId, 1, 0.25);
    const saved = await store.save(input);
    const key = checkpointBlobKey(jobId, 1, 1);
    expect(key).toBe(`checkpoints/${jobId}/1-1.json`);
    const bytes = await blobs.get(key);
    expect(saved).toMatchObject({ run: 1, iteration: 1, score: 0.25, blob_key: key, content_hash: sha256Hex(bytes), size_bytes: bytes.length });
    expect(JSON.parse(bytes.toString())).toEqual({ policy: input.policy, optimizer_state: input.optimizer_state, metrics: input.metrics });

    const row = (await repos.progress.checkpoints(jobId))[0];
    expect(row).toMatchObject({ blobKey: key, contentHash: sha256Hex(bytes), sizeBytes: bytes.length, score: 0.25, metrics: input.metrics });

    const expected = { run: 1, iteration: 1, policy: input.policy, optimizer_state: input.optimizer_state, metrics: input.metrics, score: 0.25 };
    expect(await store.load(jobId, 'latest')).toEqual(expected);
    expect(await store.load(jobId, 'best')).toEqual(expected);
    expect(await store.load(jobId, { run: 1, iteration: 1 })).toEqual(expected);
    expect(await store.list(jobId)).toEqual([saved]);
  });

  test('a retried save writes the same thing: one row, the same bytes', async () => {
    const blobs = makeStore();
    const store = new CheckpointStore(repos.progress, blobs);
    const jobId = await newJob();
    const first = await store.save(checkpoint(jobId, 3, 0.5));
    const again = await store.save(checkpoint(jobId, 3, 0.5));
    expect(again).toEqual({ ...first, created_at: again.created_at });
    const rows = await repos.progress.checkpoints(jobId);
    expect(rows).toHaveLength(1);
    expect(await blobs.list(`checkpoints/${jobId}/`)).toEqual([first.blob_key]);
  });

  test('a corrupted blob is a CheckpointIntegrityError naming the job, checkpoint and both hashes; nothing is loaded', async () => {
    const blobs = makeStore();
    const store = new CheckpointStore(repos.progress, blobs);
    const jobId = await newJob();
    const saved = await store.save(checkpoint(jobId, 2, 0.4));
    const bytes = await blobs.get(saved.blob_key);
    // One byte changed inside the policy: still valid JSON, so only the hash can tell.
    const corrupt = Buffer.from(bytes.toString().replace('lesson 2', 'lesson 3'));
    expect(corrupt.length).toBe(bytes.length);
    await blobs.put(saved.blob_key, corrupt);
    const actual = sha256Hex(corrupt);

    let loaded: unknown;
    const error = await store.load(jobId, 'latest').then(
      (value) => {
        loaded = value;
      },
      (e: unknown) => e,
    );
    expect(loaded).toBeUndefined();
    expect(error).toBeInstanceOf(CheckpointIntegrityError);
    expect(error).toMatchObject({ jobId, run: 1, iteration: 2, blobKey: saved.blob_key, expectedHash: saved.content_hash, actualHash: actual });
    const message = (error as Error).message;
    expect(message).toContain(`checkpoint run 1, iteration 2 of job ${jobId} failed its integrity check`);
    expect(message).toContain(`expected sha256 ${saved.content_hash}, found ${actual}`);
    expect(message).toContain(saved.blob_key);
    expect(message).toContain('it was not loaded');

    // Through the activity it fails at once: retrying cannot repair a corrupt blob.
    const activities = createJobRecordActivities(repos, store);
    const failure = await activities.loadCheckpoint({ job_id: jobId, which: 'best' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'CheckpointIntegrityError', nonRetryable: true, message });
    expect((failure as ApplicationFailure).details).toEqual([
      {
        job_id: jobId,
        run: 1,
        iteration: 2,
        blob_key: saved.blob_key,
        expected_sha256: saved.content_hash,
        actual_sha256: actual,
        // What the API may tell a client: no blob store location.
        summary: `checkpoint run 1, iteration 2 of job ${jobId} failed its integrity check: its stored payload does not match the sha256 its row records; it was not loaded`,
      },
    ]);

    // Bytes with the right hash but not a payload (a bad writer) are refused too.
    for (const text of ['[1,2,3]', '{"policy": {}, "optimizer_state": {}', '{"policy": {}, "optimizer_state": {}, "metrics": null}']) {
      const notPayload = Buffer.from(text);
      await blobs.put(saved.blob_key, notPayload);
      await prisma.policyCheckpoint.update({ where: { jobId_run_iteration: { jobId, run: 1, iteration: 2 } }, data: { contentHash: sha256Hex(notPayload) } });
      await expect(store.load(jobId, 'latest')).rejects.toThrow(/is not a checkpoint payload \{policy, optimizer_state, metrics\}/);
    }
  });

  test('a missing blob, a missing checkpoint and a bad selector are clear, non-retryable errors', async () => {
    const blobs = makeStore();
    const store = new CheckpointStore(repos.progress, blobs);
    const activities = createJobRecordActivities(repos, store);
    const jobId = await newJob();

    await expect(store.load(jobId, 'best')).rejects.toThrow(new CheckpointNotFoundError(jobId, 'best'));
    await expect(store.load(jobId, 'latest')).rejects.toThrow(`job ${jobId} has no latest checkpoint`);
    await expect(store.load(jobId, { run: 1, iteration: 7 })).rejects.toThrow(`job ${jobId} has no checkpoint at run 1, iteration 7`);
    await expect(activities.loadCheckpoint({ job_id: jobId, which: 'latest' })).rejects.toMatchObject({ type: 'CheckpointNotFound', nonRetryable: true });
    await expect(activities.loadCheckpoint({ job_id: jobId, which: { run: -1 } as never })).rejects.toMatchObject({
      type: 'InvalidCheckpointSelector',
      nonRetryable: true,
    });
    await expect(store.load(jobId, 'first' as never)).rejects.toBeInstanceOf(InvalidCheckpointSelectorError);
    await expect(store.save(checkpoint(jobId, -1, 0.3))).rejects.toThrow('checkpoint run and iteration must be non-negative integers, got run 1, iteration -1');
    await expect(store.save(checkpoint('', 1, 0.3))).rejects.toThrow('a checkpoint needs a job id');

    const saved = await store.save(checkpoint(jobId, 1, 0.3));
    await blobs.delete(saved.blob_key);
    const error = await store.load(jobId, 'latest').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointIntegrityError);
    expect(error).toMatchObject({ expectedHash: saved.content_hash, actualHash: null });
    expect((error as Error).message).toContain(`its blob "${saved.blob_key}" is missing from ${blobs.location}`);
    await expect(activities.loadCheckpoint({ job_id: jobId, which: 'latest' })).rejects.toMatchObject({ type: 'CheckpointIntegrityError', nonRetryable: true });
    // Other failures (here a store that cannot be reached) stay retryable.
    const unreachable: BlobStore = {
      location: 'nowhere',
      put: () => Promise.resolve(),
      get: () => Promise.reject(new Error('ECONNRESET')),
      delete: () => Promise.resolve(),
      list: () => Promise.resolve([]),
    };
    const broken = createJobRecordActivities(repos, new CheckpointStore(repos.progress, unreachable));
    await expect(broken.loadCheckpoint({ job_id: jobId, which: 'latest' })).rejects.toThrow('ECONNRESET');
  });

  test('cleanup keeps exactly the best 5 and the latest; deleted checkpoints lose row and blob', async () => {
    const blobs = makeStore();
    const store = new CheckpointStore(repos.progress, blobs);
    const jobId = await newJob();
    // Iteration 8 is the latest and the worst; 3 and 5 rank 6th and 7th.
    const scores = [0.5, 0.9, 0.3, 0.7, 0.35, 0.8, 0.6, 0.1];
    for (const [i, score] of scores.entries()) await store.save(checkpoint(jobId, i + 1, score));

    const kept = [1, 2, 4, 6, 7, 8];
    expect((await store.list(jobId)).map((c) => c.iteration)).toEqual(kept);
    expect(await blobs.list(`checkpoints/${jobId}/`)).toEqual(kept.map((i) => checkpointBlobKey(jobId, 1, i)).sort());
    for (const i of kept) expect((await store.load(jobId, { run: 1, iteration: i })).policy).toEqual(checkpoint(jobId, i, null).policy);
    for (const i of [3, 5]) {
      await expect(blobs.get(checkpointBlobKey(jobId, 1, i))).rejects.toBeInstanceOf(BlobNotFoundError);
      await expect(store.load(jobId, { run: 1, iteration: i })).rejects.toBeInstanceOf(CheckpointNotFoundError);
    }
    expect((await store.load(jobId, 'best')).iteration).toBe(2);
    expect((await store.load(jobId, 'latest')).iteration).toBe(8);

    // A held-out evaluation score ranks a checkpoint instead of its training reward.
    await store.save(checkpoint(jobId, 9, 0.05, { eval_score: 0.95 }));
    expect((await store.load(jobId, 'best'))).toMatchObject({ iteration: 9, score: 0.95 });
    // 9 is best and latest; 8 is no longer latest and not in the best 5 (0.95, 0.9, 0.8, 0.7, 0.6).
    expect((await store.list(jobId)).map((c) => c.iteration)).toEqual([2, 4, 6, 7, 9]);
    expect(await blobs.list(`checkpoints/${jobId}/`)).toHaveLength(5);
  });

  test('a cleanup interrupted between rows and blobs is finished by the retried save', async () => {
    const blobs = makeStore();
    let failDeletes = false;
    const flaky: BlobStore = {
      location: blobs.location,
      put: (key, bytes) => blobs.put(key, bytes),
      get: (key) => blobs.get(key),
      list: (prefix) => blobs.list(prefix),
      delete: (key) => (failDeletes ? Promise.reject(new Error('worker crashed mid-cleanup')) : blobs.delete(key)),
    };
    const store = new CheckpointStore(repos.progress, flaky, { keepBest: 1 });
    const jobId = await newJob();
    await store.save(checkpoint(jobId, 1, 0.9));
    await store.save(checkpoint(jobId, 2, 0.2));
    failDeletes = true;
    await expect(store.save(checkpoint(jobId, 3, 0.3))).rejects.toThrow('worker crashed mid-cleanup');
    // Rows went first: 2's row is gone, its blob is left, and no row points at a missing blob.
    expect((await store.list(jobId)).map((c) => c.iteration)).toEqual([1, 3]);
    expect(await blobs.list(`checkpoints/${jobId}/`)).toHaveLength(3);
    for (const c of await store.list(jobId)) await expect(store.load(jobId, c)).resolves.toMatchObject({ iteration: c.iteration });

    failDeletes = false;
    await store.save(checkpoint(jobId, 3, 0.3));
    expect(await blobs.list(`checkpoints/${jobId}/`)).toEqual([checkpointBlobKey(jobId, 1, 1), checkpointBlobKey(jobId, 1, 3)]);
  });

  test('a checkpoint written by another worker process loads in this one', async () => {
    const env = kind === 'fs' ? { FLOW_BLOB_STORE: 'fs', FLOW_BLOB_DIR: mkdtempSync(path.join(tmp, 'shared-')) } : s3Env;
    const jobId = await newJob();
    const input = checkpoint(jobId, 4, 0.45, { run: 2 });
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tests/support/checkpointWriter.ts'), JSON.stringify(input)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    const written = JSON.parse(stdout.trim().split('\n').pop()!) as { pid: number; saved: { blob_key: string; content_hash: string } };
    expect(written.pid).not.toBe(process.pid);
    expect(written.saved.blob_key).toBe(checkpointBlobKey(jobId, 2, 4));

    const store = new CheckpointStore(repos.progress, blobStoreFromEnv(env));
    expect(await store.load(jobId, 'latest')).toEqual({
      run: 2,
      iteration: 4,
      policy: input.policy,
      optimizer_state: input.optimizer_state,
      metrics: input.metrics,
      score: 0.45,
    });
    if (kind === 'fs') {
      const file = path.join(env.FLOW_BLOB_DIR!, 'checkpoints', jobId, '2-4.json');
      expect(sha256Hex(readFileSync(file))).toBe(written.saved.content_hash);
    }
  });
});

describe('a real training job', () => {
  const saved = process.env.FLOW_BLOB_DIR;
  let blobDir: string;
  beforeAll(() => {
    // The harness's worker takes its blob store from the environment when it is created.
    blobDir = mkdtempSync(path.join(tmp, 'job-'));
    process.env.FLOW_BLOB_DIR = blobDir;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.FLOW_BLOB_DIR;
    else process.env.FLOW_BLOB_DIR = saved;
  });

  test('checkpoints every iteration; they load back and the last holds the final policy', async () => {
    const h = await startHarness();
    try {
      const request = jobRequest({ config: { iterations: 2, batch_size: 2, group_size: 4, checkpoint_interval: 1 } });
      const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
      const result = await h.run(h.client.workflow.getHandle(jobId).result());
      expect(result.status).toBe('completed');

      const store = new CheckpointStore(h.repos.progress, blobStoreFromEnv());
      const list = await store.list(jobId);
      expect(list.map((c) => [c.run, c.iteration])).toEqual([
        [1, 1],
        [1, 2],
      ]);
      for (const c of list) expect(existsSync(path.join(blobDir, ...c.blob_key.split('/')))).toBe(true);

      const latest = await store.load(jobId, 'latest');
      expect(latest.iteration).toBe(2);
      expect(PolicySchema.parse(latest.policy)).toEqual(result.policy);
      expect(latest.optimizer_state).toMatchObject({ spend_usd: result.spend_usd, trajectories: result.trajectories });
      // The blob holds the workflow's numbers exactly; the JSONB copy in training_iterations may
      // differ in the last digit, so that comparison is approximate.
      const iterations = await h.repos.progress.iterations(jobId);
      // Numbers approximately; the rest (the invalid-output counts by kind) exactly.
      const closeTo = (metrics: unknown) =>
        Object.fromEntries(Object.entries(metrics as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'number' ? expect.closeTo(v, 12) : v]));
      // The last iteration was also evaluated on held-out queries: the evaluation is kept with
      // its metrics, and its held-out reward is the checkpoint's score.
      const { evaluation, ...lastMetrics } = latest.metrics as Record<string, unknown>;
      expect(lastMetrics).toEqual(closeTo(iterations[1].metrics));
      const [stored] = await h.repos.progress.evaluations(jobId);
      expect(evaluation).toMatchObject({ iteration: 2, kind: 'scheduled', job_id: jobId });
      // (The score column went through Prisma, which sends floats with 16 significant digits.)
      expect(latest.score).toBeCloseTo((stored.summary as { current: { avg_reward: { value: number } } }).current.avg_reward.value, 12);

      const first = await store.load(jobId, { run: 1, iteration: 1 });
      expect(first.metrics).toEqual(closeTo(iterations[0].metrics));
      expect(first.score).toBeCloseTo(first.metrics.mean_reward as number, 12);
      expect(PolicySchema.parse(first.policy).version).toBeLessThanOrEqual(PolicySchema.parse(latest.policy).version);
      const best = await store.load(jobId, 'best');
      expect(best.score).toBe(Math.max(first.score!, latest.score!));

      // Status reads the same best checkpoint.
      const status = await h.repos.jobs.getWithBestCheckpoint(jobId);
      expect(status?.checkpoints[0]).toMatchObject({ run: best.run, iteration: best.iteration, score: best.score });
    } finally {
      await h.close();
    }
  });
});
