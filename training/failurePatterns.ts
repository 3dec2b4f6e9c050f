/**
 * Failures as evidence (issue 14 item 5, as ReasoningBank distils pitfalls from failed runs): a
 * tool choice that several trajectories of one kind of task made when they did worse than their
 * group, and none made when they did better, is a pattern the policy may learn to avoid. The
 * pattern is shown to the policy updater with the better trajectories of that kind as its
 * evidence: lessons still change only on positive-advantage evidence (training/lessonOperations.ts),
 * and here that evidence is the runs that show the choice is avoidable.
 */

/** A pattern needs at least this many failing trajectories that made the choice. */
export const MIN_PATTERN_FAILURES = 2;
/** Refs a pattern cites at most. */
export const MAX_PATTERN_EVIDENCE = 4;

/** One scored trajectory: its kind, its advantage, its tool choices, and its ref if it is shown. */
export interface PatternMember {
  kind: string;
  advantage: number;
  decisions: readonly { after: string | null; tool: string }[];
  ref: string | null;
}

export interface FailurePattern {
  task_kind: string;
  after: string | null;
  tool: string;
  /** Negative-advantage trajectories of the kind that made the choice. */
  failures: number;
  /** Shown positive-advantage trajectories of the kind (none made the choice). */
  evidence: string[];
}

const key = (decision: { after: string | null; tool: string }) => JSON.stringify([decision.after, decision.tool]);

/**
 * Per kind (in the order `kinds` lists them): the choices made by at least MIN_PATTERN_FAILURES
 * negative-advantage members and by no positive-advantage member, most failures first (ties by
 * tool, then by what came before). A kind with no shown positive member has nothing to cite: no pattern.
 */
export function failurePatterns(kinds: readonly string[], members: readonly PatternMember[]): FailurePattern[] {
  const patterns: FailurePattern[] = [];
  for (const kind of kinds) {
    const own = members.filter((member) => member.kind === kind);
    const better = own.filter((member) => member.advantage > 0);
    const evidence = better.flatMap((member) => (member.ref === null ? [] : [member.ref])).slice(0, MAX_PATTERN_EVIDENCE);
    if (evidence.length === 0) continue;
    const madeByBetter = new Set(better.flatMap((member) => member.decisions.map(key)));
    const counts = new Map<string, { after: string | null; tool: string; failures: number }>();
    for (const member of own) {
      if (!(member.advantage < 0)) continue;
      for (const k of new Set(member.decisions.map(key))) {
        if (madeByBetter.has(k)) continue;
        const [after, tool] = JSON.parse(k) as [string | null, string];
        const entry = counts.get(k) ?? { after, tool, failures: 0 };
        entry.failures += 1;
        counts.set(k, entry);
      }
    }
    const found = [...counts.values()]
      .filter((entry) => entry.failures >= MIN_PATTERN_FAILURES)
      .sort((a, b) => b.failures - a.failures || a.tool.localeCompare(b.tool) || String(a.after).localeCompare(String(b.after)));
    for (const { after, tool, failures } of found) patterns.push({ task_kind: kind, after, tool, failures, evidence });
  }
  return patterns;
}
