/**
 * What no method's params may hold, whatever its schema says: values PostgreSQL cannot store
 * (a NUL character in text or jsonb), strings that are not well-formed Unicode (a lone UTF-16
 * surrogate, which no encoding can carry), and nesting deeper than any method's schema goes
 * (deep values overflow the stack of code that walks them recursively). Checked once, without
 * recursion, before the method's schema, so the answer is -32602 naming the field, never -32603.
 */

/** Deeper than any params object a method takes (start_grpo's deepest is about 5). */
export const MAX_PARAMS_DEPTH = 32;

/** What JSON Schema can say of it: the pattern `rpc.discover` puts on every free-text string. */
export const NO_NUL_PATTERN = '^[^\\u0000]*$';

export interface UnsafeValue {
  /** Where, as a dotted path ("training_queries.0.prompt"); "(params)" for the whole value. */
  path: string;
  problem: string;
}

const SHOWN_PATH_SEGMENTS = 8;

/** The first value in `value` no method may be given, or null when there is none. */
export function findUnsafeValue(value: unknown): UnsafeValue | null {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: current, path } = stack.pop()!;
    if (typeof current === 'string') {
      const problem = stringProblem(current);
      if (problem) return { path: render(path), problem };
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    if (path.length >= MAX_PARAMS_DEPTH) return { path: render(path), problem: `nested deeper than ${MAX_PARAMS_DEPTH} levels` };
    const entries: [string | number, unknown][] = Array.isArray(current) ? current.map((item, index) => [index, item]) : Object.entries(current);
    // Reversed onto the stack, so the first offending field in document order is the one named.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i];
      if (typeof key === 'string') {
        const problem = stringProblem(key);
        if (problem) return { path: render([...path, key]), problem: `its name ${problem}` };
      }
      stack.push({ value: item, path: [...path, key] });
    }
  }
  return null;
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a string cannot be stored as it is (a NUL, a lone surrogate), or null. */
export function stringProblem(text: string): string | null {
  const nul = text.indexOf('\u0000');
  if (nul >= 0) return `contains a NUL character (\\u0000) at index ${nul}, which cannot be stored`;
  if (LONE_SURROGATE.test(text)) return 'is not well-formed Unicode (a lone UTF-16 surrogate)';
  return null;
}

function render(path: (string | number)[]): string {
  if (path.length === 0) return '(params)';
  const shown = path.slice(0, SHOWN_PATH_SEGMENTS).map((segment) => (typeof segment === 'string' ? segment.replace(/[\u0000-\u001f\ud800-\udfff]/g, '?').slice(0, 100) : segment));
  return `${shown.join('.')}${path.length > SHOWN_PATH_SEGMENTS ? '.…' : ''}`;
}
