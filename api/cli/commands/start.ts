/** `flow start <config.json>`: starts a training job; prints its id. */
import type { MethodParams } from '../../schemas';
import { EVALUATION_TASK_SOURCES, TRAINING_TASK_SOURCES } from '../../taskSets';
import type { RegisterCommand } from '../command';
import { readConfig, readTasksFile } from '../io';

interface StartOptions {
  idempotencyKey?: string;
  tasks?: string;
  evalTasks?: string;
}

export const registerStart: RegisterCommand = (program, { io, client }) => {
  program
    .command('start')
    .description('start a training job from a JSON file of training.start_grpo params; prints the job id')
    .argument('<config.json>', 'the params (agent_id, training_queries or task_set, config, ...); "-" reads stdin')
    .option('--idempotency-key <key>', 'retries with the same key start one job and print its id')
    .option('--tasks <file.jsonl>', 'training queries from a JSONL file, one task a line (replaces those in the config)')
    .option('--eval-tasks <file.jsonl>', 'held-out evaluation queries from a JSONL file (replaces those in the config)')
    .action(async (file: string, options: StartOptions) => {
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
};
