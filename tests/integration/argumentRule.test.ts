/**
 * Issue 14 item 4 on real servers (Temporal dev server, PostgreSQL, the simulated model server
 * reached through portkey-ai): the argument-rule families (training/simulation/ledgerFamilies.ts:
 * the tool convert is right only with currency EUR for invoice totals and GBP for expense claims;
 * no [family] tag in any prompt) are learned through the real workflow. The policy updater is
 * shown each call's arguments and the tasks grouped by Task.family, the simulated optimizer writes
 * argument lessons from what the positive-advantage trajectories chose, the simulated agent
 * follows them, and the job's test split (never trained on, never used to pick) shows it.
 *
 * Why this could fail: the updater's evidence dropped the arguments (then no argument lesson can
 * be written and success stays near 1/15 a run), the grouping mixed the two families (then one
 * currency lesson would serve both and one family would fail), or the agent did not read the
 * lessons scoped by query words (the prompts carry no tag).
 */
import { EvaluationSummarySchema } from '../../training/evaluation';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { LEDGER_ARGUMENT_FAMILIES, LEDGER_ARGUMENT_FAMILY_RULES } from '../../training/simulation/ledgerFamilies';
import { parseLesson } from '../../training/simulation/lessonForms';
import { parseShownArguments } from '../../training/toolArguments';
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

test('the argument-rule families are learned end to end: argument lessons per family, and test-split success', async () => {
  const request = jobRequest({
    training_queries: simulatedTaskSet({ queriesPerFamily: 4, seed: 31, families: LEDGER_ARGUMENT_FAMILIES }),
    evaluation_queries: simulatedTaskSet({ queriesPerFamily: 4, seed: 32, families: LEDGER_ARGUMENT_FAMILIES }),
    config: { iterations: 8, batch_size: 4, group_size: 8, seed: 9, eval_fraction: 0.5, test_fraction: 0.5, eval_samples: 4, eval_interval: 8, checkpoint_interval: 8 },
  });
  for (const task of [...request.training_queries, ...request.evaluation_queries!]) expect(task.prompt).not.toMatch(/^\s*\[/);
  const handle = await h.client.workflow.start(trainingJob, { args: [request], taskQueue: h.taskQueue, workflowId: request.job_id });
  const result = await h.run(handle.result());
  expect(result.status).toBe('completed');

  // What the updater was shown: the calls' arguments, and the trajectories grouped by Task.family.
  expect(optimizerRequests.length).toBeGreaterThan(0);
  const shown = optimizerRequests.map(evidenceOf);
  const kinds = shown.flatMap((evidence) => evidence.task_kinds ?? []);
  expect(new Set(kinds.map((kind) => kind.family))).toEqual(new Set(LEDGER_ARGUMENT_FAMILIES));
  const convertCalls = shown.flatMap((evidence) => evidence.trajectories.flatMap((t) => t.steps.filter((step) => step.tool === 'convert')));
  expect(convertCalls.length).toBeGreaterThan(0);
  for (const call of convertCalls) expect(parseShownArguments(call.arguments)).toHaveProperty('currency');

  // The policy: for each family, its own currency is the strongest argument lesson of its scope.
  for (const family of LEDGER_ARGUMENT_FAMILIES) {
    const argumentLessons = result.policy.lessons
      .map((lesson) => ({ lesson, parsed: parseLesson(lesson.text) }))
      .filter(({ parsed }) => parsed?.scope.family === family && parsed.form.kind === 'argument')
      .sort((a, b) => b.lesson.weight - a.lesson.weight);
    expect(argumentLessons.length).toBeGreaterThan(0);
    expect(argumentLessons[0].parsed!.form).toEqual({ kind: 'argument', tool: 'convert', argument: 'currency', value: LEDGER_ARGUMENT_FAMILY_RULES[family].value });
    expect(argumentLessons[0].lesson.weight).toBeGreaterThanOrEqual(0.5);
  }

  // The test split: success well above the untrained agent's, and at least 0.8.
  const evaluations = (await h.repos.progress.evaluations(request.job_id)).map((row) => EvaluationSummarySchema.parse(row.summary));
  const test = evaluations.find((summary) => summary.split === 'test')!;
  expect(test).toBeDefined();
  expect(test.current.success_rate.value).toBeGreaterThanOrEqual(0.8);
  expect(test.current.success_rate.value).toBeGreaterThan(test.baseline.success_rate.value);
});
