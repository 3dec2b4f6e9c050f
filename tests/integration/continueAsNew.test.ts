/**
 * Long jobs: on a dev server that suggests continue-as-new after a few dozen history events, a
 * job continues as new several times and still finishes with the right totals (iterations,
 * trajectories, spend, policy), and budget Updates sent along the way are never lost.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { WorkflowCoverage } from '@temporalio/nyc-test-coverage';
import { startTrainingJob } from '../../api/trainingJobs';
import { startTemporal, type TemporalServer } from '../../workers/dev/devStack';
import { createTrainingWorker } from '../../workers/trainingWorker';
import { statusQuery, updateBudgetUpdate, type TrainingJobResult } from '../../workflows/trainingJob';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';
import { saveWorkflowCoverage } from '../support/workflowCoverage';
import { waitFor } from '../support/apiHarness';

let h: Harness;
let server: TemporalServer;

beforeAll(async () => {
  h = await startHarness({ model: { latencyMs: 20 } });
  server = await startTemporal({ headless: true, dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 } });
});
afterAll(async () => {
  await server?.stop();
  await h?.close();
});

test('a job that continues as new several times finishes with correct totals, and no Update is lost', async () => {
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const taskQueue = `can-${randomUUID()}`;
  // This worker is not the harness's, so it reports its sandbox coverage itself.
  const coverage = new WorkflowCoverage();
  const worker = await createTrainingWorker({
    connection: nativeConnection,
    taskQueue,
    prisma: h.prisma,
    llm: { baseURL: h.model.url },
    workflowBundle: { codePath: requireEnv('FLOW_TEST_WORKFLOW_BUNDLE') },
    workerOptionsHook: (options) => coverage.augmentWorkerOptionsWithBundle(options as never),
  });
  const config = { iterations: 5, batch_size: 1, group_size: 4, seed: 8, budget_usd: 10 };
  try {
    const { jobId } = await startTrainingJob(client, h.repos, jobRequest({ config }), { taskQueue });
    const handle = client.workflow.getHandle(jobId);
    // The status query, asked again if it is refused (a run that has just continued as new may not
    // have finished its first workflow task); what it answers is never retried away.
    const budgetInForce = () => waitFor(() => handle.query(statusQuery).catch(() => null), (status) => status !== null, 10_000, 50).then((status) => status!);
    const { result, budgets } = await worker.runUntil(async () => {
      const sent: number[] = [];
      // One raise per finished iteration, whichever run of the workflow is current then.
      for (let iteration = 1; iteration < config.iterations; iteration++) {
        while (((await h.repos.jobs.get(jobId))!.iteration ?? 0) < iteration) await new Promise((r) => setTimeout(r, 5));
        // The raise before is in force in whichever run is current now (carried across continue-as-new).
        if (sent.length > 0) expect((await budgetInForce()).budget_usd).toBe(sent[sent.length - 1]);
        const budget = 10 + iteration;
        const answer = await handle.executeUpdate(updateBudgetUpdate, { args: [budget] }).catch((e: Error) => e);
        if (answer instanceof Error) {
          // Only a finished job may turn a raise away; any other refusal is a lost Update.
          expect({ status: (await handle.describe()).status.name, error: answer.message }).toEqual({ status: 'COMPLETED', error: expect.any(String) });
          break;
        }
        expect(answer.budget_usd).toBe(budget);
        sent.push(answer.budget_usd);
      }
      const result = (await handle.result()) as TrainingJobResult;
      // In force in the workflow's own state at the end, not only in the row the Update's handler
      // writes (queried while the worker runs: a closed workflow's query is answered by a worker).
      if (sent.length > 0) expect((await budgetInForce()).budget_usd).toBe(sent[sent.length - 1]);
      return { result, budgets: sent };
    });

    expect(result.status).toBe('completed');
    expect(result.iterations).toBe(5);
    expect(result.trajectories).toBe(20);
    const rows = await h.repos.trajectories.listForJob(jobId);
    expect(rows).toHaveLength(20);
    expect(new Set(rows.map((r) => `${r.iteration}:${r.sampleIndex}`)).size).toBe(20);
    expect(result.success_rates).toHaveLength(5);
    const row = (await h.repos.jobs.get(jobId))!;
    expect(row.status).toBe('completed');
    expect(row.spendUsd).toBeCloseTo(result.spend_usd, 10);
    expect(row.spendUsd).toBeGreaterThanOrEqual(rows.reduce((sum, r) => sum + r.costUsd, 0) - 1e-9);
    // Every Update that was accepted is in force at the end.
    expect(budgets.length).toBeGreaterThan(0);
    expect(row.budgetUsd).toBe(budgets[budgets.length - 1]);
    // It really continued as new: several runs share the workflow id.
    let runs = 0;
    for (let i = 0; i < 50 && runs < 2; i++) {
      runs = (await client.workflow.count(`WorkflowId = "${jobId}"`)).count;
      if (runs < 2) await new Promise((r) => setTimeout(r, 100));
    }
    expect(runs).toBeGreaterThanOrEqual(2);
    // The same seed on an undisturbed server trains the same policy.
    const { jobId: referenceId } = await startTrainingJob(h.client, h.repos, jobRequest({ config }), { taskQueue: h.taskQueue });
    const expected: TrainingJobResult = await h.run(h.client.workflow.getHandle(referenceId).result());
    expect(result.policy).toEqual(expected.policy);
  } finally {
    saveWorkflowCoverage(coverage.coverageMapsData);
    await connection.close();
    await nativeConnection.close();
  }
}, 180_000);
