/**
 * Where checkpoint payloads live (FLOW-012): one small interface over a local directory and an
 * S3-compatible bucket. Keys are relative, slash-separated paths such as
 * `checkpoints/<job_id>/<run>-<iteration>.json`; both stores refuse anything else, so a key can
 * never leave the store's root. A put is all or nothing: readers see the old blob or the whole
 * new one, never a part.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';

export interface BlobStore {
  /** Where the blobs are, for messages: a directory or `s3://bucket`. */
  readonly location: string;
  /** Writes the blob, replacing one with the same key, atomically. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** The blob's bytes; a `BlobNotFoundError` when there is none. */
  get(key: string): Promise<Buffer>;
  /** Removes the blob; removing a missing one succeeds (a retried cleanup may do that). */
  delete(key: string): Promise<void>;
  /** Keys starting with `prefix`, sorted; lets a retried cleanup find blobs whose rows it already deleted. */
  list(prefix: string): Promise<string[]>;
}

export class BlobNotFoundError extends Error {
  constructor(
    readonly key: string,
    readonly location: string,
  ) {
    super(`blob "${key}" does not exist in ${location}`);
    this.name = 'BlobNotFoundError';
  }
}

/** Throws unless `key` is a relative path of non-empty segments without `.` or `..`. */
export function assertBlobKey(key: string): void {
  const segments = key.split('/');
  const bad =
    key.length === 0 ||
    key.length > 1024 ||
    key.includes('\\') ||
    key.includes('\0') ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..');
  if (bad) throw new Error(`invalid blob key ${JSON.stringify(key)}: use a relative path of non-empty segments, without "." or ".."`);
}

/** `prefix` is a key's beginning: empty, or a key with or without a trailing slash. */
function assertBlobPrefix(prefix: string): void {
  if (prefix !== '') assertBlobKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
}

/** Unfinished writes: hidden files that `list` and readers never see under a blob's key. */
const TEMP_FILE = /^\..*\.tmp$/;

/** Blobs as files under `root`, each written to a temporary file, synced, then renamed. */
export class FsBlobStore implements BlobStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  get location(): string {
    return `the filesystem blob store at ${this.root}`;
  }

  private pathOf(key: string): string {
    assertBlobKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const target = this.pathOf(key);
    const dir = path.dirname(target);
    await mkdir(dir, { recursive: true });
    const temp = path.join(dir, `.${path.basename(target)}.${randomUUID()}.tmp`);
    try {
      const file = await open(temp, 'wx');
      try {
        await file.writeFile(bytes);
        // The bytes reach the disk before the name does: a crash leaves the old blob or the new one.
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await syncDirectory(dir);
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(key, this.location);
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    assertBlobPrefix(prefix);
    // Walk only the deepest directory the prefix names.
    const dirKey = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const entry of entries) {
        const key = `${keyPrefix}${entry.name}`;
        if (entry.isDirectory()) await walk(path.join(dir, entry.name), `${key}/`);
        else if (entry.isFile() && !TEMP_FILE.test(entry.name) && key.startsWith(prefix)) keys.push(key);
      }
    };
    await walk(dirKey ? path.join(this.root, ...dirKey.split('/')) : this.root, dirKey ? `${dirKey}/` : '');
    return keys.sort();
  }
}

/** Makes a rename durable (POSIX); a no-op where directories cannot be opened for syncing. */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows and some filesystems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    await handle?.close();
  }
}

export interface S3BlobStoreOptions {
  bucket: string;
  /** A configured client; else one is built from `clientConfig`. */
  client?: S3Client;
  clientConfig?: S3ClientConfig;
}

/** Blobs as objects in an S3 (or S3-compatible) bucket. A PUT is atomic by S3's semantics. */
export class S3BlobStore implements BlobStore {
  readonly bucket: string;
  readonly client: S3Client;

  constructor(options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.client = options.client ?? new S3Client(options.clientConfig ?? {});
  }

  get location(): string {
    return `the S3 blob store s3://${this.bucket}`;
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    assertBlobKey(key);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength, ContentType: 'application/octet-stream' }),
    );
  }

  async get(key: string): Promise<Buffer> {
    assertBlobKey(key);
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!response.Body) throw new Error(`S3 returned no body for ${key} in s3://${this.bucket}`);
      return Buffer.from(await response.Body.transformToByteArray());
    } catch (error) {
      if (isNotFound(error)) throw new BlobNotFoundError(key, this.location);
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    assertBlobKey(key);
    try {
      // S3 answers 204 for a missing key too; some compatible servers answer 404.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    assertBlobPrefix(prefix);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }
}

/** A missing key; a missing bucket (also a 404) is a configuration error and is not this. */
function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e?.name === 'NoSuchBucket') return false;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** `.flow/blobs` in the repository, whatever the working directory. */
export const DEFAULT_BLOB_DIR = path.resolve(__dirname, '../../.flow/blobs');

/**
 * The blob store the environment asks for:
 * - `FLOW_BLOB_STORE=fs` (the default): files under `FLOW_BLOB_DIR`, else `.flow/blobs` in the repository;
 * - `FLOW_BLOB_STORE=s3`: the bucket `FLOW_S3_BUCKET`, at `FLOW_S3_ENDPOINT` when set (an
 *   S3-compatible server; path-style addressing unless `FLOW_S3_FORCE_PATH_STYLE=false`), in
 *   `AWS_REGION` (default us-east-1). Credentials come from the SDK's usual chain
 *   (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, instance roles), taken from `env`
 *   when it holds the key pair.
 */
export function blobStoreFromEnv(env: NodeJS.ProcessEnv = process.env): BlobStore {
  const kind = env.FLOW_BLOB_STORE?.trim() || 'fs';
  if (kind === 'fs') return new FsBlobStore(env.FLOW_BLOB_DIR?.trim() ? path.resolve(env.FLOW_BLOB_DIR) : DEFAULT_BLOB_DIR);
  if (kind !== 's3') throw new Error(`FLOW_BLOB_STORE must be "fs" or "s3", got ${JSON.stringify(kind)}`);

  const bucket = env.FLOW_S3_BUCKET?.trim();
  if (!bucket) throw new Error('FLOW_BLOB_STORE=s3 needs FLOW_S3_BUCKET (the bucket checkpoints are written to)');
  const endpoint = env.FLOW_S3_ENDPOINT?.trim() || undefined;
  const pathStyle = env.FLOW_S3_FORCE_PATH_STYLE?.trim().toLowerCase();
  if (pathStyle !== undefined && pathStyle !== '' && pathStyle !== 'true' && pathStyle !== 'false') {
    throw new Error(`FLOW_S3_FORCE_PATH_STYLE must be "true" or "false", got ${JSON.stringify(env.FLOW_S3_FORCE_PATH_STYLE)}`);
  }
  const clientConfig: S3ClientConfig = {
    region: env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || 'us-east-1',
    endpoint,
    forcePathStyle: pathStyle ? pathStyle === 'true' : endpoint !== undefined,
  };
  if (endpoint) {
    // S3-compatible servers often reject the SDK's default CRC checksums; the checkpoint store
    // verifies its own sha256 on every load, so only checksums S3 requires are sent.
    clientConfig.requestChecksumCalculation = 'WHEN_REQUIRED';
    clientConfig.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    clientConfig.credentials = {
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  }
  return new S3BlobStore({ bucket, clientConfig });
}
