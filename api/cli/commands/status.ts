/**
 * `flow status <job>`: a job's iteration, phase, success rate, spend and best checkpoint; with
 * --watch it follows the job until it ends and exits 0 when it completed, 3 otherwise.
 */
import { Presets, SingleBar } from 'cli-progress';
import { isTerminalJobStatus } from '../../../training/jobStatus';
import type { FlowClient } from '../../client/flowClient';
import type { JobStatusResult } from '../../schemas';
import { positiveInt } from '../arguments';
import type { RegisterCommand } from '../command';
import { EXIT } from '../errors';
import { checkpointOf, describeEvaluation, percent, spendOf, usd } from '../format';
import type { CliIo } from '../io';
import { pollUntilEnded } from '../jobPolling';

export const registerStatus: RegisterCommand = (program, { io, client, setExitCode }) => {
  program
    .command('status')
    .description("a job's iteration, phase, success rate, spend vs budget and best checkpoint")
    .argument('<job>', 'the job id')
    .option('-w, --watch', 'follow the job until it ends (exit 0 if completed, 3 otherwise)')
    .option('--interval <ms>', 'poll interval with --watch', positiveInt('--interval'), 1000)
    .option('--json', 'print the status as JSON (with --watch: one JSON line per change)')
    .action(async (jobId: string, options: { watch?: boolean; interval: number; json?: boolean }) => {
      const api = client();
      if (!options.watch) {
        const status = await api.getStatus(jobId);
        io.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : `${describeStatus(status).join('\n')}\n`);
        return;
      }
      setExitCode(await watch(api, jobId, options.interval, Boolean(options.json), io));
    });
};

/** The plain `flow status` lines. */
export function describeStatus(s: JobStatusResult): string[] {
  const metrics = s.last_metrics;
  const rows: [string, string][] = [
    ['job', s.job_id],
    ['agent', `${s.agent_id} (tenant ${s.tenant_id}, owner ${s.owner_id}, priority ${s.priority})`],
    ['status', `${s.status}${s.phase && !isTerminalJobStatus(s.status) ? ` (phase ${s.phase})` : ''}`],
    ['iteration', `${s.iteration}/${s.iterations}${s.run > 1 ? ` (run ${s.run})` : ''}`],
    [
      'success rate',
      metrics
        ? `${percent(metrics.success_rate)} in the last iteration (${metrics.trajectories} trajectories, mean reward ${metrics.mean_reward.toFixed(3)})`
        : 'no iteration finished yet',
    ],
    ['spend', spendOf(s)],
    ['best checkpoint', checkpointOf(s)],
  ];
  if (s.evaluation) rows.push(['held-out eval', describeEvaluation(s.evaluation)]);
  if (s.test_evaluation) rows.push(['test split', describeEvaluation(s.test_evaluation)]);
  // Absent from an older server's answer.
  if (s.budget_alerts?.length) rows.push(['budget alerts', s.budget_alerts.map((a) => `${Math.round(a.threshold * 100)}% (${usd(a.spend_usd)} of ${usd(a.budget_usd)})`).join(', ')]);
  if (s.reason) rows.push(['reason', s.reason]);
  const width = Math.max(...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`);
}

function iterationLine(s: JobStatusResult, iteration: number): string {
  const metrics = iteration === s.iteration ? s.last_metrics : null;
  const parts = [`iteration ${iteration}/${s.iterations}`];
  if (metrics) parts.push(`success ${percent(metrics.success_rate)}`, `mean reward ${metrics.mean_reward.toFixed(3)}`);
  else parts.push('(finished between two polls)');
  parts.push(`spend ${spendOf(s)}`);
  return parts.join('  ');
}

function finalLine(s: JobStatusResult): string {
  const parts = [`${s.job_id} ${s.status}`, `iteration ${s.iteration}/${s.iterations}`];
  if (s.last_metrics) parts.push(`success ${percent(s.last_metrics.success_rate)}`);
  parts.push(`spend ${spendOf(s)}`, `best checkpoint ${checkpointOf(s)}`);
  if (s.reason) parts.push(`reason: ${s.reason}`);
  return parts.join('  ');
}

/** How a watch shows the job: a progress bar on a terminal, JSON lines, or plain lines. */
interface WatchView {
  start(s: JobStatusResult): void;
  update(s: JobStatusResult, shown: Shown): Shown;
  stop(): void;
}

type Shown = Pick<JobStatusResult, 'run' | 'iteration' | 'status'>;

const shownOf = (s: JobStatusResult): Shown => ({ run: s.run, iteration: s.iteration, status: s.status });
const changedFrom = (s: JobStatusResult, shown: Shown) => s.run !== shown.run || s.iteration !== shown.iteration || s.status !== shown.status;

function progressBarView(out: CliIo['stdout']): WatchView {
  const payload = (s: JobStatusResult) => ({
    phase: isTerminalJobStatus(s.status) ? s.status : s.phase ?? s.status,
    success: s.last_metrics ? percent(s.last_metrics.success_rate) : '-',
    spend: spendOf(s),
  });
  const bar = new SingleBar(
    {
      stream: out,
      format: 'iteration {value}/{total} [{bar}] {percentage}% | {phase} | success {success} | spend {spend}',
      barsize: 30,
      hideCursor: false,
      clearOnComplete: false,
      stopOnComplete: false,
    },
    Presets.shades_classic,
  );
  return {
    start: (s) => bar.start(Math.max(s.iterations, 1), s.iteration, payload(s)),
    update(s, shown) {
      bar.setTotal(Math.max(s.iterations, 1));
      bar.update(s.iteration, payload(s));
      return changedFrom(s, shown) ? shownOf(s) : shown;
    },
    stop: () => bar.stop(),
  };
}

function jsonLinesView(out: CliIo['stdout']): WatchView {
  return {
    start: (s) => out.write(`${JSON.stringify(s)}\n`),
    update(s, shown) {
      if (!changedFrom(s, shown)) return shown;
      out.write(`${JSON.stringify(s)}\n`);
      return shownOf(s);
    },
    stop: () => undefined,
  };
}

function plainLinesView(out: CliIo['stdout']): WatchView {
  return {
    start: (s) => out.write(`watching ${s.job_id}: ${s.status}, iteration ${s.iteration}/${s.iterations}\n`),
    update(s, shown) {
      let from = shown.iteration;
      if (s.run !== shown.run) {
        out.write(`run ${s.run} started (resumed from a checkpoint)\n`);
        from = 0;
      }
      for (let i = from + 1; i <= s.iteration; i++) out.write(`${iterationLine(s, i)}\n`);
      return changedFrom(s, shown) ? shownOf(s) : shown;
    },
    stop: () => undefined,
  };
}

/**
 * Polls get_status until the job is terminal. On a terminal: a progress bar over iterations with
 * the phase, success rate and spend. Elsewhere: one plain line per finished iteration. Then the
 * final line; exit 0 when the job completed, 3 when it ended otherwise.
 */
async function watch(api: FlowClient, jobId: string, intervalMs: number, json: boolean, io: CliIo): Promise<number> {
  let status = await api.getStatus(jobId);
  const view = json ? jsonLinesView(io.stdout) : io.stdout.isTTY ? progressBarView(io.stdout) : plainLinesView(io.stdout);
  let shown = shownOf(status);
  view.start(status);
  try {
    status = await pollUntilEnded(api, jobId, intervalMs, (next) => (shown = view.update(next, shown)), status);
  } finally {
    view.stop();
  }
  if (!json) io.stdout.write(`${finalLine(status)}\n`);
  return status.status === 'completed' ? EXIT.OK : EXIT.JOB_NOT_COMPLETED;
}
