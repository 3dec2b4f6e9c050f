/**
 * `npm start`: the whole stack on one machine with embedded defaults — PostgreSQL, the
 * Temporal dev server with its Web UI, a training worker, the JSON-RPC API (its URL and a
 * development token are printed) — then a demo training job on the simulated environment,
 * started through the API, with progress per iteration. The stack stays up afterwards for the
 * Web UI and the `temporal` CLI; Ctrl-C stops it. FLOW_DEMO_EXIT=1 exits after the job.
 *
 * With no PORTKEY_API_KEY or FLOW_LLM_BASE_URL, LLM calls go (through portkey-ai) to the
 * built-in simulated model server; with one set, the agent is a real LLM (FLOW_MODEL).
 */
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { IllegalStateError } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createPrismaClient, createRepositories, type PrismaClient } from '../../adapters/db';
import type { LlmSettings } from '../../adapters/llm/chatClient';
import { authConfigFromEnv, mintToken, type AuthConfig } from '../../api/auth';
import { FlowClient } from '../../api/client/flowClient';
import { buildApiServer } from '../../api/server';
import { apiOptionsFromEnv } from '../../api/main';
import type { ApiOptions } from '../../api/server';
import { TRAINING_TASK_QUEUE } from '../../workflows/taskQueues';
import { createTrainingWorker } from '../trainingWorker';
import { demoJobRequest, followJob, reportJob } from './demoJob';
import { demoDatabase, demoLlm, demoSettingsFromEnv, demoTemporal, onInterrupt, StartedServices, type DemoTemporal, type Say } from './demoStack';
import { PROJECT_ROOT, resolveTemporalCli } from './devStack';
import { poolLogFunction } from './poolLogging';
import { foreignPollers, SharedTaskQueueError } from './taskQueueOwnership';

/** Where `npm start` lets HTTP agent services live: this machine, any port. */
export const DEMO_AGENT_ALLOW = '127.0.0.1:*,localhost:*,[::1]:*';

export interface DemoOptions {
  /**
   * Configuration (DATABASE_URL, else a database FLOW_PG_DATABASE (default "flow") on the project's
   * cluster; TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, FLOW_TASK_QUEUE as the worker and API read them,
   * FLOW_DEMO_SHARE_TASK_QUEUE=1 to poll a queue other workers poll too, FLOW_DEMO_*, FLOW_API_*, FLOW_TEMPORAL_*, the LLM and JWT settings);
   * default process.env. The dev stack itself reads FLOW_PG_PORT,
   * FLOW_HOME and TEMPORAL_CLI_PATH from process.env.
   */
  env?: NodeJS.ProcessEnv;
  /** The demo's state: Temporal's db and log, the development JWT secret; default $FLOW_HOME, else <project>/.flow. */
  home?: string;
  /** Where each progress line goes; default stdout, prefixed `flow: `. */
  say?: (line: string) => void;
  /** Unless FLOW_DEMO_EXIT=1, the stack stays up after the job until this resolves; default SIGINT/SIGTERM. */
  stayUpUntil?: () => Promise<void>;
}

/** Where the SDK's per-pool start-up lines go (a process installs its Temporal Runtime, and so its logger, once). */
let poolSay: (line: string) => void = (line) => console.log(`flow: ${line}`);
let poolBaseQueue = TRAINING_TASK_QUEUE;

/**
 * Ctrl-C or SIGTERM while the stack was coming up: what had started is stopped, and the process exits 130
 * (128 + SIGINT, as a shell reports an interrupted command) rather than 0, since nothing ran.
 */
export class DemoInterruptedError extends Error {
  readonly exitCode = 130;

  constructor() {
    super('interrupted (Ctrl-C or SIGTERM); everything this run started is stopped');
    this.name = 'DemoInterruptedError';
  }
}

/** Brings the stack up, runs the demo job through the API, and resolves once the stack is down again. */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  const home = options.home ?? env.FLOW_HOME ?? path.join(PROJECT_ROOT, '.flow');
  const say = options.say ?? ((line: string) => console.log(`flow: ${line}`));
  // Before anything starts: every number it is given, and the demo mints its own token, so it needs an HS256 key.
  const settings = demoSettingsFromEnv(env);
  mkdirSync(home, { recursive: true });
  const auth = authConfigFromEnv(env, developmentSecret(env, home));
  if (auth.key.algorithm !== 'HS256') {
    throw new Error('the demo mints its own token and needs FLOW_JWT_SECRET (HS256); unset FLOW_JWKS_URL/FLOW_JWKS_FILE');
  }
  const apiLog = env.FLOW_API_LOG_FILE || path.join(home, 'logs', 'api.log');
  const apiOptions = apiOptionsFromEnv({ ...env, FLOW_API_LOG_FILE: apiLog }, auth);
  installQuietRuntime(say);
  // What this run started is stopped in reverse order on the way out, on Ctrl-C/SIGTERM and on a
  // failure, PostgreSQL included, each with a line. The SDK drains the worker itself on a signal.
  const interrupt = onInterrupt(say);
  const stayUpUntil = options.stayUpUntil ?? (() => interrupt.signalled);
  const services = new StartedServices(say);
  // A signal during start-up is seen between the steps (a step in progress finishes or fails first).
  const unlessInterrupted = <T>(value: T): T => {
    if (interrupt.interrupted) throw new DemoInterruptedError();
    return value;
  };
  try {
    allowLocalAgents(env, say);
    const databaseUrl = unlessInterrupted(await demoDatabase(env, settings, services, say));
    const temporal = unlessInterrupted(await demoTemporal(env, settings, home, services, say));
    const { llm, model } = unlessInterrupted(await demoLlm(env, settings, services, say));
    const worker = unlessInterrupted(await startDemoWorker(env, databaseUrl, temporal, llm, services, say));
    const flow = unlessInterrupted(await startDemoApi(settings.apiPort, env, apiLog, apiOptions, { auth, secret: auth.key.secret }, worker, temporal, services, say));

    const { iterations, localModel } = settings;
    const { uiUrl } = temporal;
    const { job_id: jobId } = await flow.startGrpo(demoJobRequest(localModel, iterations, model));
    say(`started training job ${jobId}${uiUrl ? ` (${uiUrl}/namespaces/${temporal.namespace}/workflows/${jobId})` : ''}`);
    const temporalCommand = `${temporalCliForHint()} workflow describe --address ${temporal.address}${temporal.namespace === 'default' ? '' : ` --namespace ${temporal.namespace}`}`;
    say(`try: ${temporalCommand} --workflow-id ${jobId}`);
    const job = { jobId, iterations, localModel, client: worker.client, connection: worker.connection, flow };
    await followJob(job, interrupt, say);
    await reportJob(job, interrupt, say);

    if (env.FLOW_DEMO_EXIT !== '1' && !interrupt.interrupted) {
      say(`the stack stays up${uiUrl ? `: browse ${uiUrl}` : ''}; press Ctrl-C to stop`);
      await stayUpUntil();
    }
    await services.stopAll();
    if (interrupt.interrupted) say('everything this run started is stopped');
  } catch (error) {
    // A failed step (a command killed by the same Ctrl-C included) leaves nothing running either.
    // A signal that arrived during a synchronous step (prisma migrate deploy) is handled only when
    // the event loop next polls, which setImmediate does not wait for: a short timer does.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await services.stopAll().catch(() => undefined);
    if (interrupt.interrupted) throw error instanceof DemoInterruptedError ? error : new DemoInterruptedError();
    throw error;
  } finally {
    interrupt.dispose();
  }
}

/**
 * The demo's own lines are the progress report; the SDK speaks up only for problems. A host
 * process that installed its own runtime first keeps it (Temporal allows one per process).
 */
function installQuietRuntime(say: Say): void {
  try {
    // Each pool's worker polls one kind of task; the SDK's "No activities/workflows registered"
    // warnings about that become a line naming the pool and what it polls.
    Runtime.install({ logger: new DefaultLogger('WARN', poolLogFunction(() => poolSay, () => poolBaseQueue)) });
  } catch (error) {
    if (!(error instanceof IllegalStateError)) throw error;
  }
  poolSay = say;
}

/**
 * Agent services on this machine (examples/http-agent.ts) are the demo's own; elsewhere loopback
 * and private addresses are refused unless FLOW_HTTP_AGENT_ALLOW names them (agentUrlPolicy.ts).
 */
function allowLocalAgents(env: NodeJS.ProcessEnv, say: Say): void {
  if (!env.FLOW_HTTP_AGENT_ALLOW && !process.env.FLOW_HTTP_AGENT_ALLOW) {
    process.env.FLOW_HTTP_AGENT_ALLOW = DEMO_AGENT_ALLOW;
    say(`HTTP agents allowed on this machine: FLOW_HTTP_AGENT_ALLOW=${DEMO_AGENT_ALLOW}`);
  }
}

interface DemoWorker {
  client: Client;
  connection: Connection;
  prisma: PrismaClient;
  taskQueue: string;
}

/**
 * A training worker with the same settings as `npm run worker`, on FLOW_TASK_QUEUE. On an
 * external Temporal it refuses a queue that workers of another install poll (their jobs would run
 * on this demo's code and database), unless FLOW_DEMO_SHARE_TASK_QUEUE=1.
 */
async function startDemoWorker(env: NodeJS.ProcessEnv, databaseUrl: string, temporal: DemoTemporal, llm: LlmSettings, services: StartedServices, say: Say): Promise<DemoWorker> {
  const { namespace } = temporal;
  const taskQueue = env.FLOW_TASK_QUEUE || TRAINING_TASK_QUEUE;
  // Pollers of this install (this database) carry this prefix; a restarted demo is not a stranger.
  const ownPrefix = `flow-demo-${createHash('sha256').update(databaseUrl).digest('hex').slice(0, 8)}-`;
  const connection = await Connection.connect(temporal.connectionOptions);
  if (env.TEMPORAL_ADDRESS && env.FLOW_DEMO_SHARE_TASK_QUEUE !== '1') {
    const strangers = await foreignPollers(connection, namespace, taskQueue, ownPrefix).catch(async (error: unknown) => {
      await connection.close();
      throw error;
    });
    if (strangers.length > 0) {
      await connection.close();
      throw new SharedTaskQueueError(namespace, taskQueue, strangers);
    }
  }
  const client = new Client({ connection, namespace });
  const prisma = createPrismaClient(databaseUrl, { poolSize: 20 });
  const nativeConnection = await NativeConnection.connect(temporal.connectionOptions);
  poolBaseQueue = taskQueue;
  const worker = await createTrainingWorker({ connection: nativeConnection, prisma, llm, namespace, taskQueue, identity: `${ownPrefix}${process.pid}` });
  const workerRun = worker.run();
  services.add('the worker', async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun;
    await connection.close();
    await nativeConnection.close();
    await prisma.$disconnect();
  });
  say(`worker polling task queue ${taskQueue} in namespace ${namespace}`);
  return { client, connection, prisma, taskQueue };
}

/**
 * The API, built as `npm run api` builds it (rate limit, log level; its log goes to a file, not
 * over the progress lines), and an admin development token for it, with the commands to try.
 */
async function startDemoApi(
  port: number,
  env: NodeJS.ProcessEnv,
  apiLog: string,
  apiOptions: ApiOptions,
  { auth, secret }: { auth: AuthConfig; secret: string },
  worker: DemoWorker,
  temporal: DemoTemporal,
  services: StartedServices,
  say: Say,
): Promise<FlowClient> {
  const { uiUrl } = temporal;
  mkdirSync(path.dirname(apiLog), { recursive: true });
  const api = await buildApiServer(
    { client: worker.client, prisma: worker.prisma, repos: createRepositories(worker.prisma), taskQueue: worker.taskQueue, ...(uiUrl ? { temporalUiUrl: uiUrl } : {}) },
    apiOptions,
  );
  const host = env.FLOW_API_HOST ?? '127.0.0.1';
  let apiUrl: string;
  try {
    apiUrl = await api.listen({ host, port });
  } catch (error) {
    await api.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`the API cannot listen on ${host}:${port}: something else is using it (set FLOW_API_PORT to a free port)`);
    }
    throw error;
  }
  services.add('the API', () => api.close());
  say(`API (JSON-RPC) at ${apiUrl}/rpc`);
  say(`API log (an error's request_id is there): ${apiLog}`);
  const token = await mintToken({ ...auth, secret }, { subject: 'developer', tenant: 'default', roles: ['admin'], expiresIn: '12h' });
  say(`development token (admin, 12 h; \`scripts/flow token\` mints more):\n${token}`);
  // The exact commands for this stack: its API's address and token, its Temporal server's address.
  say(`try: FLOW_API_URL=${apiUrl} FLOW_TOKEN=${token} scripts/flow list`);
  say(`dashboard: ${apiUrl}/#token=${token}`);
  return new FlowClient({ url: apiUrl, token });
}

/** The Temporal CLI as a reader types it: relative to the project when it lives there. */
function temporalCliForHint(): string {
  try {
    const cli = resolveTemporalCli();
    return cli.startsWith(`${PROJECT_ROOT}${path.sep}`) ? path.relative(PROJECT_ROOT, cli) : cli;
  } catch {
    return 'temporal';
  }
}

/** FLOW_JWT_SECRET, else a random secret kept in <home>/jwt-secret (what `flow token` reads). */
function developmentSecret(env: NodeJS.ProcessEnv, home: string): string | undefined {
  if (env.FLOW_JWT_SECRET || env.FLOW_JWKS_URL || env.FLOW_JWKS_FILE) return undefined;
  const file = path.join(home, 'jwt-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

if (require.main === module) {
  runDemo().catch((error: unknown) => {
    console.error(`flow: ${error instanceof Error ? error.message : String(error)}`);
    // runDemo stopped what it started, so the process ends by itself; process.exit() at once could
    // run pino's exit flush before the API log file is open ("sonic boom is not ready yet").
    process.exitCode = error instanceof DemoInterruptedError ? error.exitCode : 1;
    setTimeout(() => process.exit(), 10_000).unref();
  });
}
