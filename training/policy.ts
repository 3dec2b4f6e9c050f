import { z } from 'zod';
import { LessonProvenanceFields } from './lessonProvenance';

/**
 * FLOW-006: the policy is text. A policy is a base system prompt plus a library of lessons, each
 * with a weight in [0, 1] that says how confident the training is in it. An update changes it
 * through typed lesson operations (training/lessonOperations.ts) proposed by an LLM on the
 * evidence of scored trajectories (training/policyEvidence.ts); the agent reads it as its system
 * prompt (renderSystemPrompt).
 */

export const LESSON_TEXT_MAX_CHARS = 500;

export const LessonSchema = z.object({
  id: z.string().min(1).max(100),
  text: z.string().min(1).max(LESSON_TEXT_MAX_CHARS),
  weight: z.number().min(0).max(1),
  /** Where the lesson came from and how it has done since (training/lessonProvenance.ts); absent on older policies. */
  ...LessonProvenanceFields,
});
export type Lesson = z.infer<typeof LessonSchema>;

export const PolicySchema = z.object({
  base_prompt: z.string().min(1),
  lessons: z
    .array(LessonSchema)
    .refine((lessons) => new Set(lessons.map((lesson) => lesson.id)).size === lessons.length, {
      message: 'lesson ids must be unique',
    }),
  version: z.number().int().min(0),
});
export type Policy = z.infer<typeof PolicySchema>;

export function initialPolicy(basePrompt: string): Policy {
  if (basePrompt.trim() === '') {
    throw new Error(`initialPolicy: base prompt must not be blank, got ${JSON.stringify(basePrompt)}`);
  }
  return { base_prompt: basePrompt, lessons: [], version: 0 };
}

export const LESSONS_HEADER = 'Lessons learned (weight = confidence):';

/** Strongest lessons first so the model reads them first; ties by id (ids are unique) keep the order stable. */
export function renderSystemPrompt(policy: Policy): string {
  if (policy.lessons.length === 0) return policy.base_prompt;
  const lines = [...policy.lessons]
    .sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : 1))
    // One lesson per line: the line format is what the agent (and the simulated model) parses.
    .map((lesson) => `- [${lesson.weight.toFixed(2)}] ${lesson.text.replace(/\s+/g, ' ').trim()}`);
  return `${policy.base_prompt}\n\n${LESSONS_HEADER}\n${lines.join('\n')}`;
}
