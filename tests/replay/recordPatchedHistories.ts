/**
 * Records the histories of tests/replay/histories/patched/, which the replay tests replay: small jobs
 * whose histories take every patch of today's trainingJob (budget pre-flight, held-out evaluation,
 * test split, call admission) on the paths a refactor must keep: evaluation with a test split and
 * credit assignment, a run resumed from a checkpoint with a new budget, a budget that runs out
 * mid-iteration (alerts, refused calls), the kill switch with a budget raise while paused, the
 * no_policy_update control, a cancel mid-iteration. Run with
 * `npx tsx tests/replay/recordPatchedHistories.ts` (it starts its own PostgreSQL database and
 * Temporal dev server, as recordHistories.ts does); name histories after it to record only those
 * (`… recordPatchedHistories.ts budget-raised`), so a history added later does not re-record, and
 * lose, the older branches the others took. Add histories; never re-record to make an incompatible
 * change pass.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { bundleWorkflowCode } from '@temporalio/worker';
import { cancelTrainingJob, resumeTrainingJob, startTrainingJob } from '../../api/trainingJobs';
import { killSwitchSignal, statusQuery, updateBudgetUpdate } from '../../workflows/trainingJob';
import { createDatabase, dropDatabase, ensurePostgres, migrateDatabase, PROJECT_ROOT, sleep, startTemporal, type TemporalServer } from '../../workers/dev/devStack';
import { PATCHED_HISTORIES_DIR } from './recordedHistories';
import { onBudgetChange } from '../support/budgetTrigger';
import { jobRequest, startHarness, type Harness } from '../support/harness';

const OUT = PATCHED_HISTORIES_DIR;
const noop = () => undefined;
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };

/** The histories named on the command line; none named, all. */
const only = process.argv.slice(2);
const wanted = (...names: string[]) => only.length === 0 || names.some((name) => only.includes(name));

async function save(client: Client, jobId: string, name: string) {
  if (!wanted(name)) return;
  const history = await client.workflow.getHandle(jobId).fetchHistory();
  const json = historyToJSON(history);
  writeFileSync(path.join(OUT, `${name}.json`), `${json}\n`);
  console.log(`wrote ${name}: ${JSON.parse(json).events.length} events`);
}

async function waitFor(client: Client, jobId: string, pred: (s: any) => boolean) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = await client.workflow.getHandle(jobId).query(statusQuery).catch(() => null);
    if (s && pred(s)) return s;
    if (Date.now() > deadline) throw new Error('timeout waiting');
    await sleep(20);
  }
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const workDir = path.join(PROJECT_ROOT, '.flow', 'record');
  mkdirSync(workDir, { recursive: true });
  const postgres = await ensurePostgres();
  const databaseName = `flow_scratch_${process.pid}`;
  const bundlePath = path.join(workDir, `scratch-bundle-${process.pid}.js`);
  let temporal: TemporalServer | undefined;
  let h: Harness | undefined;
  try {
    const databaseUrl = await createDatabase(postgres.adminUrl, databaseName, { fresh: true });
    migrateDatabase(databaseUrl);
    temporal = await startTemporal({ headless: true, logFile: path.join(workDir, 'scratch-temporal.log') });
    const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietLogger });
    writeFileSync(bundlePath, bundle.code);
    process.env.DATABASE_URL = databaseUrl;
    process.env.TEMPORAL_ADDRESS = temporal.address;
    process.env.FLOW_TEST_WORKFLOW_BUNDLE = bundlePath;
    h = await startHarness({ model: { latencyMs: 2 } });
    const H = h;
    const tq = { taskQueue: h.taskQueue };

    // 1. evaluation (validation every iteration + test split), checkpoints, admission.
    if (wanted('eval-completed', 'eval-resumed')) {
    const evalReq = jobRequest({ job_id: 'scratch-eval', config: { iterations: 3, batch_size: 2, group_size: 4, checkpoint_interval: 1, eval_interval: 1, eval_samples: 2, seed: 3, credit_assignment: true } as any });
    await startTrainingJob(h.client, h.repos, evalReq, tq);
    const r1 = await h.run(h.client.workflow.getHandle('scratch-eval').result());
    console.log('eval', r1.status);
    await save(h.client, 'scratch-eval', 'eval-completed');

    // 2. resumed from iteration 1 of it (loadCheckpoint path), with a new budget.
    await h.run(async () => {
      await resumeTrainingJob(H.client, H.repos, 'scratch-eval', { checkpoint: { run: 1, iteration: 1 }, budgetUsd: 50, taskQueue: H.taskQueue });
      const r = await H.client.workflow.getHandle('scratch-eval').result();
      console.log('resumed', r.status);
    });
    await save(h.client, 'scratch-eval', 'eval-resumed');
    }

    // 3. budget: probe, then 1.3x budget -> alerts and budget_exceeded mid-iteration.
    if (wanted('budget-exceeded', 'budget-eval')) {
    const base = { iterations: 4, batch_size: 4, group_size: 8, max_parallel: 8, seed: 23, evaluate: false };
    await startTrainingJob(h.client, h.repos, jobRequest({ job_id: 'scratch-probe', config: { ...base, iterations: 1, budget_usd: 1000 } }), tq);
    const probe = await h.run(h.client.workflow.getHandle('scratch-probe').result());
    await startTrainingJob(h.client, h.repos, jobRequest({ job_id: 'scratch-budget', config: { ...base, budget_usd: probe.spend_usd * 1.3, max_tokens: 64 } }), tq);
    const r3 = await h.run(h.client.workflow.getHandle('scratch-budget').result());
    console.log('budget', r3.status, (await h.repos.jobs.get('scratch-budget'))?.reason);
    await save(h.client, 'scratch-budget', 'budget-exceeded');
    // 3b. budget with evaluation: the evaluation-refused path.
    await startTrainingJob(h.client, h.repos, jobRequest({ job_id: 'scratch-budget-eval', config: { iterations: 4, batch_size: 2, group_size: 4, eval_interval: 1, eval_samples: 4, seed: 7, budget_usd: probe.spend_usd * 0.5 } }), tq);
    const r3b = await h.run(h.client.workflow.getHandle('scratch-budget-eval').result());
    console.log('budget-eval', r3b.status, (await h.repos.jobs.get('scratch-budget-eval'))?.reason);
    await save(h.client, 'scratch-budget-eval', 'budget-eval');
    }

    // 4. paused by the kill switch, budget raised, then resumed.
    if (wanted('paused')) await h.run(async () => {
      await startTrainingJob(H.client, H.repos, jobRequest({ job_id: 'scratch-paused', config: { iterations: 2, batch_size: 2, group_size: 4, seed: 5, evaluate: false } }), tq);
      const handle = H.client.workflow.getHandle('scratch-paused');
      await handle.signal(killSwitchSignal, { on: true, reason: 'scratch' });
      await waitFor(H.client, 'scratch-paused', (s) => s.status === 'paused');
      await handle.executeUpdate(updateBudgetUpdate, { args: [77] });
      await handle.signal(killSwitchSignal, { on: false });
      console.log('paused', (await handle.result()).status);
    });
    await save(h.client, 'scratch-paused', 'paused');

    // 4b. budget-raise-recorded-first-v1 (added after 4, which took the old order): a raise sent as
    // the job starts, a raise while paused, a lower one refused by the validator (which leaves no
    // event), then two raises sent together (in the recording the higher was admitted first and the
    // lower refused, so they were never in flight together: 4c records that).
    if (wanted('budget-raised')) await h.run(async () => {
      await startTrainingJob(H.client, H.repos, jobRequest({ job_id: 'scratch-raised', config: { iterations: 2, batch_size: 2, group_size: 4, seed: 11, evaluate: false, budget_usd: 40 } }), tq);
      const handle = H.client.workflow.getHandle('scratch-raised');
      await handle.executeUpdate(updateBudgetUpdate, { args: [50] });
      await handle.signal(killSwitchSignal, { on: true, reason: 'scratch' });
      await waitFor(H.client, 'scratch-raised', (s) => s.status === 'paused');
      await handle.executeUpdate(updateBudgetUpdate, { args: [60] });
      await handle.executeUpdate(updateBudgetUpdate, { args: [55] }).then(
        () => { throw new Error('a lower raise was accepted'); },
        (e: Error) => { if (!/greater than the current budget/.test(String(e.cause instanceof Error ? e.cause.message : e))) throw e; },
      );
      const both = await Promise.allSettled([70, 65].map((usd) => handle.executeUpdate(updateBudgetUpdate, { args: [usd] })));
      console.log('raised', both.map((r) => (r.status === 'fulfilled' ? r.value : r.reason.cause?.message)));
      await handle.signal(killSwitchSignal, { on: false });
      const result = await handle.result();
      console.log('raised', result.status, (await H.repos.jobs.get('scratch-raised'))?.budgetUsd);
    });
    await save(h.client, 'scratch-raised', 'budget-raised');

    // 4c. Two raises in flight together, the lower sent first, each record held 2 s by a trigger,
    // while the job, with too little budget for one call, waits at iteration 1's check for them
    // (the boundary wait of budget-raise-recorded-first-v1) and then goes on.
    if (wanted('budget-raised-in-flight')) {
      const jobId = 'scratch-raised-in-flight';
      await startTrainingJob(h.client, h.repos, jobRequest({ job_id: jobId, config: { iterations: 2, batch_size: 2, group_size: 4, seed: 13, evaluate: false, budget_usd: 0.000001 } }), tq);
      const slow = await onBudgetChange(h.prisma, jobId, 'PERFORM pg_sleep(2); RETURN NEW;');
      try {
        const handle = h.client.workflow.getHandle(jobId);
        // Sent before any worker runs, a moment apart so Temporal admits them in this order; the
        // first workflow task takes both.
        const lower = handle.executeUpdate(updateBudgetUpdate, { args: [4] });
        await sleep(500);
        const higher = handle.executeUpdate(updateBudgetUpdate, { args: [5] });
        await sleep(500);
        await h.run(async () => {
          console.log('in flight', await Promise.all([lower, higher]));
          console.log('in flight', (await handle.result()).status);
        });
      } finally {
        await slow.drop();
      }
      await save(h.client, jobId, 'budget-raised-in-flight');
    }

    // 5. no_policy_update control.
    if (wanted('control')) {
      await startTrainingJob(h.client, h.repos, jobRequest({ job_id: 'scratch-control', config: { iterations: 2, batch_size: 2, group_size: 4, seed: 9, evaluate: false, control: 'no_policy_update' } }), tq);
      console.log('control', (await h.run(h.client.workflow.getHandle('scratch-control').result())).status);
      await save(h.client, 'scratch-control', 'control');
    }

    // 6. cancelled mid-iteration with evaluation on.
    h.model.setLatency(100);
    if (wanted('cancelled')) await h.run(async () => {
      await startTrainingJob(H.client, H.repos, jobRequest({ job_id: 'scratch-cancel', config: { iterations: 3, batch_size: 2, group_size: 4, seed: 5, eval_interval: 1 } }), tq);
      await waitFor(H.client, 'scratch-cancel', (s) => s.iteration >= 1 && s.phase === 'collecting');
      await cancelTrainingJob(H.client, 'scratch-cancel', 'scratch');
      await H.client.workflow.getHandle('scratch-cancel').result().catch((e) => { if (!(e instanceof WorkflowFailedError)) throw e; });
    });
    h.model.setLatency(2);
    await save(h.client, 'scratch-cancel', 'cancelled');
  } finally {
    await h?.close().catch(console.error);
    await temporal?.stop();
    await dropDatabase(postgres.adminUrl, databaseName).catch(console.error);
    rmSync(bundlePath, { force: true });
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
