/**
 * The simulated model server's judge (workers/dev/simulatedModelServer.ts): deterministic answers
 * to the LLM judge's and the group judge's requests, so reward tests run offline. It scores
 * only from what the prompt shows: a final answer equal to the quoted reference answer is
 * right; among right answers, fewer steps is better (relative to the group).
 *
 * Rubric markers let tests exercise the judge's validation: `[sim:malformed]` answers prose
 * every time; `[sim:malformed-once]` answers prose until it is asked again; `[sim:out-of-range]`
 * answers a score of 1.5.
 */
import { normaliseAnswer } from '../../training/rewards';
import { GROUP_JUDGE_MARKER, JUDGE_MARKER } from '../../activities/llm/judge';

interface Message {
  role: string;
  content: string | null;
}

interface ShownTrajectory {
  id: string;
  steps: number;
  finalAnswer: string | null;
}

function shownTrajectories(user: string): ShownTrajectory[] {
  const blocks = user.split(/^(?=Trajectory\b)/m).filter((block) => block.startsWith('Trajectory'));
  return blocks.map((block) => {
    const id = /^Trajectory ?(\S*)/.exec(block)![1];
    const steps = Number(/^Steps: (\d+)/m.exec(block)?.[1] ?? 0);
    const answer = /^Final answer: (.*)$/m.exec(block)?.[1] ?? '(none)';
    return { id, steps, finalAnswer: answer === '(none)' ? null : answer };
  });
}

function isRight(trajectory: ShownTrajectory, reference: string | undefined): boolean {
  return reference !== undefined && trajectory.finalAnswer !== null && normaliseAnswer(trajectory.finalAnswer) === normaliseAnswer(reference);
}

/** The judge's answer to `messages`, or null when they are not a judge's request. */
export function simulatedJudgeAnswer(messages: Message[]): string | null {
  const system = messages.find((m) => m.role === 'system')?.content ?? '';
  const single = system.startsWith(JUDGE_MARKER);
  if (!single && !system.startsWith(GROUP_JUDGE_MARKER)) return null;
  const askedAgain = messages.some((m) => m.role === 'assistant');
  if (system.includes('[sim:malformed]') || (system.includes('[sim:malformed-once]') && !askedAgain)) {
    return 'I think these look fine overall.';
  }
  const user = messages.find((m) => m.role === 'user')?.content ?? '';
  const reference = /^Reference answer: (.*)$/m.exec(user)?.[1];
  const shown = shownTrajectories(user);
  const outOfRange = system.includes('[sim:out-of-range]');
  if (single) {
    const right = isRight(shown[0], reference);
    return JSON.stringify({
      score: outOfRange ? 1.5 : right ? 1 : 0,
      reason: right ? 'the final answer matches the reference answer' : 'the final answer does not match the reference answer',
    });
  }
  const fewestSteps = Math.min(...shown.filter((t) => isRight(t, reference)).map((t) => t.steps));
  return JSON.stringify({
    scores: shown.map((t) => {
      const right = isRight(t, reference);
      const score = outOfRange ? 1.5 : right ? Math.max(0.5, 1 - 0.1 * (t.steps - fewestSteps)) : 0;
      return { id: t.id, score, reason: right ? `right, in ${t.steps} steps` : 'wrong or no final answer' };
    }),
  });
}
