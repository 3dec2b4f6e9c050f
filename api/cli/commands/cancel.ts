/** `flow cancel <job>`: cancels a job; with --wait, returns once it has ended. */
import { nonEmptyText, positiveInt } from '../arguments';
import type { RegisterCommand } from '../command';
import { pollUntilEnded } from '../jobPolling';

export const registerCancel: RegisterCommand = (program, { io, client }) => {
  program
    .command('cancel')
    .description('cancel a running job; it ends cancelled with the reason recorded')
    .argument('<job>', 'the job id')
    .option('--reason <text>', 'recorded as the reason (default "cancelled by <you>")', nonEmptyText('--reason'))
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
      const { status } = await pollUntilEnded(api, jobId, options.interval);
      io.stdout.write(`${result.job_id}: ${status}\n`);
    });
};
