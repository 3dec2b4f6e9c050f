/**
 * The prompts activities send to models, one Markdown file each in this folder (prompts live in
 * their own files, not in string literals). One loader for all of them; a name that is not a
 * file here is a compile error.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export type PromptName =
  | 'judge.md'
  | 'judgeGroup.md'
  | 'judgeRubric.md'
  | 'policyUpdate.md'
  | 'policyUpdateContrastive.md'
  | 'policyUpdateCounters.md'
  | 'policyUpdateStepCredit.md'
  | 'schemaToolCalls.md';

/** The prompt's text without surrounding whitespace; callers read it once, at module load. */
export function loadPrompt(name: PromptName): string {
  return readFileSync(path.join(__dirname, name), 'utf8').trim();
}
