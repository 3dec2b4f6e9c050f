/**
 * Budgets on the real server: every model call is admitted against the job's budget in the spend
 * ledger, and an iteration starts only while what the costliest one so far cost still fits, so
 * the job never crosses its limit (tests/integration/budgetAdmission.test.ts shows it spending
 * most of it with realistic usage); alerts at 75% and
 * 90% are raised once each, recorded on the job and sent to a webhook; the update_budget Update
 * raises a running job's limit (its validator refuses anything else); the kill switch signal
 * pauses a job at the next batch boundary and resumes it.
 *
 * The model server reports fixed token usage (every agent call at its worst case), so a batch
 * costs exactly what the arithmetic in training/budget.ts says.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { startTrainingJob } from '../../api/trainingJobs';
import { resolveModelPrice } from '../../adapters/llm/pricing';
import { promptTokenUpperBound } from '../../activities/budgetGuard';
import { callWorstCaseUsd, DEFAULT_PROMPT_TOKEN_BOUND } from '../../training/budget';
import { EvaluationSummarySchema } from '../../training/evaluation';
import { FLOW_JOB_STATUS } from '../../workflows/searchAttributes';
import { killSwitchSignal, updateBudgetUpdate, type TrainingJobResult } from '../../workflows/trainingJob';
import { jobRequest, startHarness, type Harness } from '../support/harness';

const OPTIMIZER = 'flow-sim-optimizer';
const OPTIMIZER_PRICE = { input_usd_per_mtok: 0.05, output_usd_per_mtok: 0.15 };
const MAX_TOKENS = 512;
const MAX_STEPS = 2;
const GROUP = 8;

let h: Harness;
let webhook: Server;
const alerts: { threshold: number; job_id: string }[] = [];

beforeAll(async () => {
  webhook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      alerts.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  process.env.FLOW_BUDGET_WEBHOOK_URL = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/alerts`;
  h = await startHarness({
    model: {
      latencyMs: 40,
      // Agents always call tools, so every trajectory makes exactly max_steps calls. Half of them
      // (by their seed) call a tool that does not exist: rewards differ within a group, so the
      // policy updater has evidence to ask its model about. The optimizer answers as usual.
      respond: (body) => {
        const { tools, seed } = body as { tools?: unknown[]; seed?: number };
        if (!tools?.length) return undefined;
        return { kind: 'tool_call', name: (seed ?? 0) % 2 === 0 ? 'lookup_docs' : 'no_such_tool', arguments: { query: 'rules' } };
      },
      // Every agent call at the worst case the guard admits it with: its prompt's token bound and
      // max_tokens out. (A provider cannot count more tokens than that bound.)
      usage: (body) =>
        (body as { tools?: unknown[] }).tools?.length
          ? { prompt_tokens: promptTokenUpperBound(body as never), completion_tokens: MAX_TOKENS }
          : { prompt_tokens: 2000, completion_tokens: 200 },
    },
  });
});
afterAll(async () => {
  delete process.env.FLOW_BUDGET_WEBHOOK_URL;
  await h?.close();
  webhook?.close();
});

/** A bound of one agent call here: a prompt of DEFAULT_PROMPT_TOKEN_BOUND tokens (more than any here) and max_tokens out. */
const agentCall = callWorstCaseUsd(resolveModelPrice('flow-sim-1'), MAX_TOKENS, DEFAULT_PROMPT_TOKEN_BOUND);

// The legacy shaped reward: every group then has a spread, so every iteration calls the policy
// updater and its spend is in the figures below (with the default outcome reward, a group that
// all failed or all succeeded has no positive evidence and makes no updater call).
const budgetJob = (budget: number, iterations: number, config: Record<string, unknown> = {}) =>
  jobRequest({
    config: {
      reward_strategy: 'shaped',
      ...config,
      iterations,
      batch_size: 1,
      group_size: GROUP,
      max_steps: MAX_STEPS,
      max_tokens: MAX_TOKENS,
      budget_usd: budget,
      optimizer_model: OPTIMIZER,
      prices: { [OPTIMIZER]: OPTIMIZER_PRICE },
      seed: 5,
    },
  });

/**
 * What the same job costs with money to spare: the spend after each iteration (the iteration
 * rows) and what its evaluations cost. Same seed, same prompts: a budgeted run costs the same.
 */
async function probe(iterations: number, config: Record<string, unknown> = {}) {
  const { jobId } = await startTrainingJob(h.client, h.repos, budgetJob(1000, iterations, config), { taskQueue: h.taskQueue });
  const result: TrainingJobResult = await h.run(h.client.workflow.getHandle(jobId).result());
  expect(result.status).toBe('completed');
  const spendAfter = (await h.repos.progress.iterations(jobId)).sort((a, b) => a.iteration - b.iteration).map((row) => row.spendUsd);
  const evaluations = (await h.repos.progress.evaluations(jobId)).map((stored) => EvaluationSummarySchema.parse(stored.summary));
  return { spendAfter, evaluationUsd: evaluations.reduce((sum, evaluation) => sum + evaluation.cost_usd, 0), totalUsd: result.spend_usd };
}

test('calls at their worst case: the budget runs out during iteration 3, the job ends budget_exceeded, never above the limit, counting policy updates', async () => {
  // Two iterations and half of the third.
  const full = await probe(3, { evaluate: false });
  const budget = (full.spendAfter[1] + full.spendAfter[2]) / 2;
  const { jobId } = await startTrainingJob(h.client, h.repos, budgetJob(budget, 3, { evaluate: false }), { taskQueue: h.taskQueue });
  const result: TrainingJobResult = await h.run(h.client.workflow.getHandle(jobId).result());
  expect(result.status).toBe('budget_exceeded');
  expect(result.iterations).toBe(2);
  const row = (await h.repos.jobs.get(jobId))!;
  expect(row.status).toBe('budget_exceeded');
  // Never above the limit, even counting calls in flight at their worst case.
  expect(row.spendUsd).toBeLessThanOrEqual(budget);
  expect(row.committedUsd).toBeLessThanOrEqual(budget);
  // Most of it was spent: what was left could not hold one more call at its worst case.
  expect(row.spendUsd).toBeGreaterThan(budget - 2 * MAX_STEPS * agentCall);
  const trajectories = await h.repos.trajectories.listForJob(jobId);
  const agentSpend = trajectories.reduce((sum, t) => sum + t.costUsd, 0);
  // The recorded spend is agent calls plus the policy updates' calls, to the cent; the ledger agrees.
  expect(row.spendUsd).toBeGreaterThan(agentSpend);
  expect(row.spendUsd.toFixed(2)).toBe(result.spend_usd.toFixed(2));
  expect((await h.repos.ledger.totalForJob(jobId)).costUsd).toBeCloseTo(row.spendUsd, 10);
  expect(row.reason).toMatch(new RegExp(`budget ran out during iteration ${result.iterations + 1}`));
  // The iteration that ran out has trajectories the ledger refused, and no policy update.
  expect(trajectories.some((t) => t.iteration === result.iterations + 1 && /budget is spent/.test(t.error ?? ''))).toBe(true);
  expect((await h.client.workflow.getHandle(jobId).describe()).typedSearchAttributes.get(FLOW_JOB_STATUS)).toBe('budget_exceeded');
});

test('held-out evaluation is estimated and paid for like training: a budget short of it ends the job before that iteration; its cost is in the spend', async () => {
  const full = await probe(2);
  const firstIteration = full.spendAfter[0];
  expect(full.evaluationUsd).toBeGreaterThan(0);

  // Iteration 2 brings the validation and test evaluations: enough for its training, not for them.
  const short = budgetJob(firstIteration + full.evaluationUsd / 2, 2);
  const { jobId: shortId } = await startTrainingJob(h.client, h.repos, short, { taskQueue: h.taskQueue });
  const refused: TrainingJobResult = await h.run(h.client.workflow.getHandle(shortId).result());
  expect(refused).toMatchObject({ status: 'budget_exceeded', iterations: 1 });
  expect((await h.repos.jobs.get(shortId))!.reason).toMatch(/the evaluation due with iteration 2 would cost about/);
  expect(await h.repos.progress.evaluations(shortId)).toEqual([]);

  const enough = budgetJob(full.totalUsd * 1.01, 2);
  const { jobId } = await startTrainingJob(h.client, h.repos, enough, { taskQueue: h.taskQueue });
  const result: TrainingJobResult = await h.run(h.client.workflow.getHandle(jobId).result());
  expect(result.status).toBe('completed');
  const evaluations = (await h.repos.progress.evaluations(jobId)).map((stored) => EvaluationSummarySchema.parse(stored.summary));
  expect(evaluations.map((evaluation) => evaluation.split)).toEqual(['validation', 'test']);
  const evaluationSpend = evaluations.reduce((sum, evaluation) => sum + evaluation.cost_usd, 0);
  expect(evaluationSpend).toBeCloseTo(full.evaluationUsd, 10);
  const row = (await h.repos.jobs.get(jobId))!;
  const agentSpend = (await h.repos.trajectories.listForJob(jobId)).reduce((sum, t) => sum + t.costUsd, 0);
  // Spend = training trajectories + policy updates + the evaluations, and within the budget.
  expect(row.spendUsd).toBeGreaterThan(agentSpend + evaluationSpend);
  expect(row.spendUsd).toBeLessThanOrEqual(enough.config!.budget_usd!);
});

test('alerts fire once each at 75% and 90%; raising the budget through the Update lets the job finish', async () => {
  // No test split: its evaluation after the last iteration would not fit in twice this budget.
  const full = await probe(4, { test_fraction: 0 });
  // Three iterations fit, and after the third the job has spent over 90%: it would stop in the fourth.
  const budget = Number((full.spendAfter[2] * 1.02).toFixed(6));
  const { jobId } = await startTrainingJob(h.client, h.repos, budgetJob(budget, 4, { test_fraction: 0 }), { taskQueue: h.taskQueue });
  const handle = h.client.workflow.getHandle(jobId);
  const { result, status } = await h.run(async () => {
    // As soon as the 90% alert is on the job, raise the budget (before the next pre-flight).
    for (;;) {
      const row = (await h.repos.jobs.get(jobId))!;
      if ((row.budgetAlerts as { threshold: number }[]).some((a) => a.threshold === 0.9)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const lower = await handle.executeUpdate(updateBudgetUpdate, { args: [budget / 2] }).catch((e: unknown) => e);
    expect(lower).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(((lower as Error).cause as Error).message).toMatch(/greater than/);
    const negative = await handle.executeUpdate(updateBudgetUpdate, { args: [-1] }).catch((e: unknown) => e);
    expect(((negative as Error).cause as Error).message).toMatch(/positive/);
    expect(await handle.executeUpdate(updateBudgetUpdate, { args: [budget * 2] })).toEqual({ budget_usd: budget * 2 });
    const finished: TrainingJobResult = await handle.result();
    // The status query of the finished job (answered by a worker replaying its history).
    return { result: finished, status: await handle.query('status') };
  });
  expect(result.status).toBe('completed');
  expect(result.iterations).toBe(4);
  const row = (await h.repos.jobs.get(jobId))!;
  expect(row.budgetUsd).toBe(budget * 2);
  expect((row.budgetAlerts as { threshold: number }[]).map((a) => a.threshold)).toEqual([0.75, 0.9]);
  expect(alerts.filter((a) => a.job_id === jobId).map((a) => a.threshold).sort()).toEqual([0.75, 0.9]);
  expect(status).toMatchObject({ budget_alerts: [0.75, 0.9], budget_usd: budget * 2 });
});

test('the kill switch pauses a running job at the next batch boundary and resumes it', async () => {
  const { jobId } = await startTrainingJob(h.client, h.repos, budgetJob(10, 3), { taskQueue: h.taskQueue });
  const handle = h.client.workflow.getHandle(jobId);
  // Only this job is signalled. Files that flip the global kill switch (which signals every
  // running job of an install) have installs of their own (@suiteLock isolated,
  // tests/support/suiteEnvironment.ts), so none reaches this one.
  const result: TrainingJobResult = await h.run(async () => {
    while (((await h.repos.jobs.get(jobId))!.iteration ?? 0) < 1) await new Promise((r) => setTimeout(r, 10));
    await handle.signal(killSwitchSignal, { on: true, reason: 'provider outage' });
    while ((await h.repos.jobs.get(jobId))!.status !== 'paused') await new Promise((r) => setTimeout(r, 10));
    const pausedAt = await h.repos.trajectories.countForJob(jobId);
    await new Promise((r) => setTimeout(r, 1000));
    // Nothing is spent while paused.
    expect(await h.repos.trajectories.countForJob(jobId)).toBe(pausedAt);
    expect((await handle.describe()).typedSearchAttributes.get(FLOW_JOB_STATUS)).toBe('paused');
    await handle.signal(killSwitchSignal, { on: false });
    return handle.result();
  });
  expect(result.status).toBe('completed');
  expect(result.iterations).toBe(3);
  expect((await h.repos.jobs.get(jobId))!.status).toBe('completed');
});
