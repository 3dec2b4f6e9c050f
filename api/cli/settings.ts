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
  const given = program.opts().url as string | undefined;
  const url = given ?? io.env.FLOW_API_URL ?? DEFAULT_API_URL;
  // Named as the user set it: a bad FLOW_API_URL is not a "--url" they never passed.
  const source = given !== undefined ? '--url' : io.env.FLOW_API_URL !== undefined ? 'FLOW_API_URL' : 'the default URL';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`${source} ${JSON.stringify(url)} is not a URL (e.g. ${DEFAULT_API_URL})`);
  }
  if (parsed.username || parsed.password) {
    // Not echoed: the password would end up in the terminal's scrollback and logs.
    throw usage(`${source} must not carry a user name or password (the API takes a bearer token: FLOW_TOKEN)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usage(`${source} ${JSON.stringify(url)} must be http:// or https://`);
  return url;
}

export function resolvedToken(program: Command, io: CliIo): string {
  // Trimmed: a token read from a file (a Kubernetes Secret made --from-file) ends in a newline.
  const token = ((program.opts().token as string | undefined) ?? io.env.FLOW_TOKEN)?.trim();
  if (!token) throw usage('no token: set FLOW_TOKEN or pass --token (a development token: export FLOW_TOKEN=$(flow token))');
  // What an HTTP header can carry (a JWT is base64url and dots): not echoed, it is a credential.
  if (!/^[\x21-\x7e]+$/.test(token)) throw usage('the token has characters a bearer token cannot have (a space, a line break or a non-ASCII character): check FLOW_TOKEN or --token');
  return token;
}

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
