/**
 * Budget admission per call (issue 15): with realistic usage (replies far shorter than max_tokens)
 * a budget sized for about half of a job's iterations is mostly spent when the job stops, never
 * over; both alerts fire; and the spend ledger never committed more than the budget.
 *
 * Before call admission, the pre-flight reserved a whole iteration at its worst case (8,192 prompt
 * tokens and max_tokens completions per call): such a job stopped having spent ~2% of its budget,
 * and the 75% and 90% alerts could never fire at default settings.
 */
import { startTrainingJob } from '../../api/trainingJobs';
import type { TrainingJobResult } from '../../workflows/trainingJobState';
import { jobRequest, startHarness, type Harness } from '../support/harness';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ model: { latencyMs: 5 } });
});
afterAll(async () => {
  await h?.close();
});

const ITERATIONS = 6;
// Default max_tokens (512), so a call's worst case is many times what it costs.
// The default batch of 4 queries × a group of 8, 8 calls in flight; evaluation off, so every
// dollar goes to training.
const config = (budgetUsd: number) => ({ iterations: ITERATIONS, batch_size: 4, group_size: 8, max_parallel: 8, seed: 23, evaluate: false, budget_usd: budgetUsd });

test('a budget for half the iterations is at least 80% spent when the job stops, never over; alerts at 75% and 90% fire', async () => {
  // What the whole job costs, with a budget it cannot reach.
  const full = jobRequest({ config: config(1000) });
  const { jobId: fullId } = await startTrainingJob(h.client, h.repos, full, { taskQueue: h.taskQueue });
  const unlimited: TrainingJobResult = await h.run(h.client.workflow.getHandle(fullId).result());
  expect(unlimited).toMatchObject({ status: 'completed', iterations: ITERATIONS });
  const budget = unlimited.spend_usd / 2;

  const half = jobRequest({ config: config(budget) });
  const { jobId } = await startTrainingJob(h.client, h.repos, half, { taskQueue: h.taskQueue });
  const result: TrainingJobResult = await h.run(h.client.workflow.getHandle(jobId).result());
  expect(result.status).toBe('budget_exceeded');
  expect(result.iterations).toBeGreaterThanOrEqual(ITERATIONS / 2 - 1);
  expect(result.iterations).toBeLessThan(ITERATIONS);
  const row = (await h.repos.jobs.get(jobId))!;
  const share = row.spendUsd / budget;
  expect(share).toBeGreaterThanOrEqual(0.8);
  expect(share).toBeLessThanOrEqual(1);
  expect((row.budgetAlerts as { threshold: number }[]).map((a) => a.threshold)).toEqual([0.75, 0.9]);
  // The ledger agrees with the row and never held more than the budget.
  const ledger = await h.repos.ledger.totalForJob(jobId);
  expect(ledger.unsettled).toBe(0);
  expect(ledger.costUsd).toBeCloseTo(row.spendUsd, 12);
  expect(row.committedUsd).toBeLessThanOrEqual(budget);
});

test('calls are refused once the budget cannot hold their worst case: the iteration under way stops and the job ends budget_exceeded, within the limit', async () => {
  // Enough for a little more than one iteration at its actual cost: the second one starts (its
  // estimate fits) and runs out mid-way, where the ledger refuses calls.
  const probe = jobRequest({ config: { ...config(1000), iterations: 1 } });
  const { jobId: probeId } = await startTrainingJob(h.client, h.repos, probe, { taskQueue: h.taskQueue });
  const one: TrainingJobResult = await h.run(h.client.workflow.getHandle(probeId).result());
  const budget = one.spend_usd * 1.3;
  const { jobId } = await startTrainingJob(h.client, h.repos, jobRequest({ config: { ...config(budget), max_tokens: 64 } }), { taskQueue: h.taskQueue });
  const result: TrainingJobResult = await h.run(h.client.workflow.getHandle(jobId).result());
  expect(result.status).toBe('budget_exceeded');
  const row = (await h.repos.jobs.get(jobId))!;
  expect(row.spendUsd).toBeLessThanOrEqual(budget);
  expect(row.committedUsd).toBeLessThanOrEqual(budget);
  expect(row.reason).toMatch(/budget ran out during iteration \d+/);
  const refused = (await h.repos.trajectories.listForJob(jobId)).filter((t) => /budget is spent/.test(t.error ?? ''));
  expect(refused.length).toBeGreaterThan(0);
});
