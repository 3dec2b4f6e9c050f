/**
 * Observability, end to end (FLOW-013): a real job started through the API process, trained by
 * a worker process, both exporting spans over OTLP/HTTP to a receiver this test runs.
 * - One trace holds the API's request span and, below it, the workflow, its activities and the
 *   LLM calls inside them, from both processes, every span linked to its parent.
 * - The Prometheus endpoints (the API's and the worker's Flow metrics, the worker's Temporal SDK
 *   metrics) carry every training metric with sensible values, pass `promtool check metrics`,
 *   and hold every metric the Grafana dashboard queries, with the labels its panels group by
 *   (Temporal server metrics come from the suite's server's own /metrics endpoint).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, mintToken } from '../../api/auth';
import { FlowClient } from '../../api/client/flowClient';
import { freePort } from '../../workers/dev/devStack';
import { startSimulatedModelServer, type SimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { TEST_CLAIMS, tinyJob, waitFor } from '../support/apiHarness';
import { requireEnv } from '../support/harness';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlpReceiver';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';

const ROOT = path.resolve(__dirname, '../..');
const DASHBOARD = path.join(ROOT, 'deploy/grafana/dashboards/flow-training.json');

type Child = ChildProcess & { output(): string };

/** The API as `npm run api` runs it; resolves once it listens. */
async function spawnApiProcess(env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'api/main.ts')], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the API exited with ${code} before listening:\n${output}`));
    child.once('exit', onExit);
    const check = () => {
      if (!output.includes('flow api: listening on')) return;
      child.off('exit', onExit);
      resolve();
    };
    child.stdout!.on('data', check);
  });
  return Object.assign(child, { output: () => output });
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return response.text();
}

/** `name{labels} value` samples of one metric (exact name), labels parsed. */
function samples(exposition: string, name: string): { labels: Record<string, string>; value: number }[] {
  const found = [];
  for (const line of exposition.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    found.push({ labels, value: Number(match[3]) });
  }
  return found;
}

const metricNames = (exposition: string) => new Set([...exposition.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )/gm)].map((m) => m[1]));

function promtool(exposition: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  if (result.error) throw new Error(`promtool could not run (${result.error.message}); scripts/install-infra.sh installs it from Debian's prometheus package`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/**
 * The suite's Temporal server's own /metrics (tests/support/globalSetup.ts starts it with a known
 * metrics port and backlog gauges every second), once it carries this test's task queue's backlog
 * gauge. The server names a queue in a `taskqueue` label, with what Prometheus does not allow in a
 * value it exports replaced by `_`.
 */
async function temporalServerMetrics(taskQueue: string): Promise<string> {
  const queue = taskQueue.replace(/[^a-zA-Z0-9_]/g, '_');
  return waitFor(
    () => scrape(requireEnv('FLOW_TEST_TEMPORAL_SERVER_METRICS_URL')),
    (text) => samples(text, 'approximate_backlog_count').some((sample) => sample.labels.taskqueue === queue),
    30_000,
    250,
  );
}

/** The labels a PromQL expression groups by (`by (a, b)`), but `le` (histogram_quantile's buckets). */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) => m[1].split(',').map((label) => label.trim())).filter((label) => label !== '' && label !== 'le');
}

/** Every metric name a PromQL expression reads (identifiers not followed by `(`, minus keywords and label names). */
function metricsInExpr(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '').replace(/"[^"]*"/g, '').replace(/\[[^\]]*\]/g, '').replace(/\$\w+/g, '');
  const withoutGrouping = withoutLabels.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = [...withoutGrouping.matchAll(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()/g)].map((m) => m[0]);
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
  return names.filter((name) => !keywords.has(name.toLowerCase()) && !/^\d/.test(name) && !/^[smhdwy]$/.test(name) && name.includes('_'));
}

/** The ancestors of `span` within the trace, nearest first; throws if a parent was never received. */
function ancestry(span: ReceivedSpan, byId: Map<string, ReceivedSpan>, rootParent: string): ReceivedSpan[] {
  const chain: ReceivedSpan[] = [];
  for (let current = span; current.parentSpanId && current.parentSpanId !== rootParent; ) {
    const parent = byId.get(current.parentSpanId);
    if (!parent) throw new Error(`span "${current.name}" (${current.service}) names parent ${current.parentSpanId}, which no process exported`);
    chain.push(parent);
    current = parent;
  }
  return chain;
}

describe('observability: metrics and one trace across the API and a worker process', () => {
  let receiver: OtlpReceiver;
  let model: SimulatedModelServer;
  let worker: Child;
  let api: Child;
  let apiUrl: string;
  let secret: string;
  let taskQueue: string;
  const endpoints = { apiMetrics: '', workerMetrics: '', temporalMetrics: '' };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    // Some latency per call, as a provider has, so the job runs long enough to be scraped mid-way.
    model = await startSimulatedModelServer({ latencyMs: 30 });
    taskQueue = `test-obs-${randomUUID()}`;
    secret = randomBytes(32).toString('hex');
    const [apiPort, apiMetricsPort, workerMetricsPort, temporalMetricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const tracing = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, FLOW_METRICS_HOST: '127.0.0.1' };
    worker = await spawnWorkerProcess({
      taskQueue,
      temporalAddress: requireEnv('TEMPORAL_ADDRESS'),
      databaseUrl: requireEnv('DATABASE_URL'),
      llmBaseUrl: model.url,
      env: { ...tracing, FLOW_METRICS_PORT: String(workerMetricsPort), FLOW_TEMPORAL_METRICS_PORT: String(temporalMetricsPort) },
    });
    api = await spawnApiProcess({
      ...tracing,
      FLOW_METRICS_PORT: String(apiMetricsPort),
      FLOW_API_PORT: String(apiPort),
      FLOW_JWT_SECRET: secret,
      FLOW_TASK_QUEUE: taskQueue,
      FLOW_API_LOG_LEVEL: 'warn',
      FLOW_API_DB_POOL_SIZE: '2',
    });
    apiUrl = `http://127.0.0.1:${apiPort}`;
    endpoints.apiMetrics = `http://127.0.0.1:${apiMetricsPort}/metrics`;
    endpoints.workerMetrics = `http://127.0.0.1:${workerMetricsPort}/metrics`;
    endpoints.temporalMetrics = `http://127.0.0.1:${temporalMetricsPort}/metrics`;
  }, 180_000);

  afterAll(async () => {
    if (api) await stopProcess(api);
    if (worker) await stopProcess(worker);
    await model?.close();
    await receiver?.close();
  });

  test('a job started through the API: metrics on every endpoint, promtool-clean, dashboard covered; one trace from the request to the LLM calls', async () => {
    const token = await mintToken({ issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, tenantClaim: 'tenant', secret }, TEST_CLAIMS);
    const client = new FlowClient({ url: apiUrl, token });
    // The caller's own trace context: the API continues it, so the whole job hangs under this span.
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const job = tinyJob('obs-agent', 2);
    const response = await fetch(`${apiUrl}/rpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${callerSpanId}-01` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'training.start_grpo', params: { ...job, config: { ...job.config, priority: 'P0' } } }),
    });
    const started = (await response.json()) as { result?: { job_id: string }; error?: unknown };
    expect(started.error).toBeUndefined();
    const jobId = started.result!.job_id;
    // A second job whose budget cannot pay for one batch ends budget_exceeded: the failed counter.
    const overBudget = await client.startGrpo({ ...job, config: { ...job.config, priority: 'P2', budget_usd: 1e-9 } });

    // During the job: trajectories are measured and the budget gauge shows it while it runs.
    const during = await waitFor(
      () => scrape(endpoints.workerMetrics),
      (text) =>
        samples(text, 'trajectory_generation_duration_seconds_count').length > 0 &&
        samples(text, 'training_budget_usage_ratio').some((sample) => sample.labels.priority === 'P0'),
      60_000,
      50,
    );
    // The over-budget P2 job may have a sample too (its calls are refused one by one).
    const ratio = samples(during, 'training_budget_usage_ratio').find((sample) => sample.labels.priority === 'P0')!;
    expect(ratio.labels).toMatchObject({ agent: 'obs-agent', priority: 'P0' });
    expect(ratio.value).toBeGreaterThan(0);
    expect(ratio.value).toBeLessThan(1);
    const statusDuring = await client.getStatus(jobId);
    expect(['queued', 'running', 'completed']).toContain(statusDuring.status);
    expect(promtool(during).status).toBe(0);

    const ended = (s: { status: string }) => ['completed', 'failed', 'cancelled', 'budget_exceeded'].includes(s.status);
    const final = await waitFor(() => client.getStatus(jobId), ended, 120_000, 250);
    expect(final.status).toBe('completed');
    expect((await waitFor(() => client.getStatus(overBudget.job_id), ended, 60_000, 250)).status).toBe('budget_exceeded');

    const apiScrape = await scrape(endpoints.apiMetrics);
    const workerScrape = await waitFor(
      () => scrape(endpoints.workerMetrics),
      (text) => samples(text, 'training_jobs_completed_total').length > 0 && samples(text, 'training_jobs_failed_total').length > 0,
      10_000,
    );
    const temporalScrape = await scrape(endpoints.temporalMetrics);

    // --- Flow's metrics, with their bounded labels and sensible values.
    expect(samples(apiScrape, 'training_jobs_created_total')).toEqual(
      expect.arrayContaining([
        { labels: expect.objectContaining({ agent: 'obs-agent', priority: 'P0' }), value: 1 },
        { labels: expect.objectContaining({ agent: 'obs-agent', priority: 'P2' }), value: 1 },
      ]),
    );
    expect(samples(apiScrape, 'training_jobs_created_total')).toHaveLength(2);
    expect(samples(workerScrape, 'training_jobs_completed_total')).toEqual([
      { labels: expect.objectContaining({ agent: 'obs-agent', priority: 'P0', status: 'completed' }), value: 1 },
    ]);
    expect(samples(workerScrape, 'training_jobs_failed_total')).toEqual([
      { labels: expect.objectContaining({ agent: 'obs-agent', priority: 'P2', status: 'budget_exceeded' }), value: 1 },
    ]);
    const trajectoryCounts = samples(workerScrape, 'trajectory_generation_duration_seconds_count');
    // 2 iterations × 1 query × group of 4 = 8 trajectories.
    expect(trajectoryCounts.reduce((sum, s) => sum + s.value, 0)).toBe(8);
    for (const sample of trajectoryCounts) expect(sample.labels).toMatchObject({ agent: 'obs-agent', priority: 'P0', outcome: expect.stringMatching(/^(success|failure|error)$/) });
    const trajectorySeconds = samples(workerScrape, 'trajectory_generation_duration_seconds_sum').reduce((sum, s) => sum + s.value, 0);
    expect(trajectorySeconds).toBeGreaterThan(0);
    expect(trajectorySeconds / 8).toBeLessThan(60);
    const buckets = samples(workerScrape, 'trajectory_generation_duration_seconds_bucket').map((s) => s.labels.le);
    expect(buckets).toEqual(expect.arrayContaining(['0.05', '1', '60', '+Inf']));
    const updates = samples(workerScrape, 'policy_update_duration_seconds_count');
    expect(updates.reduce((sum, s) => sum + s.value, 0)).toBe(2);
    for (const sample of updates) expect(sample.labels).toMatchObject({ priority: 'P0', outcome: expect.stringMatching(/^(applied|skipped)$/) });
    // Budget: the job's spend is reported in USD and as a share of its budget (10 USD by default).
    const spend = samples(workerScrape, 'training_spend_usd_total').find((sample) => sample.labels.priority === 'P0')!;
    expect(spend.labels).toMatchObject({ agent: 'obs-agent', priority: 'P0' });
    expect(spend.value).toBeGreaterThan(0);
    expect(spend.value).toBeCloseTo(final.spend_usd, 9);
    // A finished job leaves the budget gauge (it shows running jobs): none runs now.
    expect(samples(workerScrape, 'training_budget_usage_ratio').find((sample) => sample.labels.priority === 'P0')?.value).toBe(0);
    for (const text of [apiScrape, workerScrape]) expect(text).not.toContain(jobId);

    // --- Temporal's worker metrics (SDK core), on their own endpoint.
    expect(samples(temporalScrape, 'temporal_activity_execution_latency_seconds_count').length).toBeGreaterThan(0);
    expect(samples(temporalScrape, 'temporal_workflow_completed_total').reduce((sum, s) => sum + s.value, 0)).toBeGreaterThanOrEqual(1);

    // --- promtool accepts every scrape.
    for (const [name, text] of Object.entries({ api: apiScrape, worker: workerScrape, temporal: temporalScrape })) {
      const result = promtool(text);
      if (result.status !== 0) throw new Error(`promtool check metrics failed on the ${name} scrape:\n${result.output}`);
    }

    // --- Every metric the dashboard queries exists in a scrape (server-side ones in the Temporal
    // server's), with every label the panel groups by and names in its legend.
    const serverScrape = await temporalServerMetrics(taskQueue);
    const scrapes = [apiScrape, workerScrape, temporalScrape, serverScrape];
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets?: { expr: string; legendFormat?: string }[] }[] };
    const targets = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, ...target })));
    const queried = targets.flatMap(({ panel, expr }) => metricsInExpr(expr).map((metric) => ({ panel, metric })));
    expect(queried.length).toBeGreaterThan(10);
    const available = new Set(scrapes.flatMap((text) => [...metricNames(text)]));
    expect(queried.filter(({ metric }) => !available.has(metric))).toEqual([]);
    const unlabelled = targets.flatMap(({ panel, expr, legendFormat }) => {
      const grouped = groupingLabels(expr);
      const legend = [...(legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]);
      const carried = new Set(metricsInExpr(expr).flatMap((metric) => scrapes.flatMap((text) => samples(text, metric).flatMap((sample) => Object.keys(sample.labels)))));
      return [
        ...grouped.filter((label) => !carried.has(label)).map((label) => ({ panel, problem: `groups by "${label}", which no series it reads carries` })),
        ...legend.filter((label) => grouped.length > 0 && !grouped.includes(label)).map((label) => ({ panel, problem: `legend names "${label}", which it does not group by` })),
      ];
    });
    expect(unlabelled).toEqual([]);

    // --- One trace: request → StartWorkflow → RunWorkflow → StartActivity → RunActivity → llm.chat.
    const trace = await waitFor(
      async () => receiver.spans.filter((span) => span.traceId === traceId),
      (spans) => spans.some((s) => s.name.startsWith('llm.chat')) && spans.some((s) => s.name === 'RunWorkflow:trainingJob') && spans.some((s) => s.name === 'RunActivity:finishJob'),
      20_000,
      250,
    );
    const byId = new Map(trace.map((span) => [span.spanId, span]));
    const request = trace.find((span) => span.name === 'POST /rpc')!;
    expect(request).toMatchObject({ service: 'flow-api', pid: api.pid, parentSpanId: callerSpanId });
    const llmCall = trace.find((span) => span.name.startsWith('llm.chat') && span.service === 'flow-worker')!;
    expect(llmCall.pid).toBe(worker.pid);
    const chain = ancestry(llmCall, byId, callerSpanId);
    expect(chain.map((span) => `${span.service}:${span.name.split(':')[0]}`)).toEqual([
      'flow-worker:RunActivity',
      'flow-worker:StartActivity',
      'flow-worker:RunWorkflow',
      'flow-api:StartWorkflow',
      'flow-api:POST /rpc',
    ]);
    expect(chain[0].pid).toBe(worker.pid);
    expect(chain[chain.length - 1]).toBe(request);
    expect(new Set(trace.map((span) => span.pid))).toEqual(new Set([api.pid, worker.pid]));
    // Every span of the job's trace reaches the request span.
    for (const span of trace) if (span !== request) expect(ancestry(span, byId, callerSpanId)).toContain(request);
  }, 240_000);
});
