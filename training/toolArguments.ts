/**
 * A tool call's arguments as the policy updater is shown them (issue 14 item 4): the value that
 * made a call right (`currency: "EUR"`) is evidence, but a call may carry a whole document, so
 * what is shown is bounded: long strings are cut first (short values such as an enum survive a
 * long query beside them), then the JSON as a whole.
 */

/** The most a call's arguments take in the evidence, as JSON. */
export const MAX_ARGUMENT_CHARS = 200;
/** A string value longer than this is cut before the JSON is measured. */
export const MAX_ARGUMENT_VALUE_CHARS = 80;
const ELLIPSIS = '…';

const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}${ELLIPSIS}`);

/** The arguments as JSON of at most MAX_ARGUMENT_CHARS characters (cut JSON ends with "…" and may not parse). */
export function boundedArguments(args: Record<string, unknown>): string {
  const shortened = Object.fromEntries(
    Object.entries(args).map(([key, value]) => [key, typeof value === 'string' ? cut(value, MAX_ARGUMENT_VALUE_CHARS) : value]),
  );
  return cut(JSON.stringify(shortened), MAX_ARGUMENT_CHARS);
}

/** The shown arguments back as an object, or null when they were cut or are not an object. */
export function parseShownArguments(shown: string | null | undefined): Record<string, unknown> | null {
  if (shown === null || shown === undefined) return null;
  try {
    const value: unknown = JSON.parse(shown);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
