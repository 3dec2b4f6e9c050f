/** `flow export <job> --out <file>`: a job's trajectories, one JSON line each, to a file or stdout. */
import { Option } from 'commander';
import type { FlowClient } from '../../client/flowClient';
import { nonNegativeInt, outputFile, positiveInt, rewardThreshold } from '../arguments';
import { usage } from '../errors';
import type { RegisterCommand } from '../command';
import { openOutput, writeChunk, type CliIo } from '../io';

interface ExportOptions {
  out: string;
  format: 'json' | 'jsonl_chat';
  successOnly?: boolean;
  minReward?: number;
  iterationFrom?: number;
  iterationTo?: number;
  run?: number;
}

export const registerExport: RegisterCommand = (program, { io, client }) => {
  program
    .command('export')
    .description("write a job's trajectories to a file, one JSON line each")
    .argument('<job>', 'the job id')
    .requiredOption('-o, --out <file>', 'the output file ("-" for stdout)', outputFile)
    .addOption(new Option('--format <format>', 'json: the trajectories; jsonl_chat: chat fine-tuning lines of the successful ones').choices(['json', 'jsonl_chat']).default('json'))
    .option('--success-only', 'only successful trajectories')
    .option('--min-reward <x>', 'only trajectories with reward >= x (0-1)', rewardThreshold('--min-reward'))
    .option('--iteration-from <n>', 'from this iteration (0-based)', nonNegativeInt('--iteration-from'))
    .option('--iteration-to <n>', 'up to this iteration, inclusive', nonNegativeInt('--iteration-to'))
    .option('--run <n>', 'only this run', positiveInt('--run'))
    .action(async (jobId: string, options: ExportOptions) => {
      if (options.iterationFrom !== undefined && options.iterationTo !== undefined && options.iterationFrom > options.iterationTo) {
        throw usage(`--iteration-from ${options.iterationFrom} is after --iteration-to ${options.iterationTo}`);
      }
      const { written, readerLeft } = await exportTrajectories(client(), jobId, options, io);
      if (readerLeft) return;
      const what = options.format === 'jsonl_chat' ? 'chat lines' : 'trajectories';
      (options.out === '-' ? io.stderr : io.stdout).write(`wrote ${written} ${what} to ${options.out === '-' ? 'stdout' : options.out}\n`);
    });
};

function exportParams(jobId: string, options: ExportOptions) {
  return {
    job_id: jobId,
    format: options.format,
    ...(options.successOnly ? { success_only: true } : {}),
    ...(options.minReward !== undefined ? { min_reward: options.minReward } : {}),
    ...(options.iterationFrom !== undefined ? { iteration_from: options.iterationFrom } : {}),
    ...(options.iterationTo !== undefined ? { iteration_to: options.iterationTo } : {}),
    ...(options.run !== undefined ? { run: options.run } : {}),
  };
}

/**
 * Pages through the export (1000 per call) into the output (io.ts openOutput: a regular file is
 * written beside its place and renamed into it at the end). To stdout, a reader that leaves
 * early (`| head`) ends the export quietly, as it ends `flow list`.
 */
async function exportTrajectories(api: FlowClient, jobId: string, options: ExportOptions, io: CliIo): Promise<{ written: number; readerLeft: boolean }> {
  const toStdout = options.out === '-';
  const file = toStdout ? undefined : await openOutput(options.out);
  let written = 0;
  let total: number | undefined;
  // Without a listener a closed pipe's 'error' event would end the process before the write's callback says so.
  const ignore = () => undefined;
  if (toStdout) io.stdout.on('error', ignore);
  try {
    for await (const page of api.exportAll(exportParams(jobId, options), 1000)) {
      total ??= page.total;
      const lines = options.format === 'jsonl_chat' ? page.lines ?? [] : (page.trajectories ?? []).map((t) => JSON.stringify(t));
      if (lines.length === 0) continue;
      const chunk = `${lines.join('\n')}\n`;
      if (file) await file.write(chunk);
      else await writeChunk(io.stdout, chunk);
      written += lines.length;
    }
    await file?.commit();
  } catch (error) {
    await file?.abort();
    if (toStdout && (error as NodeJS.ErrnoException).code === 'EPIPE') return { written, readerLeft: true };
    throw error;
  } finally {
    if (toStdout) io.stdout.off('error', ignore);
  }
  if (total !== undefined && written !== total) {
    io.stderr.write(`(the job had ${total} matching trajectories when the export began and ${written} were written; it is still running)\n`);
  }
  return { written, readerLeft: false };
}
