/**
 * Spans that activities add to a job's trace, under Temporal's `RunActivity` span. Without a
 * tracer provider (tracing off) they are no-ops.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

export const TRACER_NAME = 'flow';

/** One LLM chat completion as a client span: `llm.chat <model>`. */
export function traceChatCall<T>(model: string, call: () => Promise<T>): Promise<T> {
  return trace.getTracer(TRACER_NAME).startActiveSpan(`llm.chat ${model}`, { kind: SpanKind.CLIENT, attributes: { 'gen_ai.request.model': model } }, async (span) => {
    try {
      return await call();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      throw error;
    } finally {
      span.end();
    }
  });
}
