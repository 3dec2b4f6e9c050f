/** `flow token`: mints an HS256 development token; prints only the token. */
import { existsSync, readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { authConfigFromEnv, idClaimProblem, mintToken } from '../../auth';
import type { RegisterCommand } from '../command';
import { isErrorLike, usage } from '../errors';
import { DEV_SECRET_FILE } from '../settings';

interface TokenOptions {
  subject?: string;
  tenant: string;
  roles: string;
  expiresIn: string;
}

export const registerToken: RegisterCommand = (program, { io }) => {
  program
    .command('token')
    .description('mint an HS256 development token from FLOW_JWT_SECRET or .flow/jwt-secret; prints only the token')
    .option('--subject <sub>', 'the caller (default $USER)')
    .option('--tenant <tenant>', 'the tenant claim', 'default')
    .option('--roles <a,b>', 'comma-separated roles', 'admin')
    .option('--expires-in <span>', 'a time span such as 30m, 12h, 7d, or seconds', '12h')
    .action(async (options: TokenOptions) => {
      io.stdout.write(`${await mintDevToken(options, io.env)}\n`);
    });
};

async function mintDevToken(options: TokenOptions, env: NodeJS.ProcessEnv): Promise<string> {
  let secret = env.FLOW_JWT_SECRET;
  if (!secret && existsSync(DEV_SECRET_FILE)) {
    try {
      secret = readFileSync(DEV_SECRET_FILE, 'utf8').trim();
    } catch (error) {
      throw usage(`cannot read ${DEV_SECRET_FILE}: ${(error as Error).message.replace(/^[A-Z]+: /, '').split(',')[0]} (set FLOW_JWT_SECRET instead)`);
    }
  }
  if (!secret) throw usage(`no signing secret: set FLOW_JWT_SECRET (the API's HS256 secret) or start the dev stack, which writes ${DEV_SECRET_FILE}`);
  let config;
  try {
    config = authConfigFromEnv({ ...env, FLOW_JWKS_URL: undefined, FLOW_JWKS_FILE: undefined, FLOW_JWT_SECRET: secret });
  } catch (error) {
    throw usage((error as Error).message);
  }
  const roles = options.roles.split(',').map((r) => r.trim()).filter(Boolean);
  if (roles.length === 0) throw usage('--roles: give at least one role');
  const unknown = roles.filter((r) => !(r in config.roles));
  if (unknown.length) throw usage(`--roles: unknown role ${unknown.map((r) => `"${r}"`).join(', ')} (known: ${Object.keys(config.roles).join(', ')})`);
  const subject = options.subject ?? env.USER ?? env.USERNAME ?? 'developer';
  // What the API would refuse is refused here, not minted into a token no call can use.
  for (const [option, value] of [['--tenant', options.tenant], ['--subject', subject]] as const) {
    const problem = idClaimProblem(value);
    if (problem) throw usage(`${option} ${JSON.stringify(value)} ${problem}`);
  }
  // A bare number is seconds from now (jose would read a number as an absolute time).
  const expiresIn = /^\d+$/.test(options.expiresIn.trim()) ? `${options.expiresIn.trim()}s` : options.expiresIn;
  let token: string;
  try {
    token = await mintToken({ ...config, secret }, { subject, tenant: options.tenant, roles, expiresIn });
  } catch (error) {
    if (isErrorLike(error) && error.name === 'TypeError') throw usage(`--expires-in ${JSON.stringify(options.expiresIn)}: use a span such as 30m, 12h or 7d`);
    throw error;
  }
  // A span of nothing ("0", "0.4s", rounded to whole seconds) or in the past ("-1h", "1h ago") would
  // be a token every call refuses as expired: judged on the token itself.
  const { exp, iat } = decodeJwt(token);
  if (exp === undefined || iat === undefined || exp <= iat) {
    throw usage(`--expires-in ${JSON.stringify(options.expiresIn)}: give a span in the future, such as 30m, 12h or 7d`);
  }
  return token;
}
