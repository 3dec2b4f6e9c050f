/**
 * The `flow` process entry: `scripts/flow` (and `npm run flow`) run this file. It runs the
 * command line of api/cli/ and hands it the one command that is not an API call, `flow worker`,
 * whose worker lives in workers/main.ts.
 *
 * Why here and not in api/cli/: api/ never imports workers/ (the API process and its clients
 * need none of the worker's dependencies, and the worker must not depend on the API's CLI), so
 * the command line gets the worker starter from its host. This entry is the one place that may
 * import both. The worker is loaded only when `flow worker` runs: the other commands are API
 * clients and start without the Temporal worker, Prisma and the workflow bundle.
 */
import { EXIT, main } from '../api/cli/flow';

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

main(process.argv.slice(2), {
  startWorker: async (env, log) => (await import('../workers/main')).startWorker(env, log),
}).then(exitWhenFlushed, (error: unknown) => {
  process.stderr.write(`flow: ${error instanceof Error ? error.message : String(error)}\n`);
  exitWhenFlushed(EXIT.API_ERROR);
});
