/** `flow resume <job>`: a new run of a finished job from one of its checkpoints. */
import type { CheckpointSelector } from '../../schemas';
import { checkpointSelector, positiveUsd } from '../arguments';
import type { RegisterCommand } from '../command';

export const registerResume: RegisterCommand = (program, { io, client }) => {
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
};
