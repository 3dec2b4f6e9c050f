/**
 * FLOW-017, the LLM judges behind the 'llm_judge' and 'ruler' reward strategies: a rubric in,
 * `{score, reason}` out, validated with zod. A malformed answer is asked for again once, with
 * what was wrong; if it is still malformed the trajectory is marked (RewardFailure), never
 * given a made-up score. Calls go through the activity's budget-guarded Portkey client, so
 * what the judge costs is counted in the job's spend.
 */
import { z } from 'zod';
import { RewardFailure, type JudgeVerdict, type RewardInput, type RewardJudge } from '../../training/rewards';
import { BudgetAllowanceExceededError } from '../budgetGuard';
import type { ChatClient, ChatMessage } from '../../adapters/llm/chatClient';
import { loadPrompt } from '../prompts';

/** Start of the judges' system prompts: how a model server (and a reader of logs) tells them apart. */
export const JUDGE_MARKER = '[flow-judge:one]';
export const GROUP_JUDGE_MARKER = '[flow-judge:group]';

/** One answer, then one more with the problem pointed out; then the trajectory is marked. */
export const JUDGE_MAX_ATTEMPTS = 2;

const ONE_PROMPT = loadPrompt('judge.md');
const GROUP_PROMPT = loadPrompt('judgeGroup.md');
export const DEFAULT_RUBRIC = loadPrompt('judgeRubric.md');

const ScoreSchema = z.number().min(0).max(1);
const ReasonSchema = z.string().trim().min(1).max(2000);

export const JudgeVerdictSchema = z.object({ score: ScoreSchema, reason: ReasonSchema });

export const GroupVerdictSchema = z.object({
  scores: z.array(z.object({ id: z.string(), score: ScoreSchema, reason: ReasonSchema })).min(1),
});

export interface JudgeSettings {
  model: string;
  rubric?: string;
  max_tokens: number;
  seed?: number;
  /** Stops a call the activity no longer waits for (its cancellation, a worker shutting down). */
  signal?: AbortSignal;
}

/** How much of a step's tool arguments and results the judge sees (prompts stay bounded). */
const SHOWN_CHARS = 400;
const clip = (text: string) => (text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text);

/** The task, as the judge sees it. */
export function renderTask(trajectory: RewardInput): string {
  const task = trajectory.task;
  const lines = [`Task: ${task?.prompt ?? '(not given)'}`];
  if (task?.expected_answer !== undefined) lines.push(`Reference answer: ${task.expected_answer}`);
  if (task?.expected_tool !== undefined) lines.push(`Expected tool: ${task.expected_tool}`);
  return lines.join('\n');
}

/** One trajectory, as the judge sees it: steps, final answer, error. */
export function renderTrajectory(trajectory: RewardInput, id?: string): string {
  const lines = [id ? `Trajectory ${id}` : 'Trajectory', `Steps: ${trajectory.steps.length}`];
  for (const [i, step] of trajectory.steps.entries()) {
    if (step.action.type === 'tool_call') {
      const calls = step.tool_calls.map((call) => `${call.name}(${clip(JSON.stringify(call.arguments))})`).join(', ');
      const outcome = step.error ? `error: ${clip(step.error)}` : clip(step.result ?? '');
      lines.push(`  ${i + 1}. called ${calls || '(no tool)'} -> ${outcome}`);
    } else {
      lines.push(`  ${i + 1}. answered`);
    }
  }
  lines.push(`Final answer: ${trajectory.final_answer ?? '(none)'}`);
  if (trajectory.error) lines.push(`Error: ${clip(trajectory.error)}`);
  return lines.join('\n');
}

type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

/**
 * A judge call the budget guard refused: the trajectory is marked with why, and the job goes
 * on (its next pre-flight check ends it if the budget is really spent).
 */
async function withinBudget<T>(ask: () => Promise<Parsed<T>>): Promise<Parsed<T> | RewardFailure> {
  try {
    return await ask();
  } catch (error) {
    if (error instanceof BudgetAllowanceExceededError) return new RewardFailure(`the judge was not asked: ${error.message}`);
    throw error;
  }
}

function parseJson<T>(content: string | null, schema: z.ZodType<T>): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(content ?? '');
  } catch {
    return { ok: false, problem: `not JSON: ${JSON.stringify((content ?? '').slice(0, 120))}` };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, problem: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(answer)'}: ${issue.message}`).join('; ') };
}

export class LlmJudge implements RewardJudge {
  constructor(
    private readonly chat: Pick<ChatClient, 'complete'>,
    private readonly settings: JudgeSettings,
  ) {}

  private system(instructions: string, marker: string): string {
    return `${marker}\n${instructions}\n${this.settings.rubric ?? DEFAULT_RUBRIC}`;
  }

  /** Asks until the answer passes `accept`, at most JUDGE_MAX_ATTEMPTS times. */
  private async ask<T>(system: string, user: string, accept: (content: string | null) => Parsed<T>): Promise<Parsed<T>> {
    const messages: ChatMessage[] = [
      { role: 'system', content: system },
      { role: 'user', content: user },
    ];
    let last: Parsed<T> = { ok: false, problem: 'no answer' };
    for (let attempt = 1; attempt <= JUDGE_MAX_ATTEMPTS; attempt++) {
      const result = await this.chat.complete(
        {
          model: this.settings.model,
          messages,
          max_tokens: this.settings.max_tokens,
          seed: this.settings.seed,
          response_format: { type: 'json_object' },
        },
        this.settings.signal,
      );
      last = accept(result.message.content);
      if (last.ok) return last;
      messages.push(
        { role: 'assistant', content: result.message.content },
        { role: 'user', content: `That answer was not valid (${last.problem}). Answer again with JSON only, exactly in the form asked.` },
      );
    }
    return last;
  }

  async one(trajectory: RewardInput): Promise<JudgeVerdict | RewardFailure> {
    const user = `${renderTask(trajectory)}\n\n${renderTrajectory(trajectory)}`;
    const answer = await withinBudget(() => this.ask(this.system(ONE_PROMPT, JUDGE_MARKER), user, (content) => parseJson(content, JudgeVerdictSchema)));
    if (answer instanceof RewardFailure) return answer;
    if (!answer.ok) return new RewardFailure(`the judge's answer was malformed after ${JUDGE_MAX_ATTEMPTS} attempts: ${answer.problem}`);
    return answer.value;
  }

  async group(trajectories: readonly RewardInput[]): Promise<(JudgeVerdict | RewardFailure)[]> {
    if (trajectories.length === 0) return [];
    const ids = trajectories.map((_, i) => `T${i + 1}`);
    const user = [renderTask(trajectories[0]), ...trajectories.map((t, i) => renderTrajectory(t, ids[i]))].join('\n\n');
    const answer = await withinBudget(() => this.ask(this.system(GROUP_PROMPT, GROUP_JUDGE_MARKER), user, (content) => {
      const parsed = parseJson(content, GroupVerdictSchema);
      if (!parsed.ok) return parsed;
      const given = parsed.value.scores.map((entry) => entry.id);
      const missing = ids.filter((id) => !given.includes(id));
      const unknown = given.filter((id, i) => !ids.includes(id) || given.indexOf(id) !== i);
      if (missing.length || unknown.length) {
        return { ok: false, problem: `scores must name each of ${ids.join(', ')} once (missing: ${missing.join(', ') || 'none'}; unknown or repeated: ${unknown.join(', ') || 'none'})` };
      }
      return parsed;
    }));
    if (answer instanceof RewardFailure) return trajectories.map(() => answer);
    if (!answer.ok) {
      const failure = new RewardFailure(`the group judge's answer was malformed after ${JUDGE_MAX_ATTEMPTS} attempts: ${answer.problem}`);
      return trajectories.map(() => failure);
    }
    const byId = new Map(answer.value.scores.map((entry) => [entry.id, { score: entry.score, reason: entry.reason }]));
    return ids.map((id) => byId.get(id)!);
  }
}
