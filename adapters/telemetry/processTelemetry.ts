/**
 * One process's OpenTelemetry SDK (the API's or a worker's): metrics on a Prometheus endpoint
 * (`GET /metrics`), spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) when one is set, else no span export. Started by the
 * process entry points only, never on import: tests run several APIs and workers in one process.
 */
import os from 'node:os';
import { integerFromEnv } from '../envIntegers';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface ProcessTelemetryOptions {
  /** `service.name` of every span and of `target_info`, e.g. flow-api, flow-worker. */
  serviceName: string;
  /** Prometheus endpoint port; 0 = no endpoint. */
  metricsPort: number;
  /** Interface the endpoint binds to (default 0.0.0.0, so Prometheus in another container can scrape it). */
  metricsHost?: string;
  env?: NodeJS.ProcessEnv;
  /** Where a metrics port in use is reported (default console.warn). */
  warn?: (line: string) => void;
}

export interface ProcessTelemetry {
  resource: Resource;
  /** Where spans go (Temporal's workflow span sink writes here too); null when tracing is off. */
  spanProcessor: SpanProcessor | null;
  /** The Prometheus endpoint, or null when off. */
  metricsUrl: string | null;
  shutdown(): Promise<void>;
}

/** A port from the environment: an integer 0..65535 (0 = off), or `fallback` when unset. */
export function portFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  // Blank is unset (the default), not 0: Number(" ") is 0, which turned the metrics off unasked.
  return integerFromEnv(env, name, fallback, { min: 0, max: 65535, unit: 'a port; 0: off' });
}

/** The OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces; null = no export. */
export function tracesUrlFromEnv(env: NodeJS.ProcessEnv): string | null {
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) return `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return null;
}

/**
 * OTEL_RESOURCE_ATTRIBUTES as the specification has it: `key=value` pairs separated by commas,
 * values percent-encoded. A pair without a key or `=` is skipped.
 */
export function resourceAttributesFromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const pair of (env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',')) {
    const at = pair.indexOf('=');
    const key = pair.slice(0, Math.max(at, 0)).trim();
    if (at < 1 || !key) continue;
    const raw = pair.slice(at + 1).trim();
    try {
      attributes[key] = decodeURIComponent(raw);
    } catch {
      attributes[key] = raw;
    }
  }
  return attributes;
}

export async function startProcessTelemetry(options: ProcessTelemetryOptions): Promise<ProcessTelemetry> {
  const env = options.env ?? process.env;
  // Resource detection is off (it would probe cloud metadata), so OTEL_RESOURCE_ATTRIBUTES is read
  // here: the chart and compose name the deployment's namespace and environment with it.
  const resource = Resource.default()
    .merge(new Resource(resourceAttributesFromEnv(env)))
    .merge(new Resource({ 'service.name': options.serviceName, 'service.instance.id': `${os.hostname()}-${process.pid}`, 'process.pid': process.pid }));
  const host = options.metricsHost ?? '0.0.0.0';
  // A port in use costs the endpoint, not the process: two workers on one host with the default
  // port still both work, and the second says why it has no /metrics.
  const metricReader =
    options.metricsPort > 0
      ? await listeningPrometheusExporter(host, options.metricsPort).catch((error: Error) => {
          (options.warn ?? console.warn)(`${error.message}; no metrics endpoint (set FLOW_METRICS_PORT to a free port, or 0)`);
          return undefined;
        })
      : undefined;
  // Headers and timeout still come from the OTEL_EXPORTER_OTLP_* variables, read by the exporter.
  const tracesUrl = tracesUrlFromEnv(env);
  const spanProcessor = tracesUrl ? new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl }), { scheduledDelayMillis: 1000 }) : null;
  const sdk = new NodeSDK({
    resource,
    autoDetectResources: false,
    metricReader,
    // Given explicitly (even empty) so the SDK does not configure exporters from other OTEL_* variables.
    spanProcessors: spanProcessor ? [spanProcessor] : [],
    logRecordProcessors: [],
  });
  sdk.start();
  return {
    resource,
    spanProcessor,
    metricsUrl: metricReader ? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${options.metricsPort}/metrics` : null,
    shutdown: () => sdk.shutdown(),
  };
}

/** The exporter serves /metrics on its own HTTP server; a port in use fails the start here. */
function listeningPrometheusExporter(host: string, port: number): Promise<PrometheusExporter> {
  return new Promise((resolve, reject) => {
    const exporter: PrometheusExporter = new PrometheusExporter({ host, port }, (error) => (error ? reject(new Error(`the Prometheus endpoint could not listen on ${host}:${port}: ${error.message}`)) : resolve(exporter)));
  });
}
