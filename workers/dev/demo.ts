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
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { temporalConnectionFromEnv } from '../../adapters/temporalConnection';
import { llmSettingsFromEnv } from '../../adapters/llm/chatClient';
import { authConfigFromEnv, mintToken } from '../../api/auth';
import { FlowClient } from '../../api/client/flowClient';
import { buildApiServer } from '../../api/server';
import { apiOptionsFromEnv } from '../../api/main';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { statusQuery } from '../../workflows/trainingJob';
import { createDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, resolveTemporalCli, sleep, startTemporal, stopPostgres } from './devStack';
import { poolLogFunction } from './poolLogging';
import { startSimulatedModelServer } from './simulatedModelServer';
import { LOCAL_MODEL } from '../localModelFiles';
import { lazyLocalModel } from '../localModelServer';
import { createTrainingWorker } from '../trainingWorker';
import { foreignPollers, SharedTaskQueueError } from './taskQueueOwnership';
import { TRAINING_TASK_QUEUE } from '../../workflows/taskQueues';

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

/** Brings the stack up, runs the demo job through the API, and resolves once the stack is down again. */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  const home = options.home ?? env.FLOW_HOME ?? path.join(PROJECT_ROOT, '.flow');
  const say = options.say ?? ((line: string) => console.log(`flow: ${line}`));
  mkdirSync(home, { recursive: true });
  // Before anything starts: the demo mints its own token, so it needs an HS256 key.
  const auth = authConfigFromEnv(env, developmentSecret(env, home));
  if (auth.key.algorithm !== 'HS256') {
    throw new Error('the demo mints its own token and needs FLOW_JWT_SECRET (HS256); unset FLOW_JWKS_URL/FLOW_JWKS_FILE');
  }
  // The demo's own lines are the progress report; the SDK speaks up only for problems. A host
  // process that installed its own runtime first keeps it (Temporal allows one per process).
  try {
    // Each pool's worker polls one kind of task; the SDK's "No activities/workflows registered"
    // warnings about that become a line naming the pool and what it polls.
    Runtime.install({ logger: new DefaultLogger('WARN', poolLogFunction(() => poolSay, () => poolBaseQueue)) });
  } catch (error) {
    if (!(error instanceof IllegalStateError)) throw error;
  }
  poolSay = say;

  // Ctrl-C (SIGINT to the process group) or SIGTERM, at any point: what this run started is stopped
  // in reverse order, PostgreSQL included, each with a line. The SDK drains the worker itself.
  let interrupted = false;
  let onSignal: () => void = () => undefined;
  const signalled = new Promise<void>((resolve) => {
    onSignal = () => {
      if (!interrupted) say('interrupted (Ctrl-C or SIGTERM): stopping everything this run started');
      interrupted = true;
      resolve();
    };
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stayUpUntil = options.stayUpUntil ?? (() => signalled);
  const stops: (() => Promise<void>)[] = [];
  const stopping = (what: string, stop: () => Promise<void> | void) => async () => {
    await stop();
    say(`stopped ${what}`);
  };

  // Agent services on this machine (examples/http-agent.ts) are the demo's own; elsewhere loopback
  // and private addresses are refused unless FLOW_HTTP_AGENT_ALLOW names them (agentUrlPolicy.ts).
  if (!env.FLOW_HTTP_AGENT_ALLOW && !process.env.FLOW_HTTP_AGENT_ALLOW) {
    process.env.FLOW_HTTP_AGENT_ALLOW = DEMO_AGENT_ALLOW;
    say(`HTTP agents allowed on this machine: FLOW_HTTP_AGENT_ALLOW=${DEMO_AGENT_ALLOW}`);
  }

  let databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    const postgres = await ensurePostgres();
    // Only a cluster this run started is stopped at the end; one that was running stays up.
    if (postgres.started) stops.push(stopping(`PostgreSQL (127.0.0.1:${postgres.port})`, () => stopPostgres(postgres.port)));
    const name = env.FLOW_PG_DATABASE || 'flow';
    databaseUrl = await createDatabase(postgres.adminUrl, name);
    say(`PostgreSQL on 127.0.0.1:${postgres.port} (database "${name}")`);
  }
  migrateDatabase(databaseUrl);

  // An external Temporal (TEMPORAL_ADDRESS set) is reached as the worker and API reach it, TLS or
  // API key included (adapters/temporalConnection.ts); without it the demo starts a dev server.
  const temporalSettings = temporalConnectionFromEnv(env);
  let connectionOptions = temporalSettings.connectionOptions;
  let address = env.TEMPORAL_ADDRESS ? temporalSettings.address : undefined;
  let uiUrl: string | null = null;
  if (!address) {
    const temporal = await startTemporal({
      port: Number(env.FLOW_TEMPORAL_PORT ?? 7233),
      uiPort: Number(env.FLOW_TEMPORAL_UI_PORT ?? 8233),
      dbFile: path.join(home, 'temporal.db'),
      logFile: path.join(home, 'temporal.log'),
      ownProcessGroup: true, // Ctrl-C must not stop it before the worker has drained
    });
    stops.push(stopping('the Temporal dev server', () => temporal.stop()));
    address = temporal.address;
    connectionOptions = { address };
    uiUrl = temporal.uiUrl;
  }
  say(`Temporal at ${address}${uiUrl ? `, Web UI at ${uiUrl}` : ''}`);

  let llm = llmSettingsFromEnv(env);
  let model = env.FLOW_MODEL ?? 'flow-sim-1';
  // FLOW_LLM=local: the real local model (issue 13), served by llama.cpp on this machine.
  const localModelDemo = env.FLOW_LLM === 'local';
  const iterations = Number(env.FLOW_DEMO_ITERATIONS ?? (localModelDemo ? 3 : 8));
  if (localModelDemo) {
    say(
      `LLM: the REAL local model ${LOCAL_MODEL.upstream} (${LOCAL_MODEL.license}) on this machine's CPU. ` +
        `This demo takes about ${iterations * 3} minutes on 2 cores (${iterations} iterations of 2 groups of 4 trajectories, ` +
        `~3 s per model call when the machine is otherwise idle; more when it is busy), plus ~10 s to load the model.`,
    );
    const local = lazyLocalModel({}, env);
    say(`local model server (llama.cpp) at ${await local.baseURL()}`);
    stops.push(stopping('the local model server', () => local.stop()));
    llm = { ...llm, local: () => local.baseURL() };
    model = LOCAL_MODEL.name;
  } else if (!llm.baseURL && !llm.apiKey) {
    const simulated = await startSimulatedModelServer({ latencyMs: Number(env.FLOW_SIM_LATENCY_MS ?? 20) });
    stops.push(stopping('the simulated model server', () => simulated.close()));
    llm = { baseURL: simulated.url };
    model = 'flow-sim-1';
    say(`LLM: the built-in SIMULATED model at ${simulated.url} (set PORTKEY_API_KEY or FLOW_LLM_BASE_URL to train a real LLM)`);
  } else {
    say(`LLM: ${model} through portkey-ai${llm.baseURL ? ` at ${llm.baseURL}` : ''}`);
  }

  // The same settings as `npm run worker` and `npm run api`.
  const namespace = temporalSettings.namespace;
  const taskQueue = env.FLOW_TASK_QUEUE || TRAINING_TASK_QUEUE;
  // Pollers of this install (this database) carry this prefix; a restarted demo is not a stranger.
  const ownPrefix = `flow-demo-${createHash('sha256').update(databaseUrl).digest('hex').slice(0, 8)}-`;
  const connection = await Connection.connect(connectionOptions);
  if (env.TEMPORAL_ADDRESS && env.FLOW_DEMO_SHARE_TASK_QUEUE !== '1') {
    const strangers = await foreignPollers(connection, namespace, taskQueue, ownPrefix).catch(async (error: unknown) => {
      await connection.close();
      throw error;
    });
    if (strangers.length > 0) {
      await connection.close();
      for (const stop of stops.reverse()) await stop();
      throw new SharedTaskQueueError(namespace, taskQueue, strangers);
    }
  }
  const client = new Client({ connection, namespace });
  const prisma = createPrismaClient(databaseUrl, { poolSize: 20 });
  const nativeConnection = await NativeConnection.connect(connectionOptions);
  poolBaseQueue = taskQueue;
  const worker = await createTrainingWorker({ connection: nativeConnection, prisma, llm, namespace, taskQueue, identity: `${ownPrefix}${process.pid}` });
  const workerRun = worker.run();
  say(`worker polling task queue ${taskQueue} in namespace ${namespace}`);

  // Built as `npm run api` builds it (rate limit, log level); its log goes to a file, not over the progress lines.
  const apiLog = env.FLOW_API_LOG_FILE || path.join(home, 'logs', 'api.log');
  mkdirSync(path.dirname(apiLog), { recursive: true });
  const api = await buildApiServer(
    { client, prisma, repos: createRepositories(prisma), taskQueue, ...(uiUrl ? { temporalUiUrl: uiUrl } : {}) },
    apiOptionsFromEnv({ ...env, FLOW_API_LOG_FILE: apiLog }, auth),
  );
  const apiUrl = await api.listen({ host: env.FLOW_API_HOST ?? '127.0.0.1', port: Number(env.FLOW_API_PORT ?? 8080) });
  stops.push(stopping('the API', () => api.close()));
  say(`API (JSON-RPC) at ${apiUrl}/rpc`);
  say(`API log (an error's request_id is there): ${apiLog}`);
  const token = await mintToken({ ...auth, secret: auth.key.secret }, { subject: 'developer', tenant: 'default', roles: ['admin'], expiresIn: '12h' });
  say(`development token (admin, 12 h; \`scripts/flow token\` mints more):\n${token}`);
  // The exact commands for this stack: its API's address and token, its Temporal server's address.
  say(`try: FLOW_API_URL=${apiUrl} FLOW_TOKEN=${token} scripts/flow list`);
  say(`dashboard: ${apiUrl}/#token=${token}`);
  const flow = new FlowClient({ url: apiUrl, token });

  const { job_id: jobId } = await flow.startGrpo(
    localModelDemo
      ? {
          // Families whose right tool (web_search) is not the one the untrained model reaches for.
          agent_id: 'demo-local-agent',
          training_queries: simulatedTaskSet({ queriesPerFamily: 4, seed: 1, families: ['geography', 'weather'] }),
          config: {
            iterations,
            batch_size: 2,
            group_size: 4,
            seed: 1,
            model,
            optimizer_model: model,
            priority: 'P1',
            max_steps: 4,
            max_tokens: 200,
            trajectory_timeout_seconds: 900,
            checkpoint_interval: 1,
            evaluate: false,
          },
        }
      : {
          agent_id: 'demo-support-agent',
          training_queries: simulatedTaskSet({ queriesPerFamily: 4, seed: 1 }),
          config: { iterations, batch_size: 6, group_size: 8, seed: 1, model, optimizer_model: model, priority: 'P1' },
        },
  );
  say(`started training job ${jobId}${uiUrl ? ` (${uiUrl}/namespaces/${namespace}/workflows/${jobId})` : ''}`);
  const temporalCommand = `${temporalCliForHint()} workflow describe --address ${address}${namespace === 'default' ? '' : ` --namespace ${namespace}`}`;
  say(`try: ${temporalCommand} --workflow-id ${jobId}`);

  const handle = client.workflow.getHandle(jobId);
  let shown = 0;
  // An interrupt aborts the status query in flight (its retries would outlive the connection).
  const queryAbort = new AbortController();
  void signalled.then(() => queryAbort.abort());
  for (;;) {
    const status = await connection.withAbortSignal(queryAbort.signal, () => handle.query(statusQuery)).catch((error: unknown) => {
      if (interrupted) return null;
      throw error;
    });
    if (status === null) break;
    for (; shown < status.success_rates.length; shown++) {
      const rate = status.success_rates[shown];
      const bar = '#'.repeat(Math.round(rate * 30)).padEnd(30, '.');
      say(`iteration ${String(shown + 1).padStart(2)}/${iterations}  success ${bar} ${(rate * 100).toFixed(0).padStart(3)}%  lessons ${status.lessons}  spend $${status.spend_usd.toFixed(4)}`);
      // The real model's lessons after each iteration, from that iteration's checkpoint.
      if (localModelDemo) {
        const { checkpoints } = await flow.call('training.list_checkpoints', { job_id: jobId });
        const latest = checkpoints.at(-1);
        for (const lesson of latest?.policy?.lessons ?? []) say(`    [${lesson.weight.toFixed(2)}] ${lesson.text}`);
      }
    }
    if (status.status !== 'running') break;
    await sleep(250);
  }
  const result = interrupted ? null : await handle.result();
  if (result) {
    const first = result.success_rates[0];
    const last = result.success_rates[result.success_rates.length - 1];
    say(`job ${result.status}: success rate ${(first * 100).toFixed(0)}% in the first iteration → ${(last * 100).toFixed(0)}% in the last`);
    say('lessons learned:');
    for (const lesson of [...result.policy.lessons].sort((a, b) => b.weight - a.weight)) say(`  [${lesson.weight.toFixed(2)}] ${lesson.text}`);
  } else {
    say(`job ${jobId} is left as it is (its workflow resumes on the next start)`);
  }

  if (env.FLOW_DEMO_EXIT !== '1' && !interrupted) {
    say(`the stack stays up${uiUrl ? `: browse ${uiUrl}` : ''}; press Ctrl-C to stop`);
    await stayUpUntil();
  }
  // Ctrl-C also reaches the SDK, which then drains the worker itself.
  if (worker.getState() === 'RUNNING') worker.shutdown();
  await workerRun;
  say('stopped the worker');
  await connection.close();
  await nativeConnection.close();
  await prisma.$disconnect();
  for (const stop of stops.reverse()) await stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (interrupted) say('everything this run started is stopped');
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
  runDemo().catch((error) => {
    console.error(`flow: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
