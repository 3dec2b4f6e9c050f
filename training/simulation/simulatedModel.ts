import {
  MAX_EVIDENCE_REFS,
  MAX_OPERATIONS_PER_UPDATE,
  parsePolicyUpdateEvidence,
  renderPolicyUpdateEvidence,
  type EvidenceTrajectory,
  type LessonOperation,
} from '../policy';
import { hashString, seededRandom } from '../statistics';

/**
 * The decision logic of a simulated LLM, used by the local OpenAI-compatible test server and by
 * pure learning tests. It knows the tools by name and reads the lessons in its system prompt,
 * but it does NOT know the environment's hidden rules: this file must never import
 * environment.ts (a unit test checks the source). Whatever it learns comes through the lessons,
 * and the optimizer below writes lessons only from what successful trajectories saw.
 */

export { renderPolicyUpdateEvidence };

/** The verification tool is part of the public tool list, so the model may know its name. */
const VERIFY_TOOL = 'verify_answer';
/** Without a lesson, the model sometimes checks its answer anyway (exploration). */
export const UNPROMPTED_VERIFY_PROBABILITY = 0.25;
export const GIVE_UP_ANSWER = 'I could not find the answer.';

export function toolLessonText(family: string, tool: string): string {
  return `For ${family} tasks, call ${tool} first.`;
}

export function verifyLessonText(family: string): string {
  return `For ${family} tasks, call ${VERIFY_TOOL} before answering.`;
}

/** How strongly a lesson of weight w is followed. */
function followProbability(weight: number): number {
  return 0.5 + 0.5 * weight;
}

const FAMILY_TAG = /^\s*\[([^\]]+)\]/;
const LESSON_LINE = /^- \[(\d+(?:\.\d+)?)\] (.+)$/;
const TOOL_LESSON = /^For (.+?) tasks, call (\S+) first\.$/;
const VERIFY_LESSON = /^For (.+?) tasks, call verify_answer before answering\.$/;

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
    const lesson = toolLessonFor(lessons, family, searchTools);
    const follow = lesson === null ? 0 : followProbability(lesson.weight);
    const tool =
      lesson !== null && random() < follow ? lesson.tool : searchTools[Math.floor(random() * searchTools.length)];
    const probability = (tool === lesson?.tool ? follow : 0) + (1 - follow) / searchTools.length;
    return { type: 'tool_call', tool, arguments: { query: userMessage?.content ?? '' }, probability };
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

function firstSearchTool(trajectory: EvidenceTrajectory): string | null {
  const step = trajectory.steps.find((s) => s.action === 'tool_call' && s.tool !== null && s.tool !== VERIFY_TOOL);
  return step?.tool ?? null;
}

/**
 * The simulated optimizer: reads the evidence block and, per task family, proposes lessons from
 * the trajectories that succeeded and beat their group (positive advantage). It sees only what
 * those trajectories did, never the hidden rules.
 */
export function simulatedOptimizerTurn(userMessage: string): { operations: LessonOperation[] } {
  const evidence = parsePolicyUpdateEvidence(userMessage);
  const winnersByFamily = new Map<string, EvidenceTrajectory[]>();
  for (const trajectory of evidence.trajectories) {
    const family = familyOf(trajectory.query);
    if (!trajectory.success || !(trajectory.advantage > 0) || family === null) continue;
    winnersByFamily.set(family, [...(winnersByFamily.get(family) ?? []), trajectory]);
  }

  const operations: LessonOperation[] = [];
  const reinforce = (text: string, refs: string[]): void => {
    const evidenceRefs = refs.slice(0, MAX_EVIDENCE_REFS);
    const existing = evidence.lessons.find((lesson) => sameText(lesson.text, text));
    operations.push(
      existing
        ? { op: 'reweight', lesson_id: existing.id, direction: 'up', evidence: evidenceRefs }
        : { op: 'add', text, evidence: evidenceRefs },
    );
  };

  for (const family of [...winnersByFamily.keys()].sort()) {
    const winners = winnersByFamily.get(family)!;

    const refsByTool = new Map<string, string[]>();
    for (const trajectory of winners) {
      const tool = firstSearchTool(trajectory);
      if (tool !== null) refsByTool.set(tool, [...(refsByTool.get(tool) ?? []), trajectory.ref]);
    }
    // The most common first tool; a tie goes to the alphabetically first name, for determinism.
    let best: { tool: string; refs: string[] } | null = null;
    for (const [tool, refs] of refsByTool) {
      if (best === null || refs.length > best.refs.length || (refs.length === best.refs.length && tool < best.tool)) {
        best = { tool, refs };
      }
    }
    if (best !== null) {
      const { tool: bestTool, refs } = best;
      reinforce(toolLessonText(family, bestTool), refs);
      for (const lesson of evidence.lessons) {
        const match = TOOL_LESSON.exec(lesson.text.trim());
        if (match && match[1] === family && match[2] !== bestTool) {
          operations.push({
            op: 'reweight',
            lesson_id: lesson.id,
            direction: 'down',
            evidence: refs.slice(0, MAX_EVIDENCE_REFS),
          });
        }
      }
    }

    const verifiers = winners.filter((trajectory) => trajectory.steps.some((step) => step.tool === VERIFY_TOOL));
    if (verifiers.length * 2 > winners.length) {
      reinforce(
        verifyLessonText(family),
        verifiers.map((trajectory) => trajectory.ref),
      );
    }
  }
  return { operations: operations.slice(0, MAX_OPERATIONS_PER_UPDATE) };
}
