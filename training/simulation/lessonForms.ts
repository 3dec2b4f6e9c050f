import { type TaskScope } from '../taskKinds';

/**
 * The lesson sentences the simulated optimizer writes and the simulated agent reads (issue 14
 * item 4). Each names its scope, the family (when the evidence had one) and the words the kind's
 * queries share, so an agent that sees only a query can tell whether a lesson is about it:
 *   For billing tasks like "outstanding balance account", call <tool> first.
 *   For tasks like "total invoice", call <tool> with <argument>=<value>.
 *   For tasks like "closing balance ledger", after <tool>, do not call <other tool>.
 * An LLM agent reads the same sentences as plain advice. Nothing here knows a tool or a rule.
 */

export const VERIFY_TOOL = 'verify_answer';

export type LessonForm =
  | { kind: 'first'; tool: string }
  | { kind: 'after'; after: string; tool: string }
  | { kind: 'verify' }
  | { kind: 'argument'; tool: string; argument: string; value: string }
  | { kind: 'avoid_first'; tool: string }
  | { kind: 'avoid_after'; after: string; tool: string };

export interface ParsedLesson {
  scope: TaskScope;
  form: LessonForm;
}

/** An argument value a lesson can state: one token, as enum values and codes are. */
export const LESSON_VALUE = /^[\w.-]{1,40}$/;

export function scopeText(scope: TaskScope): string {
  const words = scope.words.length > 0 ? ` like "${scope.words.join(' ')}"` : '';
  return scope.family !== null ? `${scope.family} tasks${words}` : `tasks${words}`;
}

function adviceText(form: LessonForm): string {
  switch (form.kind) {
    case 'first':
      return `call ${form.tool} first`;
    case 'after':
      return `after ${form.after}, call ${form.tool}`;
    case 'verify':
      return `call ${VERIFY_TOOL} before answering`;
    case 'argument':
      return `call ${form.tool} with ${form.argument}=${form.value}`;
    case 'avoid_first':
      return `do not call ${form.tool} first`;
    case 'avoid_after':
      return `after ${form.after}, do not call ${form.tool}`;
  }
}

export function lessonText(scope: TaskScope, form: LessonForm): string {
  return `For ${scopeText(scope)}, ${adviceText(form)}.`;
}

const SCOPED = /^For (?:(.+?) )?tasks(?: like "([^"]*)")?, (.+)\.$/;
const ADVICE: [RegExp, (m: RegExpExecArray) => LessonForm][] = [
  [/^call (\S+) first$/, (m) => ({ kind: 'first', tool: m[1] })],
  [/^after (\S+), call (\S+)$/, (m) => ({ kind: 'after', after: m[1], tool: m[2] })],
  [/^call verify_answer before answering$/, () => ({ kind: 'verify' })],
  [/^call (\S+) with (\w+)=([\w.-]{1,40})$/, (m) => ({ kind: 'argument', tool: m[1], argument: m[2], value: m[3] })],
  [/^do not call (\S+) first$/, (m) => ({ kind: 'avoid_first', tool: m[1] })],
  [/^after (\S+), do not call (\S+)$/, (m) => ({ kind: 'avoid_after', after: m[1], tool: m[2] })],
];

/** The scope and advice of a lesson in one of these forms, else null. */
export function parseLesson(text: string): ParsedLesson | null {
  const scoped = SCOPED.exec(text.trim());
  if (!scoped) return null;
  const scope: TaskScope = { family: scoped[1] ?? null, words: scoped[2] === undefined ? [] : scoped[2].split(' ').filter(Boolean) };
  for (const [pattern, form] of ADVICE) {
    const match = pattern.exec(scoped[3]);
    if (match) return { scope, form: form(match) };
  }
  return null;
}

/** A scope given as one word is the scope of queries tagged `[word]` (the word is what they share). */
const asScope = (scope: TaskScope | string): TaskScope => (typeof scope === 'string' ? { family: null, words: [scope] } : scope);

export const toolLessonText = (scope: TaskScope | string, tool: string) => lessonText(asScope(scope), { kind: 'first', tool });
export const followUpLessonText = (scope: TaskScope | string, after: string, tool: string) => lessonText(asScope(scope), { kind: 'after', after, tool });
export const verifyLessonText = (scope: TaskScope | string) => lessonText(asScope(scope), { kind: 'verify' });
export const argumentLessonText = (scope: TaskScope | string, tool: string, argument: string, value: string) =>
  lessonText(asScope(scope), { kind: 'argument', tool, argument, value });
export const avoidLessonText = (scope: TaskScope | string, tool: string, after: string | null = null) =>
  lessonText(asScope(scope), after === null ? { kind: 'avoid_first', tool } : { kind: 'avoid_after', after, tool });
