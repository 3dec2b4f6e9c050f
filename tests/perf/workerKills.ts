/**
 * Worker kills: how long a job stalls when the worker running one of its activities is killed
 * with SIGKILL, and whether the job's spend still equals what the provider billed.
 *
 * Two worker processes (workers/main.ts, every pool) train one job after another on the
 * simulated model server (MODEL_LATENCY_MS per call, so activities that call the model last
 * seconds: trajectories, the LLM judge's reward step, the policy update, held-out evaluation).
 * KILLS times, cycling through those activity types: wait until an activity of the type is
 * running on one of the workers, SIGKILL that worker (a supervisor starts a new one at once),
 * and time from the kill until the activity runs again (its next attempt started, per Temporal's
 * describe) — the other worker takes it once the heartbeat timeout (10 s) has passed.
 * computeGroupAdvantages and the record activities take milliseconds, too short to catch
 * reliably; a kill during one is bounded the same way (heartbeat or a 10 s start-to-close).
 *
 *  - worker_kill_resume_p95_s (bar ≤ 30), with p50 and max, over every kill.
 *  - provider_spend_recorded_ratio: the spend ledger's total over every call the model server
 *    billed (bar = 1), beside the ratio of call counts and the jobs' recorded spend over the
 *    ledger. The workers store their calls at the provider (FLOW_LLM_STORED_CALLS_URL, which the
 *    simulated server implements as OpenAI's stored completions): a call a kill caught in flight
 *    is settled by the retry at what the provider recorded, and one the provider never received
 *    (a kill between the ledger's row and the request: kills land as activities start, when they
 *    open calls) at $0 once older than any call runs there (FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S,
 *    UNBILLED_AFTER_S here: this provider answers in MODEL_LATENCY_MS).
 *
 * Standalone: `npx tsx tests/perf/workerKills.ts` (BENCH_WORKER_KILLS=8 for a quicker run;
 * --write merges the figures into docs/performance/benchmark_results.json).
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import { costOf } from '../../adapters/llm/pricing';
import { startTrainingJob } from '../../api/trainingJobs';
import { isTerminalJobStatus } from '../../training/jobStatus';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { startSimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import { spawnWorkerProcess, stopProcess } from '../support/workerProcess';
import type { Figure, MarkdownSection } from './results';
import { quantile, round } from './stats';

export const WORKER_KILLS = Number(process.env.BENCH_WORKER_KILLS ?? 20);
const MODEL_LATENCY_MS = 400;
/** The longest a call can run at the simulated provider, with a wide margin over MODEL_LATENCY_MS. */
const UNBILLED_AFTER_S = 5;
/** Activity types a kill targets, in turn: those that last long enough to be caught running. */
export const KILL_TARGETS = ['runTrajectory', 'rewardGroup', 'updatePolicy', 'runEvaluationEpisodes'] as const;
/** How long one kill may take to resume before it counts as this (a failure of the bar). */
const RESUME_LIMIT_S = 120;
/** How long to wait for the targeted activity type to be running before moving on to the next. */
const CATCH_LIMIT_S = 90;
export const WORKER_KILL_OWNED_PREFIXES = ['worker_kill_', 'provider_spend_'];

const { PendingActivityState } = temporal.api.enums.v1;
const STARTED = [PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, 'PENDING_ACTIVITY_STATE_STARTED'];

export interface WorkerKillOptions {
  temporalAddress: string;
  databaseUrl: string;
  log: (line: string) => void;
}

export interface KillSample {
  activityType: string;
  resumeSeconds: number;
}

export interface WorkerKillResult {
  kills: KillSample[];
  missedTargets: string[];
  jobs: number;
  jobsCompleted: number;
  ledgerCalls: number;
  billedCalls: number;
  ledgerUsd: number;
  billedUsd: number;
  jobsSpendUsd: number;
  unsettledCalls: number;
}

const seconds = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => (t ? Number(t.seconds ?? 0) + (t.nanos ?? 0) / 1e9 : 0);

export async function measureWorkerKills(options: WorkerKillOptions): Promise<WorkerKillResult> {
  const { log } = options;
  const model = await startSimulatedModelServer({ latencyMs: MODEL_LATENCY_MS });
  const prisma = createPrismaClient(options.databaseUrl, { poolSize: 4 });
  const repos = createRepositories(prisma);
  const connection = await Connection.connect({ address: options.temporalAddress });
  const client = new Client({ connection });
  const taskQueue = `kills-${randomUUID()}`;
  const workers = new Map<number, ChildProcess>();
  const startWorker = async () => {
    const child = await spawnWorkerProcess({ taskQueue, temporalAddress: options.temporalAddress, databaseUrl: options.databaseUrl, llmBaseUrl: model.url, env: { FLOW_LLM_STORED_CALLS_URL: model.url, FLOW_LLM_STORED_CALLS_UNBILLED_AFTER_S: String(UNBILLED_AFTER_S) } });
    workers.set(child.pid!, child);
  };
  const jobIds: string[] = [];
  const startJob = async () => {
    const request = {
      job_id: `kills-${randomUUID()}`,
      agent_id: 'kill-bench',
      tenant_id: 'tenant-a',
      owner_id: 'bench',
      training_queries: simulatedTaskSet({ queriesPerFamily: 3, seed: jobIds.length + 1 }),
      config: {
        iterations: 4,
        batch_size: 1,
        group_size: 4,
        max_parallel: 4,
        eval_interval: 1,
        eval_samples: 2,
        reward_strategy: 'llm_judge',
        seed: jobIds.length + 1,
        budget_usd: 1000,
      },
    };
    const { jobId } = await startTrainingJob(client, repos, request, { taskQueue });
    jobIds.push(jobId);
    return jobId;
  };

  const kills: KillSample[] = [];
  const missedTargets: string[] = [];
  try {
    await startWorker();
    await startWorker();
    let jobId = await startJob();
    for (let k = 0; k < WORKER_KILLS + missedTargets.length && k < WORKER_KILLS * 2; k++) {
      const target = KILL_TARGETS[k % KILL_TARGETS.length];
      // Find the target running on one of our workers (starting a new job when one ends).
      let caught: { activityId: string; attempt: number; pid: number; jobId: string } | null = null;
      const deadline = Date.now() + CATCH_LIMIT_S * 1000;
      while (!caught && Date.now() < deadline) {
        const description = await client.workflow.getHandle(jobId).describe();
        if (description.status.name !== 'RUNNING') {
          jobId = await startJob();
          continue;
        }
        for (const activity of description.raw.pendingActivities ?? []) {
          const pid = Number(/flow-worker-(\d+)/.exec(activity.lastWorkerIdentity ?? '')?.[1]);
          if (activity.activityType?.name === target && STARTED.includes(activity.state as never) && workers.has(pid)) {
            caught = { activityId: activity.activityId!, attempt: activity.attempt ?? 1, pid, jobId };
            break;
          }
        }
        if (!caught) await new Promise((r) => setTimeout(r, 25));
      }
      if (!caught) {
        log(`    kill ${k + 1}: no ${target} caught running within ${CATCH_LIMIT_S} s; next type`);
        missedTargets.push(target);
        continue;
      }
      const killedAt = Date.now() / 1000;
      await stopProcess(workers.get(caught.pid)!, 'SIGKILL');
      workers.delete(caught.pid);
      // A supervisor (systemd, Kubernetes) starts a replacement; the other worker keeps polling.
      const replacement = startWorker();
      let resumeSeconds = RESUME_LIMIT_S;
      const handle = client.workflow.getHandle(caught.jobId);
      while (Date.now() / 1000 - killedAt < RESUME_LIMIT_S) {
        const pending = ((await handle.describe()).raw.pendingActivities ?? []).find((a) => a.activityId === caught!.activityId);
        if (!pending) {
          // Done already: it ran again (and finished) between two looks.
          resumeSeconds = Date.now() / 1000 - killedAt;
          break;
        }
        if ((pending.attempt ?? 1) > caught.attempt && STARTED.includes(pending.state as never)) {
          resumeSeconds = Math.max(0, seconds(pending.lastStartedTime) - killedAt);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await replacement;
      kills.push({ activityType: target, resumeSeconds });
      log(`    kill ${kills.length}/${WORKER_KILLS}: ${target} resumed after ${resumeSeconds.toFixed(1)} s`);
    }
    // Let the last job finish, then compare the ledger with the invoice.
    const lastDeadline = Date.now() + 300_000;
    for (const id of jobIds) {
      while (Date.now() < lastDeadline && !isTerminalJobStatus(((await repos.jobs.get(id))?.status ?? 'queued') as never)) await new Promise((r) => setTimeout(r, 250));
    }
    const rows = await prisma.trainingJob.findMany({ where: { id: { in: jobIds } }, select: { status: true, spendUsd: true } });
    const ledger = await prisma.llmCall.aggregate({ where: { jobId: { in: jobIds } }, _sum: { costUsd: true }, _count: true });
    const unsettledCalls = await prisma.llmCall.count({ where: { jobId: { in: jobIds }, settled: false } });
    const invoice = model.billed();
    return {
      kills,
      missedTargets,
      jobs: jobIds.length,
      jobsCompleted: rows.filter((row) => row.status === 'completed').length,
      ledgerCalls: ledger._count,
      billedCalls: [...invoice.values()].reduce((sum, i) => sum + i.calls, 0),
      ledgerUsd: ledger._sum.costUsd ?? 0,
      billedUsd: [...invoice].reduce((sum, [name, i]) => sum + costOf(name, i), 0),
      jobsSpendUsd: rows.reduce((sum, row) => sum + row.spendUsd, 0),
      unsettledCalls,
    };
  } finally {
    for (const child of workers.values()) await stopProcess(child, 'SIGKILL');
    await connection.close();
    await prisma.$disconnect();
    await model.close();
  }
}

export function workerKillFigures(result: WorkerKillResult): Figure[] {
  const resumes = result.kills.map((k) => k.resumeSeconds);
  return [
    { key: 'worker_kill_resume_p95_s', label: `Job resumes after a worker SIGKILL, p95 over ${resumes.length} kills`, value: round(quantile(resumes, 0.95), 2), unit: 's', bar: { op: '<=', value: 30 } },
    {
      key: 'provider_spend_recorded_ratio',
      label: 'Spend ledger ÷ what the model server billed, under worker kills',
      value: round(result.ledgerUsd / result.billedUsd, 4),
      unit: '×',
      bar: { op: '<=', value: 1 },
    },
  ];
}

export function workerKillExtraFigures(result: WorkerKillResult): Record<string, number> {
  const resumes = result.kills.map((k) => k.resumeSeconds);
  return {
    worker_kill_count: result.kills.length,
    worker_kill_resume_p50_s: round(quantile(resumes, 0.5), 2),
    worker_kill_resume_max_s: round(Math.max(...resumes), 2),
    worker_kill_jobs_completed: result.jobsCompleted,
    worker_kill_jobs: result.jobs,
    provider_spend_calls_ratio: round(result.ledgerCalls / result.billedCalls, 4),
    provider_spend_unsettled_calls: result.unsettledCalls,
    provider_spend_jobs_over_ledger: round(result.jobsSpendUsd / result.ledgerUsd, 4),
  };
}

export function workerKillSection(result: WorkerKillResult): MarkdownSection {
  const byType = new Map<string, number[]>();
  for (const kill of result.kills) byType.set(kill.activityType, [...(byType.get(kill.activityType) ?? []), kill.resumeSeconds]);
  return {
    title: 'Worker kills (tests/perf/workerKills.ts)',
    lines: [
      `Two worker processes train jobs on the simulated model (${MODEL_LATENCY_MS} ms a call, LLM judge rewards, evaluation every iteration); ${result.kills.length} times the worker running an activity of the type in turn is killed with SIGKILL (a replacement starts at once), and the time until that activity runs again is measured.`,
      '',
      '| Activity killed | Kills | Resume p50 | Max |',
      '| --- | ---: | ---: | ---: |',
      ...[...byType].map(([type, values]) => `| ${type} | ${values.length} | ${quantile(values, 0.5).toFixed(1)} s | ${Math.max(...values).toFixed(1)} s |`),
      '',
      ...(result.missedTargets.length > 0 ? [`Not caught running within the wait (skipped): ${result.missedTargets.join(', ')}.`, ''] : []),
      `Spend: the ledger holds ${result.ledgerCalls} calls for ${result.billedCalls} the model server answered; $${result.ledgerUsd.toFixed(6)} recorded for $${result.billedUsd.toFixed(6)} billed (${result.unsettledCalls} calls left open by a kill are still at their worst case); the jobs' recorded spend is ${(result.jobsSpendUsd / result.ledgerUsd).toFixed(4)}× the ledger. ${result.jobsCompleted} of ${result.jobs} jobs completed.`,
    ],
  };
}

if (require.main === module) {
  void (async () => {
    const { createDatabase, dropDatabase, ensurePostgres, migrateDatabase, startTemporal } = await import('../../workers/dev/devStack');
    const { DefaultLogger, Runtime } = await import('@temporalio/worker');
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    const postgres = await ensurePostgres();
    const name = `flow_kills_${process.pid}`;
    const databaseUrl = await createDatabase(postgres.adminUrl, name, { fresh: true });
    migrateDatabase(databaseUrl);
    const server = await startTemporal({ headless: true });
    try {
      const result = await measureWorkerKills({ temporalAddress: server.address, databaseUrl, log: console.log });
      for (const figure of workerKillFigures(result)) console.log(`${figure.label}: ${figure.value} ${figure.unit}`);
      console.log(workerKillExtraFigures(result));
      if (process.argv.includes('--write')) {
        const { mergeResults, machine } = await import('./results');
        const path = await import('node:path');
        const { PROJECT_ROOT } = await import('../../workers/dev/devStack');
        const figures = Object.fromEntries(workerKillFigures(result).map((f) => [f.key, f.value]));
        mergeResults(path.join(PROJECT_ROOT, 'docs', 'performance', 'benchmark_results.json'), { ...figures, ...workerKillExtraFigures(result) }, [], {
          machine: machine(),
          measured_at: new Date().toISOString(),
        });
      }
    } finally {
      await server.stop();
      await dropDatabase(postgres.adminUrl, name);
    }
  })().catch((error: Error) => {
    console.error(`workerKills: ${error.message}`);
    process.exit(1);
  });
}
