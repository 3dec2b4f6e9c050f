/**
 * The sandbox of the `code_tests` reward (training/rewards.ts): runs a candidate function from a
 * trajectory's final answer on a task's test cases in a fresh node:vm context.
 */
import { isDeepStrictEqual } from 'node:util';
import vm from 'node:vm';
import type { CodeRunner, CodeTestsSpec } from '../training/rewards';

/** How long a candidate function may run on all of a task's test cases together. */
export const CODE_TESTS_TIMEOUT_MS = 1_000;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]{0,99}$/;

/**
 * Runs untrusted candidate code for the `code_tests` reward in a fresh node:vm context with
 * no globals of ours (no require, process or module), no eval/new Function inside it, and a
 * time limit on everything it runs, the calls included. Only JSON crosses the boundary. A vm
 * context is not a hard security boundary (node's own docs say so): run workers that score
 * code from unknown sources in a container with no credentials.
 */
export const runCodeTests: CodeRunner = (source: string, spec: CodeTestsSpec): boolean[] => {
  const failedAll = () => spec.cases.map(() => false);
  if (!IDENTIFIER.test(spec.function)) return failedAll();
  const context = vm.createContext(Object.create(null), {
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: 'afterEvaluate',
  });
  const argsJson = JSON.stringify(JSON.stringify(spec.cases.map((c) => c.args)));
  const program = `${source}
;(() => {
  const candidate = typeof ${spec.function} === 'function' ? ${spec.function} : null;
  return JSON.stringify(JSON.parse(${argsJson}).map((args) => {
    if (!candidate) return { ok: false };
    try { return { ok: true, value: candidate(...args) }; } catch { return { ok: false }; }
  }));
})()`;
  let output: unknown;
  try {
    output = vm.runInContext(program, context, { timeout: CODE_TESTS_TIMEOUT_MS, filename: 'candidate.js' });
  } catch {
    // A syntax error, a throw at the top level or the time limit: no test passes.
    return failedAll();
  }
  if (typeof output !== 'string') return failedAll();
  const results = JSON.parse(output) as { ok: boolean; value?: unknown }[];
  return spec.cases.map((c, i) => results[i].ok && isDeepStrictEqual(results[i].value, JSON.parse(JSON.stringify(c.expected))));
};
