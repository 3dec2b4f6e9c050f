/**
 * The integration files' lock mode comes from their docblock (tests/support/suiteEnvironment.ts):
 * a typo must not quietly make a file that turns the kill switch on run in the shared install.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileLockMode, suiteLockMode } from '../support/suiteEnvironment';

test('no pragma shares the lock; "exclusive", "isolated" or "shared" then a reason is read; any other word is refused', () => {
  expect(suiteLockMode({}, 'a.test.ts')).toBe('shared');
  expect(suiteLockMode({ suiteLock: 'exclusive (it probes every port)' }, 'a.test.ts')).toBe('exclusive');
  expect(suiteLockMode({ suiteLock: 'isolated (it turns the kill switch on)' }, 'a.test.ts')).toBe('isolated');
  expect(suiteLockMode({ suiteLock: 'shared' }, 'a.test.ts')).toBe('shared');
  expect(() => suiteLockMode({ suiteLock: 'isolate' }, 'a.test.ts')).toThrow('a.test.ts: @suiteLock must be "exclusive", "isolated" or "shared" (then why), got "isolate"');
  expect(() => suiteLockMode({ suiteLock: ['exclusive', 'shared'] }, 'a.test.ts')).toThrow('@suiteLock must be');
  expect(() => suiteLockMode({ suiteLock: '' }, 'a.test.ts')).toThrow('@suiteLock must be');
});

/** Files that ask for the kill switch only in ways the API refuses (a trainer's or viewer's token, bad params). */
const REFUSED_KILL_SWITCH_ONLY = ['apiBadInput.test.ts', 'apiFuzz.test.ts'];

test('every integration file that turns the kill switch on has an install of its own', () => {
  const dir = path.join(__dirname, '..', 'integration');
  // The helper, the client, the JSON-RPC method and the CLI command.
  const turnsItOn = /withOwnKillSwitch\(|killSwitch\(true|kill_switch', \{ on: true|'kill-switch', 'on'/;
  const found: string[] = [];
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.test.ts'))) {
    const source = readFileSync(path.join(dir, file), 'utf8');
    if (!turnsItOn.test(source)) continue;
    found.push(file);
    const mode = fileLockMode(path.join(dir, file));
    if (!REFUSED_KILL_SWITCH_ONLY.includes(file)) expect({ file, mode }).toEqual({ file, mode: 'isolated' });
  }
  // The pattern still finds what it was written for (a rename would otherwise pass every file).
  expect(found).toEqual(expect.arrayContaining(['apiSteering.test.ts', 'docs.test.ts', ...REFUSED_KILL_SWITCH_ONLY]));
});

test('the sequencer runs the exclusive files first, then the unlocked (unit, replay) files, then the shared and isolated ones', async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const SuiteSequencer = require('../support/suiteLock') as new (options: object) => { sort(tests: object[]): Promise<Array<{ path: string }>> };
  const file = (kind: string, name: string) => ({ path: path.join(__dirname, '..', kind, name), context: { config: { cache: false, displayName: { name: kind } }, hasteFS: { getSize: (at: string) => statSync(at).size } } });
  const tests = [
    file('integration', 'trainingJob.test.ts'),
    file('integration', 'localModel.test.ts'),
    file('unit', 'suiteEnvironment.test.ts'),
    file('integration', 'observability.test.ts'),
    file('integration', 'apiSteering.test.ts'),
    file('integration', 'jobBudget.test.ts'),
    file('replay', 'trainingJob.replay.test.ts'),
  ];
  const order = (await new SuiteSequencer({}).sort(tests)).map((test) => path.relative(path.join(__dirname, '..'), test.path));
  // Without timings (cache: false) jest orders by file size, larger first.
  expect(order[0]).toBe('integration/localModel.test.ts');
  expect(fileLockMode(path.join(__dirname, '..', 'integration', 'localModel.test.ts'))).toBe('exclusive');
  expect(order.slice(1, 3).sort()).toEqual(['replay/trainingJob.replay.test.ts', 'unit/suiteEnvironment.test.ts']);
  expect(order.slice(3).sort()).toEqual(['integration/apiSteering.test.ts', 'integration/jobBudget.test.ts', 'integration/observability.test.ts', 'integration/trainingJob.test.ts']);
});
