/**
 * How much of a budget a job uses before it stops (issue 15): the same job (6 iterations × 4
 * queries × a group of 8, default max_tokens, the simulated model with its short replies) runs
 * once with money to spare and once with half of what that cost. Calls are admitted one by one
 * against the budget in the spend ledger, so the second job should spend most of its budget and
 * raise both alerts, never going over.
 *
 *  - budget_used_share_at_stop: spend ÷ budget when the half-budget job stops (bar ≥ 0.8, ≤ 1).
 *  - budget_alerts_fired: how many of the 75% and 90% alerts it raised (2 expected).
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { startTrainingJob } from '../../api/trainingJobs';
import { simulatedTaskSet } from '../../training/simulation/environment';
import type { TrainingJobResult } from '../../workflows/trainingJobState';
import { startSimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';
import type { Figure } from './results';
import { round } from './stats';

export const BUDGET_SHARE_OWNED_PREFIXES = ['budget_used_share', 'budget_alerts_fired', 'budget_share_'];
const ITERATIONS = 6;

export interface BudgetShareResult {
  fullSpendUsd: number;
  budgetUsd: number;
  spendUsd: number;
  committedUsd: number;
  iterations: number;
  status: string;
  alerts: number[];
}

export async function measureBudgetShare(options: { temporalAddress: string; databaseUrl: string }): Promise<BudgetShareResult> {
  const model = await startSimulatedModelServer({ latencyMs: 5 });
  const prisma = createPrismaClient(options.databaseUrl, { poolSize: 4 });
  const repos = createRepositories(prisma);
  const connection = await Connection.connect({ address: options.temporalAddress });
  const client = new Client({ connection });
  const taskQueue = `budget-share-${randomUUID()}`;
  let worker: ChildProcess | undefined;
  const run = async (budgetUsd: number) => {
    const request = {
      job_id: `budget-share-${randomUUID()}`,
      agent_id: 'budget-share',
      tenant_id: 'tenant-a',
      owner_id: 'bench',
      training_queries: simulatedTaskSet({ queriesPerFamily: 3, seed: 7 }),
      config: { iterations: ITERATIONS, batch_size: 4, group_size: 8, max_parallel: 8, seed: 23, evaluate: false, budget_usd: budgetUsd },
    };
    const { jobId } = await startTrainingJob(client, repos, request, { taskQueue });
    const result: TrainingJobResult = await client.workflow.getHandle(jobId).result();
    return { result, row: (await repos.jobs.get(jobId))! };
  };
  try {
    worker = await spawnWorkerProcess({ taskQueue, temporalAddress: options.temporalAddress, databaseUrl: options.databaseUrl, llmBaseUrl: model.url });
    const full = await run(1000);
    if (full.result.status !== 'completed') throw new Error(`the unbudgeted job ended ${full.result.status}`);
    const budgetUsd = Number((full.result.spend_usd / 2).toFixed(6));
    const half = await run(budgetUsd);
    return {
      fullSpendUsd: full.result.spend_usd,
      budgetUsd,
      spendUsd: half.row.spendUsd,
      committedUsd: half.row.committedUsd,
      iterations: half.result.iterations,
      status: half.result.status,
      alerts: (half.row.budgetAlerts as { threshold: number }[]).map((alert) => alert.threshold),
    };
  } finally {
    if (worker) await stopProcess(worker);
    await connection.close();
    await prisma.$disconnect();
    await model.close();
  }
}

export function budgetShareFigures(result: BudgetShareResult): Figure[] {
  return [
    {
      key: 'budget_used_share_at_stop',
      label: `Share of a budget for half the iterations spent when the job stops (${result.status} after ${result.iterations} of ${ITERATIONS})`,
      value: round(result.spendUsd / result.budgetUsd, 3),
      unit: '×',
      bar: { op: '>=', value: 0.8 },
    },
    { key: 'budget_alerts_fired', label: 'Budget alerts (75%, 90%) raised in that run', value: result.alerts.length, unit: '', bar: { op: '>=', value: 2 } },
    { key: 'budget_share_committed_over_budget', label: 'Ledger-committed spend ÷ budget at the stop (never above 1)', value: round(result.committedUsd / result.budgetUsd, 3), unit: '×', bar: { op: '<=', value: 1 } },
  ];
}
