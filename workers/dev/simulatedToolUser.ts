/**
 * How the built-in simulated model (workers/dev/simulatedModelServer.ts) acts when it is offered
 * Flow's real tools instead of the simulated environment's: it fetches a URL named in the task,
 * or evaluates the arithmetic in it (in backticks, or the longest arithmetic run), then answers
 * with what the tool returned. Pure, so the server stays a thin HTTP shell.
 */
import { CALCULATOR_TOOL } from '../../activities/tools/calculator';
import { HTTP_FETCH_TOOL } from '../../activities/tools/httpFetch';

export const TOOLS_GIVE_UP_ANSWER = 'I could not find the answer.';

export interface ToolUserMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
}

export type ToolUserAction =
  | { type: 'tool_call'; tool: string; arguments: Record<string, unknown> }
  | { type: 'final_answer'; content: string };

const URL_IN_TEXT = /https?:\/\/[^\s`'"<>)]+/;
const BACKTICKED = /`([^`]+)`/;
const ARITHMETIC_RUN = /[-(\d.][\d\s+\-*/^().%]*[\d)]/g;

/** The next action, or null when the request does not offer the real tools (not this model's turn). */
export function simulatedToolUserTurn(messages: ToolUserMessage[], toolNames: string[]): ToolUserAction | null {
  // The `tools` environment always offers http_fetch; the simulated environment has a tool named
  // calculator too, but no http_fetch, and its agent must keep playing by its own rules.
  if (!toolNames.includes(HTTP_FETCH_TOOL)) return null;
  const task = messages.find((message) => message.role === 'user')?.content ?? '';
  const lastTool = [...messages].reverse().find((message) => message.role === 'tool');
  if (lastTool) {
    const output = lastTool.content ?? '';
    if (output.startsWith('error:')) return { type: 'final_answer', content: TOOLS_GIVE_UP_ANSWER };
    // http_fetch answers "HTTP <status>\n<body>": the body is the answer.
    const body = /^HTTP \d{3}\n/.test(output) ? output.slice(output.indexOf('\n') + 1) : output;
    return { type: 'final_answer', content: body.trim() };
  }
  const url = URL_IN_TEXT.exec(task)?.[0];
  if (url && toolNames.includes(HTTP_FETCH_TOOL)) return { type: 'tool_call', tool: HTTP_FETCH_TOOL, arguments: { url } };
  const expression = arithmeticIn(task);
  if (expression && toolNames.includes(CALCULATOR_TOOL)) {
    return { type: 'tool_call', tool: CALCULATOR_TOOL, arguments: { expression } };
  }
  return { type: 'final_answer', content: TOOLS_GIVE_UP_ANSWER };
}

function arithmeticIn(text: string): string | null {
  const quoted = BACKTICKED.exec(text)?.[1];
  if (quoted) return quoted.trim();
  const runs = (text.match(ARITHMETIC_RUN) ?? []).map((run) => run.trim()).filter((run) => /[-+*/^%]/.test(run.slice(1)));
  return runs.sort((a, b) => b.length - a.length)[0] ?? null;
}
