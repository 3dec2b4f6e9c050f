/**
 * The agents' read path under load (issue 16): GET /agents/{agent_id}/policy at
 * POLICY_FETCH_RATE (500) requests a second arriving at Poisson times, open loop
 * (openLoopGenerator.cjs, up to POLICY_FETCH_CONNECTIONS keep-alive connections, latency from
 * each request's arrival), each request with one of POLICY_FETCH_CALLERS `agent` tokens of the
 * agent's tenant. Then, as information, the same rate as autocannon's overallRate offers it: each
 * connection's share of a second in one burst as the second starts (requests handled in batches
 * cost the server less CPU each; the bursts queue, so their latency is higher). Every other
 * request sends the active version's ETag in If-None-Match (an agent that has the policy
 * already: 304, no body), the others none (200 with the policy), so both answers are in the
 * figures. Every response is checked: the status, the ETag header, and the body of every 200
 * starts with the agent's id.
 *
 * Processes, as getStatusLoad.ts runs them: the API server in a child process of its own (this
 * module with `--serve-api`, its own Prisma client with a pool of 10, request logging at `info` to
 * a file), the load generator in a worker thread of this process. The policy version is a row written
 * through the repository (a v1 with POLICY_FETCH_LESSONS lessons), on a fresh PostgreSQL
 * database; the API's Temporal client is lazy (this path never calls Temporal, and none runs).
 *
 * Figures: policy_fetch_p95_ms (bar < 5 ms) and policy_fetch_cpu_ms_per_call (API process CPU
 * over the window ÷ responses, bar ≤ 0.1 ms), with p50, p99, the rate answered and the machine's
 * load average beside them.
 *
 * `npx tsx tests/perf/policyFetch.ts [--seconds N] [--write]`; --write merges the figures into
 * docs/performance/benchmark_results.json (keys policy_fetch_*).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Worker as Thread } from 'node:worker_threads';
import { Client, Connection } from '@temporalio/client';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_ROLES, mintToken, type AuthConfig } from '../../api/auth';
import { policyContentHash } from '../../api/policyRegistry';
import { buildApiServer } from '../../api/server';
import type { Figure } from './results';
import { poissonArrivals, quantile } from './stats';

export const POLICY_FETCH_RATE = 500;
export const POLICY_FETCH_CONNECTIONS = 50;
export const POLICY_FETCH_CALLERS = 50;
export const POLICY_FETCH_LESSONS = 20;
export const POLICY_FETCH_P95_BAR_MS = 5;
export const POLICY_FETCH_CPU_BAR_MS = 0.1;
const TENANT = 'bench-tenant';
const AGENT = 'bench-agent';

interface ApiProcessConfig {
  databaseUrl: string;
  secret: string;
  logFile: string;
}

const authConfig = (secret: string): AuthConfig => ({ key: { algorithm: 'HS256', secret }, issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, tenantClaim: 'tenant', roles: DEFAULT_ROLES });

/** The child: the API server as api/main.ts builds it; answers `usage` (its CPU time) and `stop` over IPC. */
async function serveApi(): Promise<void> {
  const config = JSON.parse(process.env.FLOW_BENCH_API_CONFIG!) as ApiProcessConfig;
  const prisma = createPrismaClient(config.databaseUrl, { poolSize: 10 });
  // Never connected: nothing on this path talks to Temporal.
  const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
  const app = await buildApiServer({ client, prisma, repos: createRepositories(prisma) }, { auth: authConfig(config.secret), logger: { level: 'info', file: config.logFile } });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', (message: { id: number; cmd: 'usage' | 'stop' }) => {
    if (message.cmd === 'usage') {
      const cpu = process.cpuUsage();
      process.send!({ id: message.id, cpuMs: (cpu.user + cpu.system) / 1000 });
    } else {
      void app.close().then(() => prisma.$disconnect()).finally(() => process.send!({ id: message.id }, () => process.exit(0)));
    }
  });
  process.send!({ id: 0, url });
}

async function startApiProcess(config: ApiProcessConfig) {
  const log = openSync(config.logFile, 'w');
  const child: ChildProcess = fork(__filename, ['--serve-api'], {
    // BENCH_POLICY_CPU_PROFILE_DIR=dir: the API process writes a V8 CPU profile there when it exits (diagnostics).
    execArgv: ['--import', pathToFileURL(require.resolve('tsx')).href, ...(process.env.BENCH_POLICY_CPU_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_POLICY_CPU_PROFILE_DIR}`] : [])],
    env: { ...process.env, FLOW_BENCH_API_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', log, log, 'ipc'],
  });
  const pending = new Map<number, (message: Record<string, unknown>) => void>();
  child.on('message', (message: { id: number } & Record<string, unknown>) => {
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  const url = await new Promise<string>((resolve, reject) => {
    pending.set(0, (message) => resolve(message.url as string));
    child.once('exit', (code) => reject(new Error(`the API process exited (${code}); see ${config.logFile}`)));
  });
  let nextId = 1;
  const call = <T>(cmd: 'usage' | 'stop') =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      pending.set(id, (message) => resolve(message as T));
      child.send({ id, cmd });
    });
  return {
    url,
    cpuMs: async () => (await call<{ cpuMs: number }>('usage')).cpuMs,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await Promise.race([call('stop').then(() => exited), new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

// The answer check both load generators run.
const CHECK = `
function checkAnswer(status, body, conditional, tag) {
  if (conditional) return status === 304 && body === '' && tag === etag ? null : 'conditional: HTTP ' + status + ' etag ' + tag + ' ' + body;
  return status === 200 && tag === etag && body.startsWith('{"agent_id":' + JSON.stringify(agentId) + ',') ? null : 'HTTP ' + status + ' etag ' + tag + ' ' + body;
}
`;

// The measured window's generator (openLoopGenerator.cjs), a worker thread like the other.
const OPEN_LOOP_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { runOpenLoop } = require(workerData.generatorPath);
const { url, path, tokens, etag, agentId, connections, arrivals } = workerData;
${CHECK}
let ok200 = 0, ok304 = 0;
runOpenLoop({
  url, arrivals, connections,
  next(n) {
    const conditional = n % 2 === 0;
    return { method: 'GET', path, headers: { authorization: 'Bearer ' + tokens[n % tokens.length], ...(conditional ? { 'if-none-match': etag } : {}) }, context: conditional };
  },
  check(status, headers, body, conditional) {
    const why = checkAnswer(status, body, conditional, headers.etag);
    if (!why) conditional ? ok304++ : ok200++;
    return why;
  },
}).then((r) => parentPort.postMessage({ seconds: r.seconds, latencies: r.latencies, ok200, ok304, failures: r.failures, firstFailures: r.firstFailures, errors: r.errors, timeouts: r.timeouts }),
  (error) => parentPort.postMessage({ error: String((error && error.stack) || error) }));
`;

// autocannon's overallRate (information), a worker thread (autocannon's hooks are functions, which cannot be handed to a thread).
const LOAD_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const autocannon = require(workerData.autocannonPath);
const { url, path, tokens, etag, agentId, connections, seconds, rate } = workerData;
let sent = 0, ok200 = 0, ok304 = 0, failures = 0;
const firstFailures = [];
const latencies = [];
const fail = (why) => { failures++; if (firstFailures.length < 5) firstFailures.push(why.slice(0, 300)); };
${CHECK}
const started = Date.now();
const instance = autocannon({
  url, connections, pipelining: 1, duration: seconds, overallRate: rate, timeout: 10,
  requests: [{
    method: 'GET',
    path,
    setupRequest(request, context) {
      const n = sent++;
      context.conditional = n % 2 === 0;
      request.headers = { authorization: 'Bearer ' + tokens[n % tokens.length], ...(context.conditional ? { 'if-none-match': etag } : {}) };
      return request;
    },
    onResponse(status, body, context, headers) {
      const why = checkAnswer(status, body, context.conditional, headers && (headers.etag || headers.ETag));
      if (why) fail(why);
      else if (context.conditional) ok304++;
      else ok200++;
    },
  }],
}, (error, result) => {
  if (error) return parentPort.postMessage({ error: String((error && error.stack) || error) });
  parentPort.postMessage({ seconds: (Date.now() - started) / 1000, latencies: Float64Array.from(latencies), ok200, ok304, failures, firstFailures, errors: result.errors, timeouts: result.timeouts });
});
instance.on('response', (client, statusCode, bytes, responseTime) => { latencies.push(responseTime); });
`;

interface LoadResult {
  seconds: number;
  latencies: Float64Array;
  ok200: number;
  ok304: number;
  failures: number;
  firstFailures: string[];
  errors: number;
  timeouts: number;
}

/** `bursts`: autocannon's overallRate (information); else Poisson arrivals. */
function runLoad(url: string, tokens: string[], etag: string, seconds: number, rate: number, bursts = false): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const thread = new Thread(bursts ? LOAD_THREAD : OPEN_LOOP_THREAD, {
      eval: true,
      workerData: { autocannonPath: require.resolve('autocannon'), generatorPath: require.resolve('./openLoopGenerator.cjs'), url, path: `/agents/${AGENT}/policy`, tokens, etag, agentId: AGENT, connections: POLICY_FETCH_CONNECTIONS, seconds, rate, arrivals: bursts ? undefined : poissonArrivals(rate, seconds, 500) },
    });
    thread.once('message', (message: LoadResult & { error?: string }) => {
      void thread.terminate();
      if (message.error) reject(new Error(`load generator: ${message.error}`));
      else resolve(message);
    });
    thread.once('error', reject);
  });
}

export interface PolicyFetchResult {
  window: LoadResult;
  responses: number;
  answeredPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  apiCpuMsPerCall: number;
  /** The same rate in autocannon's per-second bursts (information). */
  bursts: { p95Ms: number; apiCpuMsPerCall: number };
}

export async function measurePolicyFetch(options: { databaseUrl: string; seconds: number; apiLogFile: string; log: (line: string) => void }): Promise<PolicyFetchResult> {
  const prisma = createPrismaClient(options.databaseUrl, { poolSize: 2 });
  const repos = createRepositories(prisma);
  const policy = {
    version: 12,
    base_prompt: 'You are a careful assistant that solves tasks with the tools provided. Use a tool when it helps, then give the final answer.',
    lessons: Array.from({ length: POLICY_FETCH_LESSONS }, (_, i) => ({ id: `lesson-${i + 1}`, text: `Lesson ${i + 1}: check the unit of every quantity before you call the calculator, and say which tool you used.`, weight: Math.round((0.3 + (i % 7) / 10) * 100) / 100 })),
  };
  await repos.policyVersions.create({
    tenantId: TENANT,
    agentId: AGENT,
    version: 1,
    kind: 'force',
    policy,
    contentHash: policyContentHash(policy),
    sourceJobId: 'bench-job',
    sourceRun: 1,
    sourceIteration: 10,
    evaluation: null,
    rollbackOf: null,
    reason: 'policy_fetch benchmark',
    refusal: 'no evaluation: a benchmark fixture',
    createdBy: 'bench',
  });
  await prisma.$disconnect();

  const secret = randomBytes(32).toString('hex');
  const api = await startApiProcess({ databaseUrl: options.databaseUrl, secret, logFile: options.apiLogFile });
  try {
    const config = authConfig(secret);
    const tokens = await Promise.all(
      Array.from({ length: POLICY_FETCH_CALLERS }, (_, i) => mintToken({ ...config, secret }, { subject: `agent-${i}`, tenant: TENANT, roles: ['agent'], expiresIn: '1h' })),
    );
    const first = await fetch(`${api.url}/agents/${AGENT}/policy`, { headers: { authorization: `Bearer ${tokens[0]}` } });
    if (first.status !== 200) throw new Error(`GET /agents/${AGENT}/policy answered ${first.status}: ${await first.text()}`);
    const etag = first.headers.get('etag')!;
    options.log(`  warm-up: 3 s at ${POLICY_FETCH_RATE} req/s`);
    await runLoad(api.url, tokens, etag, 3, POLICY_FETCH_RATE);
    options.log(`  measuring: ${options.seconds} s at ${POLICY_FETCH_RATE} req/s arriving at Poisson times, open loop, up to ${POLICY_FETCH_CONNECTIONS} connections, ${POLICY_FETCH_CALLERS} agent tokens, half of the requests conditional`);
    const cpuBefore = await api.cpuMs();
    const window = await runLoad(api.url, tokens, etag, options.seconds, POLICY_FETCH_RATE);
    const cpuAfter = await api.cpuMs();
    const responses = window.ok200 + window.ok304 + window.failures;
    const sorted = Array.from(window.latencies).sort((a, b) => a - b);
    const burstCpuBefore = await api.cpuMs();
    const burstWindow = await runLoad(api.url, tokens, etag, options.seconds, POLICY_FETCH_RATE, true);
    const burstCpu = (await api.cpuMs()) - burstCpuBefore;
    if (burstWindow.failures > 0 || burstWindow.errors > 0) throw new Error(`policy fetch (bursts): ${burstWindow.failures} wrong answers, ${burstWindow.errors} socket errors (first: ${burstWindow.firstFailures[0] ?? 'none recorded'})`);
    const bursts = {
      p95Ms: quantile(Array.from(burstWindow.latencies).sort((a, b) => a - b), 0.95),
      apiCpuMsPerCall: burstCpu / Math.max(1, burstWindow.ok200 + burstWindow.ok304),
    };
    options.log(`  the same rate in autocannon's per-second bursts (information): p95 ${bursts.p95Ms.toFixed(1)} ms, API ${bursts.apiCpuMsPerCall.toFixed(3)} ms CPU per call`);
    return {
      bursts,
      window,
      responses,
      answeredPerSecond: responses / window.seconds,
      p50Ms: quantile(sorted, 0.5),
      p95Ms: quantile(sorted, 0.95),
      p99Ms: quantile(sorted, 0.99),
      apiCpuMsPerCall: (cpuAfter - cpuBefore) / Math.max(1, responses),
    };
  } finally {
    await api.stop();
  }
}

export function policyFetchFigures(result: PolicyFetchResult): Figure[] {
  const rate = POLICY_FETCH_RATE;
  return [
    { key: 'policy_fetch_p95_ms', label: `GET /agents/{id}/policy latency at ${rate} req/s arriving at Poisson times (open loop; half conditional, 304), p95`, value: result.p95Ms, unit: 'ms', bar: { op: '<=', value: POLICY_FETCH_P95_BAR_MS } },
    { key: 'policy_fetch_cpu_ms_per_call', label: `API process CPU per policy fetch at ${rate} req/s arriving at Poisson times`, value: result.apiCpuMsPerCall, unit: 'ms', bar: { op: '<=', value: POLICY_FETCH_CPU_BAR_MS } },
    { key: 'policy_fetch_bursts_p95_ms', label: `policy fetch latency at ${rate} req/s in autocannon's per-second bursts (overallRate), p95 (information)`, value: result.bursts.p95Ms, unit: 'ms' },
    { key: 'policy_fetch_bursts_cpu_ms_per_call', label: `API process CPU per policy fetch at ${rate} req/s in autocannon's per-second bursts (information)`, value: result.bursts.apiCpuMsPerCall, unit: 'ms' },
    { key: 'policy_fetch_p50_ms', label: `policy fetch latency at ${rate} req/s offered, p50`, value: result.p50Ms, unit: 'ms' },
    { key: 'policy_fetch_p99_ms', label: `policy fetch latency at ${rate} req/s offered, p99`, value: result.p99Ms, unit: 'ms' },
    { key: 'policy_fetch_answered_per_s', label: `policy fetches answered per second at ${rate} req/s offered`, value: result.answeredPerSecond, unit: 'req/s' },
  ];
}

/** Every answer must have been right, else no figure is written. */
export function checkPolicyFetch(result: PolicyFetchResult): void {
  const w = result.window;
  if (w.failures > 0 || w.errors > 0) throw new Error(`policy fetch: ${w.failures} wrong answers, ${w.errors} socket errors (first: ${w.firstFailures[0] ?? 'none recorded'})`);
  if (w.ok200 === 0 || w.ok304 === 0) throw new Error(`policy fetch: ${w.ok200} full answers and ${w.ok304} 304s; both kinds were expected`);
}

if (require.main === module && process.argv.includes('--serve-api')) {
  serveApi().catch((error: Error) => {
    console.error(`bench API process: ${error.stack ?? error.message}`);
    process.exit(1);
  });
} else if (require.main === module) {
  void (async () => {
    const os = await import('node:os');
    const path = await import('node:path');
    const { createDatabase, dropDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT } = await import('../../workers/dev/devStack');
    const { formatValue, meetsBar, mergeResults } = await import('./results');
    const { round } = await import('./stats');
    const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
    const postgres = await ensurePostgres();
    const databaseName = `flow_bench_policy_${process.pid}`;
    const databaseUrl = await createDatabase(postgres.adminUrl, databaseName, { fresh: true });
    migrateDatabase(databaseUrl);
    let code = 0;
    try {
      const loadAtStart = os.loadavg()[0];
      console.log(`policy fetch (load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} on ${os.cpus().length} CPUs at start)`);
      const result = await measurePolicyFetch({
        databaseUrl,
        seconds: Number(arg('--seconds') ?? 20),
        apiLogFile: path.join(PROJECT_ROOT, '.flow', 'bench-policy-api.log'),
        log: (line) => console.log(line),
      });
      checkPolicyFetch(result);
      const figures = policyFetchFigures(result);
      console.log(`  ${result.window.ok200} answers with the policy, ${result.window.ok304} 304s, ${result.window.timeouts} timeouts`);
      for (const f of figures) console.log(`  ${f.key.padEnd(32)} ${formatValue(f.value, f.unit).padStart(12)}${f.bar ? (meetsBar(f) ? '  ok' : '  MISSED') : ''}`);
      console.log(`  load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      if (process.argv.includes('--write')) {
        const file = path.join(PROJECT_ROOT, 'docs', 'performance', 'benchmark_results.json');
        const values = { ...Object.fromEntries(figures.map((f) => [f.key, round(f.value, f.unit === 'req/s' ? 0 : f.key.endsWith('_per_call') ? 4 : 3)])), policy_fetch_load_avg_1m: round(loadAtStart, 2) };
        // The stage runs alone: the file's machine and measured_at stay those of npm run bench.
        mergeResults(file, values, ['policy_fetch_'], {});
        console.log(`merged into ${file}`);
      }
    } catch (error) {
      console.error(`policy fetch bench failed: ${error instanceof Error ? error.stack : String(error)}`);
      code = 1;
    } finally {
      await dropDatabase(postgres.adminUrl, databaseName).catch(() => undefined);
    }
    process.exit(code);
  })();
}
