import type { z } from 'zod';

/**
 * Names the offending field and value, so an API caller or a `temporal workflow start` user
 * sees what to fix: "config.group_size: Too small: expected number to be >=2 (got 1)".
 */
export function describeZodError(error: z.ZodError, input?: unknown): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length ? issue.path.join('.') : '(input)';
      const got = valueAt(input, issue.path);
      const shown = got === undefined ? '' : ` (got ${preview(got)})`;
      return `${path}: ${issue.message}${shown}`;
    })
    .join('; ');
}

/** The value's JSON, cut at 80 characters; a value too deep to serialise (stack overflow) is shown by its kind. */
function preview(value: unknown): string | undefined {
  try {
    return JSON.stringify(value)?.slice(0, 80);
  } catch {
    return Array.isArray(value) ? '[…]' : '{…}';
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value: unknown = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}
