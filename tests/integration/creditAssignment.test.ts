/**
 * FLOW-015 and contrastive distillation on real servers (Temporal dev server, PostgreSQL, the
 * local OpenAI-compatible simulated model server reached through portkey-ai): with
 * credit_assignment on, every trajectory row stores one credit per step, recomputable from the
 * rows, and the optimizer's request shows them; with policy_update 'contrastive' the optimizer
 * is shown best-vs-worst contrasts and the job still changes the policy; under the
 * shuffled_advantages control the stored advantages are the group's, shuffled.
 */
import { groupAdvantages, stepActionKey, stepCredits } from '../../training/advantages';
import { TrajectoryStepSchema } from '../../training/trajectory';
import { SIMULATED_MULTI_STEP_FAMILIES, simulatedTaskSet } from '../../training/simulation/environment';
import { trainingJob } from '../../workflows/trainingJob';
import { jobRequest, recordOptimizerRequests, startHarness, updaterEvidenceOf as evidenceOf, type Harness } from '../support/harness';

let h: Harness;
const optimizer = recordOptimizerRequests();
const optimizerRequests = optimizer.requests;
beforeAll(async () => {
  h = await startHarness({ model: optimizer.model });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  optimizerRequests.length = 0;
});

async function runJob(request: ReturnType<typeof jobRequest>) {
  const handle = await h.client.workflow.start(trainingJob, { args: [request], taskQueue: h.taskQueue, workflowId: request.job_id });
  const result = await h.run(handle.result());
  expect(result.status).toBe('completed');
  return { result, rows: await h.repos.trajectories.listForJob(request.job_id) };
}

function groupsOf<T extends { iteration: number; queryIndex: number; sampleIndex: number }>(rows: T[]): T[][] {
  const groups = new Map<string, T[]>();
  for (const row of rows) groups.set(`${row.iteration}/${row.queryIndex}`, [...(groups.get(`${row.iteration}/${row.queryIndex}`) ?? []), row]);
  return [...groups.values()].map((group) => group.sort((a, b) => a.sampleIndex - b.sampleIndex));
}

test('credit assignment: per-step credits are stored for every step and the optimizer sees them', async () => {
  const request = jobRequest({
    training_queries: simulatedTaskSet({ queriesPerFamily: 2, seed: 4, families: SIMULATED_MULTI_STEP_FAMILIES }),
    // Positive-only evidence (not the contrastive default, which also shows each group's worst):
    // every trajectory the optimizer is shown must have earned positive credit somewhere.
    config: { iterations: 2, batch_size: 2, group_size: 8, seed: 5, credit_assignment: true, gamma: 0.9, checkpoint_interval: 10, policy_update: 'positive_only' },
  });
  const { rows } = await runJob(request);
  expect(rows).toHaveLength(2 * 2 * 8);

  let credited = 0;
  for (const group of groupsOf(rows)) {
    const steps = group.map((row) => TrajectoryStepSchema.array().parse(row.steps));
    const expected = stepCredits(
      group.map((row, i) => ({ reward: row.reward!, actions: steps[i].map(stepActionKey) })),
      0.9,
    );
    group.forEach((row, i) => {
      const stored = row.stepAdvantages as number[];
      expect(stored).toHaveLength(steps[i].length);
      stored.forEach((credit, s) => expect(credit).toBeCloseTo(expected[i][s], 9));
      credited += stored.filter((credit) => credit > 0).length;
    });
  }
  expect(credited).toBeGreaterThan(0);

  // The updater's request: the step-credit instructions, and every shown step with its stored credit.
  expect(optimizerRequests.length).toBeGreaterThanOrEqual(1);
  const first = optimizerRequests[0];
  expect(first.messages.find((m) => m.role === 'system')!.content).toContain('Credit assignment is on');
  const evidence = evidenceOf(first);
  expect(evidence.trajectories.length).toBeGreaterThan(0);
  // Any iteration's rows: with the outcome reward (the default) an iteration whose groups all
  // failed or all succeeded earns no credit and calls no updater, so the first request need not be iteration 1's.
  const allCredits = rows.map((row) => row.stepAdvantages as number[]);
  for (const trajectory of evidence.trajectories) {
    expect(trajectory.steps.every((step) => typeof step.credit === 'number')).toBe(true);
    const credits = trajectory.steps.map((step) => step.credit!);
    // Shown because it earned positive credit somewhere, and its credits are one row's stored ones.
    expect(Math.max(trajectory.advantage, ...credits)).toBeGreaterThan(0);
    expect(allCredits.some((stored) => stored.length === credits.length && stored.every((c, i) => Math.abs(c - credits[i]) < 1e-9))).toBe(true);
  }
});

test("policy_update 'contrastive': the optimizer is shown best-vs-worst contrasts, and the job changes the policy", async () => {
  const request = jobRequest({ config: { iterations: 3, batch_size: 3, group_size: 8, seed: 9, policy_update: 'contrastive', checkpoint_interval: 10 } });
  const { result } = await runJob(request);

  expect(optimizerRequests.length).toBeGreaterThanOrEqual(1);
  expect(optimizerRequests[0].messages.find((m) => m.role === 'system')!.content).toContain('Contrastive evidence');
  const evidence = evidenceOf(optimizerRequests[0]);
  expect(evidence.contrasts!.length).toBeGreaterThan(0);
  const byRef = new Map(evidence.trajectories.map((t) => [t.ref, t]));
  for (const contrast of evidence.contrasts!) {
    expect(contrast.best.every((ref) => byRef.get(ref)!.advantage > 0)).toBe(true);
    expect(contrast.worst.every((ref) => byRef.get(ref)!.advantage < 0)).toBe(true);
  }
  expect(result.policy.version).toBeGreaterThan(0);
  expect(result.policy.lessons.length).toBeGreaterThan(0);
});

test('the shuffled_advantages control stores each group its own advantages, shuffled, with the true rewards', async () => {
  const request = jobRequest({ config: { iterations: 1, batch_size: 3, group_size: 8, seed: 2, control: 'shuffled_advantages', checkpoint_interval: 10 } });
  const { rows } = await runJob(request);
  let reordered = 0;
  for (const group of groupsOf(rows)) {
    const rewards = group.map((row) => row.reward!);
    const unshuffled = groupAdvantages(rewards);
    const stored = group.map((row) => row.advantage!);
    expect([...stored].sort((a, b) => a - b)).toEqual([...unshuffled].sort((a, b) => a - b).map((a) => expect.closeTo(a, 9)));
    if (stored.some((a, i) => Math.abs(a - unshuffled[i]) > 1e-9)) reordered += 1;
  }
  expect(reordered).toBeGreaterThan(0);
});
