import { MAX_EVIDENCE_REFS, MAX_OPERATIONS_PER_UPDATE, type LessonOperation } from '../lessonOperations';
import {
  type Decision,
  parsePolicyUpdateEvidence,
  type PolicyUpdateEvidence,
  renderPolicyUpdateEvidence,
  stepRef,
  trajectoryDecisions,
} from '../policyEvidence';
import { hashString, seededRandom } from '../statistics';
import { groupTaskKinds, scopeMatches, type TaskScope } from '../taskKinds';
import { parseShownArguments } from '../toolArguments';
import { LESSON_VALUE, lessonText, type LessonForm, parseLesson, scopeText, VERIFY_TOOL } from './lessonForms';

/**
 * The decision logic of a simulated LLM, used by the local OpenAI-compatible test server and by
 * pure learning tests. It knows the tools by name (and their parameters, when the request offers
 * them) and reads the lessons in its system prompt, but it does NOT know the environment's hidden
 * rules: this file must never import environment.ts (a unit test checks the source). Whatever it
 * learns comes through the lessons (training/simulation/lessonForms.ts), and a lesson applies to
 * a query when the query has the words the lesson's scope names: no `[family]` tag is needed.
 * The optimizer below writes lessons only from what trajectories with positive advantage (or,
 * with credit assignment, steps with positive credit) did, per kind of task the evidence groups.
 */

export { renderPolicyUpdateEvidence };

/** Without a lesson, the model sometimes checks its answer anyway (exploration). */
export const UNPROMPTED_VERIFY_PROBABILITY = 0.25;
export const GIVE_UP_ANSWER = 'I could not find the answer.';
/**
 * A tool result that is a lead to follow up rather than an answer. Part of the tools' public
 * output format (like the verification tool's name), not of any family's hidden rules.
 */
export const LEAD_PREFIX = 'lead: ';
/** What a search tool answers when it has nothing: after a lead, a reason to try another tool. */
export const NOTHING_FOUND = 'no relevant result';

/** How strongly a lesson of weight w is followed. */
function followProbability(weight: number): number {
  return 0.5 + 0.5 * weight;
}

const LESSON_LINE = /^- \[(\d+(?:\.\d+)?)\] (.+)$/;

export interface AgentMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  tool_calls?: { name: string }[];
}

/** An offered tool's JSON-schema parameters (an OpenAI-style tool definition's `parameters`). */
export interface OfferedTool {
  name: string;
  parameters?: Record<string, unknown>;
}

export interface SimulatedAgentRequest {
  system: string;
  messages: AgentMessage[];
  toolNames: string[];
  /** The offered tools with their parameters, when the caller has them: an enum argument is chosen from them. */
  tools?: OfferedTool[];
  seed: number;
}

export type SimulatedAgentAction =
  | { type: 'tool_call'; tool: string; arguments: Record<string, unknown>; probability: number }
  | { type: 'final_answer'; content: string; probability: number };

/** A lesson of the system prompt that this model can read and that applies to the query. */
interface ApplicableLesson {
  weight: number;
  form: LessonForm;
}

function applicableLessons(system: string, query: string): ApplicableLesson[] {
  return system
    .split('\n')
    .map((line) => LESSON_LINE.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .flatMap((match) => {
      const parsed = parseLesson(match[2]);
      return parsed !== null && scopeMatches(parsed.scope, query) ? [{ weight: Number(match[1]), form: parsed.form }] : [];
    });
}

/** The strongest applicable lesson of a form for which `pick` names a usable tool. */
function strongestTool(lessons: ApplicableLesson[], pick: (form: LessonForm) => string | null, usableTools: string[]): { tool: string; weight: number } | null {
  let best: { tool: string; weight: number } | null = null;
  for (const lesson of lessons) {
    const tool = pick(lesson.form);
    if (tool === null || !usableTools.includes(tool)) continue;
    if (best === null || lesson.weight > best.weight) best = { tool, weight: lesson.weight };
  }
  return best;
}

/** The tools "do not call" lessons keep out this turn: each is followed with probability 0.5 + 0.5w. */
function avoidedTools(random: () => number, lessons: ApplicableLesson[], pick: (form: LessonForm) => string | null): Set<string> {
  const avoided = new Set<string>();
  for (const lesson of lessons) {
    const tool = pick(lesson.form);
    if (tool !== null && random() < followProbability(lesson.weight)) avoided.add(tool);
  }
  return avoided;
}

/**
 * Follows the lesson with probability 0.5 + 0.5w, else picks any search tool not avoided (any
 * search tool when every one is). `probability` is that of the choice given the avoided tools.
 */
function chooseTool(random: () => number, lesson: { tool: string; weight: number } | null, searchTools: string[], avoided: Set<string>) {
  const open = searchTools.filter((tool) => !avoided.has(tool));
  const pool = open.length > 0 ? open : searchTools;
  const follow = lesson === null ? 0 : followProbability(lesson.weight);
  const tool = lesson !== null && random() < follow ? lesson.tool : pool[Math.floor(random() * pool.length)];
  const probability = (tool === lesson?.tool ? follow : 0) + (pool.includes(tool) ? (1 - follow) / pool.length : 0);
  return { tool, probability };
}

/**
 * A call's arguments: `base` (the query), then each argument an applicable lesson states for this
 * tool (the strongest per argument, followed with probability 0.5 + 0.5w), then a random value for
 * each enum parameter still unset. A model that knows nothing picks among the offered values.
 */
function callArguments(random: () => number, tool: string, base: Record<string, unknown>, lessons: ApplicableLesson[], tools: OfferedTool[] | undefined): Record<string, unknown> {
  const args: Record<string, unknown> = { ...base };
  const stated = new Map<string, { value: string; weight: number }>();
  for (const { form, weight } of lessons) {
    if (form.kind !== 'argument' || form.tool !== tool) continue;
    const current = stated.get(form.argument);
    if (current === undefined || weight > current.weight) stated.set(form.argument, { value: form.value, weight });
  }
  for (const [argument, { value, weight }] of stated) {
    if (random() < followProbability(weight)) args[argument] = value;
  }
  const properties = (tools?.find((offered) => offered.name === tool)?.parameters?.properties ?? {}) as Record<string, { enum?: unknown[] }>;
  for (const [argument, property] of Object.entries(properties)) {
    if (argument in args || !Array.isArray(property.enum) || property.enum.length === 0) continue;
    args[argument] = property.enum[Math.floor(random() * property.enum.length)];
  }
  return args;
}

/** Which tool each tool message answers, from the assistant tool calls before it. */
function toolResultsOf(messages: AgentMessage[]): { name: string | null; content: string | null }[] {
  const pending: string[] = [];
  const results: { name: string | null; content: string | null }[] = [];
  for (const message of messages) {
    if (message.role === 'assistant') pending.push(...(message.tool_calls ?? []).map((call) => call.name));
    if (message.role === 'tool') results.push({ name: pending.shift() ?? null, content: message.content });
  }
  return results;
}

/**
 * One turn of the simulated agent: before any tool result it picks a tool (following a lesson
 * whose scope fits the query with probability 0.5 + 0.5w, keeping out tools "do not call" lessons
 * name), after a tool result it verifies or answers, after a verification it answers. Arguments
 * follow argument lessons. Deterministic in (seed, conversation).
 */
export function simulatedAgentTurn(req: SimulatedAgentRequest): SimulatedAgentAction {
  const random = seededRandom(req.seed + hashString(JSON.stringify([req.system, req.messages, req.toolNames])));
  const userMessage = req.messages.find((message) => message.role === 'user');
  const query = userMessage?.content ?? '';
  const lessons = applicableLessons(req.system, query);
  const searchTools = req.toolNames.filter((name) => name !== VERIFY_TOOL);
  const results = toolResultsOf(req.messages);
  const last = results[results.length - 1];

  if (last === undefined) {
    if (searchTools.length === 0) return { type: 'final_answer', content: GIVE_UP_ANSWER, probability: 1 };
    const lesson = strongestTool(lessons, (form) => (form.kind === 'first' ? form.tool : null), searchTools);
    const avoided = avoidedTools(random, lessons, (form) => (form.kind === 'avoid_first' ? form.tool : null));
    const { tool, probability } = chooseTool(random, lesson, searchTools, avoided);
    return { type: 'tool_call', tool, arguments: callArguments(random, tool, { query }, lessons, req.tools), probability };
  }

  // A lead is followed up with another tool (which one, a lesson may say), the lead as the query;
  // when that tool found nothing, another is tried with the same lead.
  const lead = [...results].reverse().find((result) => result.name !== VERIFY_TOOL && result.content?.startsWith(LEAD_PREFIX));
  const followUp = last.content?.startsWith(LEAD_PREFIX) || last.content === NOTHING_FOUND;
  if (lead !== undefined && last.name !== null && last.name !== VERIFY_TOOL && followUp) {
    const after = last.name;
    const lesson = strongestTool(lessons, (form) => (form.kind === 'after' && form.after === after ? form.tool : null), searchTools);
    const avoided = avoidedTools(random, lessons, (form) => (form.kind === 'avoid_after' && form.after === after ? form.tool : null));
    const { tool, probability } = chooseTool(random, lesson, searchTools, avoided);
    return { type: 'tool_call', tool, arguments: callArguments(random, tool, { query: lead.content }, lessons, req.tools), probability };
  }

  const lastOutput = [...results].reverse().find((result) => result.name !== VERIFY_TOOL)?.content ?? GIVE_UP_ANSWER;
  if (last.name === VERIFY_TOOL || !req.toolNames.includes(VERIFY_TOOL)) {
    return { type: 'final_answer', content: lastOutput, probability: 1 };
  }
  const weights = lessons.filter((lesson) => lesson.form.kind === 'verify').map((lesson) => lesson.weight);
  const verify = weights.length === 0 ? UNPROMPTED_VERIFY_PROBABILITY : followProbability(Math.max(...weights));
  if (random() < verify) {
    return { type: 'tool_call', tool: VERIFY_TOOL, arguments: { answer: lastOutput }, probability: verify };
  }
  return { type: 'final_answer', content: lastOutput, probability: 1 - verify };
}

function sameText(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/**
 * Votes for one choice in one kind of task: how many pieces of positive evidence back it, and
 * their refs. Evidence counts only when its advantage (or step credit) is positive; how far a
 * lesson moves is then set by those advantages (training/lessonOperations.ts applyLessonOperations).
 */
interface Votes<T> {
  choice: T;
  votes: number;
  refs: string[];
}

type ArgumentChoice = { tool: string; argument: string; value: string };

/** What the evidence says about one kind of task. */
interface KindEvidence {
  scope: TaskScope;
  decisions: Map<string, Votes<Decision>>;
  /** Refs of every trajectory that backed some decision, and of those whose backing included verifying. */
  voters: Set<string>;
  verifiers: string[];
  /** Decisions only the worst of a group made (contrastive evidence), with the refs that speak against them. */
  avoid: Map<string, Votes<Decision>>;
  /** Argument values the positive evidence chose (not copied from the query or a result). */
  arguments: Map<string, Votes<ArgumentChoice>>;
}

const decisionKey = (decision: Decision) => JSON.stringify([decision.after, decision.tool]);
const argumentKey = (choice: ArgumentChoice) => JSON.stringify([choice.tool, choice.argument, choice.value]);

function addVote<T>(votes: Map<string, Votes<T>>, key: string, choice: T, ref: string): void {
  const entry = votes.get(key) ?? { choice, votes: 0, refs: [] };
  if (entry.refs.includes(ref)) return;
  entry.votes += 1;
  entry.refs.push(ref);
  votes.set(key, entry);
}

/** The kinds of task in the evidence: as the evidence groups them, else by the words the queries share. */
function kindsOf(evidence: PolicyUpdateEvidence): { kinds: Map<string, KindEvidence>; kindOfRef: Map<string, string> } {
  const listed =
    evidence.task_kinds ??
    groupTaskKinds(evidence.trajectories).map((kind, k) => ({
      id: `K${k + 1}`,
      family: kind.family,
      words: kind.words,
      refs: kind.members.map((index) => evidence.trajectories[index].ref),
    }));
  const kinds = new Map<string, KindEvidence>();
  const kindOfRef = new Map<string, string>();
  for (const kind of listed) {
    kinds.set(kind.id, { scope: { family: kind.family, words: kind.words }, decisions: new Map(), voters: new Set(), verifiers: [], avoid: new Map(), arguments: new Map() });
    for (const ref of kind.refs) kindOfRef.set(ref, kind.id);
  }
  return { kinds, kindOfRef };
}

/** The tokens of a text, whole ("inv-48213") and in parts ("inv", "48213"). */
const tokens = (text: string | null) => {
  const lower = (text ?? '').toLowerCase();
  return new Set([...lower.split(/[^\w.-]+/), ...lower.split(/[^a-z0-9]+/)]);
};

/**
 * The argument values a trajectory's step chose: one-token scalars that neither the query nor an
 * earlier result holds (a value copied from what the agent was shown is not a choice).
 */
function chosenArguments(trajectory: PolicyUpdateEvidence['trajectories'][number], stepIndex: number): ArgumentChoice[] {
  const step = trajectory.steps[stepIndex];
  const args = parseShownArguments(step.arguments);
  if (args === null || step.tool === null) return [];
  const seen = [trajectory.query, ...trajectory.steps.slice(0, stepIndex).map((earlier) => earlier.result)].map(tokens);
  const tool = step.tool;
  return Object.entries(args).flatMap(([argument, raw]) => {
    if (!['string', 'number', 'boolean'].includes(typeof raw)) return [];
    const value = String(raw);
    if (!LESSON_VALUE.test(value) || seen.some((known) => known.has(value.toLowerCase()))) return [];
    return [{ tool, argument, value }];
  });
}

/**
 * Trajectory evidence: every choice of a positive-advantage trajectory is backed by its
 * advantage. With credit assignment (steps carry `credit`), each is backed by its own step's
 * credit instead, cited by step ref, so a failed run's correct steps count and a lucky run's
 * wrong turns do not.
 */
function votesFromTrajectories(evidence: PolicyUpdateEvidence, kinds: Map<string, KindEvidence>, kindOfRef: Map<string, string>): void {
  for (const trajectory of evidence.trajectories) {
    const entry = kinds.get(kindOfRef.get(trajectory.ref) ?? '');
    if (entry === undefined) continue;
    for (const decision of trajectoryDecisions(trajectory.steps)) {
      const credit = trajectory.steps[decision.step].credit;
      if (!((credit ?? trajectory.advantage) > 0)) continue;
      const ref = credit === undefined ? trajectory.ref : stepRef(trajectory.ref, decision.step);
      addVote(entry.decisions, decisionKey(decision), { after: decision.after, tool: decision.tool }, ref);
      for (const choice of chosenArguments(trajectory, decision.step)) addVote(entry.arguments, argumentKey(choice), choice, ref);
      entry.voters.add(trajectory.ref);
      if (decision.tool === VERIFY_TOOL) entry.verifiers.push(ref);
    }
  }
}

/**
 * Contrastive evidence (Training-Free GRPO): per group, a decision only the best made is backed
 * by the advantages of the best that made it; one only the worst made speaks against lessons
 * that prescribe it. Only positive-advantage trajectories are ever cited.
 */
function votesFromContrasts(evidence: PolicyUpdateEvidence, contrasts: NonNullable<PolicyUpdateEvidence['contrasts']>, kinds: Map<string, KindEvidence>, kindOfRef: Map<string, string>): void {
  const byRef = new Map(evidence.trajectories.map((trajectory) => [trajectory.ref, trajectory]));
  for (const contrast of contrasts) {
    const entry = kinds.get(kindOfRef.get(contrast.best[0]) ?? '');
    if (entry === undefined) continue;
    const best = contrast.best.flatMap((ref) => {
      const trajectory = byRef.get(ref);
      return trajectory && trajectory.advantage > 0 ? [trajectory] : [];
    });
    for (const trajectory of best) {
      entry.voters.add(trajectory.ref);
      for (const decision of trajectoryDecisions(trajectory.steps)) {
        for (const choice of chosenArguments(trajectory, decision.step)) addVote(entry.arguments, argumentKey(choice), choice, trajectory.ref);
      }
    }
    for (const decision of contrast.best_only) {
      for (const trajectory of best) {
        if (!trajectoryDecisions(trajectory.steps).some((made) => decisionKey(made) === decisionKey(decision))) continue;
        addVote(entry.decisions, decisionKey(decision), decision, trajectory.ref);
        if (decision.tool === VERIFY_TOOL) entry.verifiers.push(trajectory.ref);
      }
    }
    for (const decision of contrast.worst_only) {
      for (const trajectory of best) addVote(entry.avoid, decisionKey(decision), decision, trajectory.ref);
    }
  }
}

/** The choice with the most votes among some (at least one); a tie goes to the alphabetically first key, for determinism. */
function strongest<T>(candidates: [string, Votes<T>][]): Votes<T> {
  return candidates.reduce((best, candidate) =>
    candidate[1].votes > best[1].votes || (candidate[1].votes === best[1].votes && candidate[0] < best[0]) ? candidate : best,
  )[1];
}

/** The decision a lesson form prescribes (a tool first or after another), if any. */
function prescribed(form: LessonForm): Decision | null {
  if (form.kind === 'first') return { after: null, tool: form.tool };
  if (form.kind === 'after') return { after: form.after, tool: form.tool };
  return null;
}

/** The decision a lesson form rules out, if any. */
function ruledOut(form: LessonForm): Decision | null {
  if (form.kind === 'avoid_first') return { after: null, tool: form.tool };
  if (form.kind === 'avoid_after') return { after: form.after, tool: form.tool };
  return null;
}

const avoidForm = (decision: Decision): LessonForm =>
  decision.after === null ? { kind: 'avoid_first', tool: decision.tool } : { kind: 'avoid_after', after: decision.after, tool: decision.tool };

/**
 * The simulated optimizer: reads the evidence block and, per kind of task (as the evidence groups
 * them: `Task.family`, else shared query words), proposes lessons from what the positive evidence
 * did: the first tool, the tool to call after each tool, the argument values it chose, and whether
 * to verify; with failure patterns in the evidence, "do not call" lessons for choices common to the
 * kind's failures and absent from its successes (cited by those successes). It sees only what
 * trajectories did, never the hidden rules. With contrastive evidence it learns from what the best
 * did that the worst did not. Lessons from failures come after the others, so the operation cap
 * never crowds out what the successes taught.
 */
export function simulatedOptimizerTurn(userMessage: string): { operations: LessonOperation[] } {
  const evidence = parsePolicyUpdateEvidence(userMessage);
  const { kinds, kindOfRef } = kindsOf(evidence);
  if (evidence.contrasts) votesFromContrasts(evidence, evidence.contrasts, kinds, kindOfRef);
  else votesFromTrajectories(evidence, kinds, kindOfRef);

  const operations: LessonOperation[] = [];
  const fromFailures: LessonOperation[] = [];
  const loweredLessons = new Set<string>();
  const parsedLessons = evidence.lessons.flatMap((lesson) => {
    const parsed = parseLesson(lesson.text);
    return parsed === null ? [] : [{ id: lesson.id, scope: scopeText(parsed.scope), form: parsed.form }];
  });
  const reinforce = (into: LessonOperation[], text: string, refs: string[]): void => {
    const evidenceRefs = refs.slice(0, MAX_EVIDENCE_REFS);
    const existing = evidence.lessons.find((lesson) => sameText(lesson.text, text));
    into.push(existing ? { op: 'reweight', lesson_id: existing.id, direction: 'up', evidence: evidenceRefs } : { op: 'add', text, evidence: evidenceRefs });
  };
  const lower = (into: LessonOperation[], scope: TaskScope, against: (form: LessonForm) => boolean, refs: string[]): void => {
    for (const lesson of parsedLessons) {
      if (lesson.scope !== scopeText(scope) || !against(lesson.form) || loweredLessons.has(lesson.id)) continue;
      loweredLessons.add(lesson.id);
      into.push({ op: 'reweight', lesson_id: lesson.id, direction: 'down', evidence: refs.slice(0, MAX_EVIDENCE_REFS) });
    }
  };
  const is = (decision: Decision | null, other: Decision) => decision !== null && decisionKey(decision) === decisionKey(other);

  for (const [id, kind] of kinds) {
    const { scope, decisions, voters, verifiers, avoid } = kind;
    if (scope.family === null && scope.words.length === 0) continue;
    const searchDecisions = [...decisions].filter(([, votes]) => votes.choice.tool !== VERIFY_TOOL);
    // One choice per point of decision: the first tool, then the tool after each tool (by name).
    const afters = new Set(searchDecisions.map(([, votes]) => votes.choice.after));
    const points = [...(afters.has(null) ? [null] : []), ...[...afters].filter((after): after is string => after !== null).sort()];
    for (const after of points) {
      const best = strongest(searchDecisions.filter(([, votes]) => votes.choice.after === after));
      const form: LessonForm = after === null ? { kind: 'first', tool: best.choice.tool } : { kind: 'after', after, tool: best.choice.tool };
      reinforce(operations, lessonText(scope, form), best.refs);
      lower(operations, scope, (lessonForm) => { const d = prescribed(lessonForm); return d !== null && d.after === after && d.tool !== best.choice.tool; }, best.refs);
      lower(operations, scope, (lessonForm) => is(ruledOut(lessonForm), best.choice), best.refs);
    }
    for (const avoided of avoid.values()) {
      lower(operations, scope, (lessonForm) => is(prescribed(lessonForm), avoided.choice), avoided.refs);
    }
    // One value per (tool, argument): the one most positive evidence chose.
    const argumentPoints = new Set([...kind.arguments.values()].map(({ choice }) => JSON.stringify([choice.tool, choice.argument])));
    for (const point of [...argumentPoints].sort()) {
      const [tool, argument] = JSON.parse(point) as [string, string];
      const best = strongest([...kind.arguments].filter(([, votes]) => votes.choice.tool === tool && votes.choice.argument === argument));
      reinforce(operations, lessonText(scope, { kind: 'argument', ...best.choice }), best.refs);
      lower(operations, scope, (form) => form.kind === 'argument' && form.tool === tool && form.argument === argument && form.value !== best.choice.value, best.refs);
    }
    if (verifiers.length * 2 > voters.size) reinforce(operations, lessonText(scope, { kind: 'verify' }), verifiers);
    for (const pattern of (evidence.failure_patterns ?? []).filter((p) => p.task_kind === id)) {
      const decision = { after: pattern.after, tool: pattern.tool };
      reinforce(fromFailures, lessonText(scope, avoidForm(decision)), pattern.evidence);
      lower(fromFailures, scope, (form) => is(prescribed(form), decision), pattern.evidence);
    }
  }
  return { operations: [...operations, ...fromFailures].slice(0, MAX_OPERATIONS_PER_UPDATE) };
}
