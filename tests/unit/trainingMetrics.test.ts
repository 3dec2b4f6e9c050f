/**
 * Flow's metrics and spans in one process with the real OpenTelemetry SDK (adapters/telemetry):
 * names, labels, seconds buckets and values on the Prometheus endpoint; the LLM chat span over
 * OTLP/HTTP to a local receiver; the duration interceptor's outcomes; port settings.
 */
import net from 'node:net';
import { CancelledFailure } from '@temporalio/common';
import type { Context } from '@temporalio/activity';
import { activityMetricsInterceptor, priorityLabel } from '../../workers/activityMetrics';
import { countJobCreated, countJobFinished, recordBudgetUsage } from '../../adapters/telemetry/metrics';
import { portFromEnv, startProcessTelemetry, tracesUrlFromEnv, type ProcessTelemetry } from '../../adapters/telemetry/processTelemetry';
import { traceChatCall } from '../../adapters/telemetry/tracing';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlpReceiver';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

const ctx = (activityType: string, priorityKey?: number) => ({ info: { activityType, priority: priorityKey === undefined ? undefined : { priorityKey } } }) as unknown as Context;
const execute = (type: string, priorityKey: number | undefined, next: () => Promise<unknown>, args: unknown[] = [{ agent_id: 'unit-agent' }]) =>
  activityMetricsInterceptor(ctx(type, priorityKey)).inbound.execute({ args, headers: {} }, next as never);

let telemetry: ProcessTelemetry;
let receiver: OtlpReceiver;
let port: number;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  port = await freePort();
  telemetry = await startProcessTelemetry({ serviceName: 'flow-unit', metricsPort: port, metricsHost: '127.0.0.1', env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=flow,deployment.environment=prod%2Deu,broken,=x' } });
});

afterAll(async () => {
  await telemetry.shutdown();
  await receiver.close();
});

test("OTEL_RESOURCE_ATTRIBUTES names the process's resource (the chart and compose set the namespace and environment with it); the service name stays Flow's", async () => {
  expect(telemetry.resource.attributes).toMatchObject({ 'service.namespace': 'flow', 'deployment.environment': 'prod-eu', 'service.name': 'flow-unit' });
  expect(Object.keys(telemetry.resource.attributes)).not.toContain('broken');
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(text).toMatch(/^target_info\{[^}]*service_namespace="flow"[^}]*deployment_environment="prod-eu"/m);
});

test('every Flow metric with its labels, seconds buckets and values', async () => {
  countJobCreated('unit-agent', 'P1');
  countJobFinished({ id: 'job-1', agentId: 'unit-agent', priority: 'P1', status: 'completed' });
  countJobFinished({ id: 'job-2', agentId: 'unit-agent', priority: 'P1', status: 'budget_exceeded' });
  const row = { id: 'job-3', agentId: 'unit-agent', priority: 'P2', budgetUsd: 10 };
  recordBudgetUsage({ ...row, spendUsd: 2 }, 0);
  recordBudgetUsage({ ...row, spendUsd: 2.5 }, 2);
  recordBudgetUsage({ ...row, spendUsd: 2.5 }, 2.5); // a report that adds nothing
  recordBudgetUsage({ ...row, id: 'job-4', spendUsd: 1, budgetUsd: 0 }, 0);
  await execute('runTrajectory', 1, async () => ({ success: true, error: null }));
  await execute('runTrajectory', 1, async () => ({ success: false, error: null }));
  await execute('runTrajectory', 1, async () => ({ success: false, error: 'timed out after 5s' }));
  await expect(execute('runTrajectory', 1, () => Promise.reject(new CancelledFailure('cancelled')))).rejects.toThrow('cancelled');
  await expect(execute('runTrajectory', undefined, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  await execute('updatePolicy', 5, async () => ({ skipped_reason: null }), [{}]);
  await execute('updatePolicy', 5, async () => ({ skipped_reason: 'no positive-advantage trajectories' }), [{}]);
  expect(await execute('recordIteration', 5, async () => 'not measured')).toBe('not measured');

  const text = await (await fetch(telemetry.metricsUrl!)).text();
  expect(value(text, 'training_jobs_created_total{agent="unit-agent",priority="P1"}')).toBe(1);
  expect(value(text, 'training_jobs_completed_total{agent="unit-agent",priority="P1",status="completed"}')).toBe(1);
  expect(value(text, 'training_jobs_failed_total{agent="unit-agent",priority="P1",status="budget_exceeded"}')).toBe(1);
  expect(value(text, 'training_spend_usd_total{agent="unit-agent",priority="P2"}')).toBeCloseTo(3.5, 9);
  // The highest running job's usage: job-3 at 25%, job-4 (no budget) counts as 0.
  expect(value(text, 'training_budget_usage_ratio{agent="unit-agent",priority="P2"}')).toBe(0.25);
  for (const outcome of ['success', 'failure', 'error', 'cancelled']) {
    expect(value(text, `trajectory_generation_duration_seconds_count{agent="unit-agent",priority="P0",outcome="${outcome}"}`)).toBe(1);
  }
  expect(value(text, 'trajectory_generation_duration_seconds_count{agent="unit-agent",priority="unset",outcome="error"}')).toBe(1);
  expect(value(text, 'trajectory_generation_duration_seconds_bucket{agent="unit-agent",priority="P0",outcome="success",le="0.05"}')).toBe(1);
  expect(text).toContain('trajectory_generation_duration_seconds_bucket{agent="unit-agent",priority="P0",outcome="success",le="600"} 1');
  expect(value(text, 'policy_update_duration_seconds_count{priority="P2",outcome="applied"}')).toBe(1);
  expect(value(text, 'policy_update_duration_seconds_count{priority="P2",outcome="skipped"}')).toBe(1);
  expect(text).toContain('policy_update_duration_seconds_bucket{priority="P2",outcome="skipped",le="300"} 1');
  expect(text).not.toContain('recordIteration');

  // A finished job leaves the gauge; its agent and priority then show 0.
  countJobFinished({ id: 'job-3', agentId: 'unit-agent', priority: 'P2', status: 'completed' });
  countJobFinished({ id: 'job-4', agentId: 'unit-agent', priority: 'P2', status: 'completed' });
  const after = await (await fetch(telemetry.metricsUrl!)).text();
  expect(value(after, 'training_budget_usage_ratio{agent="unit-agent",priority="P2"}')).toBe(0);
});

test('the LLM chat span, with an error status when the call fails, reaches the OTLP receiver', async () => {
  await expect(traceChatCall('sim-model', async () => 'reply')).resolves.toBe('reply');
  await expect(traceChatCall('sim-model', () => Promise.reject(new Error('provider down')))).rejects.toThrow('provider down');
  await telemetry.spanProcessor!.forceFlush();
  const spans = receiver.spans.filter((span) => span.name === 'llm.chat sim-model');
  expect(spans).toHaveLength(2);
  expect(spans.every((span) => span.service === 'flow-unit' && span.pid === process.pid && span.attributes['gen_ai.request.model'] === 'sim-model')).toBe(true);
});

test('a metrics port in use costs the endpoint, not the process', async () => {
  const warnings: string[] = [];
  const second = await startProcessTelemetry({ serviceName: 'flow-unit-2', metricsPort: port, metricsHost: '127.0.0.1', env: {}, warn: (line) => warnings.push(line) });
  expect(second.metricsUrl).toBeNull();
  expect(second.spanProcessor).toBeNull();
  expect(warnings).toEqual([expect.stringContaining(`could not listen on 127.0.0.1:${port}`)]);
  const off = await startProcessTelemetry({ serviceName: 'flow-unit-3', metricsPort: 0, env: {} });
  expect(off.metricsUrl).toBeNull();
});

test('ports and endpoints from the environment; bad values name the variable', () => {
  expect(portFromEnv({}, 'FLOW_METRICS_PORT', 9464)).toBe(9464);
  expect(portFromEnv({ FLOW_METRICS_PORT: '' }, 'FLOW_METRICS_PORT', 9464)).toBe(9464);
  expect(portFromEnv({ FLOW_METRICS_PORT: '0' }, 'FLOW_METRICS_PORT', 9464)).toBe(0);
  expect(portFromEnv({ FLOW_METRICS_PORT: '9100' }, 'FLOW_METRICS_PORT', 9464)).toBe(9100);
  expect(portFromEnv({ FLOW_METRICS_PORT: ' ' }, 'FLOW_METRICS_PORT', 9464)).toBe(9464);
  for (const bad of ['-1', '65536', '12.5', 'nine', '1e3', '0x1F90']) {
    expect(() => portFromEnv({ FLOW_TEMPORAL_METRICS_PORT: bad }, 'FLOW_TEMPORAL_METRICS_PORT', 9465)).toThrow(`FLOW_TEMPORAL_METRICS_PORT must be an integer from 0 to 65535 (a port; 0: off), got "${bad}"`);
  }
  expect(tracesUrlFromEnv({})).toBeNull();
  expect(tracesUrlFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe('http://collector:4318/v1/traces');
  expect(tracesUrlFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b/traces' })).toBe('http://b/traces');
  expect(priorityLabel(1)).toBe('P0');
  expect(priorityLabel(3)).toBe('P1');
  expect(priorityLabel(4)).toBe('unset');
  expect(priorityLabel(undefined)).toBe('unset');
});
