/** `flow policy <job>`: a checkpoint's policy, as the system prompt the agent is sent or as JSON. */
import { Option } from 'commander';
import type { CheckpointSelector } from '../../schemas';
import { checkpointSelector, outputFile } from '../arguments';
import type { RegisterCommand } from '../command';
import { openOutput } from '../io';

interface PolicyOptions {
  checkpoint?: CheckpointSelector;
  format: 'text' | 'json';
  out?: string;
}

export const registerPolicy: RegisterCommand = (program, { io, client }) => {
  program
    .command('policy')
    .description("print a checkpoint's policy: the system prompt exactly as the agent is sent it (text) or the lessons with ids and weights (json)")
    .argument('<job>', 'the job id')
    .option('--checkpoint <which>', 'best, latest or <run>:<iteration> (default best)', checkpointSelector)
    .addOption(new Option('--format <format>', 'text: the rendered system prompt; json: the policy and where it came from').choices(['text', 'json']).default('text'))
    .option('-o, --out <file>', 'write it to this file ("-" or none: stdout)', outputFile)
    .action(async (jobId: string, options: PolicyOptions) => {
      const result = await client().getPolicy(jobId, { format: options.format, ...(options.checkpoint !== undefined ? { checkpoint: options.checkpoint } : {}) });
      // The text is the prompt itself, byte for byte; the JSON is the whole answer (checkpoint, content hash, policy).
      const output = options.format === 'text' ? result.system_prompt! : `${JSON.stringify(result, null, 2)}\n`;
      if (!options.out || options.out === '-') {
        io.stdout.write(output);
        return;
      }
      // Written beside the file and renamed over it, as export does: a full disk leaves the old one.
      const file = await openOutput(options.out);
      try {
        await file.write(output);
        await file.commit();
      } catch (error) {
        await file.abort();
        throw error;
      }
      io.stderr.write(`wrote the policy of job ${jobId}, run ${result.checkpoint.run} iteration ${result.checkpoint.iteration}, to ${options.out}\n`);
    });
};
