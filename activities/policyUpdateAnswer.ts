/**
 * The policy updater's answer, in a form a small model can follow (issue 13): evidence first.
 * Free-form `{"op": "add", "text": …}` answers from Qwen2.5-Coder-1.5B failed every time; asked
 * for the evidence first (which trajectories, what kind of task, which tool to use instead of
 * which), it named the right tool in most answers, and Flow's rule "lessons change only on
 * positive-advantage evidence" filtered the rest. So each structured lesson is
 * `{evidence, task_kind, use_tool, instead_of}`, validated by zod, and the lesson's text is
 * written by code from those fields. The operation form (`{"operations": [...]}`, training/lessonOperations.ts)
 * is still accepted, so large models and the simulated optimizer keep working unchanged.
 */
import { z } from 'zod';
import { describeZodError } from '../training/zodErrors';
import { type LessonOperation, LessonOperationsAnswerSchema, MAX_EVIDENCE_REFS, MAX_OPERATIONS_PER_UPDATE } from '../training/lessonOperations';
import { type PolicyUpdateEvidence } from '../training/policyEvidence';

const Name = z.string().trim().min(1).max(80);

export const StructuredLessonSchema = z.object({
  /** Refs of the trajectories (or steps) the lesson is learned from, e.g. ["T1", "T3"]. */
  evidence: z.array(z.string().min(1).max(40)).min(1).max(MAX_EVIDENCE_REFS),
  /** What kind of task the lesson is for, e.g. "billing questions". */
  task_kind: Name,
  /** The tool to use for that kind of task. */
  use_tool: Name,
  /** The tool that was used instead and did worse, if any. */
  instead_of: Name.nullable().optional(),
});
export type StructuredLesson = z.infer<typeof StructuredLessonSchema>;

export const StructuredLessonsAnswerSchema = z.object({ lessons: z.array(StructuredLessonSchema).max(MAX_OPERATIONS_PER_UPDATE) });

/** A lesson's text from its fields: short, imperative, the same words every time for the same advice. */
export function lessonText(lesson: StructuredLesson): string {
  const instead = lesson.instead_of && lesson.instead_of !== lesson.use_tool ? ` instead of ${lesson.instead_of}` : '';
  const kind = lesson.task_kind.replace(/[.\s]+$/, '');
  return `For ${kind}${/\b(tasks?|questions?|queries|requests?)$/i.test(kind) ? '' : ' tasks'}, use ${lesson.use_tool}${instead}.`;
}

/** The text of the lesson that advises the opposite swap (B instead of A), or null without an `instead_of`. */
function reversedText(lesson: StructuredLesson): string | null {
  if (!lesson.instead_of || lesson.instead_of === lesson.use_tool) return null;
  return lessonText({ ...lesson, use_tool: lesson.instead_of, instead_of: lesson.use_tool });
}

/** The tools each evidence ref's trajectory called: a structured lesson must name one its evidence used. */
export function toolsByRef(evidence: Pick<PolicyUpdateEvidence, 'trajectories'>): Map<string, Set<string>> {
  const byRef = new Map<string, Set<string>>();
  for (const trajectory of evidence.trajectories) {
    const tools = new Set(trajectory.steps.flatMap((step) => (step.tool ? [step.tool] : [])));
    byRef.set(trajectory.ref, tools);
    trajectory.steps.forEach((step, i) => byRef.set(`${trajectory.ref}.s${i}`, new Set(step.tool ? [step.tool] : [])));
  }
  return byRef;
}

export type ParsedAnswer = { operations: LessonOperation[]; rejected: string[] } | { problem: string };

/**
 * The operations in an updater answer (either form), or what is wrong with it. Tolerates a
 * ```json fence. A structured lesson whose `use_tool` none of its evidence called is rejected
 * (it cannot have been learned from that evidence); evidence advantages are checked later, by
 * applyLessonOperations, as for every operation.
 */
/** The JSON of an optimizer answer, or what is wrong with it. Tolerates a ```json fence. */
export function parseAnswerJson(content: string | null): { json: unknown } | { problem: string } {
  if (!content || content.trim() === '') return { problem: 'the answer was empty' };
  const unfenced = content.trim().replace(/^```(?:json)?\s*\n?([\s\S]*?)\n?```$/, '$1');
  try {
    return { json: JSON.parse(unfenced) as unknown };
  } catch (error) {
    return { problem: `not JSON (${(error as Error).message})` };
  }
}

export function parseUpdaterAnswer(content: string | null, evidence: Pick<PolicyUpdateEvidence, 'trajectories'> & Partial<Pick<PolicyUpdateEvidence, 'lessons'>>): ParsedAnswer {
  const parsed = parseAnswerJson(content);
  if ('problem' in parsed) return parsed;
  const { json } = parsed;
  if (json && typeof json === 'object' && 'lessons' in json) {
    const structured = StructuredLessonsAnswerSchema.safeParse(json);
    if (!structured.success) return { problem: describeZodError(structured.error, json) };
    const tools = toolsByRef(evidence);
    const operations: LessonOperation[] = [];
    const rejected: string[] = [];
    const texts = new Set(structured.data.lessons.map(lessonText));
    for (const lesson of structured.data.lessons) {
      const text = lessonText(lesson);
      if (!lesson.evidence.some((ref) => tools.get(ref)?.has(lesson.use_tool))) {
        rejected.push(`add: "${text}": none of its evidence (${lesson.evidence.join(', ')}) called ${lesson.use_tool}`);
        continue;
      }
      // "Use A instead of B" beside "use B instead of A" for the same kind of task: the 1.5B model
      // wrote both into one library. In one answer the two cancel out; against the library, the
      // lesson with this update's positive evidence replaces the one it reverses.
      const reversed = reversedText(lesson);
      if (reversed !== null && texts.has(reversed)) {
        rejected.push(`add: "${text}": the same answer also says "${reversed}"`);
        continue;
      }
      const contradicted = reversed === null ? undefined : evidence.lessons?.find((existing) => existing.text === reversed);
      operations.push(contradicted ? { op: 'edit', lesson_id: contradicted.id, text, evidence: lesson.evidence } : { op: 'add', text, evidence: lesson.evidence });
    }
    return { operations, rejected };
  }
  const answer = LessonOperationsAnswerSchema.safeParse(json);
  if (!answer.success) return { problem: describeZodError(answer.error, json) };
  return { operations: answer.data.operations, rejected: [] };
}

/**
 * The JSON schema a local model's answer is held to (llama.cpp turns it into a grammar): evidence
 * refs among the positive-advantage trajectories shown (the only ones a lesson may rest on; the
 * 1.5B model cited a negative one in every update of a benchmark seed when it could), tools among
 * those the evidence called. The positive-evidence rule still checks every answer.
 */
export function structuredAnswerJsonSchema(evidence: Pick<PolicyUpdateEvidence, 'trajectories'>, maxLessons = 3): Record<string, unknown> {
  const positive = evidence.trajectories.filter((t) => t.advantage > 0);
  // With none (an update is skipped before asking), any shown trajectory keeps the schema valid.
  const citable = positive.length > 0 ? positive : evidence.trajectories;
  const toolsOf = (trajectories: typeof evidence.trajectories) => [...new Set(trajectories.flatMap((t) => t.steps.flatMap((s) => (s.tool ? [s.tool] : []))))];
  const toolSchema = (tools: string[]) => (tools.length > 0 ? { type: 'string', enum: tools } : { type: 'string', maxLength: 60 });
  const refs = citable.map((t) => t.ref);
  // The tool to use is one the citable evidence called; the one it replaces, any tool shown.
  const tool = toolSchema(toolsOf(citable));
  const replaced = toolSchema(toolsOf(evidence.trajectories));
  return {
    type: 'object',
    properties: {
      lessons: {
        type: 'array',
        maxItems: maxLessons,
        items: {
          type: 'object',
          properties: {
            evidence: { type: 'array', items: { type: 'string', enum: refs }, minItems: 1, maxItems: 4 },
            task_kind: { type: 'string', minLength: 1, maxLength: 40 },
            use_tool: tool,
            instead_of: { anyOf: [replaced, { type: 'null' }] },
          },
          required: ['evidence', 'task_kind', 'use_tool', 'instead_of'],
          additionalProperties: false,
        },
      },
    },
    required: ['lessons'],
    additionalProperties: false,
  };
}
