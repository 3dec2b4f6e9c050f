/**
 * Where the `flow` command line finds the API and its credentials: the global `--url` and
 * `--token` options, else FLOW_API_URL and FLOW_TOKEN; and the repository files it reads.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { usage } from './errors';
import type { CliIo } from './io';

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** Where the dev stack writes its HS256 secret; `flow token` reads it when FLOW_JWT_SECRET is unset. */
export const DEV_SECRET_FILE = path.join(REPO_ROOT, '.flow', 'jwt-secret');

export function resolvedUrl(program: Command, io: CliIo): string {
  const url = (program.opts().url as string | undefined) ?? io.env.FLOW_API_URL ?? DEFAULT_API_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`--url ${JSON.stringify(url)} is not a URL (e.g. ${DEFAULT_API_URL})`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usage(`--url ${JSON.stringify(url)} must be http:// or https://`);
  return url;
}

export function resolvedToken(program: Command, io: CliIo): string {
  const token = (program.opts().token as string | undefined) ?? io.env.FLOW_TOKEN;
  if (!token) throw usage('no token: set FLOW_TOKEN or pass --token (a development token: export FLOW_TOKEN=$(flow token))');
  return token;
}

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
