/** `flow budget <job> <usd>`: raises a running job's budget. */
import { positiveUsd } from '../arguments';
import type { RegisterCommand } from '../command';
import { usd } from '../format';

export const registerBudget: RegisterCommand = (program, { io, client }) => {
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
};
