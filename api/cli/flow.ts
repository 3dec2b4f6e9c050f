/**
 * `flow`: the command line of the JSON-RPC facade, built on the typed client. `scripts/flow`
 * runs it through scripts/flow.ts, the process entry; `main()` is what the tests call in-process.
 * One file per subcommand in commands/; the shared parts are io.ts (streams, input files),
 * errors.ts (exit codes, one-line messages), arguments.ts (option parsers), format.ts (numbers,
 * evaluations) and settings.ts (URL, token, repository paths).
 *
 * Exit codes (also in `flow --help`):
 *   0  success (for `status --watch`: the job ended `completed`)
 *   1  the API answered with an error, or cannot be reached
 *   2  usage: unknown command or option, missing or bad argument, no token, a config file
 *      that cannot be read or is not JSON, an output file that cannot be created or written
 *      (a full disk, a quota or an I/O error included)
 *   3  `status --watch`: the job ended failed, cancelled or budget_exceeded
 * Errors are one line on stderr, `flow: <message>`; no stack traces (FLOW_DEBUG=1 shows them).
 */
import { Command, CommanderError } from 'commander';
import { FlowClient } from '../client/flowClient';
import type { CliContext, RegisterCommand } from './command';
import { registerBudget } from './commands/budget';
import { registerCancel } from './commands/cancel';
import { registerEvaluate } from './commands/evaluate';
import { registerExport } from './commands/export';
import { registerKillSwitch } from './commands/killSwitch';
import { registerList } from './commands/list';
import { registerPolicy } from './commands/policy';
import { registerResume } from './commands/resume';
import { registerStart } from './commands/start';
import { registerStatus } from './commands/status';
import { registerToken } from './commands/token';
import { registerWorker } from './commands/worker';
import { CliError, describeFailure, EXIT, isErrorLike, usage } from './errors';
import type { CliIo } from './io';
import { DEFAULT_API_URL, packageVersion, resolvedToken, resolvedUrl } from './settings';

export { EXIT } from './errors';
export type { CliIo, WorkerStarter } from './io';

/** The subcommands, in `flow --help` order. */
const COMMANDS: RegisterCommand[] = [
  registerStart,
  registerStatus,
  registerList,
  registerCancel,
  registerResume,
  registerEvaluate,
  registerBudget,
  registerKillSwitch,
  registerExport,
  registerPolicy,
  registerToken,
  registerWorker,
];

const HELP_AFTER = `
Environment:
  FLOW_API_URL      the API's base URL (default ${DEFAULT_API_URL}); --url overrides it
  FLOW_TOKEN        the bearer token; --token overrides it (mint one: export FLOW_TOKEN=$(flow token))
  FLOW_JWT_SECRET   the HS256 secret \`flow token\` signs with (else the file .flow/jwt-secret)

Exit codes:
  0  success; for \`status --watch\`, the job ended completed
  1  the API answered with an error, or cannot be reached
  2  usage error: unknown command or option, bad argument, no token, unreadable or invalid config file,
     an output file that cannot be written (a full disk included)
  3  \`status --watch\`: the job ended failed, cancelled or budget_exceeded
`;

const oneLine = (text: string) => text.trim().replace(/\s*[\r\n\u2028\u2029]+\s*/g, ' ');

/** Runs the command line; resolves to the exit code (it never calls process.exit). */
export async function main(argv: string[], ioOverrides: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, ...ioOverrides };
  let exitCode: number = EXIT.OK;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    // commander answers `flow help <unknown>` with the whole help on stderr: say what is wrong instead.
    if (argv[0] === 'help' && argv[1] !== undefined && !program.commands.some((command) => command.name() === argv[1])) {
      throw usage(`unknown command '${argv[1]}' (run \`flow --help\` for the commands)`);
    }
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end in a CommanderError with exit code 0; commander printed the rest.
      return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const failure = describeFailure(error, () => resolvedUrl(program, io));
    // One line, whatever the message carries (an API message with line breaks, a quoted file).
    io.stderr.write(`flow: ${oneLine(failure.message)}\n`);
    if (io.env.FLOW_DEBUG && isErrorLike(error) && !(error instanceof CliError)) io.stderr.write(`${error.stack}\n`);
    return failure.exitCode;
  }
}

function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
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
      // The hint on the error's own line: a usage error is one line too.
      outputError: (text, write) => write(`${oneLine(text.replace(/^error: /, 'flow: '))} (run \`flow --help\` for usage)\n`),
    })
    .addHelpText('after', HELP_AFTER);
  const context: CliContext = {
    io,
    client: () => new FlowClient({ url: resolvedUrl(program, io), token: resolvedToken(program, io), fetch: io.fetch }),
    setExitCode,
  };
  for (const register of COMMANDS) register(program, context);
  return program;
}
