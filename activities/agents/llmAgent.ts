import type { ToolCall, TrajectoryStep } from '../../training/config';
import type { ChatClient, ChatMessage, ChatTool } from '../llm/chatClient';
import type { AgentEnvironment, AgentRunRequest, AgentRunResult, AgentRuntime } from './agentRuntime';

const STATE_CHARS = 600;

/** A tool-using LLM agent: the model picks tools through `portkey-ai` until it answers. */
export class LlmAgent implements AgentRuntime {
  constructor(
    private readonly chat: ChatClient,
    private readonly environment: AgentEnvironment,
  ) {}

  async run(request: AgentRunRequest): Promise<AgentRunResult> {
    const tools: ChatTool[] = this.environment.tools().map((tool) => ({ type: 'function', function: tool }));
    const messages: ChatMessage[] = [
      { role: 'system', content: request.systemPrompt },
      { role: 'user', content: request.task.prompt },
    ];
    const toolCalls: ToolCall[] = [];
    for (let index = 0; index < request.maxSteps; index++) {
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
      request.onStep({
        ...step,
        action: { type: 'tool_call', content: reply.content ?? null },
        result: outputs.join('\n'),
        error: errors.length ? errors.join('; ') : null,
        ended_at: new Date().toISOString(),
      });
    }
    return { finalAnswer: null, success: false, verified: false, error: `ran out of steps (max_steps=${request.maxSteps}) without a final answer` };
  }
}

function parseArguments(raw: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw || '{}');
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { value: parsed };
  } catch {
    return { unparsed: raw };
  }
}
