/**
 * The parts of `npm start`'s stack (workers/dev/demo.ts) that run before the worker: interrupt
 * handling, what this run started and how it is stopped, PostgreSQL, Temporal and the model the
 * agent calls. Each part says what it started, in the demo's progress lines.
 */
import path from 'node:path';
import { integerFromEnv, tcpPortFromEnv } from '../../adapters/envIntegers';
import { type LlmSettings, llmSettingsFromEnv } from '../../adapters/llm/chatClient';
import { temporalConnectionFromEnv, type TemporalConnectionSettings } from '../../adapters/temporalConnection';
import { LOCAL_MODEL } from '../localModelFiles';
import { lazyLocalModel } from '../localModelServer';
import { createDatabase, ensurePostgres, migrateDatabase, startTemporal, stopPostgres } from './devStack';
import { startSimulatedModelServer } from './simulatedModelServer';

export type Say = (line: string) => void;

/** The demo's numbers, from its environment. */
export interface DemoSettings {
  /** FLOW_LLM=local: the real local model (issue 13), and a smaller job. */
  localModel: boolean;
  iterations: number;
  apiPort: number;
  pgPort: number;
  temporalPort: number;
  temporalUiPort: number;
  simulatedLatencyMs: number;
}

/**
 * Checked before anything starts: a wrong number is one line naming its variable, not a failure
 * halfway up the stack (FLOW_PG_PORT=abc was "Invalid URL"; FLOW_DEMO_ITERATIONS=-2 was refused by
 * the API once PostgreSQL and Temporal were running).
 */
export function demoSettingsFromEnv(env: NodeJS.ProcessEnv): DemoSettings {
  const localModel = env.FLOW_LLM === 'local';
  return {
    localModel,
    // The bound training/grpoConfig.ts puts on config.iterations.
    iterations: integerFromEnv(env, 'FLOW_DEMO_ITERATIONS', localModel ? 3 : 8, { min: 1, max: 100_000 }),
    apiPort: tcpPortFromEnv(env, 'FLOW_API_PORT', 8080),
    pgPort: tcpPortFromEnv(env, 'FLOW_PG_PORT', 54329),
    temporalPort: tcpPortFromEnv(env, 'FLOW_TEMPORAL_PORT', 7233),
    temporalUiPort: tcpPortFromEnv(env, 'FLOW_TEMPORAL_UI_PORT', 8233),
    simulatedLatencyMs: integerFromEnv(env, 'FLOW_SIM_LATENCY_MS', 20, { min: 0, max: 60_000, unit: 'milliseconds' }),
  };
}

/** What this run started, stopped in reverse order, each with a `stopped <what>` line. */
export class StartedServices {
  private readonly stops: { what: string; stop: () => Promise<void> | void }[] = [];

  constructor(private readonly say: Say) {}

  add(what: string, stop: () => Promise<void> | void): void {
    this.stops.push({ what, stop });
  }

  /** Stops each in turn; one that fails to stop does not keep the rest running (the first failure is thrown at the end). */
  async stopAll(): Promise<void> {
    let failure: unknown;
    for (let started = this.stops.pop(); started; started = this.stops.pop()) {
      try {
        await started.stop();
        this.say(`stopped ${started.what}`);
      } catch (error) {
        this.say(`could not stop ${started.what}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  }
}

/** Ctrl-C (SIGINT to the process group) or SIGTERM, at any point of the run. */
export interface Interrupt {
  /** Resolves on the first signal. */
  readonly signalled: Promise<void>;
  readonly interrupted: boolean;
  /** Removes the signal handlers. */
  dispose(): void;
}

export function onInterrupt(say: Say): Interrupt {
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
  return {
    signalled,
    get interrupted() {
      return interrupted;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** DATABASE_URL, else a database on the project's cluster (started if it is not running); migrated. */
export async function demoDatabase(env: NodeJS.ProcessEnv, settings: DemoSettings, services: StartedServices, say: Say): Promise<string> {
  let databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    const postgres = await ensurePostgres(settings.pgPort);
    // Only a cluster this run started is stopped at the end; one that was running stays up.
    if (postgres.started) services.add(`PostgreSQL (127.0.0.1:${postgres.port})`, () => stopPostgres(postgres.port));
    const name = env.FLOW_PG_DATABASE || 'flow';
    databaseUrl = await createDatabase(postgres.adminUrl, name);
    say(`PostgreSQL on 127.0.0.1:${postgres.port} (database "${name}")`);
  }
  migrateDatabase(databaseUrl);
  return databaseUrl;
}

export interface DemoTemporal {
  address: string;
  connectionOptions: TemporalConnectionSettings['connectionOptions'];
  namespace: string;
  /** The dev server's Web UI; null for an external Temporal. */
  uiUrl: string | null;
}

/**
 * An external Temporal (TEMPORAL_ADDRESS set) is reached as the worker and API reach it, TLS or
 * API key included (adapters/temporalConnection.ts); without it the demo starts a dev server.
 */
export async function demoTemporal(env: NodeJS.ProcessEnv, { temporalPort, temporalUiPort }: DemoSettings, home: string, services: StartedServices, say: Say): Promise<DemoTemporal> {
  const settings = temporalConnectionFromEnv(env);
  let connectionOptions = settings.connectionOptions;
  let address = env.TEMPORAL_ADDRESS ? settings.address : undefined;
  let uiUrl: string | null = null;
  if (!address) {
    const temporal = await startTemporal({
      port: temporalPort,
      uiPort: temporalUiPort,
      dbFile: path.join(home, 'temporal.db'),
      logFile: path.join(home, 'temporal.log'),
      ownProcessGroup: true, // Ctrl-C must not stop it before the worker has drained
    });
    services.add('the Temporal dev server', () => temporal.stop());
    address = temporal.address;
    connectionOptions = { address };
    uiUrl = temporal.uiUrl;
  }
  say(`Temporal at ${address}${uiUrl ? `, Web UI at ${uiUrl}` : ''}`);
  return { address, connectionOptions, namespace: settings.namespace, uiUrl };
}

/**
 * The model the demo's agent and optimizer call: FLOW_LLM=local, the real local model (issue 13)
 * served by llama.cpp on this machine; no PORTKEY_API_KEY or FLOW_LLM_BASE_URL, the built-in
 * simulated model server; else FLOW_MODEL through portkey-ai.
 */
export async function demoLlm(env: NodeJS.ProcessEnv, { iterations, simulatedLatencyMs }: DemoSettings, services: StartedServices, say: Say): Promise<{ llm: LlmSettings; model: string }> {
  const llm = llmSettingsFromEnv(env);
  const model = env.FLOW_MODEL ?? 'flow-sim-1';
  if (env.FLOW_LLM === 'local') {
    say(
      `LLM: the REAL local model ${LOCAL_MODEL.upstream} (${LOCAL_MODEL.license}) on this machine's CPU. ` +
        `This demo takes about ${iterations * 3} minutes on 2 cores (${iterations} iterations of 2 groups of 4 trajectories, ` +
        `~3 s per model call when the machine is otherwise idle; more when it is busy), plus ~10 s to load the model.`,
    );
    const local = lazyLocalModel({}, env);
    say(`local model server (llama.cpp) at ${await local.baseURL()}`);
    services.add('the local model server', () => local.stop());
    return { llm: { ...llm, local: () => local.baseURL() }, model: LOCAL_MODEL.name };
  }
  if (!llm.baseURL && !llm.apiKey) {
    const simulated = await startSimulatedModelServer({ latencyMs: simulatedLatencyMs });
    services.add('the simulated model server', () => simulated.close());
    say(`LLM: the built-in SIMULATED model at ${simulated.url} (set PORTKEY_API_KEY or FLOW_LLM_BASE_URL to train a real LLM)`);
    return { llm: { baseURL: simulated.url }, model: 'flow-sim-1' };
  }
  say(`LLM: ${model} through portkey-ai${llm.baseURL ? ` at ${llm.baseURL}` : ''}`);
  return { llm, model };
}
