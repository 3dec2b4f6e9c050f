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

/**
 * The decision logic of a simulated LLM, used by the local OpenAI-compatible test server and by
 * pure learning tests. It knows the tools by name and reads the lessons in its system prompt,
 * but it does NOT know the environment's hidden rules: this file must never import
 * environment.ts (a unit test checks the source). Whatever it learns comes through the lessons,
 * and the optimizer below writes lessons only from what trajectories with positive advantage
 * (or, with credit assignment, steps with positive credit) did.
 */

export { renderPolicyUpdateEvidence };

/** The verification tool is part of the public tool list, so the model may know its name. */
const VERIFY_TOOL = 'verify_answer';
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

export function toolLessonText(family: string, tool: string): string {
  return `For ${family} tasks, call ${tool} first.`;
}

export function verifyLessonText(family: string): string {
  return `For ${family} tasks, call ${VERIFY_TOOL} before answering.`;
}

export function followUpLessonText(family: string, after: string, tool: string): string {
  return `For ${family} tasks, after ${after}, call ${tool}.`;
}

/** How strongly a lesson of weight w is followed. */
function followProbability(weight: number): number {
  return 0.5 + 0.5 * weight;
}

const FAMILY_TAG = /^\s*\[([^\]]+)\]/;
const LESSON_LINE = /^- \[(\d+(?:\.\d+)?)\] (.+)$/;
const TOOL_LESSON = /^For (.+?) tasks, call (\S+) first\.$/;
const VERIFY_LESSON = /^For (.+?) tasks, call verify_answer before answering\.$/;
const FOLLOW_UP_LESSON = /^For (.+?) tasks, after (\S+), call (\S+)\.$/;

export interface AgentMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  tool_calls?: { name: string }[];
}

export interface SimulatedAgentRequest {
  system: string;
  messages: AgentMessage[];
  toolNames: string[];
  seed: number;
}

export type SimulatedAgentAction =
  | { type: 'tool_call'; tool: string; arguments: Record<string, unknown>; probability: number }
  | { type: 'final_answer'; content: string; probability: number };

function familyOf(text: string | null | undefined): string | null {
  return FAMILY_TAG.exec(text ?? '')?.[1] ?? null;
}

function lessonsIn(system: string): { weight: number; text: string }[] {
  return system
    .split('\n')
    .map((line) => LESSON_LINE.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ weight: Number(match[1]), text: match[2].trim() }));
}

/** The strongest usable "call <tool> first" lesson for the family, if any. */
function toolLessonFor(
  lessons: { weight: number; text: string }[],
  family: string | null,
  usableTools: string[],
): { tool: string; weight: number } | null {
  let best: { tool: string; weight: number } | null = null;
  for (const lesson of lessons) {
    const match = TOOL_LESSON.exec(lesson.text);
    if (!match || match[1] !== family || !usableTools.includes(match[2])) continue;
    if (best === null || lesson.weight > best.weight) best = { tool: match[2], weight: lesson.weight };
  }
  return best;
}

/** The strongest usable "after <after>, call <tool>" lesson for the family, if any. */
function followUpLessonFor(
  lessons: { weight: number; text: string }[],
  family: string | null,
  after: string,
  usableTools: string[],
): { tool: string; weight: number } | null {
  let best: { tool: string; weight: number } | null = null;
  for (const lesson of lessons) {
    const match = FOLLOW_UP_LESSON.exec(lesson.text);
    if (!match || match[1] !== family || match[2] !== after || !usableTools.includes(match[3])) continue;
    if (best === null || lesson.weight > best.weight) best = { tool: match[3], weight: lesson.weight };
  }
  return best;
}

/** Follows the lesson with probability 0.5 + 0.5w, else picks any search tool. */
function chooseTool(random: () => number, lesson: { tool: string; weight: number } | null, searchTools: string[]) {
  const follow = lesson === null ? 0 : followProbability(lesson.weight);
  const tool = lesson !== null && random() < follow ? lesson.tool : searchTools[Math.floor(random() * searchTools.length)];
  const probability = (tool === lesson?.tool ? follow : 0) + (1 - follow) / searchTools.length;
  return { tool, probability };
}

function verifyLessonWeight(lessons: { weight: number; text: string }[], family: string | null): number | null {
  const weights = lessons
    .filter((lesson) => VERIFY_LESSON.exec(lesson.text)?.[1] === family)
    .map((lesson) => lesson.weight);
  return weights.length === 0 ? null : Math.max(...weights);
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
 * for the task's family with probability 0.5 + 0.5w), after a tool result it verifies or
 * answers, after a verification it answers. Deterministic in (seed, conversation).
 */
export function simulatedAgentTurn(req: SimulatedAgentRequest): SimulatedAgentAction {
  const random = seededRandom(req.seed + hashString(JSON.stringify([req.system, req.messages, req.toolNames])));
  const userMessage = req.messages.find((message) => message.role === 'user');
  const family = familyOf(userMessage?.content);
  const lessons = lessonsIn(req.system);
  const searchTools = req.toolNames.filter((name) => name !== VERIFY_TOOL);
  const results = toolResultsOf(req.messages);
  const last = results[results.length - 1];

  if (last === undefined) {
    if (searchTools.length === 0) return { type: 'final_answer', content: GIVE_UP_ANSWER, probability: 1 };
    const { tool, probability } = chooseTool(random, toolLessonFor(lessons, family, searchTools), searchTools);
    return { type: 'tool_call', tool, arguments: { query: userMessage?.content ?? '' }, probability };
  }

  // A lead is followed up with another tool (which one, a lesson may say), the lead as the query;
  // when that tool found nothing, another is tried with the same lead.
  const lead = [...results].reverse().find((result) => result.name !== VERIFY_TOOL && result.content?.startsWith(LEAD_PREFIX));
  const followUp = last.content?.startsWith(LEAD_PREFIX) || last.content === NOTHING_FOUND;
  if (lead !== undefined && last.name !== null && last.name !== VERIFY_TOOL && followUp) {
    const { tool, probability } = chooseTool(random, followUpLessonFor(lessons, family, last.name, searchTools), searchTools);
    return { type: 'tool_call', tool, arguments: { query: lead.content }, probability };
  }

  const lastOutput = [...results].reverse().find((result) => result.name !== VERIFY_TOOL)?.content ?? GIVE_UP_ANSWER;
  if (last.name === VERIFY_TOOL || !req.toolNames.includes(VERIFY_TOOL)) {
    return { type: 'final_answer', content: lastOutput, probability: 1 };
  }
  const lessonWeight = verifyLessonWeight(lessons, family);
  const verify = lessonWeight === null ? UNPROMPTED_VERIFY_PROBABILITY : followProbability(lessonWeight);
  if (random() < verify) {
    return { type: 'tool_call', tool: VERIFY_TOOL, arguments: { answer: lastOutput }, probability: verify };
  }
  return { type: 'final_answer', content: lastOutput, probability: 1 - verify };
}

function sameText(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/**
 * Votes for one decision in one family: how many pieces of positive evidence back it, and their
 * refs. Evidence counts only when its advantage (or step credit) is positive; how far a lesson
 * moves is then set by those advantages (training/lessonOperations.ts applyLessonOperations).
 */
interface DecisionVotes {
  decision: Decision;
  votes: number;
  refs: string[];
}

/** What the evidence says about one task family. */
interface FamilyEvidence {
  decisions: Map<string, DecisionVotes>;
  /** Refs of every trajectory that backed some decision, and of those whose backing included verifying. */
  voters: Set<string>;
  verifiers: string[];
  /** Decisions only the worst of a group made (contrastive evidence), with the refs that speak against them. */
  avoid: Map<string, DecisionVotes>;
}

const decisionKey = (decision: Decision) => JSON.stringify([decision.after, decision.tool]);

function addVote(votes: Map<string, DecisionVotes>, decision: Decision, ref: string): void {
  const key = decisionKey(decision);
  const entry = votes.get(key) ?? { decision: { after: decision.after, tool: decision.tool }, votes: 0, refs: [] };
  if (entry.refs.includes(ref)) return;
  entry.votes += 1;
  entry.refs.push(ref);
  votes.set(key, entry);
}

function familyEvidence(byFamily: Map<string, FamilyEvidence>, family: string): FamilyEvidence {
  let entry = byFamily.get(family);
  if (!entry) {
    entry = { decisions: new Map(), voters: new Set(), verifiers: [], avoid: new Map() };
    byFamily.set(family, entry);
  }
  return entry;
}

/**
 * Trajectory evidence: every decision of a positive-advantage trajectory is backed by its
 * advantage. With credit assignment (steps carry `credit`), each decision is backed by its own
 * step's credit instead, cited by step ref, so a failed run's correct steps count and a lucky
 * run's wrong turns do not.
 */
function votesFromTrajectories(evidence: PolicyUpdateEvidence): Map<string, FamilyEvidence> {
  const byFamily = new Map<string, FamilyEvidence>();
  for (const trajectory of evidence.trajectories) {
    const family = familyOf(trajectory.query);
    if (family === null) continue;
    for (const decision of trajectoryDecisions(trajectory.steps)) {
      const credit = trajectory.steps[decision.step].credit;
      if (!((credit ?? trajectory.advantage) > 0)) continue;
      const ref = credit === undefined ? trajectory.ref : stepRef(trajectory.ref, decision.step);
      const entry = familyEvidence(byFamily, family);
      addVote(entry.decisions, decision, ref);
      entry.voters.add(trajectory.ref);
      if (decision.tool === VERIFY_TOOL) entry.verifiers.push(ref);
    }
  }
  return byFamily;
}

/**
 * Contrastive evidence (Training-Free GRPO): per group, a decision only the best made is backed
 * by the advantages of the best that made it; one only the worst made speaks against lessons
 * that prescribe it. Only positive-advantage trajectories are ever cited.
 */
function votesFromContrasts(
  trajectories: PolicyUpdateEvidence['trajectories'],
  contrasts: NonNullable<PolicyUpdateEvidence['contrasts']>,
): Map<string, FamilyEvidence> {
  const byFamily = new Map<string, FamilyEvidence>();
  const byRef = new Map(trajectories.map((trajectory) => [trajectory.ref, trajectory]));
  for (const contrast of contrasts) {
    const family = familyOf(contrast.query);
    if (family === null) continue;
    const entry = familyEvidence(byFamily, family);
    const best = contrast.best.flatMap((ref) => {
      const trajectory = byRef.get(ref);
      return trajectory && trajectory.advantage > 0 ? [trajectory] : [];
    });
    for (const trajectory of best) entry.voters.add(trajectory.ref);
    for (const decision of contrast.best_only) {
      for (const trajectory of best) {
        if (!trajectoryDecisions(trajectory.steps).some((made) => decisionKey(made) === decisionKey(decision))) continue;
        addVote(entry.decisions, decision, trajectory.ref);
        if (decision.tool === VERIFY_TOOL) entry.verifiers.push(trajectory.ref);
      }
    }
    for (const decision of contrast.worst_only) {
      for (const trajectory of best) addVote(entry.avoid, decision, trajectory.ref);
    }
  }
  return byFamily;
}

/** The decision with the most votes; a tie goes to the alphabetically first tool, for determinism. */
function strongest(candidates: DecisionVotes[]): DecisionVotes | null {
  let best: DecisionVotes | null = null;
  for (const candidate of candidates) {
    if (best === null || candidate.votes > best.votes || (candidate.votes === best.votes && candidate.decision.tool < best.decision.tool)) {
      best = candidate;
    }
  }
  return best;
}

/** The decision a lesson prescribes, if it is one of this optimizer's lesson forms. */
function lessonDecision(text: string): { family: string; decision: Decision } | null {
  const trimmed = text.trim();
  const first = TOOL_LESSON.exec(trimmed);
  if (first) return { family: first[1], decision: { after: null, tool: first[2] } };
  const followUp = FOLLOW_UP_LESSON.exec(trimmed);
  if (followUp) return { family: followUp[1], decision: { after: followUp[2], tool: followUp[3] } };
  return null;
}

/**
 * The simulated optimizer: reads the evidence block and, per task family, proposes lessons from
 * what the positive evidence did: the first tool, the tool to call after each tool, and whether
 * to verify. It sees only what trajectories did, never the hidden rules. With contrastive
 * evidence it learns from what the best did that the worst did not.
 */
export function simulatedOptimizerTurn(userMessage: string): { operations: LessonOperation[] } {
  const evidence = parsePolicyUpdateEvidence(userMessage);
  const byFamily = evidence.contrasts ? votesFromContrasts(evidence.trajectories, evidence.contrasts) : votesFromTrajectories(evidence);

  const operations: LessonOperation[] = [];
  const loweredLessons = new Set<string>();
  const reinforce = (text: string, refs: string[]): void => {
    const evidenceRefs = refs.slice(0, MAX_EVIDENCE_REFS);
    const existing = evidence.lessons.find((lesson) => sameText(lesson.text, text));
    operations.push(
      existing
        ? { op: 'reweight', lesson_id: existing.id, direction: 'up', evidence: evidenceRefs }
        : { op: 'add', text, evidence: evidenceRefs },
    );
  };
  const lower = (family: string, against: (decision: Decision) => boolean, refs: string[]): void => {
    for (const lesson of evidence.lessons) {
      const prescribed = lessonDecision(lesson.text);
      if (prescribed === null || prescribed.family !== family || !against(prescribed.decision) || loweredLessons.has(lesson.id)) continue;
      loweredLessons.add(lesson.id);
      operations.push({ op: 'reweight', lesson_id: lesson.id, direction: 'down', evidence: refs.slice(0, MAX_EVIDENCE_REFS) });
    }
  };

  for (const family of [...byFamily.keys()].sort()) {
    const { decisions, voters, verifiers, avoid } = byFamily.get(family)!;
    const searchDecisions = [...decisions.values()].filter((votes) => votes.decision.tool !== VERIFY_TOOL);
    // One choice per point of decision: the first tool, then the tool after each tool (by name).
    const afters = new Set(searchDecisions.map((votes) => votes.decision.after));
    const points = [...(afters.has(null) ? [null] : []), ...[...afters].filter((after): after is string => after !== null).sort()];
    for (const after of points) {
      const best = strongest(searchDecisions.filter((votes) => votes.decision.after === after))!;
      reinforce(
        after === null ? toolLessonText(family, best.decision.tool) : followUpLessonText(family, after, best.decision.tool),
        best.refs,
      );
      lower(family, (decision) => decision.after === after && decision.tool !== best.decision.tool, best.refs);
    }
    for (const avoided of avoid.values()) {
      lower(family, (decision) => decisionKey(decision) === decisionKey(avoided.decision), avoided.refs);
    }
    if (verifiers.length * 2 > voters.size) reinforce(verifyLessonText(family), verifiers);
  }
  return { operations: operations.slice(0, MAX_OPERATIONS_PER_UPDATE) };
}
