/**
 * `flow`: the command line of the JSON-RPC facade, built on the typed client. `scripts/flow`
 * runs it (`node --import tsx api/cli/flow.ts`); `main()` is what the tests call in-process.
 *
 * Exit codes (also in `flow --help`):
 *   0  success (for `status --watch`: the job ended `completed`)
 *   1  the API answered with an error, or cannot be reached
 *   2  usage: unknown command or option, missing or bad argument, no token, a config file
 *      that cannot be read or is not JSON, an output file that cannot be created
 *   3  `status --watch`: the job ended failed, cancelled or budget_exceeded
 * Errors are one line on stderr, `flow: <message>`; no stack traces (FLOW_DEBUG=1 shows them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import type { EvaluationSummary } from '../../training/evaluation';
import { authConfigFromEnv, mintToken } from '../auth';
import { FlowApiError, FlowClient } from '../client/flowClient';
import { EVALUATION_TASK_SOURCES, parseTasksJsonl, TaskSetError, TRAINING_TASK_SOURCES } from '../taskSets';
import type { CheckpointSelector, JobStatusResult, KillSwitchState, ListJobsResult, MethodParams } from '../schemas';
import { JOB_STATUSES, isTerminalJobStatus } from '../../training/jobStatus';
import { PrioritySchema } from '../../training/config';

export const EXIT = { OK: 0, API_ERROR: 1, USAGE: 2, JOB_NOT_COMPLETED: 3 } as const;

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';
export const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** Where the dev stack writes its HS256 secret; `flow token` reads it when FLOW_JWT_SECRET is unset. */
export const DEV_SECRET_FILE = path.join(REPO_ROOT, '.flow', 'jwt-secret');

type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface CliIo {
  stdout: Output;
  stderr: Output;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  /** For tests; default the global fetch. */
  fetch?: typeof fetch;
}

/** An error with the exit code and the one line the user sees. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

const usage = (message: string) => new CliError(message, EXIT.USAGE);

const HELP_AFTER = `
Environment:
  FLOW_API_URL      the API's base URL (default ${DEFAULT_API_URL}); --url overrides it
  FLOW_TOKEN        the bearer token; --token overrides it (mint one: export FLOW_TOKEN=$(flow token))
  FLOW_JWT_SECRET   the HS256 secret \`flow token\` signs with (else the file .flow/jwt-secret)

Exit codes:
  0  success; for \`status --watch\`, the job ended completed
  1  the API answered with an error, or cannot be reached
  2  usage error: unknown command or option, bad argument, no token, unreadable or invalid config file
  3  \`status --watch\`: the job ended failed, cancelled or budget_exceeded
`;

/** Runs the command line; resolves to the exit code (it never calls process.exit). */
export async function main(argv: string[], ioOverrides: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, ...ioOverrides };
  const state = { exitCode: EXIT.OK as number };
  const program = buildProgram(io, state);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end in a CommanderError with exit code 0; commander printed the rest.
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const { message, exitCode } = describeFailure(error, () => resolvedUrl(program, io));
    io.stderr.write(`flow: ${message}\n`);
    if (io.env.FLOW_DEBUG && isErrorLike(error) && !(error instanceof CliError)) io.stderr.write(`${error.stack}\n`);
    return exitCode;
  }
}

function buildProgram(io: CliIo, state: { exitCode: number }): Command {
  const program = new Command('flow');
  program
    .description('Start, watch, list, cancel, resume, steer and export Flow GRPO training jobs through the JSON-RPC API.')
    .version(packageVersion(), '-V, --version')
    .option('--url <url>', `the Flow API's base URL (env FLOW_API_URL, default ${DEFAULT_API_URL})`)
    .option('--token <jwt>', 'bearer token (env FLOW_TOKEN; prefer the variable, arguments show in `ps`)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(text.replace(/^error: /, 'flow: ')),
    })
    .showHelpAfterError('(run `flow --help` for usage)')
    .addHelpText('after', HELP_AFTER);

  const client = () => new FlowClient({ url: resolvedUrl(program, io), token: resolvedToken(program, io), fetch: io.fetch });

  program
    .command('start')
    .description('start a training job from a JSON file of training.start_grpo params; prints the job id')
    .argument('<config.json>', 'the params (agent_id, training_queries or task_set, config, ...); "-" reads stdin')
    .option('--idempotency-key <key>', 'retries with the same key start one job and print its id')
    .option('--tasks <file.jsonl>', 'training queries from a JSONL file, one task a line (replaces those in the config)')
    .option('--eval-tasks <file.jsonl>', 'held-out evaluation queries from a JSONL file (replaces those in the config)')
    .action(async (file: string, options: { idempotencyKey?: string; tasks?: string; evalTasks?: string }) => {
      const params = await readConfig(file, io);
      if (options.idempotencyKey !== undefined) params.idempotency_key = options.idempotencyKey;
      // Checked here, so a bad line is a usage error naming the file and line; sent as text.
      if (options.tasks !== undefined) {
        for (const key of TRAINING_TASK_SOURCES) delete params[key];
        params.training_queries_jsonl = readTasksFile(options.tasks);
      }
      if (options.evalTasks !== undefined) {
        for (const key of EVALUATION_TASK_SOURCES) delete params[key];
        params.evaluation_queries_jsonl = readTasksFile(options.evalTasks);
      }
      const started = await client().startGrpo(params as MethodParams<'training.start_grpo'>);
      io.stdout.write(`${started.job_id}\n`);
      if (!started.created) io.stderr.write(`(the idempotency key matched job ${started.job_id}, started earlier; nothing new was started)\n`);
    });

  program
    .command('status')
    .description("a job's iteration, phase, success rate, spend vs budget and best checkpoint")
    .argument('<job>', 'the job id')
    .option('-w, --watch', 'follow the job until it ends (exit 0 if completed, 3 otherwise)')
    .option('--interval <ms>', 'poll interval with --watch', positiveInt('--interval'), 1000)
    .option('--json', 'print the status as JSON (with --watch: one JSON line per change)')
    .action(async (jobId: string, options: { watch?: boolean; interval: number; json?: boolean }) => {
      const api = client();
      if (!options.watch) {
        const status = await api.getStatus(jobId);
        io.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : `${describeStatus(status).join('\n')}\n`);
        return;
      }
      state.exitCode = await watch(api, jobId, options.interval, Boolean(options.json), io);
    });

  program
    .command('list')
    .description('jobs of your tenant, newest first')
    .option('--agent <agent_id>', 'only this agent')
    .addOption(new Option('--status <status>', 'only this status').choices(JOB_STATUSES))
    .addOption(new Option('--priority <priority>', 'only this priority').choices(PrioritySchema.options))
    .option('--limit <n>', 'jobs per page, 1-500 (default 50; 500 with --all)', positiveInt('--limit'))
    .option('--all', 'follow next_cursor through every page')
    .option('--json', 'print {"jobs": [...], "next_cursor": ...} as JSON')
    .action(async (options: { agent?: string; status?: (typeof JOB_STATUSES)[number]; priority?: 'P0' | 'P1' | 'P2'; limit?: number; all?: boolean; json?: boolean }) => {
      const api = client();
      const filters: MethodParams<'training.list_jobs'> = {
        ...(options.agent ? { agent_id: options.agent } : {}),
        ...(options.status ? { status: options.status } : {}),
        ...(options.priority ? { priority: options.priority } : {}),
      };
      const limit = options.limit ?? (options.all ? 500 : undefined);
      let page: ListJobsResult = await api.listJobs({ ...filters, ...(limit ? { limit } : {}) });
      const jobs = [...page.jobs];
      while (options.all && page.next_cursor) {
        page = await api.listJobs({ ...filters, ...(limit ? { limit } : {}), cursor: page.next_cursor });
        jobs.push(...page.jobs);
      }
      if (options.json) {
        io.stdout.write(`${JSON.stringify({ jobs, next_cursor: page.next_cursor }, null, 2)}\n`);
        return;
      }
      io.stdout.write(jobs.length === 0 ? 'no jobs\n' : jobTable(jobs));
      if (page.next_cursor) io.stderr.write('(more jobs than shown: add --all, or a larger --limit)\n');
    });

  program
    .command('cancel')
    .description('cancel a running job; it ends cancelled with the reason recorded')
    .argument('<job>', 'the job id')
    .option('--reason <text>', 'recorded as the reason (default "cancelled by <you>")')
    .option('--wait', 'return once the job has ended (in-flight trajectories stop first), e.g. before `flow resume`')
    .option('--interval <ms>', 'poll interval with --wait', positiveInt('--interval'), 500)
    .action(async (jobId: string, options: { reason?: string; wait?: boolean; interval: number }) => {
      const api = client();
      const result = await api.cancel(jobId, options.reason);
      if (result.status === 'cancelled') {
        io.stdout.write(`${result.job_id}: cancelled (its workflow had never started)\n`);
        return;
      }
      io.stdout.write(`${result.job_id}: cancelling (the job ends "cancelled" once its workflow stops)\n`);
      if (!options.wait) return;
      let status = await api.getStatus(jobId);
      while (!isTerminalJobStatus(status.status)) {
        await sleep(options.interval);
        status = await api.getStatus(jobId);
      }
      io.stdout.write(`${result.job_id}: ${status.status}\n`);
    });

  program
    .command('resume')
    .description('start a new run of a finished job from one of its checkpoints (same input; earlier spend counts against the budget)')
    .argument('<job>', 'the job id')
    .option('--checkpoint <which>', 'best, latest or <run>:<iteration> (default best)', checkpointSelector)
    .option('--budget <usd>', "the new run's budget in USD (default the job's current budget)", positiveUsd('--budget'))
    .action(async (jobId: string, options: { checkpoint?: CheckpointSelector; budget?: number }) => {
      const resumed = await client().resume(jobId, options.checkpoint, { budgetUsd: options.budget });
      io.stdout.write(`${resumed.job_id}: run ${resumed.run} ${resumed.status}, from run ${resumed.from.run}, iteration ${resumed.from.iteration}\n`);
    });

  program
    .command('evaluate')
    .description("evaluate a job's checkpoint against the untrained baseline on its held-out queries (Welch's t-test)")
    .argument('<job>', 'the job id')
    .option('--checkpoint <which>', 'best, latest or <run>:<iteration> (default best)', checkpointSelector)
    .option('--budget <usd>', "the most the evaluation may spend in USD (default what is left of the job's budget)", positiveUsd('--budget'))
    .option('--json', 'print the whole evaluation as JSON')
    .action(async (jobId: string, options: { checkpoint?: CheckpointSelector; budget?: number; json?: boolean }) => {
      const evaluation = await client().evaluate(jobId, options.checkpoint, { budgetUsd: options.budget });
      io.stdout.write(options.json ? `${JSON.stringify(evaluation, null, 2)}\n` : `${describeEvaluation(evaluation)}\n`);
    });

  program
    .command('budget')
    .description("raise a running job's budget (it is never lowered)")
    .argument('<job>', 'the job id')
    .argument('<usd>', 'the new budget in USD, above the current one', positiveUsd('<usd>'))
    .action(async (jobId: string, budgetUsd: number) => {
      const result = await client().updateBudget(jobId, budgetUsd);
      io.stdout.write(
        result.status === 'pending'
          ? `${result.job_id}: budget ${usd(result.budget_usd)} pending: no worker has taken it yet; it applies when one runs the job (run this again to wait for it)\n`
          : `${result.job_id}: budget ${usd(result.budget_usd)}\n`,
      );
    });

  program
    .command('kill-switch')
    .description('show the global kill switch, or (admin tokens) turn it on (running jobs pause, new jobs start paused) or off')
    .addArgument(new Argument('[state]', 'on or off; omit it to show the state').choices(['on', 'off']))
    .option('--reason <text>', 'recorded with the switch (with on or off)')
    .action(async (state: 'on' | 'off' | undefined, options: { reason?: string }) => {
      if (state === undefined && options.reason !== undefined) throw usage('--reason goes with `flow kill-switch on` or `flow kill-switch off`');
      const api = client();
      if (state === undefined) {
        io.stdout.write(`${describeKillSwitch(await api.getKillSwitch())}\n`);
        return;
      }
      const result = await api.killSwitch(state === 'on', options.reason);
      const effect = result.on ? 'they pause at their next batch boundary; new jobs start paused' : 'paused jobs go on';
      const jobs = `${result.signalled} running job${result.signalled === 1 ? '' : 's'}`;
      io.stdout.write(`kill switch ${result.on ? 'on' : 'off'}${result.reason ? ` (${result.reason})` : ''}: ${jobs} signalled, ${effect}\n`);
    });

  program
    .command('export')
    .description("write a job's trajectories to a file, one JSON line each")
    .argument('<job>', 'the job id')
    .requiredOption('-o, --out <file>', 'the output file ("-" for stdout)')
    .addOption(new Option('--format <format>', 'json: the trajectories; jsonl_chat: chat fine-tuning lines of the successful ones').choices(['json', 'jsonl_chat']).default('json'))
    .option('--success-only', 'only successful trajectories')
    .option('--min-reward <x>', 'only trajectories with reward >= x (0-1)', finiteNumber('--min-reward'))
    .option('--iteration-from <n>', 'from this iteration (0-based)', nonNegativeInt('--iteration-from'))
    .option('--iteration-to <n>', 'up to this iteration, inclusive', nonNegativeInt('--iteration-to'))
    .option('--run <n>', 'only this run', positiveInt('--run'))
    .action(async (jobId: string, options: ExportOptions) => {
      const written = await exportTrajectories(client(), jobId, options, io);
      const what = options.format === 'jsonl_chat' ? 'chat lines' : 'trajectories';
      (options.out === '-' ? io.stderr : io.stdout).write(`wrote ${written} ${what} to ${options.out === '-' ? 'stdout' : options.out}\n`);
    });

  program
    .command('token')
    .description('mint an HS256 development token from FLOW_JWT_SECRET or .flow/jwt-secret; prints only the token')
    .option('--subject <sub>', 'the caller (default $USER)')
    .option('--tenant <tenant>', 'the tenant claim', 'default')
    .option('--roles <a,b>', 'comma-separated roles', 'admin')
    .option('--expires-in <span>', 'a time span such as 30m, 12h, 7d, or seconds', '12h')
    .action(async (options: { subject?: string; tenant: string; roles: string; expiresIn: string }) => {
      io.stdout.write(`${await mintDevToken(options, io.env)}\n`);
    });

  program
    .command('worker')
    .description('run a training worker (not an API call): polls Temporal until SIGTERM/SIGINT, then drains and exits 0')
    .addOption(new Option('--pool <pool>', 'the pool to run: workflow, trajectory (LLM-bound activities), cpu (CPU/database activities) or all (env FLOW_WORKER_POOL)').choices(['all', 'workflow', 'trajectory', 'cpu']))
    .option('--health-port <port>', '/healthz and /readyz on this port, 0 = any free port (env FLOW_WORKER_HEALTH_PORT, default 8081)', nonNegativeInt('--health-port'))
    .addHelpText('after', '\nAlso reads DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, FLOW_TASK_QUEUE, the LLM settings and the pool sizes (README: worker pools).')
    .action(async (options: { pool?: string; healthPort?: number }) => {
      // Loaded here: the other commands are API clients and need none of the worker's dependencies.
      const { startWorker } = await import('../../workers/main');
      const env = {
        ...io.env,
        ...(options.pool ? { FLOW_WORKER_POOL: options.pool } : {}),
        ...(options.healthPort !== undefined ? { FLOW_WORKER_HEALTH_PORT: String(options.healthPort) } : {}),
      };
      let worker;
      try {
        worker = await startWorker(env, (line) => io.stdout.write(`${line}\n`));
      } catch (error) {
        throw new CliError(`worker: ${error instanceof Error ? error.message : String(error)}`, EXIT.API_ERROR);
      }
      io.stdout.write(`health: ${worker.health.url}/healthz, ready: ${worker.health.url}/readyz\n`);
      await worker.finished;
    });

  return program;
}

// ---------------------------------------------------------------------------------------------
// Settings

function resolvedUrl(program: Command, io: CliIo): string {
  const url = (program.opts().url as string | undefined) ?? io.env.FLOW_API_URL ?? DEFAULT_API_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`--url ${JSON.stringify(url)} is not a URL (e.g. ${DEFAULT_API_URL})`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usage(`--url ${JSON.stringify(url)} must be http:// or https://`);
  return url;
}

function resolvedToken(program: Command, io: CliIo): string {
  const token = (program.opts().token as string | undefined) ?? io.env.FLOW_TOKEN;
  if (!token) throw usage('no token: set FLOW_TOKEN or pass --token (a development token: export FLOW_TOKEN=$(flow token))');
  return token;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function positiveInt(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return Number(value);
  };
}

function nonNegativeInt(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be an integer >= 0.`);
    return Number(value);
  };
}

/** A positive amount of US dollars, with or without a leading `$`. */
function positiveUsd(name: string) {
  return (value: string) => {
    const text = value.trim().replace(/^\$/, '');
    const number = Number(text);
    if (text === '' || !Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`${name} must be a positive amount in USD, e.g. 25 or 12.50.`);
    return number;
  };
}

/** `best`, `latest` or `<run>:<iteration>` (run from 1, iteration from 0). */
export function checkpointSelector(value: string): CheckpointSelector {
  if (value === 'best' || value === 'latest') return value;
  const match = /^(\d+):(\d+)$/.exec(value.trim());
  if (!match || Number(match[1]) < 1) throw new InvalidArgumentError('--checkpoint must be best, latest or <run>:<iteration> (e.g. 1:3).');
  return { run: Number(match[1]), iteration: Number(match[2]) };
}

function finiteNumber(name: string) {
  return (value: string) => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number)) throw new InvalidArgumentError(`${name} must be a number.`);
    return number;
  };
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The one line and the exit code for anything a command threw. */
export function describeFailure(error: unknown, url: string | (() => string)): { message: string; exitCode: number } {
  if (error instanceof CliError) return { message: error.message, exitCode: error.exitCode };
  if (error instanceof FlowApiError) return { message: error.message, exitCode: EXIT.API_ERROR };
  const where = () => {
    try {
      return typeof url === 'function' ? url() : url;
    } catch {
      return '(the configured URL)';
    }
  };
  const network = networkErrorCode(error);
  if (network === 'ECONNREFUSED') return { message: `cannot reach the Flow API at ${where()} (is it running?)`, exitCode: EXIT.API_ERROR };
  if (network) return { message: `cannot reach the Flow API at ${where()} (${network})`, exitCode: EXIT.API_ERROR };
  if (isErrorLike(error) && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return { message: `the Flow API at ${where()} did not answer in time`, exitCode: EXIT.API_ERROR };
  }
  const message = isErrorLike(error) ? error.message : String(error);
  return { message: message.split('\n')[0], exitCode: EXIT.API_ERROR };
}

/** ECONNREFUSED, ENOTFOUND, ...: what fetch's "fetch failed" TypeError hides in its cause. */
function networkErrorCode(error: unknown): string | undefined {
  // By name, not instanceof: the error may come from another realm (fetch's, or a test VM's).
  if (!isErrorLike(error) || error.name !== 'TypeError') return undefined;
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[]; message?: string } }).cause;
  if (!cause) return undefined;
  return cause.code ?? cause.errors?.find((e) => e.code)?.code ?? cause.message;
}

const isErrorLike = (error: unknown): error is Error =>
  typeof error === 'object' && error !== null && typeof (error as Error).message === 'string' && typeof (error as Error).name === 'string';

/** Worth another poll while watching: the network or the API's dependencies hiccuped. */
function isTransient(error: unknown): boolean {
  if (error instanceof FlowApiError) return error.code === -32050 || error.code === -32042;
  return networkErrorCode(error) !== undefined || (isErrorLike(error) && error.name === 'TimeoutError');
}

// ---------------------------------------------------------------------------------------------
// start

async function readConfig(file: string, io: CliIo): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await readAll(io.stdin) : readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    throw usage(`cannot read config file ${file}: ${why}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw usage(`config file ${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw usage(`config file ${file} must hold a JSON object (the training.start_grpo params: agent_id, training_queries or task_set, config, ...)`);
  }
  return parsed as Record<string, unknown>;
}

/** A JSONL task file's text, once every line is a valid task. */
function readTasksFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw usage(`cannot read task file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message}`);
  }
  try {
    parseTasksJsonl(text, file);
  } catch (error) {
    if (error instanceof TaskSetError) throw usage(error.message);
    throw error;
  }
  return text;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// status

const percent = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;
const usd = (amount: number) => `$${amount.toFixed(amount !== 0 && Math.abs(amount) < 1 ? 4 : 2)}`;
const spendOf = (s: Pick<JobStatusResult, 'spend_usd' | 'budget_usd' | 'budget_used_ratio'>) =>
  `${usd(s.spend_usd)} of ${usd(s.budget_usd)} (${percent(s.budget_used_ratio)})`;

function checkpointOf(s: JobStatusResult): string {
  const best = s.best_checkpoint;
  if (!best) return 'none yet';
  return `run ${best.run}, iteration ${best.iteration}${best.score === null ? '' : `, score ${best.score.toFixed(3)}`}`;
}

/** The plain `flow status` lines. */
export function describeStatus(s: JobStatusResult): string[] {
  const metrics = s.last_metrics;
  const rows: [string, string][] = [
    ['job', s.job_id],
    ['agent', `${s.agent_id} (tenant ${s.tenant_id}, owner ${s.owner_id}, priority ${s.priority})`],
    ['status', `${s.status}${s.phase && !isTerminalJobStatus(s.status) ? ` (phase ${s.phase})` : ''}`],
    ['iteration', `${s.iteration}/${s.iterations}${s.run > 1 ? ` (run ${s.run})` : ''}`],
    [
      'success rate',
      metrics
        ? `${percent(metrics.success_rate)} in the last iteration (${metrics.trajectories} trajectories, mean reward ${metrics.mean_reward.toFixed(3)})`
        : 'no iteration finished yet',
    ],
    ['spend', spendOf(s)],
    ['best checkpoint', checkpointOf(s)],
  ];
  if (s.evaluation) rows.push(['held-out eval', describeEvaluation(s.evaluation)]);
  if (s.test_evaluation) rows.push(['test split', describeEvaluation(s.test_evaluation)]);
  // Absent from an older server's answer.
  if (s.budget_alerts?.length) rows.push(['budget alerts', s.budget_alerts.map((a) => `${Math.round(a.threshold * 100)}% (${usd(a.spend_usd)} of ${usd(a.budget_usd)})`).join(', ')]);
  if (s.reason) rows.push(['reason', s.reason]);
  const width = Math.max(...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`);
}

/**
 * One line: trained against baseline, the verdict's test (success per query: mean difference,
 * bootstrap interval, paired p) and, beside it, Welch's per-episode t-test of the reward.
 */
export function describeEvaluation(e: EvaluationSummary): string {
  const rate = (m: EvaluationSummary['current']) => `success ${percent(m.success_rate.value)}, reward ${m.avg_reward.value.toFixed(3)}`;
  const t = e.welch.t === null ? 'n/a' : e.welch.t.toFixed(2);
  const df = e.welch.df === null ? 'n/a' : e.welch.df.toFixed(1);
  const verdict = e.significant_improvement ? 'significant improvement' : 'no significant improvement';
  const s = e.success_test;
  const perQuery = s
    ? `success per query ${s.mean_difference >= 0 ? '+' : ''}${s.mean_difference.toFixed(3)}${s.bootstrap ? ` [${s.bootstrap.ci_low.toFixed(3)}, ${s.bootstrap.ci_high.toFixed(3)}]` : ''} over ${s.queries} queries, paired p=${s.p === null ? 'n/a' : formatP(s.p)}; per episode `
    : '';
  const warnings = (e.warnings ?? []).map((w) => `; warning: ${w}`).join('');
  return `iteration ${e.iteration} (run ${e.run}${e.split ? `, ${e.split}` : ''}): ${rate(e.current)} vs baseline ${rate(e.baseline)}; ${perQuery}Welch t=${t}, df=${df}, p=${formatP(e.welch.p)}: ${verdict} at ${e.alpha}${warnings}`;
}

function formatP(p: number): string {
  return p !== 0 && p < 0.0001 ? p.toExponential(2) : p.toFixed(4);
}

function iterationLine(s: JobStatusResult, iteration: number): string {
  const metrics = iteration === s.iteration ? s.last_metrics : null;
  const parts = [`iteration ${iteration}/${s.iterations}`];
  if (metrics) parts.push(`success ${percent(metrics.success_rate)}`, `mean reward ${metrics.mean_reward.toFixed(3)}`);
  else parts.push('(finished between two polls)');
  parts.push(`spend ${spendOf(s)}`);
  return parts.join('  ');
}

function finalLine(s: JobStatusResult): string {
  const parts = [`${s.job_id} ${s.status}`, `iteration ${s.iteration}/${s.iterations}`];
  if (s.last_metrics) parts.push(`success ${percent(s.last_metrics.success_rate)}`);
  parts.push(`spend ${spendOf(s)}`, `best checkpoint ${checkpointOf(s)}`);
  if (s.reason) parts.push(`reason: ${s.reason}`);
  return parts.join('  ');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls get_status until the job is terminal. On a terminal: a progress bar over iterations with
 * the phase, success rate and spend. Elsewhere: one plain line per finished iteration. Then the
 * final line; exit 0 when the job completed, 3 when it ended otherwise.
 */
async function watch(api: FlowClient, jobId: string, intervalMs: number, json: boolean, io: CliIo): Promise<number> {
  let status = await api.getStatus(jobId);
  const out = io.stdout;
  const payload = (s: JobStatusResult) => ({
    phase: isTerminalJobStatus(s.status) ? s.status : s.phase ?? s.status,
    success: s.last_metrics ? percent(s.last_metrics.success_rate) : '-',
    spend: spendOf(s),
  });
  const bar =
    !json && out.isTTY
      ? new SingleBar({
          stream: out,
          format: 'iteration {value}/{total} [{bar}] {percentage}% | {phase} | success {success} | spend {spend}',
          barsize: 30,
          hideCursor: false,
          clearOnComplete: false,
          stopOnComplete: false,
        }, Presets.shades_classic)
      : undefined;
  let shown = { run: status.run, iteration: status.iteration, status: status.status };
  if (bar) bar.start(Math.max(status.iterations, 1), status.iteration, payload(status));
  else if (json) out.write(`${JSON.stringify(status)}\n`);
  else out.write(`watching ${status.job_id}: ${status.status}, iteration ${status.iteration}/${status.iterations}\n`);

  let failures = 0;
  try {
    while (!isTerminalJobStatus(status.status)) {
      await sleep(intervalMs);
      try {
        status = await api.getStatus(jobId);
        failures = 0;
      } catch (error) {
        if (!isTransient(error) || ++failures > 5) throw error;
        continue;
      }
      const changed = status.run !== shown.run || status.iteration !== shown.iteration || status.status !== shown.status;
      if (bar) {
        bar.setTotal(Math.max(status.iterations, 1));
        bar.update(status.iteration, payload(status));
      } else if (json) {
        if (changed) out.write(`${JSON.stringify(status)}\n`);
      } else {
        if (status.run !== shown.run) {
          out.write(`run ${status.run} started (resumed from a checkpoint)\n`);
          shown = { ...shown, iteration: 0 };
        }
        for (let i = shown.iteration + 1; i <= status.iteration; i++) out.write(`${iterationLine(status, i)}\n`);
      }
      if (changed) shown = { run: status.run, iteration: status.iteration, status: status.status };
    }
  } finally {
    bar?.stop();
  }
  if (!json) out.write(`${finalLine(status)}\n`);
  return status.status === 'completed' ? EXIT.OK : EXIT.JOB_NOT_COMPLETED;
}

// ---------------------------------------------------------------------------------------------
// kill-switch

export function describeKillSwitch(state: KillSwitchState): string {
  if (!state.at) return 'kill switch off (never set)';
  const who = `${state.on ? 'turned on' : 'turned off'} by ${state.by ?? 'unknown'} at ${state.at}`;
  return `kill switch ${state.on ? 'on' : 'off'}${state.reason ? `: ${state.reason}` : ''} (${who})`;
}

// ---------------------------------------------------------------------------------------------
// list

type JobSummary = ListJobsResult['jobs'][number];

export function jobTable(jobs: JobSummary[]): string {
  const header = ['JOB', 'STATUS', 'AGENT', 'PRIORITY', 'ITERATION', 'SPEND/BUDGET', 'CREATED'];
  const rows = jobs.map((j) => [
    j.job_id,
    j.status,
    j.agent_id,
    j.priority,
    `${j.iteration}/${j.iterations}`,
    `${usd(j.spend_usd)}/${usd(j.budget_usd)}`,
    j.created_at.replace(/\.\d+Z$/, 'Z'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return `${[header, ...rows].map(line).join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// export

interface ExportOptions {
  out: string;
  format: 'json' | 'jsonl_chat';
  successOnly?: boolean;
  minReward?: number;
  iterationFrom?: number;
  iterationTo?: number;
  run?: number;
}

/** Pages through the export (1000 per call) into a `.partial` file, renamed into place at the end. */
async function exportTrajectories(api: FlowClient, jobId: string, options: ExportOptions, io: CliIo): Promise<number> {
  const params = {
    job_id: jobId,
    format: options.format,
    ...(options.successOnly ? { success_only: true } : {}),
    ...(options.minReward !== undefined ? { min_reward: options.minReward } : {}),
    ...(options.iterationFrom !== undefined ? { iteration_from: options.iterationFrom } : {}),
    ...(options.iterationTo !== undefined ? { iteration_to: options.iterationTo } : {}),
    ...(options.run !== undefined ? { run: options.run } : {}),
  };
  const toStdout = options.out === '-';
  const partial = `${options.out}.partial-${process.pid}`;
  let file: Awaited<ReturnType<typeof open>> | undefined;
  if (!toStdout) {
    try {
      file = await open(partial, 'w');
    } catch (error) {
      throw usage(`cannot write ${options.out}: ${(error as Error).message.replace(/^[A-Z]+: /, '')}`);
    }
  }
  let written = 0;
  let total: number | undefined;
  try {
    for await (const page of api.exportAll(params, 1000)) {
      total ??= page.total;
      const lines = options.format === 'jsonl_chat' ? page.lines ?? [] : (page.trajectories ?? []).map((t) => JSON.stringify(t));
      if (lines.length === 0) continue;
      const chunk = `${lines.join('\n')}\n`;
      if (file) await file.write(chunk);
      else if (!io.stdout.write(chunk)) await once(io.stdout as NodeJS.EventEmitter, 'drain');
      written += lines.length;
    }
    if (file) {
      await file.close();
      file = undefined;
      await rename(partial, options.out);
    }
  } catch (error) {
    await file?.close().catch(() => undefined);
    if (!toStdout) await rm(partial, { force: true });
    throw error;
  }
  if (total !== undefined && written !== total) {
    io.stderr.write(`(the job had ${total} matching trajectories when the export began and ${written} were written; it is still running)\n`);
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// token

async function mintDevToken(options: { subject?: string; tenant: string; roles: string; expiresIn: string }, env: NodeJS.ProcessEnv): Promise<string> {
  let secret = env.FLOW_JWT_SECRET;
  if (!secret && existsSync(DEV_SECRET_FILE)) secret = readFileSync(DEV_SECRET_FILE, 'utf8').trim();
  if (!secret) throw usage(`no signing secret: set FLOW_JWT_SECRET (the API's HS256 secret) or start the dev stack, which writes ${DEV_SECRET_FILE}`);
  let config;
  try {
    config = authConfigFromEnv({ ...env, FLOW_JWKS_URL: undefined, FLOW_JWKS_FILE: undefined, FLOW_JWT_SECRET: secret });
  } catch (error) {
    throw usage((error as Error).message);
  }
  const roles = options.roles.split(',').map((r) => r.trim()).filter(Boolean);
  if (roles.length === 0) throw usage('--roles: give at least one role');
  const unknown = roles.filter((r) => !(r in config.roles));
  if (unknown.length) throw usage(`--roles: unknown role ${unknown.map((r) => `"${r}"`).join(', ')} (known: ${Object.keys(config.roles).join(', ')})`);
  const subject = options.subject ?? env.USER ?? env.USERNAME ?? 'developer';
  // A bare number is seconds from now (jose would read a number as an absolute time).
  const expiresIn = /^\d+$/.test(options.expiresIn.trim()) ? `${options.expiresIn.trim()}s` : options.expiresIn;
  try {
    return await mintToken({ ...config, secret }, { subject, tenant: options.tenant, roles, expiresIn });
  } catch (error) {
    if (isErrorLike(error) && error.name === 'TypeError') throw usage(`--expires-in ${JSON.stringify(options.expiresIn)}: use a span such as 30m, 12h or 7d`);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------

/** Exits once stdout and stderr have flushed (a pipe on some platforms writes asynchronously). */
function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(exitWhenFlushed, (error: unknown) => {
    process.stderr.write(`flow: ${error instanceof Error ? error.message : String(error)}\n`);
    exitWhenFlushed(EXIT.API_ERROR);
  });
}
