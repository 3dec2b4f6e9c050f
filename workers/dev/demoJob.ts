/**
 * The demo training job of `npm start` (workers/dev/demo.ts): what it trains, and its progress
 * per iteration and result as the demo's lines.
 */
import type { Client, Connection } from '@temporalio/client';
import type { FlowClient } from '../../api/client/flowClient';
import type { MethodParams } from '../../api/schemas';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { statusQuery } from '../../workflows/trainingJob';
import { sleep } from './devStack';
import type { Interrupt, Say } from './demoStack';

/** The job: the simulated environment's tasks; with the real local model, a smaller job it can finish in minutes. */
export function demoJobRequest(localModel: boolean, iterations: number, model: string): MethodParams<'training.start_grpo'> {
  if (!localModel) {
    return {
      agent_id: 'demo-support-agent',
      training_queries: simulatedTaskSet({ queriesPerFamily: 4, seed: 1 }),
      config: { iterations, batch_size: 6, group_size: 8, seed: 1, model, optimizer_model: model, priority: 'P1' },
    };
  }
  return {
    // Families whose right tool (web_search) is not the one the untrained model reaches for.
    agent_id: 'demo-local-agent',
    training_queries: simulatedTaskSet({ queriesPerFamily: 4, seed: 1, families: ['geography', 'weather'] }),
    config: {
      iterations,
      batch_size: 2,
      group_size: 4,
      seed: 1,
      model,
      optimizer_model: model,
      priority: 'P1',
      max_steps: 4,
      max_tokens: 200,
      trajectory_timeout_seconds: 900,
      checkpoint_interval: 1,
      evaluate: false,
    },
  };
}

export interface FollowedJob {
  jobId: string;
  iterations: number;
  /** With the real local model, each iteration's lessons are shown too. */
  localModel: boolean;
  client: Client;
  connection: Connection;
  flow: FlowClient;
}

/** One line per finished iteration (success bar, lessons, spend) until the job stops running or the run is interrupted. */
export async function followJob(job: FollowedJob, interrupt: Interrupt, say: Say): Promise<void> {
  const handle = job.client.workflow.getHandle(job.jobId);
  let shown = 0;
  // An interrupt aborts the status query in flight (its retries would outlive the connection).
  // A signal per query: Temporal's connection adds an abort listener to the signal of every call
  // and never removes it, so one signal for every poll piled them up (Node's
  // MaxListenersExceededWarning after 11 polls).
  let queryAbort = new AbortController();
  void interrupt.signalled.then(() => queryAbort.abort());
  for (;;) {
    if (!interrupt.interrupted) queryAbort = new AbortController();
    const status = await job.connection.withAbortSignal(queryAbort.signal, () => handle.query(statusQuery)).catch((error: unknown) => {
      if (interrupt.interrupted) return null;
      throw error;
    });
    if (status === null) break;
    for (; shown < status.success_rates.length; shown++) {
      const rate = status.success_rates[shown];
      const bar = '#'.repeat(Math.round(rate * 30)).padEnd(30, '.');
      say(`iteration ${String(shown + 1).padStart(2)}/${job.iterations}  success ${bar} ${(rate * 100).toFixed(0).padStart(3)}%  lessons ${status.lessons}  spend $${status.spend_usd.toFixed(4)}`);
      if (job.localModel) await sayLatestLessons(job, say);
    }
    if (status.status !== 'running') break;
    await sleep(250);
  }
}

/** The real model's lessons after an iteration, from that iteration's checkpoint. */
async function sayLatestLessons(job: FollowedJob, say: Say): Promise<void> {
  const { checkpoints } = await job.flow.call('training.list_checkpoints', { job_id: job.jobId });
  const latest = checkpoints.at(-1);
  for (const lesson of latest?.policy?.lessons ?? []) say(`    [${lesson.weight.toFixed(2)}] ${lesson.text}`);
}

/** The job's outcome: first and last success rate and the lessons, strongest first; an interrupted run leaves the job alone. */
export async function reportJob(job: FollowedJob, interrupt: Interrupt, say: Say): Promise<void> {
  const result = interrupt.interrupted ? null : await job.client.workflow.getHandle(job.jobId).result();
  if (!result) {
    say(`job ${job.jobId} is left as it is (its workflow resumes on the next start)`);
    return;
  }
  const first = result.success_rates[0];
  const last = result.success_rates[result.success_rates.length - 1];
  say(`job ${result.status}: success rate ${(first * 100).toFixed(0)}% in the first iteration → ${(last * 100).toFixed(0)}% in the last`);
  say('lessons learned:');
  for (const lesson of [...result.policy.lessons].sort((a, b) => b.weight - a.weight)) say(`  [${lesson.weight.toFixed(2)}] ${lesson.text}`);
}
