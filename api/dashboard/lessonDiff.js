// How the lesson library changed between two checkpoints. Lessons carry stable ids (the policy
// updater edits, reweights or drops a lesson by id), so the comparison is by id, not by text.

const WEIGHT_EPSILON = 1e-9;

/**
 * One row per lesson in either library: `added`, `dropped`, `edited` (text changed, maybe the
 * weight too), `reweighted` or `unchanged`; added and changed lessons first, in the newer order.
 */
export function diffLessons(before, after) {
  const earlier = new Map(before.map((lesson) => [lesson.id, lesson]));
  const rows = [];
  for (const lesson of after) {
    const previous = earlier.get(lesson.id);
    earlier.delete(lesson.id);
    if (!previous) rows.push({ kind: 'added', id: lesson.id, before: null, after: lesson });
    else if (previous.text !== lesson.text) rows.push({ kind: 'edited', id: lesson.id, before: previous, after: lesson });
    else if (Math.abs(previous.weight - lesson.weight) > WEIGHT_EPSILON) rows.push({ kind: 'reweighted', id: lesson.id, before: previous, after: lesson });
    else rows.push({ kind: 'unchanged', id: lesson.id, before: previous, after: lesson });
  }
  for (const lesson of earlier.values()) rows.push({ kind: 'dropped', id: lesson.id, before: lesson, after: null });
  const order = { added: 0, edited: 1, reweighted: 2, dropped: 3, unchanged: 4 };
  return rows.sort((a, b) => order[a.kind] - order[b.kind]);
}

/** Counts of each kind of change, for the summary line. */
export function summarizeDiff(rows) {
  const counts = { added: 0, edited: 0, reweighted: 0, dropped: 0, unchanged: 0 };
  for (const row of rows) counts[row.kind] += 1;
  return counts;
}
