/**
 * get_status under load: 20 training jobs running behind the JSON-RPC API (started through
 * `training.start_grpo`, trained by a real worker on the simulated environment and the simulated
 * model server), and autocannon with 50 connections calling `training.get_status` over real
 * HTTP, the job id rotating across requests, each request with a valid bearer token (50
 * callers). Every response is checked (HTTP 200, the request's JSON-RPC id, a result for the
 * requested job, no error); bodies sampled across the window are parsed and validated against
 * the method's result schema.
 *
 * Processes, as Flow is deployed: the API server runs in a child process of its own (this module
 * with `--serve-api`, wired as api/main.ts wires it: its own Prisma client with a pool of 10,
 * its own Temporal client, request logging at `info` to a file); the training worker is a
 * `workers/main.ts` process (`npm run worker`, at its default FLOW_WORKER_NICE: batch work gives
 * way to the API); the simulated model server and autocannon (in a worker thread) run in this
 * process. All of them, PostgreSQL and the Temporal dev server share the machine's CPUs.
 *
 * Two kinds of load, after a warm-up window:
 *  - open loop (the figures with bars): STATUS_OPEN_LOOP_RATE (400) requests a second arriving
 *    at Poisson times whatever the answers' latency, over up to 100 keep-alive connections
 *    (openLoopGenerator.cjs; latency from each request's arrival time), giving
 *    get_status_p95_ms_at_400rps (bar < 25 ms) and get_status_cpu_ms_per_call, the API process's
 *    CPU time over the window ÷ calls answered (bar ≤ 0.25 ms). Not autocannon's overallRate: it
 *    sends each connection's share of a second in one burst as the second starts;
 *  - closed loop (information): 50 connections each with one request out, giving throughput;
 *    its latency is 50 ÷ throughput (Little's law), the CPU share the API gets, not latency.
 *  - the floor in the same conditions (information): tests/perf/httpFloor.ts's bare node:http
 *    server at the same rate while the same jobs train, the API idle.
 * Latency is each request's send → complete response as autocannon times it.
 *
 * Standalone, the get_status stage alone on its own PostgreSQL database and Temporal dev server:
 * `npx tsx tests/perf/getStatusLoad.ts [--runs N] [--profile] [--write]`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import { Worker as Thread } from 'node:worker_threads';
import { Client, Connection } from '@temporalio/client';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEFAULT_ROLES, mintToken, type AuthConfig, type TokenClaims } from '../../api/auth';
import { FlowClient } from '../../api/client/flowClient';
import { JobStatusResultSchema } from '../../api/schemas';
import { buildApiServer } from '../../api/server';
import { startSimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';
import { measureHttpFloor, type HttpFloor } from './httpFloor';
import type { Figure } from './results';
import { poissonArrivals, quantile } from './stats';

export const STATUS_JOBS = 20;
export const STATUS_CONNECTIONS = 50;
/** Distinct callers (tokens), rotated across requests like the job ids. */
export const STATUS_CALLERS = 50;
/** Model latency of the jobs' LLM calls, as in group8_vs_single_ratio. */
export const STATUS_MODEL_LATENCY_MS = 500;
/** The API's per-token limit (default 1,200 a minute), raised so the load measures the server, not 429s. */
export const STATUS_RATE_LIMIT_PER_MINUTE = 100_000_000;
/** Iterations configured per job: far more than run during the measurement (they are cancelled). */
export const STATUS_JOB_ITERATIONS = 10_000;
export const STATUS_API_DB_POOL = 10;
/**
 * The open-loop figure: requests arriving per second in all (Poisson arrivals), whatever the
 * answers' latency, so latency is what a caller waits at that rate, not connections ÷ throughput.
 */
export const STATUS_OPEN_LOOP_RATE = 400;
/** Keep-alive connections the open-loop requests may use at once (a request that finds all busy waits, and that counts). */
export const STATUS_OPEN_LOOP_CONNECTIONS = 100;
const CLOSED_LOOP: LoadShape = { connections: STATUS_CONNECTIONS };
const TENANT = 'bench-tenant';

export interface GetStatusLoadOptions {
  temporalAddress: string;
  /** The Temporal dev server's PID, for the CPU split (optional). */
  temporalPid?: number;
  databaseUrl: string;
  warmupSeconds: number;
  /** The closed-loop window (information: its latency is connections ÷ throughput). */
  seconds: number;
  /** The open-loop window at STATUS_OPEN_LOOP_RATE requests a second (the latency and CPU-per-call figures). */
  openLoopSeconds: number;
  /** The API process's request log. */
  apiLogFile: string;
  /** A further open-loop window with the API process CPU-profiled, when `when` (given the open-loop window) says so (diagnostics). */
  profile?: { seconds: number; when: (openLoop: LoadWindow) => boolean };
  log: (line: string) => void;
}

export interface LoadWindow {
  seconds: number;
  responses: number;
  requestsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Socket errors (autocannon's `errors`, timeouts included). */
  errors: number;
  timeouts: number;
  non2xx: number;
  /** 200s whose body was not a result for the requested job (JSON-RPC errors, wrong id or job, not JSON). */
  rpcFailures: number;
  /** Distinct job ids answered. */
  jobsAnswered: number;
  /** Up to 40 parsed results, spread over the window. */
  samples: { requestedJobId: string; body: unknown }[];
  firstFailures: string[];
  /** CPU of the API process per request, ms. */
  apiCpuMsPerRequest: number;
  /** Busy share of the API process's event loop, 0..1. */
  apiLoopUtilisation: number;
  /** Busy share of the load generator's thread, 0..1. */
  loadLoopUtilisation: number;
  /** Where the machine's CPU went during the window, in cores (CPU seconds per second); null off Linux. */
  cores: CpuSplit | null;
}

export interface CpuSplit {
  api: number;
  /** The training worker's process (at its FLOW_WORKER_NICE). */
  worker: number;
  /** This process: the simulated model server and the load generator. */
  benchProcess: number;
  temporal: number | null;
  /** The PostgreSQL backends serving the bench database. */
  postgres: number;
  /** The rest of the machine's busy CPU: other processes, PostgreSQL's background workers, kernel softirq. */
  rest: number;
  machine: number;
}

export type ApiCpuCategory = 'socket_writes' | 'http' | 'pg' | 'jwt' | 'rpc' | 'prisma' | 'logging' | 'gc' | 'other';

export const API_CPU_LABELS: Record<ApiCpuCategory, string> = {
  socket_writes: 'socket writes (writev of HTTP responses and PostgreSQL queries: the loopback TCP path, and waiting for a core again after waking the peer)',
  http: 'HTTP and fastify (node:http, routing, hooks, rate limit, reply)',
  pg: 'node-postgres (protocol, row parsing)',
  jwt: 'JWT verification (jose)',
  rpc: 'JSON-RPC dispatch, params validation and the method (json-rpc-2.0, zod, api/)',
  prisma: 'Prisma (query compiler, client runtime, pg adapter)',
  logging: 'request logging (pino, file writes)',
  gc: 'garbage collection',
  other: 'other (Node internals: streams, timers, async hooks)',
};

/**
 * V8's sampling profiler records where the thread is each interval of wall time while it is not
 * idle, so a thread that is runnable but waiting for a core is charged to whatever it was doing
 * (typically a socket write that just woke the peer). `busyMs` is that sampled time; compare it
 * with the process's CPU time over the same window.
 */
export interface ApiCpuBreakdown {
  busyMs: number;
  shares: Record<ApiCpuCategory, number>;
}

export interface GetStatusLoadResult {
  warmup: LoadWindow;
  /** Closed loop, STATUS_CONNECTIONS connections each with one request out: throughput, and latency by Little's law. */
  measured: LoadWindow;
  /** Open loop, STATUS_OPEN_LOOP_RATE requests a second offered: latency at that rate and the API's CPU per call. */
  openLoop: LoadWindow;
  /** The same rate as autocannon's overallRate offers it, in per-second bursts (information: how batching changes CPU per call). */
  bursts: LoadWindow;
  /** Sampled results that passed JobStatusResultSchema (and were for the requested job and tenant). */
  samplesValid: number;
  samplesChecked: number;
  /** Statuses seen in the sampled results. */
  sampledStatuses: Record<string, number>;
  /** Jobs `running` right after the measured window (must be all of them). */
  runningAfter: number;
  /** Iterations the jobs had finished when the measured window ended (sum over the jobs). */
  iterationsFinished: number;
  trajectoriesWritten: number;
  cancelled: number;
  profile: { window: LoadWindow; breakdown: ApiCpuBreakdown } | null;
  /** A bare node:http server (tests/perf/httpFloor.ts) at the same rate while the same jobs train: the floor under the CPU figures in these conditions. */
  floorBesideTraining: HttpFloor;
}

// ---------------------------------------------------------------------------------------------
// The load generators, run as worker threads: their hooks are functions, and functions cannot be
// handed to a thread, so each thread's whole program is source. Both make the same calls and
// check the answers the same way (STATUS_CALLS).
const STATUS_CALLS = `
const answered = new Set();
const samples = [];
let nextSampleAt = 0;
const started = Date.now();
/** The n-th call: the job ids and the callers in turn. */
function call(n) {
  const jobId = jobIds[n % jobIds.length];
  return {
    id: n + 1,
    jobId,
    authorization: 'Bearer ' + tokens[Math.floor(n / jobIds.length) % tokens.length],
    body: JSON.stringify({ jsonrpc: '2.0', id: n + 1, method: 'training.get_status', params: { job_id: jobId } }),
  };
}
/** Why a 200's body is not the answer to this call, or null; answers are sampled across the window. */
function wrongAnswer(body, context) {
  // A success for this very request starts so (json-rpc-2.0 writes jsonrpc, id, result in this
  // order, and a status result starts with job_id); an error response cannot. Cheaper than
  // parsing every body in the load generator, which shares the CPUs with the server.
  if (!body.startsWith('{"jsonrpc":"2.0","id":' + context.id + ',"result":{"job_id":' + JSON.stringify(context.jobId) + ',')) {
    return (body.includes('"error"') ? 'JSON-RPC error: ' : 'not the answer to this request: ') + body;
  }
  answered.add(context.jobId);
  const elapsed = Date.now() - started;
  if (elapsed >= nextSampleAt && samples.length < 40) {
    let parsed;
    try { parsed = JSON.parse(body); } catch { return 'not JSON: ' + body; }
    samples.push({ requestedJobId: context.jobId, body: parsed.result });
    nextSampleAt = elapsed + (seconds * 1000) / 40;
  }
  return null;
}
`;

// autocannon: the closed loop, and its per-second bursts (overallRate) as information.
const LOAD_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const autocannon = require(workerData.autocannonPath);
const { url, jobIds, tokens, connections, seconds, rate } = workerData;
${STATUS_CALLS}
let sent = 0;
let responses = 0;
let rpcFailures = 0;
const latencies = [];
const firstFailures = [];
const fail = (why) => { rpcFailures++; if (firstFailures.length < 5) firstFailures.push(why.slice(0, 300)); };
const { performance } = require('node:perf_hooks');
const loop = performance.eventLoopUtilization();
const instance = autocannon({
  url,
  connections,
  pipelining: 1,
  duration: seconds,
  // autocannon's overallRate: each connection sends its share of a second back to back as the second starts.
  ...(rate ? { overallRate: rate } : {}),
  timeout: 10,
  headers: { 'content-type': 'application/json' },
  requests: [{
    method: 'POST',
    path: '/rpc',
    setupRequest(request, context) {
      Object.assign(context, call(sent++));
      request.headers.authorization = context.authorization;
      request.body = context.body;
      return request;
    },
    onResponse(status, body, context) {
      if (status !== 200) return; // autocannon counts it in non2xx
      const why = wrongAnswer(body, context);
      if (why) fail(why);
    },
  }],
}, (error, result) => {
  if (error) return parentPort.postMessage({ error: String((error && error.stack) || error) });
  parentPort.postMessage({
    seconds: (Date.now() - started) / 1000,
    responses,
    latencies: Float64Array.from(latencies),
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    rpcFailures,
    jobsAnswered: answered.size,
    samples,
    firstFailures,
    loopUtilisation: performance.eventLoopUtilization(loop).utilization,
  });
});
instance.on('response', (client, statusCode, bytes, responseTime) => { responses++; latencies.push(responseTime); });
`;

// The open-loop window's load generator (openLoopGenerator.cjs).
const OPEN_LOOP_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const { runOpenLoop } = require(workerData.generatorPath);
const { url, jobIds, tokens, connections, seconds, arrivals } = workerData;
${STATUS_CALLS}
let rpcFailures = 0;
const loop = performance.eventLoopUtilization();
runOpenLoop({
  url, arrivals, connections,
  next(n) {
    const context = call(n);
    return { method: 'POST', path: '/rpc', headers: { 'content-type': 'application/json', authorization: context.authorization }, body: context.body, context };
  },
  check(status, headers, body, context) {
    if (status !== 200) return 'HTTP ' + status + ': ' + body;
    const why = wrongAnswer(body, context);
    if (why) rpcFailures++;
    return why;
  },
}).then((result) => parentPort.postMessage({
  seconds: result.seconds,
  responses: result.latencies.length,
  latencies: result.latencies,
  errors: result.errors,
  timeouts: result.timeouts,
  non2xx: result.failures - rpcFailures - result.errors,
  rpcFailures,
  jobsAnswered: answered.size,
  samples,
  firstFailures: result.firstFailures,
  loopUtilisation: performance.eventLoopUtilization(loop).utilization,
}), (error) => parentPort.postMessage({ error: String((error && error.stack) || error) }));
`;

interface ThreadResult {
  seconds: number;
  responses: number;
  latencies: Float64Array;
  errors: number;
  timeouts: number;
  non2xx: number;
  rpcFailures: number;
  jobsAnswered: number;
  samples: { requestedJobId: string; body: unknown }[];
  firstFailures: string[];
  loopUtilisation: number;
}

/** Closed loop: `connections` each keep one request out. Open loop: `rate` requests a second arrive, over up to `connections`. */
interface LoadShape {
  /** With `rate`: Poisson arrivals (openLoopGenerator.cjs), or autocannon's per-second bursts (information). */
  bursts?: boolean;
  connections: number;
  rate?: number;
}

function runLoadThread(url: string, jobIds: string[], tokens: string[], seconds: number, shape: LoadShape): Promise<ThreadResult> {
  return new Promise<ThreadResult>((resolve, reject) => {
    const thread = new Thread(shape.rate && !shape.bursts ? OPEN_LOOP_THREAD : LOAD_THREAD, {
      eval: true,
      workerData: {
        autocannonPath: require.resolve('autocannon'),
        generatorPath: require.resolve('./openLoopGenerator.cjs'),
        url,
        jobIds,
        tokens,
        connections: shape.connections,
        seconds,
        rate: shape.rate,
        // The open loop's arrival times, from a fixed seed.
        arrivals: shape.rate && !shape.bursts ? poissonArrivals(shape.rate, seconds, 400) : undefined,
      },
    });
    thread.once('message', (message: ThreadResult & { error?: string }) => {
      void thread.terminate();
      if (message.error) reject(new Error(`load generator: ${message.error}`));
      else resolve(message);
    });
    thread.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// The API process.

interface ApiProcessConfig {
  databaseUrl: string;
  temporalAddress: string;
  taskQueue: string;
  secret: string;
  logFile: string;
}

type ApiRequest = { id: number; cmd: 'usage' | 'profile-start' | 'profile-stop' | 'stop' };
interface ApiUsage {
  cpuMs: number;
  loop: ReturnType<typeof performance.eventLoopUtilization>;
}

const authConfig = (secret: string): AuthConfig => ({
  key: { algorithm: 'HS256', secret },
  issuer: DEFAULT_ISSUER,
  audience: DEFAULT_AUDIENCE,
  tenantClaim: 'tenant',
  roles: DEFAULT_ROLES,
});

/** The child: the API server as api/main.ts builds it, answering usage and profiling requests over IPC. */
async function serveApi(): Promise<void> {
  const config = JSON.parse(process.env.FLOW_BENCH_API_CONFIG!) as ApiProcessConfig;
  const prisma = createPrismaClient(config.databaseUrl, { poolSize: STATUS_API_DB_POOL });
  const connection = await Connection.connect({ address: config.temporalAddress });
  const client = new Client({ connection });
  const app = await buildApiServer(
    { client, prisma, repos: createRepositories(prisma), taskQueue: config.taskQueue },
    {
      auth: authConfig(config.secret),
      rateLimit: { max: STATUS_RATE_LIMIT_PER_MINUTE, timeWindowMs: 60_000 },
      logger: { level: 'info', file: config.logFile },
    },
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const session = new Session();
  process.on('message', (message: ApiRequest) => {
    const reply = (payload: object) => process.send!({ id: message.id, ...payload });
    void (async () => {
      if (message.cmd === 'usage') {
        const cpu = process.cpuUsage();
        reply({ cpuMs: (cpu.user + cpu.system) / 1000, loop: performance.eventLoopUtilization() });
      } else if (message.cmd === 'profile-start') {
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: 500 });
        await session.post('Profiler.start');
        reply({});
      } else if (message.cmd === 'profile-stop') {
        const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
        session.disconnect();
        // BENCH_STATUS_CPU_PROFILE=file.cpuprofile keeps the raw profile (Chrome DevTools opens it).
        if (process.env.BENCH_STATUS_CPU_PROFILE) writeFileSync(process.env.BENCH_STATUS_CPU_PROFILE, JSON.stringify(profile));
        reply({ breakdown: summariseApiProfile(profile) });
      } else if (message.cmd === 'stop') {
        await app.close();
        await connection.close();
        await prisma.$disconnect();
        process.send!({ id: message.id }, () => process.exit(0));
      }
    })().catch((error: Error) => reply({ error: error.message }));
  });
  process.send!({ id: 0, url });
}

interface ApiProcess {
  url: string;
  call<T>(cmd: ApiRequest['cmd']): Promise<T>;
  stop(): Promise<void>;
}

async function startApiProcess(config: ApiProcessConfig): Promise<ApiProcess> {
  const log = openSync(config.logFile, 'w');
  const child: ChildProcess = fork(__filename, ['--serve-api'], {
    execArgv: ['--import', pathToFileURL(require.resolve('tsx')).href],
    env: { ...process.env, FLOW_BENCH_API_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', log, log, 'ipc'],
  });
  const pending = new Map<number, (message: Record<string, unknown>) => void>();
  let nextId = 1;
  let exited: string | null = null;
  const ready = new Promise<string>((resolve, reject) => {
    pending.set(0, (message) => resolve(message.url as string));
    child.once('exit', (code, signal) => {
      exited = `the API process exited (${signal ?? code}); see ${config.logFile}`;
      reject(new Error(exited));
      for (const settle of pending.values()) settle({ error: exited });
    });
  });
  child.on('message', (message: { id: number } & Record<string, unknown>) => {
    const settle = pending.get(message.id);
    pending.delete(message.id);
    settle?.(message);
  });
  const url = await ready;
  const call = <T>(cmd: ApiRequest['cmd']) =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(new Error(exited));
      const id = nextId++;
      pending.set(id, (message) => (message.error ? reject(new Error(String(message.error))) : resolve(message as T)));
      child.send({ id, cmd } satisfies ApiRequest);
    });
  return {
    url,
    call,
    async stop() {
      if (exited) return;
      const gone = new Promise((resolve) => child.once('exit', resolve));
      await Promise.race([call('stop').then(() => gone), new Promise((resolve) => setTimeout(resolve, 10_000))]);
      if (!exited) child.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux): per process, and the whole machine.

const CLOCK_TICKS = 100; // USER_HZ on Linux

function procCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Busy CPU of the whole machine (all but idle and iowait), ms; null off Linux. */
function machineBusyMs(): number | null {
  try {
    const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = values.map(Number);
    return ((user + nice + system + irq + softirq + steal) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

interface CpuSnapshot {
  at: number;
  apiUsage: ApiUsage;
  api: number;
  worker: number | null;
  bench: number;
  temporal: number | null;
  postgres: Map<number, number>;
  machine: number | null;
}

interface Accounting {
  api: ApiProcess;
  workerPid: number;
  temporalPid?: number;
  postgresPids: () => Promise<number[]>;
}

async function cpuSnapshot(acct: Accounting): Promise<CpuSnapshot> {
  const pids = await acct.postgresPids();
  const usage = await acct.api.call<ApiUsage>('usage');
  const bench = process.cpuUsage();
  const postgres = new Map<number, number>();
  for (const pid of pids) {
    const ms = procCpuMs(pid);
    if (ms !== null) postgres.set(pid, ms);
  }
  return {
    at: performance.now(),
    apiUsage: usage,
    api: usage.cpuMs,
    worker: procCpuMs(acct.workerPid),
    bench: (bench.user + bench.system) / 1000,
    temporal: acct.temporalPid ? procCpuMs(acct.temporalPid) : null,
    postgres,
    machine: machineBusyMs(),
  };
}

function cpuSplit(a: CpuSnapshot, b: CpuSnapshot): CpuSplit | null {
  if (a.machine === null || b.machine === null) return null;
  const wall = b.at - a.at;
  let postgres = 0;
  for (const [pid, ms] of b.postgres) postgres += ms - (a.postgres.get(pid) ?? ms);
  const temporal = a.temporal !== null && b.temporal !== null ? b.temporal - a.temporal : null;
  const api = b.api - a.api;
  const worker = a.worker !== null && b.worker !== null ? b.worker - a.worker : 0;
  const bench = b.bench - a.bench;
  const machine = b.machine - a.machine;
  const rest = machine - api - worker - bench - postgres - (temporal ?? 0);
  return { api: api / wall, worker: worker / wall, benchProcess: bench / wall, temporal: temporal === null ? null : temporal / wall, postgres: postgres / wall, rest: Math.max(0, rest) / wall, machine: machine / wall };
}

/** One window of load, with the API process's CPU and event-loop use and the machine's CPU split around it. */
async function loadWindow(acct: Accounting, jobIds: string[], tokens: string[], seconds: number, shape: LoadShape = CLOSED_LOOP): Promise<LoadWindow> {
  const api = acct.api;
  const cpuBefore = await cpuSnapshot(acct);
  const result = await runLoadThread(api.url, jobIds, tokens, seconds, shape);
  const cpuAfter = await cpuSnapshot(acct);
  const [before, after] = [cpuBefore.apiUsage, cpuAfter.apiUsage];
  const latencies = Array.from(result.latencies);
  if (latencies.length === 0) throw new Error('the load generator got no responses');
  const loopActive = after.loop.active - before.loop.active;
  const loopIdle = after.loop.idle - before.loop.idle;
  return {
    seconds: result.seconds,
    responses: result.responses,
    requestsPerSecond: result.responses / result.seconds,
    p50Ms: quantile(latencies, 0.5),
    p95Ms: quantile(latencies, 0.95),
    p99Ms: quantile(latencies, 0.99),
    maxMs: latencies.reduce((a, b) => Math.max(a, b), 0),
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    rpcFailures: result.rpcFailures,
    jobsAnswered: result.jobsAnswered,
    samples: result.samples,
    firstFailures: result.firstFailures,
    apiCpuMsPerRequest: (after.cpuMs - before.cpuMs) / result.responses,
    apiLoopUtilisation: loopActive / (loopActive + loopIdle),
    loadLoopUtilisation: result.loopUtilisation,
    cores: cpuSplit(cpuBefore, cpuAfter),
  };
}

/** errors + timeouts + non-2xx + JSON-RPC failures: must be 0. */
export const windowFailures = (w: LoadWindow) => w.errors + w.non2xx + w.rpcFailures;

export async function measureGetStatusLoad(options: GetStatusLoadOptions): Promise<GetStatusLoadResult> {
  const { log } = options;
  const model = await startSimulatedModelServer({ latencyMs: STATUS_MODEL_LATENCY_MS });
  const workerPrisma = createPrismaClient(options.databaseUrl, { poolSize: 2 });
  const taskQueue = `bench-status-${process.pid}`;
  const secret = randomBytes(32).toString('hex');
  const token = (claims: TokenClaims) => mintToken({ ...authConfig(secret), secret }, claims);
  let api: ApiProcess | null = null;
  let worker: Awaited<ReturnType<typeof spawnWorkerProcess>> | null = null;
  try {
    api = await startApiProcess({ databaseUrl: options.databaseUrl, temporalAddress: options.temporalAddress, taskQueue, secret, logFile: options.apiLogFile });
    const apiProcess = api;
    const trainer = new FlowClient({ url: api.url, token: await token({ subject: 'bench-trainer', tenant: TENANT, roles: ['trainer'], expiresIn: '1h' }) });
    const tokens = await Promise.all(
      Array.from({ length: STATUS_CALLERS }, (_, i) => token({ subject: `bench-viewer-${i}`, tenant: TENANT, roles: ['viewer'], expiresIn: '1h' })),
    );
    // `npm run worker` as deployed (its pool of 10 connections, its default nice value).
    worker = await spawnWorkerProcess({ taskQueue, temporalAddress: options.temporalAddress, databaseUrl: options.databaseUrl, llmBaseUrl: model.url, env: { FLOW_DB_POOL_SIZE: '10' } });
    const workerPid = worker.pid!;
    const databaseName = new URL(options.databaseUrl).pathname.slice(1);
    const acct: Accounting = {
      api: apiProcess,
      workerPid,
      temporalPid: options.temporalPid,
      postgresPids: async () =>
        (await workerPrisma.$queryRawUnsafe<{ pid: number }[]>('SELECT pid FROM pg_stat_activity WHERE datname = $1', databaseName)).map((r) => Number(r.pid)),
    };
    const jobIds: string[] = [];
    for (let i = 0; i < STATUS_JOBS; i++) {
      const started = await trainer.startGrpo({
        agent_id: `bench-status-agent-${i}`,
        task_set: 'simulated',
        config: { iterations: STATUS_JOB_ITERATIONS, batch_size: 4, group_size: 8, max_parallel: 8, budget_usd: 100_000, seed: i },
      });
      jobIds.push(started.job_id);
    }
    await waitFor('all jobs running', 60_000, async () => (await statuses(trainer, jobIds)).every((s) => s.status === 'running'));
    log(`  ${STATUS_JOBS} jobs running (${STATUS_JOB_ITERATIONS} iterations each, batch 4 × group 8, max_parallel 8, model latency ${STATUS_MODEL_LATENCY_MS} ms)`);

    const warmup = await loadWindow(acct, jobIds, tokens, options.warmupSeconds);
    log(`  warm-up ${options.warmupSeconds} s: ${Math.round(warmup.requestsPerSecond)} req/s, p95 ${warmup.p95Ms.toFixed(1)} ms (not counted)`);
    const openLoop = await loadWindow(acct, jobIds, tokens, options.openLoopSeconds, { connections: STATUS_OPEN_LOOP_CONNECTIONS, rate: STATUS_OPEN_LOOP_RATE });
    log(
      `  open loop, ${STATUS_OPEN_LOOP_RATE} req/s offered for ${options.openLoopSeconds} s: ${Math.round(openLoop.requestsPerSecond)} req/s answered, ` +
        `p50 ${openLoop.p50Ms.toFixed(1)} ms, p95 ${openLoop.p95Ms.toFixed(1)} ms, p99 ${openLoop.p99Ms.toFixed(1)} ms; API ${openLoop.apiCpuMsPerRequest.toFixed(3)} ms CPU per call`,
    );
    const bursts = await loadWindow(acct, jobIds, tokens, options.openLoopSeconds, { connections: STATUS_OPEN_LOOP_CONNECTIONS, rate: STATUS_OPEN_LOOP_RATE, bursts: true });
    log(
      `  the same rate in autocannon's per-second bursts (information): p50 ${bursts.p50Ms.toFixed(1)} ms, p95 ${bursts.p95Ms.toFixed(1)} ms; ` +
        `API ${bursts.apiCpuMsPerRequest.toFixed(3)} ms CPU per call`,
    );
    const measured = await loadWindow(acct, jobIds, tokens, options.seconds);
    log(`  closed loop, ${STATUS_CONNECTIONS} connections for ${options.seconds} s: ${Math.round(measured.requestsPerSecond)} req/s, p95 ${measured.p95Ms.toFixed(1)} ms; API ${measured.apiCpuMsPerRequest.toFixed(3)} ms CPU per call`);
    // The floor in the same conditions: the bare server, the same generator and rate, the same jobs training.
    const floorBesideTraining = await measureHttpFloor({ rate: STATUS_OPEN_LOOP_RATE, seconds: 10, connections: STATUS_OPEN_LOOP_CONNECTIONS });
    log(`  a bare node:http server at the same rate beside the same jobs: ${floorBesideTraining.poisson.cpuMsPerCall.toFixed(3)} ms CPU per call with Poisson arrivals, ${floorBesideTraining.bursts.cpuMsPerCall.toFixed(3)} ms in bursts`);
    const after = await statuses(trainer, jobIds);
    const runningAfter = after.filter((s) => s.status === 'running').length;
    const iterationsFinished = after.reduce((sum, s) => sum + s.iteration, 0);
    const trajectoriesWritten = await workerPrisma.trajectory.count({ where: { jobId: { in: jobIds } } });

    let profile: GetStatusLoadResult['profile'] = null;
    if (options.profile?.when(openLoop)) {
      log(`  profiling the API process over a further ${options.profile.seconds} s of the open-loop load`);
      await apiProcess.call('profile-start');
      const window = await loadWindow(acct, jobIds, tokens, options.profile.seconds, { connections: STATUS_OPEN_LOOP_CONNECTIONS, rate: STATUS_OPEN_LOOP_RATE });
      const { breakdown } = await apiProcess.call<{ breakdown: ApiCpuBreakdown }>('profile-stop');
      profile = { window, breakdown };
    }

    const sampledStatuses: Record<string, number> = {};
    let samplesValid = 0;
    const checked = [...openLoop.samples, ...bursts.samples, ...measured.samples];
    for (const sample of checked) {
      const parsed = JobStatusResultSchema.safeParse(sample.body);
      if (parsed.success && parsed.data.job_id === sample.requestedJobId && parsed.data.tenant_id === TENANT) samplesValid++;
      const status = (sample.body as { status?: string }).status ?? '?';
      sampledStatuses[status] = (sampledStatuses[status] ?? 0) + 1;
    }

    for (const jobId of jobIds) await trainer.cancel(jobId, 'get_status benchmark done');
    await waitFor('all jobs cancelled', 120_000, async () => (await statuses(trainer, jobIds)).every((s) => s.status === 'cancelled'));
    return {
      warmup,
      measured,
      openLoop,
      bursts,
      samplesValid,
      samplesChecked: checked.length,
      sampledStatuses,
      runningAfter,
      iterationsFinished,
      trajectoriesWritten,
      cancelled: jobIds.length,
      profile,
      floorBesideTraining,
    };
  } finally {
    await api?.stop().catch(() => undefined);
    if (worker) await stopProcess(worker, 'SIGTERM').catch(() => undefined);
    await workerPrisma.$disconnect().catch(() => undefined);
    await model.close().catch(() => undefined);
  }
}

function statuses(client: FlowClient, jobIds: string[]) {
  return Promise.all(jobIds.map((id) => client.getStatus(id)));
}

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

// ---------------------------------------------------------------------------------------------
// Where the API process's CPU goes: each sample's self time goes to the nearest frame on its
// stack that belongs to a known package (so JSON.stringify called by pino counts as logging).

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

const CATEGORY_BY_URL: [RegExp, ApiCpuCategory][] = [
  [/^wasm:\/\/|query_compiler|\/@prisma\/|\/generated\/prisma\//, 'prisma'],
  [/\/node_modules\/(pg|pg-protocol|pg-pool|pg-types|pg-connection-string)\//, 'pg'],
  [/\/node_modules\/jose\//, 'jwt'],
  [/\/node_modules\/(pino|pino-std-serializers|sonic-boom|fast-redact|thread-stream|on-exit-leak-free|quick-format-unescaped|atomic-sleep)\//, 'logging'],
  [/\/node_modules\/(json-rpc-2\.0|zod)\/|\/api\/(server|methods|auth|errors|schemas)\.ts$|\/training\/iterationMetrics\.ts$/, 'rpc'],
  [/\/node_modules\/(fastify|@fastify\/[^/]+|find-my-way|avvio|light-my-request|fast-json-stringify|toad-cache|process-warning|abstract-logging|rfdc|secure-json-parse|fast-querystring)\/|^node:_http|^node:http/, 'http'],
];

function summariseApiProfile(profile: CpuProfile): ApiCpuBreakdown {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const onStack = (leaf: number, test: (url: string) => boolean) => {
    for (let node: number | undefined = leaf; node !== undefined; node = parent.get(node)) if (test(byId.get(node)!.callFrame.url)) return true;
    return false;
  };
  const totals: Record<ApiCpuCategory, number> = { socket_writes: 0, http: 0, pg: 0, jwt: 0, rpc: 0, prisma: 0, logging: 0, gc: 0, other: 0 };
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const micros = profile.timeDeltas[i] ?? 0;
    const leaf = byId.get(id)!;
    const name = leaf.callFrame.functionName;
    if (name === '(idle)') return;
    if (onStack(id, (url) => url === 'node:inspector')) return; // the profiler's own work
    busy += micros;
    if (name === '(garbage collector)') return void (totals.gc += micros);
    const parentUrl = byId.get(parent.get(id) ?? -1)?.callFrame.url ?? '';
    if (!leaf.callFrame.url && parentUrl === 'node:internal/stream_base_commons' && /^write/.test(name)) return void (totals.socket_writes += micros);
    let category: ApiCpuCategory = 'other';
    for (let node: number | undefined = id; node !== undefined; node = parent.get(node)) {
      const url = byId.get(node)!.callFrame.url;
      const match = url ? CATEGORY_BY_URL.find(([pattern]) => pattern.test(url)) : undefined;
      if (match) {
        category = match[1];
        break;
      }
    }
    totals[category] += micros;
  });
  const shares = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, busy > 0 ? v / busy : 0])) as Record<ApiCpuCategory, number>;
  return { busyMs: busy / 1000, shares };
}

export const STATUS_CPU_MS_BAR = 0.25;
export const STATUS_P95_AT_RATE_BAR_MS = 25;

/** The get_status figures: the two with bars from the open-loop window, the closed loop's as information. */
export function getStatusFigures(status: GetStatusLoadResult): Figure[] {
  const o = status.openLoop;
  const c = status.measured;
  const rate = STATUS_OPEN_LOOP_RATE;
  return [
    { key: `get_status_p95_ms_at_${rate}rps`, label: `get_status latency at ${rate} req/s arriving at Poisson times (open loop) on ${STATUS_JOBS} running jobs, p95`, value: o.p95Ms, unit: 'ms', bar: { op: '<=', value: STATUS_P95_AT_RATE_BAR_MS } },
    { key: 'get_status_cpu_ms_per_call', label: `API process CPU per get_status call at ${rate} req/s arriving at Poisson times`, value: o.apiCpuMsPerRequest, unit: 'ms', bar: { op: '<=', value: STATUS_CPU_MS_BAR } },
    { key: `get_status_bursts_p95_ms_at_${rate}rps`, label: `get_status latency at ${rate} req/s in autocannon's per-second bursts (overallRate), p95 (information)`, value: status.bursts.p95Ms, unit: 'ms' },
    { key: 'get_status_bursts_cpu_ms_per_call', label: `API process CPU per get_status call at ${rate} req/s in autocannon's per-second bursts (information)`, value: status.bursts.apiCpuMsPerRequest, unit: 'ms' },
    { key: `get_status_p50_ms_at_${rate}rps`, label: `get_status latency at ${rate} req/s offered, p50`, value: o.p50Ms, unit: 'ms' },
    { key: `get_status_p99_ms_at_${rate}rps`, label: `get_status latency at ${rate} req/s offered, p99`, value: o.p99Ms, unit: 'ms' },
    { key: `get_status_answered_per_s_at_${rate}rps`, label: `get_status calls answered per second at ${rate} req/s offered`, value: o.requestsPerSecond, unit: 'req/s' },
    { key: 'get_status_closed_loop_p50_ms', label: `get_status latency, closed loop (${STATUS_CONNECTIONS} connections, each one request out), p50 (information: ${STATUS_CONNECTIONS} ÷ throughput)`, value: c.p50Ms, unit: 'ms' },
    { key: 'get_status_closed_loop_p95_ms', label: 'get_status latency, closed loop, p95 (information)', value: c.p95Ms, unit: 'ms' },
    { key: 'get_status_closed_loop_requests_per_s', label: 'get_status calls answered per second, closed loop (information)', value: c.requestsPerSecond, unit: 'req/s' },
    { key: 'get_status_closed_loop_cpu_ms_per_call', label: 'API process CPU per get_status call, closed loop (information)', value: c.apiCpuMsPerRequest, unit: 'ms' },
    {
      key: `get_status_floor_cpu_ms_per_call_at_${rate}rps`,
      label: `A bare node:http server's CPU per request at ${rate} req/s arriving at Poisson times while the same ${STATUS_JOBS} jobs train (the floor under get_status_cpu_ms_per_call in its conditions)`,
      value: status.floorBesideTraining.poisson.cpuMsPerCall,
      unit: 'ms',
    },
  ];
}

/** The load must have been what it claims, and every answer a real result; else no figure is written. */
export function checkGetStatusLoad(status: GetStatusLoadResult): void {
  for (const [name, m] of [['open loop', status.openLoop], ['bursts', status.bursts], ['closed loop', status.measured]] as const) {
    if (windowFailures(m) > 0) {
      throw new Error(`get_status load (${name}): ${m.errors} errors, ${m.non2xx} non-2xx, ${m.rpcFailures} JSON-RPC errors or wrong answers (first: ${m.firstFailures[0] ?? 'none recorded'})`);
    }
    if (m.jobsAnswered !== STATUS_JOBS) throw new Error(`get_status load (${name}): answers for ${m.jobsAnswered} jobs, expected ${STATUS_JOBS}`);
  }
  if (status.samplesChecked === 0 || status.samplesValid !== status.samplesChecked) {
    throw new Error(`get_status load: ${status.samplesValid} of ${status.samplesChecked} sampled bodies are valid JobStatusResults for the requested job`);
  }
  if (status.runningAfter !== STATUS_JOBS) throw new Error(`get_status load: only ${status.runningAfter} of ${STATUS_JOBS} jobs were still running after the window`);
}

if (require.main === module && process.argv.includes('--serve-api')) {
  serveApi().catch((error: Error) => {
    console.error(`bench API process: ${error.stack ?? error.message}`);
    process.exit(1);
  });
} else if (require.main === module) {
  // The get_status stage alone, `--runs N` times on one stack (the machine may be busy: several
  // runs show the spread); `--profile` profiles the API under the open-loop load and keeps the raw
  // profile in .flow/get-status.cpuprofile; `--write` merges the last run's figures into
  // docs/performance/benchmark_results.json.
  void (async () => {
    const os = await import('node:os');
    const path = await import('node:path');
    const { DefaultLogger, Runtime } = await import('@temporalio/worker');
    const { createDatabase, dropDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, startTemporal } = await import('../../workers/dev/devStack');
    const { formatValue, machine, meetsBar, mergeResults } = await import('./results');
    const { round } = await import('./stats');
    const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
    const runs = Number(arg('--runs') ?? 1);
    const profile = process.argv.includes('--profile');
    if (profile) process.env.BENCH_STATUS_CPU_PROFILE ??= path.join(PROJECT_ROOT, '.flow', 'get-status.cpuprofile');
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    const postgres = await ensurePostgres();
    const databaseName = `flow_bench_status_${process.pid}`;
    const databaseUrl = await createDatabase(postgres.adminUrl, databaseName, { fresh: true });
    migrateDatabase(databaseUrl);
    const temporal = await startTemporal({ headless: true, logFile: path.join(PROJECT_ROOT, '.flow', 'bench-status-temporal.log') });
    let code = 0;
    try {
      let last: Figure[] = [];
      let lastLoad = 0;
      for (let run = 1; run <= runs; run++) {
        lastLoad = os.loadavg()[0];
        const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
        console.log(`get_status run ${run}/${runs} (load average ${load} on ${os.cpus().length} CPUs at start)`);
        const status = await measureGetStatusLoad({
          temporalAddress: temporal.address,
          temporalPid: temporal.process.pid,
          databaseUrl,
          warmupSeconds: 3,
          seconds: Number(process.env.BENCH_STATUS_SECONDS ?? 15),
          openLoopSeconds: Number(process.env.BENCH_STATUS_OPEN_SECONDS ?? 20),
          apiLogFile: path.join(PROJECT_ROOT, '.flow', 'bench-status-api.log'),
          profile: { seconds: 10, when: () => profile },
          log: (line) => console.log(line),
        });
        checkGetStatusLoad(status);
        last = getStatusFigures(status);
        // autocannon holds a request back while its connection still waits, so a server that falls behind is offered less.
        if (status.openLoop.requestsPerSecond < STATUS_OPEN_LOOP_RATE * 0.95) console.log(`  the server fell behind: ${Math.round(status.openLoop.requestsPerSecond)} of the ${STATUS_OPEN_LOOP_RATE} req/s offered were answered`);
        for (const f of last) console.log(`  ${f.key.padEnd(42)} ${formatValue(f.value, f.unit).padStart(12)}${f.bar ? (meetsBar(f) ? '  ok' : '  MISSED') : ''}`);
        if (status.openLoop.cores) console.log(`  CPU in the open-loop window, cores: API ${status.openLoop.cores.api.toFixed(2)}, worker ${status.openLoop.cores.worker.toFixed(2)}, bench process ${status.openLoop.cores.benchProcess.toFixed(2)}, Temporal ${status.openLoop.cores.temporal?.toFixed(2) ?? '?'}, PostgreSQL ${status.openLoop.cores.postgres.toFixed(2)}, other processes ${status.openLoop.cores.rest.toFixed(2)}; machine ${status.openLoop.cores.machine.toFixed(2)}`);
        if (status.profile) {
          console.log(`  profile (${status.profile.window.seconds.toFixed(0)} s at ${STATUS_OPEN_LOOP_RATE} req/s, ${status.profile.window.apiCpuMsPerRequest.toFixed(3)} ms CPU per call while profiled), share of the API thread's busy time:`);
          for (const [category, share] of Object.entries(status.profile.breakdown.shares)) console.log(`    ${(share * 100).toFixed(1).padStart(5)}% ${category}`);
        }
        console.log(`  load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      }
      if (process.argv.includes('--write')) {
        const file = path.join(PROJECT_ROOT, 'docs', 'performance', 'benchmark_results.json');
        // The machine's load when these ran, beside them: the stage may run alone, long after the rest.
        const figures = { ...Object.fromEntries(last.map((f) => [f.key, round(f.value, f.unit === 'req/s' ? 0 : 3)])), get_status_load_avg_1m: round(lastLoad, 2) };
        mergeResults(file, figures, ['get_status_'], { machine: { ...machine(), load_avg_1m_at_start: round(os.loadavg()[0], 2) }, measured_at: new Date().toISOString() });
        console.log(`merged into ${file}`);
      }
    } catch (error) {
      console.error(`get_status bench failed: ${error instanceof Error ? error.stack : String(error)}`);
      code = 1;
    } finally {
      await temporal.stop();
      await dropDatabase(postgres.adminUrl, databaseName).catch(() => undefined);
    }
    process.exit(code);
  })();
}
