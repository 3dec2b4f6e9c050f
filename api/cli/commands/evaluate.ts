/** `flow evaluate <job>`: a checkpoint against the untrained baseline on the held-out queries. */
import type { CheckpointSelector } from '../../schemas';
import { checkpointSelector, positiveUsd } from '../arguments';
import type { RegisterCommand } from '../command';
import { describeEvaluation } from '../format';

export const registerEvaluate: RegisterCommand = (program, { io, client }) => {
  program
    .command('evaluate')
    .description("evaluate a job's checkpoint against the untrained baseline on its held-out queries (verdict: per-query task success, paired t-test and bootstrap)")
    .argument('<job>', 'the job id')
    .option('--checkpoint <which>', 'best, latest or <run>:<iteration> (default best)', checkpointSelector)
    .option('--budget <usd>', "the most the evaluation may spend in USD (default what is left of the job's budget)", positiveUsd('--budget'))
    .option('--json', 'print the whole evaluation as JSON')
    .action(async (jobId: string, options: { checkpoint?: CheckpointSelector; budget?: number; json?: boolean }) => {
      const evaluation = await client().evaluate(jobId, options.checkpoint, { budgetUsd: options.budget });
      io.stdout.write(options.json ? `${JSON.stringify(evaluation, null, 2)}\n` : `${describeEvaluation(evaluation)}\n`);
    });
};
