/**
 * Tool calls a small model can make (issue 13). Qwen2.5-Coder through an OpenAI endpoint never
 * emits native `tool_calls` (0/40 measured), but follows a JSON schema in `response_format`: the
 * answer is `{"tool": <one of the offered tools, or final_answer>, "arguments": <that tool's
 * arguments>}`, each tool a branch of an `anyOf` so the server's grammar allows only offered
 * names and arguments that fit that tool. The answer becomes Flow's ordinary tool call.
 *
 * What a real model still gets wrong (no grammar, a provider that ignores response_format,
 * max_tokens reached) is classified as an invalid output, never thrown.
 */
import type { InvalidOutputKind } from '../../training/iterationMetrics';
import type { ChatTool, JsonSchemaFormat } from '../../adapters/llm/chatClient';
import { loadPrompt } from '../prompts';

export const FINAL_ANSWER_TOOL = 'final_answer';

/** How the agent asks for tool calls: the provider's native `tools`, or a JSON schema in `response_format`. */
export type ToolCallMode = 'native' | 'schema';


export class InvalidOutput {
  constructor(
    readonly kind: InvalidOutputKind,
    readonly detail: string,
  ) {}
  /** `invalid_output:prose: …` — the prefix a step's error carries, so a reader (and a count) can find it. */
  toString(): string {
    return `invalid_output:${this.kind}: ${this.detail}`;
  }
}


const INSTRUCTIONS = loadPrompt('schemaToolCalls.md');

const FINAL_ANSWER_PARAMETERS = {
  type: 'object',
  properties: { answer: { type: 'string', description: 'The answer to give the user' } },
  required: ['answer'],
  additionalProperties: false,
};

/** The system prompt's appendix: the tools as text (the model sees no native tool list) and the answer's form. */
export function schemaToolInstructions(tools: ChatTool[]): string {
  const lines = tools.map((tool) => `- ${tool.function.name}: ${tool.function.description} Arguments: ${argumentsHint(tool.function.parameters)}`);
  lines.push(`- ${FINAL_ANSWER_TOOL}: Give the final answer to the user. Arguments: {"answer": string}`);
  return `${INSTRUCTIONS}\n\nTools:\n${lines.join('\n')}`;
}

function argumentsHint(parameters: Record<string, unknown>): string {
  const properties = (parameters.properties ?? {}) as Record<string, { type?: string }>;
  return `{${Object.entries(properties)
    .map(([name, schema]) => `"${name}": ${schema.type ?? 'any'}`)
    .join(', ')}}`;
}

/** The `response_format` that forces `{"tool", "arguments"}` with an offered tool and that tool's arguments. */
export function toolCallResponseFormat(tools: ChatTool[]): JsonSchemaFormat {
  const branch = (name: string, parameters: Record<string, unknown>) => ({
    type: 'object',
    properties: { tool: { type: 'string', enum: [name] }, arguments: parameters },
    required: ['tool', 'arguments'],
    additionalProperties: false,
  });
  return {
    type: 'json_schema',
    json_schema: {
      name: 'tool_call',
      strict: true,
      schema: { anyOf: [...tools.map((tool) => branch(tool.function.name, tool.function.parameters)), branch(FINAL_ANSWER_TOOL, FINAL_ANSWER_PARAMETERS)] },
    },
  };
}

export type SchemaReply = { tool: string; arguments: Record<string, unknown> } | { invalid: InvalidOutput };

/**
 * Reads a schema-forced reply: the tool and its arguments, or what is wrong with it. Tolerates a
 * ```json fence around the object (llama.cpp's grammar allows one).
 */
export function parseSchemaReply(content: string | null, finishReason: string | null, tools: ChatTool[]): SchemaReply {
  const text = (content ?? '').trim();
  if (finishReason === 'length') return { invalid: new InvalidOutput('max_tokens', `the reply reached max_tokens before it was complete: ${clip(text)}`) };
  const unfenced = text.replace(/^```(?:json)?\s*\n?([\s\S]*?)\n?```$/, '$1');
  let json: unknown;
  try {
    json = JSON.parse(unfenced);
  } catch {
    return { invalid: new InvalidOutput('prose', `expected a JSON tool call, got prose: ${clip(text)}`) };
  }
  if (!isObject(json) || typeof json.tool !== 'string') return { invalid: new InvalidOutput('prose', `expected {"tool", "arguments"}, got ${clip(unfenced)}`) };
  const args = json.arguments ?? {};
  const offered = new Map(tools.map((tool) => [tool.function.name, tool.function.parameters]));
  offered.set(FINAL_ANSWER_TOOL, FINAL_ANSWER_PARAMETERS);
  const parameters = offered.get(json.tool);
  if (!parameters) return { invalid: new InvalidOutput('unknown_tool', `unknown tool "${json.tool}"; offered: ${[...offered.keys()].join(', ')}`) };
  const problem = isObject(args) ? argumentsProblem(args, parameters) : `arguments must be an object, got ${clip(JSON.stringify(args))}`;
  if (problem) return { invalid: new InvalidOutput('arguments_off_schema', `${json.tool}: ${problem}`) };
  return { tool: json.tool, arguments: args as Record<string, unknown> };
}

/** What is wrong with `args` under a flat JSON schema (required keys, primitive types, no extras when closed), or null. */
export function argumentsProblem(args: Record<string, unknown>, parameters: Record<string, unknown>): string | null {
  const properties = (parameters.properties ?? {}) as Record<string, { type?: string }>;
  for (const name of (parameters.required ?? []) as string[]) if (!(name in args)) return `missing argument "${name}"`;
  for (const [name, value] of Object.entries(args)) {
    const schema = properties[name];
    if (!schema) {
      if (parameters.additionalProperties === false) return `unexpected argument "${name}"`;
      continue;
    }
    const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
    const expected = schema.type;
    if (expected && !(expected === type || (expected === 'integer' && Number.isInteger(value)))) return `argument "${name}" should be ${expected}, got ${type}`;
  }
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const clip = (text: string) => (text.length > 160 ? `${text.slice(0, 160)}…` : text);
