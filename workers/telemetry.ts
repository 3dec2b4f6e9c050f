/**
 * A worker process's telemetry:
 * - Flow's own metrics (adapters/telemetry/metrics.ts) on FLOW_METRICS_PORT (default 9464; 0 = off);
 * - Temporal's worker metrics (task slots, poll and schedule-to-start latencies...) from the SDK's
 *   Rust core on FLOW_TEMPORAL_METRICS_PORT (default 9465; 0 = off), `_total` on counters and
 *   seconds for durations, so the scrape passes `promtool check metrics`;
 * - traces through Temporal's OpenTelemetry interceptors: workflow spans (from the sandbox, via a
 *   sink) and activity spans join the trace the API's request started.
 * FLOW_METRICS_HOST is the interface both endpoints bind to (default 0.0.0.0).
 * FLOW_WORKER_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR) sets the Temporal SDK's log level and
 * writes its lines as JSON to stderr (DEBUG shows each activity attempt started and completed);
 * unset, the SDK's own logger (INFO, human-readable) is kept.
 */
import type { Context } from '@temporalio/activity';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import { DefaultLogger, Runtime, type LogEntry, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Resource } from '@opentelemetry/resources';
import { activityMetricsInterceptor } from './activityMetrics';
import { portFromEnv, startProcessTelemetry, type ProcessTelemetry } from '../adapters/telemetry/processTelemetry';

export const DEFAULT_WORKER_METRICS_PORT = 9464;
export const DEFAULT_TEMPORAL_METRICS_PORT = 9465;

/** Temporal's workflow interceptors for OpenTelemetry; they run inside the workflow bundle. */
export const WORKFLOW_TRACING_MODULE = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

let processTelemetry: ProcessTelemetry | null = null;

export interface WorkerTelemetry {
  /** Flow's metrics endpoint, or null. */
  metricsUrl: string | null;
  /** Temporal SDK metrics endpoint, or null. */
  temporalMetricsUrl: string | null;
  shutdown(): Promise<void>;
}

/**
 * Once per worker process, before its first connection to Temporal (Runtime.install must come
 * first). `workers/main.ts` calls it; in-process test workers run without it.
 */
export async function startWorkerTelemetry(env: NodeJS.ProcessEnv = process.env, warn: (line: string) => void = console.warn): Promise<WorkerTelemetry> {
  const host = env.FLOW_METRICS_HOST || '0.0.0.0';
  const temporalPort = portFromEnv(env, 'FLOW_TEMPORAL_METRICS_PORT', DEFAULT_TEMPORAL_METRICS_PORT);
  const metricsPort = portFromEnv(env, 'FLOW_METRICS_PORT', DEFAULT_WORKER_METRICS_PORT);
  const logger = sdkLoggerFromEnv(env);
  const temporalMetrics = temporalPort > 0 && installRuntimeWithMetrics(`${host}:${temporalPort}`, warn, logger);
  if (!temporalMetrics) Runtime.install({ ...logger });
  processTelemetry = await startProcessTelemetry({ serviceName: env.OTEL_SERVICE_NAME || 'flow-worker', metricsPort, metricsHost: host, env, warn });
  const telemetry = processTelemetry;
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    metricsUrl: telemetry.metricsUrl,
    temporalMetricsUrl: temporalMetrics ? `http://${shown}:${temporalPort}/metrics` : null,
    async shutdown() {
      await telemetry.shutdown();
      if (processTelemetry === telemetry) processTelemetry = null;
    },
  };
}

/** Temporal's metrics endpoint; false (and a warning) when its address is taken, e.g. by a second worker on the host. */
function installRuntimeWithMetrics(bindAddress: string, warn: (line: string) => void, logger: { logger?: DefaultLogger }): boolean {
  try {
    Runtime.install({ ...logger, telemetryOptions: { metrics: { prometheus: { bindAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } } } });
    return true;
  } catch (error) {
    warn(`Temporal metrics endpoint on ${bindAddress}: ${(error as Error).message}; none (set FLOW_TEMPORAL_METRICS_PORT to a free port, or 0)`);
    return false;
  }
}

const SDK_LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/** FLOW_WORKER_LOG_LEVEL's logger (one JSON object per line on stderr), or none when it is unset. */
export function sdkLoggerFromEnv(env: NodeJS.ProcessEnv, write: (line: string) => void = (line) => process.stderr.write(line)): { logger?: DefaultLogger } {
  const raw = env.FLOW_WORKER_LOG_LEVEL;
  if (raw === undefined || raw === '') return {};
  const level = raw.toUpperCase() as LogLevel;
  if (!SDK_LOG_LEVELS.includes(level)) throw new Error(`FLOW_WORKER_LOG_LEVEL must be one of ${SDK_LOG_LEVELS.join(', ')} (got ${JSON.stringify(raw)})`);
  const asJson = ({ level, message, meta, timestampNanos }: LogEntry) =>
    write(`${JSON.stringify({ time: new Date(Number(timestampNanos / 1_000_000n)).toISOString(), level, message, ...meta }, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value))}\n`);
  return { logger: new DefaultLogger(level, asJson) };
}

/**
 * What every training worker adds to its options: the activity interceptors (tracing and
 * Flow's duration metrics), the sink that exports workflow spans, and — when the worker bundles
 * the workflows itself — the workflow tracing interceptors. A prebuilt bundle carries its own
 * interceptor modules (see bundleWorkflowCode's workflowInterceptorModules).
 */
export function workerTelemetryOptions(bundlesWorkflows: boolean): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const spans = processTelemetry?.spanProcessor ?? new NoopSpanProcessor();
  const resource = processTelemetry?.resource ?? Resource.empty();
  return {
    interceptors: {
      activity: [
        (ctx: Context) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
        activityMetricsInterceptor,
      ],
      ...(bundlesWorkflows ? { workflowModules: [WORKFLOW_TRACING_MODULE] } : {}),
    },
    sinks: { exporter: makeWorkflowExporter(spans, resource) },
  };
}
