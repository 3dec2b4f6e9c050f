/**
 * Issue 16 items 4-7 through a whole job on real servers: with `policy_hygiene` on, each group
 * proposes, one consolidation per iteration applies, lessons carry provenance (trajectories of
 * this job) and counters, the iteration record holds what hygiene did (refusals with reasons),
 * the gate runs its episodes, and the rendered policy never exceeds max_policy_tokens.
 */
import { tokenCounterFor } from '../../adapters/llm/tokenCounter';
import { startTrainingJob } from '../../api/trainingJobs';
import { IterationMetricsSchema } from '../../training/iterationMetrics';
import { renderSystemPrompt, type Lesson } from '../../training/policy';
import { Worker } from '@temporalio/worker';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

test('a job with policy hygiene and the gate: provenance, counters, recorded hygiene, the budget held', async () => {
  const maxPolicyTokens = 120;
  // Enough that lessons from earlier iterations are in later prompts, and so counted.
  const iterations = 5;
  const request = jobRequest({
    config: {
      iterations,
      batch_size: 2,
      group_size: 4,
      checkpoint_interval: 10,
      eval_interval: 10,
      policy_hygiene: true,
      max_policy_tokens: maxPolicyTokens,
      update_gate: { queries: 2, samples: 1 },
    },
  });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  const result = await h.run(h.client.workflow.getHandle(jobId).result());
  expect(result.status).toBe('completed');

  const count = tokenCounterFor(request.config?.model ?? 'flow-sim-1').count;
  expect(count(renderSystemPrompt(result.policy))).toBeLessThanOrEqual(maxPolicyTokens);
  expect(result.policy.lessons.length).toBeGreaterThan(0);
  const trajectoryIds = new Set((await h.repos.trajectories.listForJob(jobId)).map((row) => row.id));
  for (const lesson of result.policy.lessons) {
    const origin = lesson.provenance![0];
    expect(origin).toMatchObject({ job_id: jobId, run: 1 });
    for (const id of origin.trajectory_ids) expect(trajectoryIds.has(id)).toBe(true);
  }

  const recorded = await h.repos.progress.iterations(jobId);
  expect(recorded).toHaveLength(iterations);
  for (const it of recorded) {
    const metrics = IterationMetricsSchema.parse(it.metrics);
    expect(metrics.policy_hygiene).toBeDefined();
    expect(metrics.policy_hygiene!.policy_tokens).toBeLessThanOrEqual(maxPolicyTokens);
    const { gate_refusal: gateRefusal, collapse_refusal: collapseRefusal } = metrics.policy_hygiene!;
    if (gateRefusal !== null) expect(gateRefusal).toMatch(/did worse than its parent/);
    if (collapseRefusal !== null) expect(collapseRefusal).toMatch(/^the update would remove/);
  }
  // The hygiene path replays deterministically (its patch marker, proposals, consolidation, gate episodes).
  const history = await h.client.workflow.getHandle(jobId).fetchHistory();
  // The gate ran: every lesson at the end came from an accepted update, and its iteration ran the
  // gate's episodes (one seed each, where the scheduled evaluations run eval_samples, 4).
  const gateIterations = new Set(
    (history.events ?? [])
      .map((event) => event.activityTaskScheduledEventAttributes)
      .filter((scheduled) => scheduled?.activityType?.name === 'runEvaluationEpisodes')
      .map((scheduled) => JSON.parse(Buffer.from(scheduled!.input!.payloads![0].data!).toString()) as { iteration: number; seeds: number[] })
      .filter((input) => input.seeds.length === 1)
      .map((input) => input.iteration),
  );
  const originIterations = new Set<number>((result.policy.lessons as Lesson[]).map((lesson) => lesson.provenance![0].iteration));
  expect([...originIterations].filter((iteration) => !gateIterations.has(iteration))).toEqual([]);
  await Worker.runReplayHistory({ workflowBundle: { codePath: requireEnv('FLOW_TEST_WORKFLOW_BUNDLE') } }, history, jobId);
  // Lessons that were in a later iteration's prompt have been counted.
  const earlier = result.policy.lessons.filter((lesson: Lesson) => lesson.provenance![0].iteration < iterations);
  expect(earlier.length).toBeGreaterThan(0); // else nothing below is checked
  expect(earlier.some((lesson: Lesson) => lesson.counters !== undefined && lesson.counters.helpful + lesson.counters.harmful > 0)).toBe(true);
});
