// The suite lock's two halves share this plain CommonJS module: tests/support/suiteEnvironment.ts
// takes the lock each integration file asks for in its docblock (`@suiteLock exclusive (why)` or
// `@suiteLock isolated (why)`), and SuiteSequencer below orders the files so the exclusive ones
// run back to back. The sequencer is plain JavaScript because jest loads it without its transform.
const { readFileSync } = require('node:fs');
const TestSequencer = require('@jest/test-sequencer').default;
const { extract, parse } = require('jest-docblock');

/** A PostgreSQL advisory lock key: "FlowSu" in ASCII. */
const SUITE_LOCK_KEY = 0x466c6f775375;

const LOCK_MODES = ['shared', 'exclusive', 'isolated'];

/** What a file's docblock pragmas ask for: "shared" without one; any word but the three is refused. */
function suiteLockMode(pragmas, testPath) {
  const raw = pragmas.suiteLock;
  if (raw === undefined) return 'shared';
  const word = typeof raw === 'string' ? raw.trim().split(/\s+/)[0] : undefined;
  if (LOCK_MODES.includes(word)) return word;
  throw new Error(`${testPath}: @suiteLock must be "exclusive", "isolated" or "shared" (then why), got ${JSON.stringify(raw)}`);
}

function fileLockMode(testPath) {
  return suiteLockMode(parse(extract(readFileSync(testPath, 'utf8'))), testPath);
}

/**
 * jest's order (failed first, then longest first; largest first without timings), except that
 * the exclusive files go first, then the files that take no lock (unit, replay), then the shared
 * ones. The other worker runs the unlocked files while an exclusive file holds the lock. Queued
 * behind the unlocked files, an exclusive file would wait for whatever shared file the other
 * worker had started (one run lost ~200 s that way). With two exclusive files jest starts both at
 * once and one waits for the other, whichever wins the lock: keep them few (today one,
 * localModel).
 */
class SuiteSequencer extends TestSequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    const isIntegration = (test) => test.context.config.displayName?.name === 'integration';
    const exclusive = sorted.filter((test) => isIntegration(test) && fileLockMode(test.path) === 'exclusive');
    const unlocked = sorted.filter((test) => !isIntegration(test));
    // Isolated files share the lock, so they go with the shared ones.
    const shared = sorted.filter((test) => isIntegration(test) && !exclusive.includes(test));
    return [...exclusive, ...unlocked, ...shared];
  }
}

module.exports = SuiteSequencer;
module.exports.SUITE_LOCK_KEY = SUITE_LOCK_KEY;
module.exports.suiteLockMode = suiteLockMode;
module.exports.fileLockMode = fileLockMode;
