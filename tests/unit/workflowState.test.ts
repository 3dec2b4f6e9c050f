import { TrainingJobInputSchema } from '../../training/config';
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
  expect(state.budgetExhausted()).toBe(false);
  state.addSpend(0.75);
  expect(state.budgetExhausted()).toBe(true);
  state.end('budget_exceeded', 'spent it all');
  expect(state.snapshot()).toMatchObject({ status: 'budget_exceeded', reason: 'spent it all', phase: 'finished' });
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
