/**
 * The API process's telemetry: Flow's metrics (training_jobs_created_total) on FLOW_METRICS_PORT
 * (default 9464; 0 = off; FLOW_METRICS_HOST, default 0.0.0.0), and the root of every job's trace:
 * each HTTP request gets a server span (continuing a caller's `traceparent` when it sends one),
 * under which the Temporal client's interceptor starts the workflow and hands the context on to
 * the workers.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { FastifyInstance } from 'fastify';
import { portFromEnv, startProcessTelemetry, type ProcessTelemetry } from '../adapters/telemetry/processTelemetry';
import { TRACER_NAME } from '../adapters/telemetry/tracing';

export const DEFAULT_API_METRICS_PORT = 9464;

/** Once per API process, before it serves (the entry point in api/main.ts). */
export function startApiTelemetry(env: NodeJS.ProcessEnv = process.env): Promise<ProcessTelemetry> {
  return startProcessTelemetry({
    serviceName: env.OTEL_SERVICE_NAME || 'flow-api',
    metricsPort: portFromEnv(env, 'FLOW_METRICS_PORT', DEFAULT_API_METRICS_PORT),
    metricsHost: env.FLOW_METRICS_HOST || undefined,
    env,
  });
}

/** For the Temporal Client: StartWorkflow (and signal, query...) spans, and the context in the workflow's headers. */
export function tracingClientInterceptors(): WorkflowClientInterceptor[] {
  return [new OpenTelemetryWorkflowClientInterceptor()];
}

declare module 'fastify' {
  interface FastifyRequest {
    traceContext?: Context;
  }
}

/**
 * A SERVER span per request, active while its hooks and handler run. It is entered twice: at
 * onRequest (authentication) and again at preHandler, because the body arrives through stream
 * events that do not carry the request's async context into the handler.
 */
export function registerRequestTracing(app: FastifyInstance): void {
  const tracer = trace.getTracer(TRACER_NAME);
  const spans = new WeakMap<object, Span>();
  app.addHook('onRequest', (request, _reply, done) => {
    const parent = propagation.extract(context.active(), request.headers);
    const route = request.routeOptions.url ?? request.url.split('?')[0];
    const span = tracer.startSpan(
      `${request.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': route, 'flow.request_id': request.id } },
      parent,
    );
    spans.set(request, span);
    request.traceContext = trace.setSpan(parent, span);
    context.with(request.traceContext, done);
  });
  app.addHook('preHandler', (request, _reply, done) => {
    if (request.traceContext) context.with(request.traceContext, done);
    else done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const span = spans.get(request);
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    done();
  });
}
