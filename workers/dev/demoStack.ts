/**
 * The parts of `npm start`'s stack (workers/dev/demo.ts) that run before the worker: interrupt
 * handling, what this run started and how it is stopped, PostgreSQL, Temporal and the model the
 * agent calls. Each part says what it started, in the demo's progress lines.
 */
import path from 'node:path';
import { type LlmSettings, llmSettingsFromEnv } from '../../adapters/llm/chatClient';
import { temporalConnectionFromEnv, type TemporalConnectionSettings } from '../../adapters/temporalConnection';
import { LOCAL_MODEL } from '../localModelFiles';
import { lazyLocalModel } from '../localModelServer';
import { createDatabase, ensurePostgres, migrateDatabase, startTemporal, stopPostgres } from './devStack';
import { startSimulatedModelServer } from './simulatedModelServer';

export type Say = (line: string) => void;

/** What this run started, stopped in reverse order, each with a `stopped <what>` line. */
export class StartedServices {
  private readonly stops: (() => Promise<void>)[] = [];

  constructor(private readonly say: Say) {}

  add(what: string, stop: () => Promise<void> | void): void {
    this.stops.push(async () => {
      await stop();
      this.say(`stopped ${what}`);
    });
  }

  async stopAll(): Promise<void> {
    for (let stop = this.stops.pop(); stop; stop = this.stops.pop()) await stop();
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
export async function demoDatabase(env: NodeJS.ProcessEnv, services: StartedServices, say: Say): Promise<string> {
  let databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    const postgres = await ensurePostgres();
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
export async function demoTemporal(env: NodeJS.ProcessEnv, home: string, services: StartedServices, say: Say): Promise<DemoTemporal> {
  const settings = temporalConnectionFromEnv(env);
  let connectionOptions = settings.connectionOptions;
  let address = env.TEMPORAL_ADDRESS ? settings.address : undefined;
  let uiUrl: string | null = null;
  if (!address) {
    const temporal = await startTemporal({
      port: Number(env.FLOW_TEMPORAL_PORT ?? 7233),
      uiPort: Number(env.FLOW_TEMPORAL_UI_PORT ?? 8233),
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
export async function demoLlm(env: NodeJS.ProcessEnv, iterations: number, services: StartedServices, say: Say): Promise<{ llm: LlmSettings; model: string }> {
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
    const simulated = await startSimulatedModelServer({ latencyMs: Number(env.FLOW_SIM_LATENCY_MS ?? 20) });
    services.add('the simulated model server', () => simulated.close());
    say(`LLM: the built-in SIMULATED model at ${simulated.url} (set PORTKEY_API_KEY or FLOW_LLM_BASE_URL to train a real LLM)`);
    return { llm: { baseURL: simulated.url }, model: 'flow-sim-1' };
  }
  say(`LLM: ${model} through portkey-ai${llm.baseURL ? ` at ${llm.baseURL}` : ''}`);
  return { llm, model };
}
