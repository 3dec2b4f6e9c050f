/**
 * The `tools` environment: real tools (calculator, allow-listed HTTP fetch) and a judge that
 * compares the final answer with the task's `expected_answer`, normalised. Which tool a task
 * should use is its `expected_tool` (evaluation's tool accuracy); success is the answer alone.
 */
import type { Task } from '../../training/task';
import type { AgentEnvironment, ToolOutcome } from '../agents/agentRuntime';
import { calculate, CALCULATOR_TOOL, CALCULATOR_TOOL_DEFINITION } from './calculator';
import { httpFetch, HTTP_FETCH_TOOL, HTTP_FETCH_TOOL_DEFINITION, type HttpFetchOptions } from './httpFetch';

export const REAL_TOOL_NAMES = [CALCULATOR_TOOL, HTTP_FETCH_TOOL] as const;

export class ToolsEnvironment implements AgentEnvironment {
  constructor(private readonly fetchOptions: HttpFetchOptions) {}

  tools() {
    return [CALCULATOR_TOOL_DEFINITION, HTTP_FETCH_TOOL_DEFINITION].map((tool) => ({ ...tool }));
  }

  async executeTool(_task: Task, name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<ToolOutcome> {
    if (name === CALCULATOR_TOOL) return calculate(args.expression);
    if (name === HTTP_FETCH_TOOL) return httpFetch(args.url, this.fetchOptions, signal);
    return { output: '', error: `unknown tool "${name}"; available tools: ${REAL_TOOL_NAMES.join(', ')}` };
  }

  judge(task: Task, run: { finalAnswer: string | null }): { success: boolean; verified: boolean } {
    if (task.expected_answer === undefined) {
      throw new Error(`task "${task.id}" has no expected_answer: the tools environment judges answers against it`);
    }
    return { success: run.finalAnswer !== null && answersMatch(run.finalAnswer, task.expected_answer), verified: false };
  }
}

/** Case, surrounding space, inner runs of space and a trailing full stop do not count. */
export function normaliseAnswer(answer: string): string {
  return answer.trim().replace(/\s+/g, ' ').replace(/\.$/, '').toLowerCase();
}

/** Equal once normalised; numbers are equal by value ("14.250" matches "14.25", "1,024" matches "1024"). */
export function answersMatch(answer: string, expected: string): boolean {
  const a = normaliseAnswer(answer);
  const b = normaliseAnswer(expected);
  if (a === b) return true;
  const x = asNumber(a);
  const y = asNumber(b);
  return x !== null && y !== null && Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x), Math.abs(y));
}

function asNumber(text: string): number | null {
  const plain = text.replace(/(\d),(?=\d{3}\b)/g, '$1');
  if (!/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/.test(plain)) return null;
  const value = Number(plain);
  return Number.isFinite(value) ? value : null;
}
