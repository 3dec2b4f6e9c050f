import type { ToolCall, TrajectoryStep } from '../../training/trajectory';
import { type ChatClient, type ChatMessage, type ChatTool, isLocalModel } from '../../adapters/llm/chatClient';
import type { AgentEnvironment, AgentRunRequest, AgentRunResult, AgentRuntime } from './agentRuntime';
import { FINAL_ANSWER_TOOL, parseSchemaReply, schemaToolInstructions, toolCallResponseFormat, type ToolCallMode } from './schemaToolCalls';

const STATE_CHARS = 600;

export interface LlmAgentOptions {
  /** Native `tools`, or a JSON schema in `response_format`; default `schema` for `local:*` models, else `native`. */
  toolCalls?: ToolCallMode;
}

/** A tool-using LLM agent: the model picks tools through `portkey-ai` until it answers. */
export class LlmAgent implements AgentRuntime {
  constructor(
    private readonly chat: ChatClient,
    private readonly environment: AgentEnvironment,
    private readonly options: LlmAgentOptions = {},
  ) {}

  async run(request: AgentRunRequest): Promise<AgentRunResult> {
    const tools: ChatTool[] = this.environment.tools(request.task).map((tool) => ({ type: 'function', function: tool }));
    const mode = this.options.toolCalls ?? (isLocalModel(request.model) ? 'schema' : 'native');
    if (mode === 'schema') return this.runWithSchema(request, tools);
    const { conversation, firstStep } = resumedConversation(request, [
      { role: 'system', content: request.systemPrompt },
      { role: 'user', content: request.task.prompt },
    ]);
    const { messages, tool_calls: toolCalls } = conversation;
    for (let index = firstStep; index < request.maxSteps; index++) {
      request.signal.throwIfAborted();
      const startedAt = new Date().toISOString();
      const state = (messages[messages.length - 1].content ?? '').slice(0, STATE_CHARS);
      const completion = await this.chat.complete(
        { model: request.model, messages, tools, max_tokens: request.maxTokens, seed: request.seed, logprobs: true },
        request.signal,
      );
      const reply = completion.message;
      const calls = (reply.tool_calls ?? []).map((call) => ({
        id: call.id,
        name: call.function.name,
        arguments: parseArguments(call.function.arguments),
      }));
      const step: Omit<TrajectoryStep, 'action' | 'result' | 'error' | 'ended_at'> = {
        index,
        state,
        tool_calls: calls,
        started_at: startedAt,
        usage: completion.usage,
        cost_usd: completion.costUsd,
        logprob: completion.logprob,
      };
      if (calls.length === 0) {
        const finalAnswer = reply.content ?? '';
        request.onStep({ ...step, action: { type: 'final_answer', content: finalAnswer }, result: null, error: null, ended_at: new Date().toISOString() });
        return { finalAnswer, ...this.environment.judge(request.task, { toolCalls, finalAnswer }), error: null };
      }
      messages.push({ role: 'assistant', content: reply.content ?? null, tool_calls: reply.tool_calls });
      const outputs: string[] = [];
      const errors: string[] = [];
      for (const call of calls) {
        const outcome = await this.environment.executeTool(request.task, call.name, call.arguments, request.signal);
        toolCalls.push(call);
        outputs.push(outcome.output);
        if (outcome.error) errors.push(`${call.name}: ${outcome.error}`);
        messages.push({ role: 'tool', tool_call_id: call.id, content: outcome.error ? `error: ${outcome.error}` : outcome.output });
      }
      request.onStep(
        {
          ...step,
          action: { type: 'tool_call', content: reply.content ?? null },
          result: outputs.join('\n'),
          error: errors.length ? errors.join('; ') : null,
          ended_at: new Date().toISOString(),
        },
        structuredClone(conversation),
      );
    }
    return { finalAnswer: null, success: false, verified: false, error: `ran out of steps (max_steps=${request.maxSteps}) without a final answer` };
  }

  /**
   * Schema-forced tool calls (schemaToolCalls.ts): every reply is `{"tool", "arguments"}` under a
   * JSON schema of the offered tools. A reply that is not one (prose, an unknown tool, arguments
   * off the schema, max_tokens reached) is recorded as the step's `invalid_output:` error and
   * the model is told what was wrong; it costs a step, never the activity.
   */
  private async runWithSchema(request: AgentRunRequest, tools: ChatTool[]): Promise<AgentRunResult> {
    const responseFormat = toolCallResponseFormat(tools);
    const { conversation, firstStep } = resumedConversation(request, [
      { role: 'system', content: `${request.systemPrompt}\n\n${schemaToolInstructions(tools)}` },
      { role: 'user', content: request.task.prompt },
    ]);
    const { messages, tool_calls: toolCalls } = conversation;
    for (let index = firstStep; index < request.maxSteps; index++) {
      request.signal.throwIfAborted();
      const startedAt = new Date().toISOString();
      const state = (messages[messages.length - 1].content ?? '').slice(0, STATE_CHARS);
      const completion = await this.chat.complete(
        { model: request.model, messages, max_tokens: request.maxTokens, seed: request.seed + index, logprobs: true, response_format: responseFormat },
        request.signal,
      );
      const content = completion.message.content ?? '';
      const reply = parseSchemaReply(content, completion.finishReason, tools);
      const step = { index, state, started_at: startedAt, usage: completion.usage, cost_usd: completion.costUsd, logprob: completion.logprob };
      messages.push({ role: 'assistant', content });
      if ('invalid' in reply) {
        conversation.last_invalid = reply.invalid.toString();
        messages.push({ role: 'user', content: `That reply was not valid (${reply.invalid.detail}). Reply with one JSON object {"tool": ..., "arguments": {...}} only.` });
        request.onStep(
          { ...step, tool_calls: [], action: { type: 'tool_call', content }, result: null, error: conversation.last_invalid, ended_at: new Date().toISOString() },
          structuredClone(conversation),
        );
        continue;
      }
      if (reply.tool === FINAL_ANSWER_TOOL) {
        const answer = reply.arguments.answer;
        const finalAnswer = typeof answer === 'string' ? answer : JSON.stringify(answer);
        request.onStep({ ...step, tool_calls: [], action: { type: 'final_answer', content: finalAnswer }, result: null, error: null, ended_at: new Date().toISOString() });
        return { finalAnswer, ...this.environment.judge(request.task, { toolCalls, finalAnswer }), error: null };
      }
      conversation.last_invalid = null;
      const call: ToolCall = { id: `call_${index}`, name: reply.tool, arguments: reply.arguments };
      const outcome = await this.environment.executeTool(request.task, call.name, call.arguments, request.signal);
      toolCalls.push(call);
      messages.push({ role: 'user', content: `${call.name} returned: ${outcome.error ? `error: ${outcome.error}` : outcome.output}` });
      request.onStep(
        {
          ...step,
          tool_calls: [call],
          action: { type: 'tool_call', content: null },
          result: outcome.output,
          error: outcome.error ? `${call.name}: ${outcome.error}` : null,
          ended_at: new Date().toISOString(),
        },
        structuredClone(conversation),
      );
    }
    // Ran out of steps: when the last reply was invalid, the trajectory's error says which way (the steps are counted).
    return {
      finalAnswer: null,
      success: false,
      verified: false,
      error: conversation.last_invalid ?? `ran out of steps (max_steps=${request.maxSteps}) without a final answer`,
    };
  }
}

/**
 * Where the agent is in its episode, handed to `onStep` after every step (the trajectory activity
 * heartbeats it), so a retried attempt goes on from the last step instead of paying for it again.
 */
interface Conversation {
  messages: ChatMessage[];
  tool_calls: ToolCall[];
  /** The last reply's invalid_output error (schema mode), cleared by a valid one. */
  last_invalid: string | null;
}

/**
 * A new conversation, or the one an interrupted attempt left if it is of this very episode; step
 * indices go on after the steps it had taken.
 */
function resumedConversation(request: AgentRunRequest, opening: ChatMessage[]): { conversation: Conversation; firstStep: number } {
  const saved = request.resume?.state as Partial<Conversation> | undefined;
  const sameEpisode =
    saved !== undefined &&
    Array.isArray(saved.messages) &&
    Array.isArray(saved.tool_calls) &&
    opening.every((message, i) => saved.messages![i]?.role === message.role && saved.messages![i]?.content === message.content);
  if (!sameEpisode) return { conversation: { messages: opening, tool_calls: [], last_invalid: null }, firstStep: 0 };
  return {
    conversation: { messages: saved.messages!, tool_calls: saved.tool_calls!, last_invalid: saved.last_invalid ?? null },
    firstStep: request.resume!.steps.length,
  };
}

function parseArguments(raw: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw || '{}');
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed };
  } catch {
    return { unparsed: raw };
  }
}
