import { TrainingJobInputSchema } from '../../training/jobInput';
import { JobCarryOverSchema } from '../../training/carryOver';
import { TrainingJobStatusSchema } from '../../training/jobStatus';
import { ConcurrencyLimit, settleAll } from '../../workflows/concurrencyLimit';
import { TrainingJobState } from '../../workflows/trainingJobState';

const input = TrainingJobInputSchema.parse({
  job_id: 'job-1',
  agent_id: 'agent',
  training_queries: [{ id: 'q', prompt: 'p' }],
  config: { iterations: 3, budget_usd: 1 },
});
const metrics = (success_rate: number) => ({ trajectories: 8, mean_reward: 0.5, success_rate, loss: null, advantage_spread: 1, lesson_churn: 1 });

test('TrainingJobState tracks groups, spend, iterations and the end of a job', () => {
  const state = new TrainingJobState(input);
  expect(state.snapshot()).toMatchObject({ status: 'running', phase: 'starting', iteration: 0, iterations: 3, budget_usd: 1, lessons: 0 });
  state.beginIteration(2);
  state.recordGroup(8, 0.25);
  expect(state.snapshot()).toMatchObject({ phase: 'collecting', groups_done: 1, groups_total: 2, trajectories: 8, spend_usd: 0.25 });
  const policy = { ...state.policy, version: 1, lessons: [{ id: 'L1-1', text: 'x', weight: 0.2 }] };
  state.finishIteration(1, metrics(0.5), policy);
  expect(state.snapshot()).toMatchObject({ iteration: 1, policy_version: 1, lessons: 1, success_rates: [0.5], last_metrics: metrics(0.5) });
  state.addSpend(0.75);
  expect(state.snapshot()).toMatchObject({ spend_usd: 1, budget_usd: 1 });
  state.end('budget_exceeded', 'spent it all');
  expect(state.snapshot()).toMatchObject({ status: 'budget_exceeded', reason: 'spent it all', phase: 'finished' });
  // The status query answers exactly the schema's fields (training/jobStatus.ts), no more.
  expect(TrainingJobStatusSchema.strict().parse(state.snapshot())).toEqual(state.snapshot());
  expect(state.result()).toEqual({ job_id: 'job-1', status: 'budget_exceeded', iterations: 1, trajectories: 8, spend_usd: 1, policy, success_rates: [0.5] });
});

test('ConcurrencyLimit never runs more than its limit at once, and runs everything', async () => {
  const limit = new ConcurrencyLimit(2);
  let active = 0;
  let peak = 0;
  const results = await Promise.all(
    [1, 2, 3, 4, 5].map((n) =>
      limit.run(async () => {
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        active -= 1;
        return n * 10;
      }),
    ),
  );
  expect(results).toEqual([10, 20, 30, 40, 50]);
  expect(peak).toBe(2);
  expect(() => new ConcurrencyLimit(0)).toThrow('concurrency limit must be a positive integer, got 0');
});

test('settleAll waits for every promise before rejecting with the first failure', async () => {
  let slowDone = false;
  const slow = new Promise<number>((r) => setTimeout(() => { slowDone = true; r(1); }, 20));
  await expect(settleAll([Promise.reject(new Error('first')), slow])).rejects.toThrow('first');
  expect(slowDone).toBe(true);
  await expect(settleAll([Promise.resolve(1), Promise.resolve(2)])).resolves.toEqual([1, 2]);
});

test('continue-as-new carries the whole state over, and a resumed run starts from its checkpoint', () => {
  const state = new TrainingJobState(input);
  state.beginIteration(1);
  state.recordGroup(8, 0.4);
  state.finishIteration(1, metrics(0.25), { ...state.policy, version: 1, lessons: [{ id: 'L1-1', text: 'x', weight: 0.3 }] });
  state.budgetUsd = 2;
  state.alertsRaised.push(0.75);
  state.paused = true;
  state.prices = { agent: { input_usd_per_mtok: 1, output_usd_per_mtok: 2 }, optimizer: { input_usd_per_mtok: 0.5, output_usd_per_mtok: 1 } };
  const next = new TrainingJobState(TrainingJobInputSchema.parse({ ...input, carry_over: state.carryOver() }));
  expect(next.snapshot()).toEqual({ ...state.snapshot(), phase: 'starting', groups_done: 0, groups_total: 0 });
  expect(next.carryOver()).toEqual(state.carryOver());
  expect(JobCarryOverSchema.parse(next.carryOver())).toEqual(next.carryOver());
  expect(() => TrainingJobInputSchema.parse({ ...input, carry_over: { ...state.carryOver(), iteration: -1 } })).toThrow(/iteration/);

  const resumed = new TrainingJobState(TrainingJobInputSchema.parse({ ...input, run: 2, prior_spend_usd: 0.6, start_paused: true, resume_from: { run: 1, iteration: 1 } }));
  expect(resumed.paused).toBe(true);
  resumed.restoreCheckpoint({ iteration: 1, policy: next.policy, optimizer_state: { success_rates: [0.25], trajectories: 8 } });
  expect(resumed.snapshot()).toMatchObject({ run: 2, iteration: 1, spend_usd: 0.6, success_rates: [0.25], trajectories: 8, policy_version: 1 });
  resumed.restoreCheckpoint({ iteration: 2, policy: next.policy, optimizer_state: {} });
  expect(resumed.snapshot()).toMatchObject({ iteration: 2, success_rates: [], trajectories: 0 });
});
