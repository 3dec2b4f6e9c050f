/** `flow list`: the jobs of the caller's tenant, newest first, as a table or JSON. */
import { Option } from 'commander';
import { PrioritySchema } from '../../../training/priority';
import { JOB_STATUSES } from '../../../training/jobStatus';
import type { ListJobsResult, MethodParams } from '../../schemas';
import { nonEmptyText, positiveInt } from '../arguments';
import type { RegisterCommand } from '../command';
import { usd } from '../format';

interface ListOptions {
  agent?: string;
  status?: (typeof JOB_STATUSES)[number];
  priority?: 'P0' | 'P1' | 'P2';
  limit?: number;
  all?: boolean;
  json?: boolean;
}

export const registerList: RegisterCommand = (program, { io, client }) => {
  program
    .command('list')
    .description('jobs of your tenant, newest first')
    .option('--agent <agent_id>', 'only this agent', nonEmptyText('--agent'))
    .addOption(new Option('--status <status>', 'only this status').choices(JOB_STATUSES))
    .addOption(new Option('--priority <priority>', 'only this priority').choices(PrioritySchema.options))
    .option('--limit <n>', 'jobs per page, 1-500 (default 50; 500 with --all)', positiveInt('--limit', 500))
    .option('--all', 'follow next_cursor through every page')
    .option('--json', 'print {"jobs": [...], "next_cursor": ...} as JSON')
    .action(async (options: ListOptions) => {
      const api = client();
      const filters: MethodParams<'training.list_jobs'> = {
        ...(options.agent ? { agent_id: options.agent } : {}),
        ...(options.status ? { status: options.status } : {}),
        ...(options.priority ? { priority: options.priority } : {}),
      };
      const limit = options.limit ?? (options.all ? 500 : undefined);
      let page: ListJobsResult = await api.listJobs({ ...filters, ...(limit ? { limit } : {}) });
      const jobs = [...page.jobs];
      while (options.all && page.next_cursor) {
        page = await api.listJobs({ ...filters, ...(limit ? { limit } : {}), cursor: page.next_cursor });
        jobs.push(...page.jobs);
      }
      if (options.json) {
        io.stdout.write(`${JSON.stringify({ jobs, next_cursor: page.next_cursor }, null, 2)}\n`);
        return;
      }
      io.stdout.write(jobs.length === 0 ? 'no jobs\n' : jobTable(jobs));
      if (page.next_cursor) io.stderr.write('(more jobs than shown: add --all, or a larger --limit)\n');
    });
};

type JobSummary = ListJobsResult['jobs'][number];

export function jobTable(jobs: JobSummary[]): string {
  const header = ['JOB', 'STATUS', 'AGENT', 'PRIORITY', 'ITERATION', 'SPEND/BUDGET', 'CREATED'];
  const rows = jobs.map((j) => [
    j.job_id,
    j.status,
    j.agent_id,
    j.priority,
    `${j.iteration}/${j.iterations}`,
    `${usd(j.spend_usd)}/${usd(j.budget_usd)}`,
    j.created_at.replace(/\.\d+Z$/, 'Z'),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return `${[header, ...rows].map(line).join('\n')}\n`;
}
