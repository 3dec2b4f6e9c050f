/**
 * Which trajectories of a policy update are about the same kind of task (issue 14 item 4). A task
 * that names its family (`Task.family`) belongs to that family's kind; a task without one belongs
 * with the tasks whose queries share most of its words once numbers and ids are removed. A kind is
 * described by its family (if any) and the words all its queries share: a lesson written for the
 * kind names those words, so an agent that sees only a query (no family, no `[family]` tag) can
 * tell whether the lesson is about it. Pure; the optimizer and the simulated agent both use it.
 */

/** The words a lesson's scope names at most (the first shared words, in query order). */
export const MAX_SCOPE_WORDS = 6;
/** An untagged query joins a kind when its words and the kind's shared words overlap this much (Jaccard). */
export const SAME_KIND_OVERLAP = 0.5;

/** Words that say nothing about what kind of task a query is. */
const STOPWORDS = new Set(
  (
    'a an the is are was were be been of in on at to for by with from into after before until under over about ' +
    'what which who whom whose how many much does do did this that these those and or it its as there their ' +
    'i you we me my your our please can could would should will shall may might'
  ).split(' '),
);

/**
 * A query's content words, lowercased, in order, each once: tokens holding a digit (numbers, ids
 * such as INV-4821 or P-123) are removed whole, the rest split on anything but letters, and
 * stopwords and one-letter words dropped. A `[billing]` tag is just the word "billing".
 */
export function queryWords(text: string): string[] {
  const words = text
    .toLowerCase()
    .split(/\s+/)
    .filter((token) => !/\d/.test(token))
    .flatMap((token) => token.split(/[^\p{L}]+/u))
    .filter((word) => word.length >= 2 && !STOPWORDS.has(word));
  return [...new Set(words)];
}

/** What a lesson is about: a family and the words its queries share (either may be missing). */
export interface TaskScope {
  family: string | null;
  words: string[];
}

/** A lesson of this scope applies to a query when the query has every one of its words; no words, no match. */
export function scopeMatches(scope: Pick<TaskScope, 'words'>, query: string): boolean {
  if (scope.words.length === 0) return false;
  const words = new Set(queryWords(query));
  return scope.words.every((word) => words.has(word));
}

export interface TaskKind extends TaskScope {
  /** Indices of the items of this kind, in order. */
  members: number[];
}

function jaccard(a: readonly string[], b: readonly string[]): number {
  const union = new Set([...a, ...b]);
  if (union.size === 0) return 1;
  const inB = new Set(b);
  return a.filter((word) => inB.has(word)).length / union.size;
}

const shared = (words: readonly string[], other: readonly string[]) => {
  const keep = new Set(other);
  return words.filter((word) => keep.has(word));
};

/**
 * The kinds of a list of queries, in order of first appearance: one per family among those that
 * name one; the others each join the first family-less kind whose shared words overlap theirs by
 * `SAME_KIND_OVERLAP`, or start a new one. A kind's words are those all its queries share (at most
 * `MAX_SCOPE_WORDS`, in the first query's order).
 */
export function groupTaskKinds(items: readonly { query: string; family?: string | null }[]): TaskKind[] {
  const kinds: (TaskKind & { all: string[] })[] = [];
  const byFamily = new Map<string, TaskKind & { all: string[] }>();
  items.forEach((item, index) => {
    const words = queryWords(item.query);
    const family = item.family ?? null;
    let kind = family !== null ? byFamily.get(family) : kinds.find((k) => k.family === null && jaccard(k.all, words) >= SAME_KIND_OVERLAP);
    if (kind === undefined) {
      kind = { family, words: [], all: words, members: [] };
      kinds.push(kind);
      if (family !== null) byFamily.set(family, kind);
    } else {
      kind.all = shared(kind.all, words);
    }
    kind.members.push(index);
  });
  return kinds.map(({ family, all, members }) => ({ family, words: all.slice(0, MAX_SCOPE_WORDS), members }));
}
