/**
 * The local model's setup-time verification (`npm run setup:local-model`, issue 13): the assembled
 * GGUF must have the pinned size, sha256 and architecture (workers/localModelFiles.ts), and a file
 * that passes gets the stamp the worker reads instead of hashing 1.1 GB again. Dev tooling: the
 * worker only reads the stamp (isVerified).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync, writeFileSync } from 'node:fs';
import {
  LOCAL_MODEL,
  ModelVerificationError,
  readGgufHeader,
  verifiedStampPath,
  type ExpectedModel,
  type GgufHeader,
  type VerifiedStamp,
} from '../localModelFiles';

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Refuses a file that is not the expected model, with one line that says what differs:
 * size first (cheap), then sha256, then the GGUF header.
 */
export async function verifyModelFile(file: string, expected: ExpectedModel = LOCAL_MODEL): Promise<GgufHeader> {
  if (!existsSync(file)) throw new ModelVerificationError(`${file} does not exist; run npm run setup:local-model`);
  const size = statSync(file).size;
  if (size !== expected.size) throw new ModelVerificationError(`${file} has ${size} bytes, expected ${expected.size}: refusing it`);
  const digest = await sha256File(file);
  if (digest !== expected.sha256) throw new ModelVerificationError(`${file} has sha256 ${digest}, expected ${expected.sha256}: refusing it`);
  const header = readGgufHeader(file);
  if (header.architecture !== expected.architecture) {
    throw new ModelVerificationError(`${file} is a GGUF of architecture ${header.architecture}, expected ${expected.architecture}: refusing it`);
  }
  return header;
}

export function writeVerifiedStamp(file: string, sha256: string): void {
  const stat = statSync(file);
  writeFileSync(verifiedStampPath(file), JSON.stringify({ sha256, size: stat.size, mtimeMs: stat.mtimeMs } satisfies VerifiedStamp) + '\n');
}
