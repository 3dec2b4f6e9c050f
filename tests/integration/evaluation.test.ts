/**
 * FLOW-010 on real servers: a 10-iteration job on the simulated environment is evaluated on its
 * validation queries against the untrained baseline (scoring checkpoints) and, after the last
 * iteration, on its test queries (reporting only); it reports a significant improvement in task
 * success with queries as the unit, in status (training.get_status) and in the stored
 * evaluations. Controls: the shuffled-advantage job must not report an improvement, and an
 * unchanged policy re-run on fresh episodes must not look better than itself.
 */
import { EvaluationSummarySchema, type EvaluationSummary } from '../../training/evaluation';
import { evaluationSplit } from '../../training/evaluation';
import { runLevelEvidence } from '../../training/evaluationStatistics';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { TrainingJobInputSchema } from '../../training/jobInput';
import { startHarness, type Harness } from '../support/harness';
import { SIGNIFICANT_JOB } from '../support/significantJob';
import { PassThrough, Readable } from 'node:stream';
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { createActivities } from '../../activities';
import { startSimulatedModelServer } from '../../workers/dev/simulatedModelServer';
import type { EvaluationEpisodesResult } from '../../activities/evaluation';
import { initialPolicy, renderSystemPrompt } from '../../training/policy';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import { evaluateCheckpoint } from '../../workflows/evaluateCheckpoint';
import { EXIT, main } from '../../api/cli/flow';
import { rpcError, startApiHarness, waitFor, type ApiHarness } from '../support/apiHarness';

let h: Harness;
let api: ApiHarness;
let worker: { stop(): Promise<void> };

beforeAll(async () => {
  h = await startHarness({
    model: {
      // Markers in a held-out prompt make the model fail or hang, for the episodes' error paths.
      respond: (body) => {
        const user = body.messages.find((m) => m.role === 'user')?.content ?? '';
        if (user.includes('PROVIDER-ERROR')) return { kind: 'http_error', status: 400, body: '{"error":{"message":"bad request"}}' };
        if (user.includes('NEVER-ANSWERS')) return { kind: 'hang' };
        return undefined;
      },
    },
  });
  api = await startApiHarness({ harness: h });
  worker = await api.startWorker();
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await h?.close();
});

const { training_queries: trainingQueries, config } = SIGNIFICANT_JOB;

async function runToEnd(agentId: string, control: 'none' | 'no_policy_update' | 'shuffled_advantages') {
  const client = await api.client();
  const { job_id } = await client.startGrpo({ agent_id: agentId, training_queries: trainingQueries, config: { ...config, control } });
  const status = await waitFor(
    () => client.getStatus(job_id),
    (s) => ['completed', 'failed', 'cancelled', 'budget_exceeded'].includes(s.status),
    240_000,
    500,
  );
  const stored = await h.repos.progress.evaluations(job_id);
  return { jobId: job_id, status, stored: stored.map((row) => ({ row, summary: EvaluationSummarySchema.parse(row.summary) })) };
}

function describeEvaluation(e: EvaluationSummary): string {
  const s = e.success_test!;
  return `${e.split} at ${e.iteration}: success ${e.current.success_rate.value.toFixed(3)} vs baseline ${e.baseline.success_rate.value.toFixed(3)}, per query ${s.mean_difference.toFixed(3)} p=${s.p} [${s.bootstrap?.ci_low}, ${s.bootstrap?.ci_high}]; per episode Welch p=${e.welch.p}`;
}

let trainedJobId: string | undefined;
let trainedFinal: EvaluationSummary | undefined;
let trainedTest: EvaluationSummary | undefined;

test('a 10-iteration job improves task success per query on its validation and test splits; the controls do not', async () => {
  const [trained, noUpdate, shuffled] = await Promise.all([
    runToEnd('eval-trained', 'none'),
    runToEnd('eval-no-update', 'no_policy_update'),
    runToEnd('eval-shuffled', 'shuffled_advantages'),
  ]);

  // The trained job: validation evaluations at iterations 5 and 10 and the test split's after
  // the last, stored and shown in status (validation as `evaluation`, test as `test_evaluation`).
  expect(trained.status.status).toBe('completed');
  expect(trained.stored.map(({ row, summary }) => [summary.iteration, row.kind, summary.split])).toEqual([
    [5, 'scheduled', 'validation'],
    [10, 'scheduled', 'validation'],
    [10, 'test', 'test'],
  ]);
  const final = trained.stored[1].summary;
  const test = trained.stored[2].summary;
  trainedJobId = trained.jobId;
  trainedFinal = final;
  trainedTest = test;
  expect(trained.status.evaluation).toEqual(final);
  expect(trained.status.test_evaluation).toEqual(test);
  // The verdict: success per query, paired, with the bootstrap interval above 0; on both splits.
  for (const summary of [final, test]) {
    expect(summary.significant_improvement).toBe(true);
    expect(summary.success_test!.p!).toBeLessThan(0.05);
    expect(summary.success_test!.bootstrap!.ci_low).toBeGreaterThan(0);
    expect(summary.success_test!.queries).toBe(summary.held_out_queries);
    expect(summary.families!.length).toBeGreaterThan(1);
  }
  // Per episode (beside the verdict, not instead of it).
  expect(final.welch.p).toBeLessThan(0.01);
  expect(final.current.avg_reward.value).toBeGreaterThan(final.baseline.avg_reward.value);
  expect(final.current.success_rate.value).toBeGreaterThan(final.baseline.success_rate.value);
  // Stored columns agree with the summary: the p column is the verdict's; t and df are those of a real Welch test.
  expect(trained.stored[1].row.pValue).toBe(final.success_test!.p);
  expect(trained.stored[1].row.significant).toBe(true);
  expect(final.welch.t).toBeGreaterThan(0);
  expect(final.welch.df).toBeGreaterThan(1);
  // Every metric with its interval, tool accuracy included (the simulated tasks name their tool).
  const split = evaluationSplit(TrainingJobInputSchema.parse({ job_id: 'x', agent_id: 'a', training_queries: trainingQueries, config }));
  const heldOut = split.heldOut;
  expect(final.held_out_queries).toBe(heldOut.length);
  expect(test.held_out_queries).toBe(split.test.length);
  expect(final.current.episodes).toBe(heldOut.length * config.eval_samples);
  expect(final.baseline.episodes).toBe(heldOut.length * config.eval_samples);
  for (const metrics of [final.current, final.baseline]) {
    for (const estimate of [metrics.success_rate, metrics.avg_reward, metrics.avg_steps, metrics.tool_accuracy!]) {
      expect(estimate.ci_low!).toBeLessThanOrEqual(estimate.value);
      expect(estimate.ci_high!).toBeGreaterThanOrEqual(estimate.value);
    }
  }
  expect(final.current.tool_accuracy!.value).toBeGreaterThan(final.baseline.tool_accuracy!.value);
  // Evaluation is paid for like everything else: its cost is in the job's spend.
  expect(final.cost_usd).toBeGreaterThan(0);
  // The best checkpoint is chosen by the validation score (never by the test split).
  const checkpoints = await h.repos.progress.checkpoints(trained.jobId);
  expect(checkpoints.map((c) => [c.iteration, c.score])).toEqual([
    [5, trained.stored[0].summary.current.avg_reward.value],
    [10, final.current.avg_reward.value],
  ]);

  // The splits are disjoint and cover the queries; neither held-out split was trained on.
  const heldOutIds = new Set(heldOut.map((task) => task.id));
  const testIds = new Set(split.test.map((task) => task.id));
  const trainingIds = new Set(split.trainingIndices.map((i) => trainingQueries[i].id));
  expect(testIds.size).toBeGreaterThan(0);
  expect([...testIds].filter((id) => heldOutIds.has(id) || trainingIds.has(id))).toEqual([]);
  expect([...heldOutIds].filter((id) => trainingIds.has(id))).toEqual([]);
  expect(heldOutIds.size + testIds.size + trainingIds.size).toBe(trainingQueries.length);
  const rows = await h.repos.trajectories.listForJob(trained.jobId);
  expect(rows.length).toBe(10 * 4 * 8);
  expect(rows.filter((row) => heldOutIds.has(row.queryId) || testIds.has(row.queryId))).toEqual([]);

  // The controls: the same job, without policy updates and with shuffled advantages. Neither may
  // claim an improvement, on validation or test. (Welch's per-episode p is not asserted: it
  // treats a query's episodes as independent and can fall below 0.01 for a shuffled control
  // whose per-query test is not significant; that overstatement is why the verdict is per query.)
  for (const control of [noUpdate, shuffled]) {
    expect(control.status.status).toBe('completed');
    // Each control was evaluated as the trained job was (else the loop below asserts nothing).
    expect(control.stored.map(({ summary }) => [summary.iteration, summary.split])).toEqual(trained.stored.map(({ summary }) => [summary.iteration, summary.split]));
    for (const { summary } of control.stored) {
      expect({ significant: summary.significant_improvement, why: describeEvaluation(summary) }).toEqual({ significant: false, why: describeEvaluation(summary) });
    }
  }
  // (No "difference 0, p = 1" for the no-update job: its policy is the baseline on the same
  // seeds, so that holds by construction and could never fail. The test below re-runs it on
  // fresh episodes instead.)
}, 300_000);

test('control that can fail: the unchanged policy on fresh episodes (other seeds) does not look better than itself', async () => {
  // The untrained policy runs every validation query twice: once on the evaluation's seeds, once
  // on other seeds. The episodes differ (the model samples), so the comparison is between two
  // noisy draws of the same policy. An analysis that took per-episode noise, or one lucky query,
  // for improvement would report one here; the run-level verdict must not. It could fail: with
  // these fixed seeds the outcome is fixed, and a biased statistic (e.g. episodes as independent
  // units on correlated episodes) would flag the noise.
  const acts = createActivities({ prisma: h.prisma, llm: { baseURL: h.model.url } });
  const queries = evaluationSplit(TrainingJobInputSchema.parse({ job_id: 'x', agent_id: 'a', training_queries: trainingQueries, config })).heldOut;
  const run = async (seedBase: number) => {
    const episodes = [];
    for (const [queryIndex, task] of queries.entries()) {
      const result = (await new MockActivityEnvironment().run(acts.runEvaluationEpisodes, {
        job_id: 'control',
        run: 1,
        iteration: 0,
        policy: 'current' as const,
        query_index: queryIndex,
        task,
        system_prompt: renderSystemPrompt(initialPolicy(DEFAULT_BASE_PROMPT)),
        model: 'flow-sim-1',
        max_steps: 6,
        max_tokens: 512,
        timeout_seconds: 30,
        seeds: Array.from({ length: config.eval_samples }, (_, sample) => seedBase + 100 * queryIndex + sample),
      })) as EvaluationEpisodesResult;
      episodes.push(...result.episodes);
    }
    return episodes;
  };
  const [first, second] = [await run(1_000), await run(2_000)];
  // Different episodes (not the same run twice)...
  expect(first.map((e) => `${e.success}:${e.steps}`)).not.toEqual(second.map((e) => `${e.success}:${e.steps}`));
  // ...and no improvement claimed in either direction.
  for (const [a, b] of [[first, second], [second, first]]) {
    const evidence = runLevelEvidence(a, b, config.eval_samples);
    expect({ significant: evidence.significant_improvement, success: evidence.success_test.mean_difference }).toEqual({ significant: false, success: evidence.success_test.mean_difference });
    expect(evidence.success_test.bootstrap!.ci_low).toBeLessThanOrEqual(0);
  }
}, 120_000);

function rounded(value: unknown): unknown {
  if (typeof value === 'number') return Number(value.toPrecision(12));
  if (Array.isArray(value)) return value.map(rounded);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rounded(v)]));
  return value;
}

/** `flow <argv>` in-process, against the test API. */
async function flow(argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  err.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await main(argv, { stdout: out, stderr: err, stdin: Readable.from(['']), env: { FLOW_API_URL: api.url, FLOW_TOKEN: await api.token() } });
  await new Promise((r) => setImmediate(r));
  return { code, stdout, stderr };
}

test('training.evaluate runs any checkpoint on demand, on the test split of a job that has one: the same numbers as the test evaluation, stored as on_demand; bad requests get clear errors', async () => {
  expect(trainedJobId).toBeDefined();
  const jobId = trainedJobId!;
  const client = await api.client();

  // The best checkpoint is iteration 10 (its validation score is the higher). The job has a test
  // split, so the on-demand evaluation runs there (it only reports): same queries, seeds and
  // policy as the test evaluation after the last iteration, so the same result.
  const onDemand = await client.evaluate(jobId);
  expect(onDemand).toMatchObject({ job_id: jobId, run: 1, iteration: 10, kind: 'on_demand', split: 'test' });
  // (Compared to 12 significant digits: PostgreSQL's jsonb keeps numbers as decimals, so the
  // last binary digit of a stored double may differ.)
  const numbers = (e: EvaluationSummary) => rounded({ current: e.current, baseline: e.baseline, welch: e.welch, success_test: e.success_test, families: e.families });
  expect(numbers(onDemand)).toEqual(numbers(trainedTest!));
  expect(numbers(onDemand)).not.toEqual(numbers(trainedFinal!));
  expect(onDemand.cost_usd).toBeGreaterThan(0);
  const stored = await h.repos.progress.evaluations(jobId);
  expect(stored.map((row) => [row.iteration, row.kind])).toEqual([
    [5, 'scheduled'],
    [10, 'scheduled'],
    [10, 'test'],
    [10, 'on_demand'],
  ]);
  // Status shows the latest of each split: validation unchanged, test now the on-demand one.
  const status = await client.getStatus(jobId);
  expect(rounded(status.evaluation)).toEqual(rounded(trainedFinal));
  expect(rounded(status.test_evaluation)).toEqual(rounded(onDemand));

  // The CLI: a one-line verdict, or the JSON, for an explicit checkpoint.
  const line = await flow(['evaluate', jobId, '--checkpoint', '1:5']);
  expect(line).toMatchObject({ code: EXIT.OK, stderr: '' });
  expect(line.stdout).toMatch(
    /^iteration 5 \(run 1, test\): success \d+\.\d%, reward \d\.\d{3} vs baseline success \d+\.\d%, reward \d\.\d{3}; success per query [+-]\d\.\d{3}( \[-?\d\.\d{3}, -?\d\.\d{3}\])? over \d+ queries, paired p=\S+; per episode Welch t=(-?\d+\.\d{2}|n\/a), df=(\d+\.\d|n\/a), p=\S+: (no )?significant improvement at 0\.05(; warning: .*)?\n$/,
  );
  const json = await flow(['evaluate', jobId, '--checkpoint', 'latest', '--json']);
  expect(json.code).toBe(EXIT.OK);
  expect(EvaluationSummarySchema.parse(JSON.parse(json.stdout))).toMatchObject({ iteration: 10, kind: 'on_demand' });

  // Refusals, each with what to fix.
  const missing = await rpcError(client.evaluate(jobId, { run: 1, iteration: 7 }));
  expect(missing).toMatchObject({ code: -32024 });
  expect(missing.message).toContain('has no checkpoint at run 1, iteration 7; it has 1:5, 1:10');
  const tooSmall = await rpcError(client.evaluate(jobId, 'best', { budgetUsd: 0.000001 }));
  expect(tooSmall.code).toBe(-32602);
  expect(tooSmall.message).toMatch(/budget_usd: this evaluation \(\d+ held-out queries x 8 samples x 2 policies\) could cost up to \$[\d.]+, more than the \$[\d.]+ given/);
  const otherTenant = await api.client({ tenant: 'tenant-b' });
  expect((await rpcError(otherTenant.evaluate(jobId))).code).toBe(-32020);
  const badParams = await rpcError(client.call('training.evaluate', { job_id: jobId, checkpoint: 'first' } as never));
  expect(badParams.code).toBe(-32602);
  expect(badParams.message).toContain('checkpoint');
  const cliError = await flow(['evaluate', jobId, '--checkpoint', 'nope']);
  expect(cliError.code).toBe(EXIT.USAGE);
  expect(cliError.stderr).toContain('--checkpoint');
}, 120_000);

test('a job with a single query holds nothing out: it is not evaluated, and training.evaluate says why', async () => {
  const client = await api.client();
  const [only] = simulatedTaskSet({ queriesPerFamily: 1, seed: 5 });
  const { job_id } = await client.startGrpo({ agent_id: 'eval-single', training_queries: [only], config: { iterations: 1, batch_size: 1, group_size: 2 } });
  const done = await waitFor(() => client.getStatus(job_id), (s) => s.status === 'completed', 60_000, 200);
  expect(done.evaluation).toBeNull();
  expect(await h.repos.progress.evaluations(job_id)).toEqual([]);
  const refused = await rpcError(client.evaluate(job_id));
  expect(refused.code).toBe(-32602);
  expect(refused.message).toContain(`job "${job_id}" has no held-out queries to evaluate on`);
});

test('evaluateCheckpoint started by hand with invalid input fails at once, naming the field', async () => {
  const failure = await h.client.workflow
    .execute(evaluateCheckpoint, {
      workflowId: `eval-bad-${Date.now()}`,
      taskQueue: h.taskQueue,
      args: [{ job: { job_id: 'x', agent_id: 'a', training_queries: [] }, checkpoint: { run: 1, iteration: 1 }, budget_usd: 1 }],
    })
    .catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(/^invalid job input: training_queries: .*>=1/);
});

describe('evaluation episodes that go wrong', () => {
  const acts = () => createActivities({ prisma: h.prisma, llm: { baseURL: h.model.url } });
  const [task] = simulatedTaskSet({ queriesPerFamily: 1, seed: 5 });
  const base = {
    job_id: 'episodes',
    run: 1,
    iteration: 1,
    policy: 'current' as const,
    query_index: 0,
    system_prompt: renderSystemPrompt(initialPolicy(DEFAULT_BASE_PROMPT)),
    model: 'flow-sim-1',
    max_steps: 6,
    max_tokens: 64,
    timeout_seconds: 30,
    seeds: [1, 2],
  };

  it('a provider error, a timeout and a spent allowance each become a failed episode with its reason', async () => {
    const env = new MockActivityEnvironment();
    const failing = (await env.run(acts().runEvaluationEpisodes, { ...base, task: { ...task, prompt: `${task.prompt} PROVIDER-ERROR` } })) as EvaluationEpisodesResult;
    expect(failing.episodes.map((e) => [e.success, e.reward])).toEqual([
      [false, 0],
      [false, 0],
    ]);
    for (const episode of failing.episodes) expect(episode.error).toMatch(/^agent error: /);

    const slow = (await new MockActivityEnvironment().run(acts().runEvaluationEpisodes, { ...base, seeds: [1], timeout_seconds: 1, task: { ...task, prompt: `${task.prompt} NEVER-ANSWERS` } })) as EvaluationEpisodesResult;
    expect(slow.episodes[0].error).toBe('timed out after 1s');

    const broke = (await new MockActivityEnvironment().run(acts().runEvaluationEpisodes, { ...base, task, allowance_usd: 1e-9 })) as EvaluationEpisodesResult;
    expect(broke.episodes).toHaveLength(base.seeds.length);
    for (const episode of broke.episodes) expect(episode.error).toMatch(/allowance/);
    expect(broke.cost_usd).toBe(0);
  });

  it('a retried attempt (after a provider outage) keeps the episodes the failed one finished: it runs only the rest, and the result equals an undisturbed run', async () => {
    // A provider whose calls for the third seed fail while `outage` holds.
    const calls: number[] = [];
    let outage = true;
    const provider = await startSimulatedModelServer({
      respond: (body) => {
        calls.push(body.seed as number);
        if (outage && body.seed === 3) return { kind: 'http_error', status: 503 };
        return undefined;
      },
    });
    try {
      const activities = createActivities({ prisma: h.prisma, llm: { baseURL: provider.url } });
      const input = { ...base, task, seeds: [1, 2, 3] };
      let details: unknown;
      const first = new MockActivityEnvironment({ attempt: 1 });
      first.on('heartbeat', (d: unknown) => (details = d));
      const failed = await first.run(activities.runEvaluationEpisodes, input).catch((error: unknown) => error);
      expect(failed).toMatchObject({ type: 'ProviderUnavailable' });
      expect((details as { episodes: unknown[] }).episodes).toHaveLength(2);

      outage = false;
      calls.length = 0;
      const retried = (await new MockActivityEnvironment({ attempt: 2, heartbeatDetails: details }).run(activities.runEvaluationEpisodes, input)) as EvaluationEpisodesResult;
      expect(new Set(calls)).toEqual(new Set([3]));
      const undisturbed = (await new MockActivityEnvironment().run(activities.runEvaluationEpisodes, input)) as EvaluationEpisodesResult;
      expect(retried.episodes).toEqual(undisturbed.episodes);
    } finally {
      await provider.close();
    }
  });

  it('a cancelled evaluation stops and records nothing', async () => {
    const env = new MockActivityEnvironment();
    const running = env.run(acts().runEvaluationEpisodes, { ...base, task: { ...task, prompt: `${task.prompt} NEVER-ANSWERS` } });
    setTimeout(() => env.cancel(), 200);
    await expect(running).rejects.toThrow('evaluation cancelled with its job');
  });

  it('refuses to compare fewer than two episodes per policy', async () => {
    const episode = { reward: 1, success: true, steps: 1, scored_tool_calls: 0, correct_tool_calls: 0, error: null as string | null };
    const record = new MockActivityEnvironment().run(acts().recordEvaluation, {
      job_id: 'none',
      run: 1,
      iteration: 1,
      kind: 'scheduled' as const,
      held_out_queries: 1,
      samples_per_query: 1,
      current: [episode],
      baseline: [episode, episode],
      cost_usd: 0,
    });
    await expect(record).rejects.toThrow('an evaluation needs at least two episodes per policy, got 1 and 2');
  });
});

test('evaluate: false trains on every query, runs no evaluation, and training.evaluate needs evaluation_queries', async () => {
  const client = await api.client();
  const queries = simulatedTaskSet({ queriesPerFamily: 1, seed: 5 }).slice(0, 5);
  const { job_id } = await client.startGrpo({
    agent_id: 'eval-off',
    training_queries: queries,
    config: { iterations: 1, batch_size: 5, group_size: 2, evaluate: false, checkpoint_interval: 1 },
  });
  const done = await waitFor(() => client.getStatus(job_id), (s) => s.status === 'completed', 60_000, 200);
  expect(done.evaluation).toBeNull();
  const trained = new Set((await h.repos.trajectories.listForJob(job_id)).map((row) => row.queryId));
  expect([...trained].sort()).toEqual(queries.map((q) => q.id).sort());
  const refused = await rpcError(client.evaluate(job_id));
  expect(refused.code).toBe(-32602);
  expect(refused.message).toContain('trained on every query (config.evaluate is false) and has no evaluation_queries');
});
