/**
 * The `flow` command line's exit codes and its one-line error messages: a command throws, and
 * `main()` turns what it threw into `flow: <message>` on stderr and an exit code.
 */
import { FlowApiError } from '../client/flowClient';

export const EXIT = { OK: 0, API_ERROR: 1, USAGE: 2, JOB_NOT_COMPLETED: 3, INTERRUPTED: 130 } as const;

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

export const usage = (message: string) => new CliError(message, EXIT.USAGE);

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

export const isErrorLike = (error: unknown): error is Error =>
  typeof error === 'object' && error !== null && typeof (error as Error).message === 'string' && typeof (error as Error).name === 'string';

/** Worth another poll while watching: the network or the API's dependencies hiccuped. */
export function isTransient(error: unknown): boolean {
  // A proxy in front of the API answering 502/503/504 while it restarts is a hiccup too.
  // -32045: the API's connections were all busy (it says "retry later").
  if (error instanceof FlowApiError) return error.code === -32050 || error.code === -32042 || error.code === -32045 || [502, 503, 504].includes((error.data as { http_status?: number } | undefined)?.http_status ?? 0);
  return networkErrorCode(error) !== undefined || (isErrorLike(error) && error.name === 'TimeoutError');
}
