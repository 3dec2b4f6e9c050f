/**
 * `flow worker`: runs a training worker (not an API call). The worker lives in workers/, which
 * api/ does not import: the process entry (scripts/flow.ts) hands its `startWorker` in through
 * CliIo, so this file only declares the command line and maps its options to the environment.
 */
import { Option } from 'commander';
import { listenPort } from '../arguments';
import type { RegisterCommand } from '../command';
import { CliError, EXIT, isErrorLike } from '../errors';

/** What workers/main.ts throws for a setting it refuses, by name (api/ does not import workers/). */
const SETTING_ERRORS = new Set(['SettingError', 'WorkerPoolConfigError', 'TemporalConfigError']);

export const registerWorker: RegisterCommand = (program, { io }) => {
  program
    .command('worker')
    .description('run a training worker (not an API call): polls Temporal until SIGTERM/SIGINT, then drains and exits 0')
    .addOption(new Option('--pool <pool>', 'the pool to run: workflow, trajectory (LLM-bound activities), cpu (CPU/database activities) or all (env FLOW_WORKER_POOL)').choices(['all', 'workflow', 'trajectory', 'cpu']))
    .option('--health-port <port>', '/healthz and /readyz on this port, 0 = any free port (env FLOW_WORKER_HEALTH_PORT, default 8081)', listenPort('--health-port'))
    .addHelpText('after', '\nAlso reads DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, FLOW_TASK_QUEUE, the LLM settings and the pool sizes (README: worker pools).')
    .action(async (options: { pool?: string; healthPort?: number }) => {
      if (!io.startWorker) throw new CliError('worker: this entry cannot start a worker; run `scripts/flow worker` or `npm run worker`', EXIT.USAGE);
      const env = {
        ...io.env,
        ...(options.pool ? { FLOW_WORKER_POOL: options.pool } : {}),
        ...(options.healthPort !== undefined ? { FLOW_WORKER_HEALTH_PORT: String(options.healthPort) } : {}),
      };
      let worker;
      try {
        worker = await io.startWorker(env, (line) => io.stdout.write(`${line}\n`));
      } catch (error) {
        // A setting refused is a usage error (2), as the help says; Temporal or PostgreSQL out of reach is 1.
        const refusedSetting = isErrorLike(error) && SETTING_ERRORS.has(error.name);
        throw new CliError(`worker: ${error instanceof Error ? error.message : String(error)}`, refusedSetting ? EXIT.USAGE : EXIT.API_ERROR);
      }
      io.stdout.write(`health: ${worker.health.url}/healthz, ready: ${worker.health.url}/readyz\n`);
      await worker.finished;
    });
};
