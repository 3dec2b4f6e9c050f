/**
 * One training job = one `trainingJob` workflow (workflow id = job id). This file wires
 * messages and runs the GRPO loop, one iteration after another; an iteration's steps are
 * workflows/trainingIteration.ts, the budget's wiring workflows/jobBudget.ts, the activity stubs
 * workflows/trainingJobActivities.ts. The job's state is the plain TrainingJobState, and all
 * arithmetic is in training/. Deterministic: no I/O, clock or randomness outside Temporal's APIs.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { TrainingJobInputSchema, type TrainingJobInput, type TrainingJobRequest } from '../training/jobInput';
import { describeZodError } from '../training/zodErrors';
import type { JobStatus, TrainingJobStatus } from '../training/jobStatus';
import { evaluationDue, evaluationSplit } from '../training/evaluation';
import { budgetRanOutReason, validateBudgetRaise } from '../training/budget';
import { ConcurrencyLimit } from './concurrencyLimit';
import { FLOW_AGENT_ID, FLOW_JOB_STATUS, FLOW_PRIORITY } from './searchAttributes';
import { iterationBudget } from './jobBudget';
import { activitiesFor, type Job } from './trainingJobActivities';
import { checkpointIfDue, evaluateHeldOut, runIteration } from './trainingIteration';
import { TrainingJobState, type TrainingJobResult } from './trainingJobState';

export type { TrainingJobResult, TrainingJobStatus };

// Messages first.
export const statusQuery = defineQuery<TrainingJobStatus>('status');
/** Sent before a cancellation request so the job row records why it was cancelled. */
export const cancelReasonSignal = defineSignal<[string]>('cancel_reason');
/** The global kill switch: on, the job pauses at the next batch boundary; off, it goes on. */
export const killSwitchSignal = defineSignal<[{ on: boolean; reason?: string }]>('kill_switch');
/** Raises the budget of a running job; the validator refuses anything but a positive raise. */
export const updateBudgetUpdate = defineUpdate<{ budget_usd: number }, [number]>('update_budget');

/**
 * Guards every change to the command sequence made after the first recorded histories
 * (tests/replay): price resolution at the start, the worst-case pre-flight and budget alerts.
 */
const BUDGET_PATCH = 'budget-preflight-v1';
/**
 * Guards the held-out split (training stops using the held-out queries, which changes batch
 * sizes) and the evaluation activities, absent from histories recorded before them.
 */
const EVALUATION_PATCH = 'heldout-evaluation-v1';
/**
 * Guards the test split (issue 14): fewer training queries, and the test evaluation after the
 * last iteration. Histories recorded before it keep the two-way split.
 */
const TEST_SPLIT_PATCH = 'test-split-v1';
/**
 * Guards budget admission per call (issue 15): each model call is admitted against the job's
 * budget in the spend ledger, so the worst-case reserve of a whole iteration, its allowances and
 * its pre-flight go; an iteration is started when what the costliest one so far cost still fits.
 */
const CALL_ADMISSION_PATCH = 'budget-call-admission-v1';
/**
 * Guards the order of a budget raise: recorded in the row first, then in force in the workflow.
 * The spend ledger admits each call against the row, so a raise in force before its record (the
 * order before) let the workflow plan on a budget the ledger did not know, and a record that
 * failed for good left the two apart.
 */
const BUDGET_RECORDED_FIRST_PATCH = 'budget-raise-recorded-first-v1';

export async function trainingJob(request: TrainingJobRequest): Promise<TrainingJobResult> {
  const input = validInput(request);
  const job: Job = { input, state: new TrainingJobState(input), acts: activitiesFor(input), limit: new ConcurrencyLimit(input.config.max_parallel) };
  const { state, acts } = job;
  const raises: Raises = { runRecorded: input.carry_over !== undefined, inFlight: 0, highestInFlight: 0 };
  const cancellation = handleMessages(job, raises);
  try {
    if (input.carry_over === undefined) {
      upsertSearchAttributes([
        { key: FLOW_AGENT_ID, value: input.agent_id },
        { key: FLOW_PRIORITY, value: input.config.priority },
        { key: FLOW_JOB_STATUS, value: 'running' },
      ]);
      await acts.records.startJobRun(jobRunRecord(job));
      raises.runRecorded = true;
      if (input.resume_from) {
        const checkpoint = await acts.records.loadCheckpoint({ job_id: input.job_id, which: input.resume_from });
        state.restoreCheckpoint(checkpoint);
      }
    }
    const budgeted = patched(BUDGET_PATCH);
    if (budgeted && !state.prices) {
      state.prices = await acts.budget.resolvePrices({ model: input.config.model, optimizer_model: input.config.optimizer_model, prices: input.config.prices });
    }
    const split = patched(EVALUATION_PATCH) && input.config.evaluate ? evaluationSplit(input, { withTest: patched(TEST_SPLIT_PATCH) }) : null;
    const guards = { budgeted, admission: budgeted && patched(CALL_ADMISSION_PATCH) };
    for (let iteration = state.iteration + 1; iteration <= input.config.iterations; iteration++) {
      await waitWhilePaused(job);
      const evaluates = split !== null && split.heldOut.length > 0 && evaluationDue(iteration, input.config);
      // The test split is evaluated once, after the last iteration; it only reports.
      const tests = split !== null && split.test.length > 0 && iteration === input.config.iterations;
      const { budget, refusal } = iterationBudget(job, iteration, split, { evaluates, tests }, guards);
      if (refusal && raises.inFlight > 0) {
        // A raise accepted and still being recorded may make room: decide once it is in force.
        // (Only raises recorded first count here, so histories from before that replay as they ran.)
        await condition(() => raises.inFlight === 0);
        iteration--;
        continue;
      }
      if (refusal) {
        await finish(job, 'budget_exceeded', refusal);
        return state.result();
      }
      const metrics = await runIteration(job, iteration, budget, split);
      if (metrics === null) {
        await finish(job, 'budget_exceeded', budgetRanOutReason(state.budgetUsd, state.spendUsd, iteration));
        return state.result();
      }
      if (evaluates) await evaluateHeldOut(job, iteration, split, budget);
      // Before the checkpoint, so the last checkpoint holds the whole spend; it cannot move the score.
      if (tests) await evaluateHeldOut(job, iteration, split, budget, 'test');
      await checkpointIfDue(job, iteration, metrics);
      if (workflowInfo().continueAsNewSuggested && iteration < input.config.iterations) {
        // No Update or signal may be lost across the switch.
        await condition(allHandlersFinished);
        await continueAsNew<typeof trainingJob>({ ...input, carry_over: state.carryOver() });
      }
    }
    await finish(job, 'completed', null);
    return state.result();
  } catch (error) {
    if (error instanceof ContinueAsNew) throw error;
    if (isCancellation(error)) {
      await finish(job, 'cancelled', cancellation.reason);
    } else {
      await finish(job, 'failed', failureReason(error));
    }
    throw error;
  }
}

/** Jobs can be started from the `temporal` CLI, so the workflow validates its own input. */
function validInput(request: TrainingJobRequest): TrainingJobInput {
  const parsed = TrainingJobInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid training job input: ${describeZodError(parsed.error, request)}`, 'InvalidTrainingJobInput');
  }
  return parsed.data;
}

/** The job's row for this run (created when the job was started outside the API). */
function jobRunRecord({ input, state }: Job) {
  const { job_id, agent_id, tenant_id, owner_id, run } = input;
  return { job_id, agent_id, tenant_id, owner_id, priority: input.config.priority, config: input.config, budget_usd: state.budgetUsd, run };
}

/** Budget raises as the handler sees them: whether the run's row is written, and the raises being recorded. */
interface Raises {
  /** startJobRun has written this run's row (a raise recorded before it would be overwritten). */
  runRecorded: boolean;
  /** Raises accepted and not yet recorded, and the highest of them. */
  inFlight: number;
  highestInFlight: number;
}

/**
 * Registers every message handler, before the first await: status, the cancellation's reason, the
 * kill switch and budget raises. Returns where the cancellation reason is kept.
 */
function handleMessages({ input, state, acts }: Job, raises: Raises): { reason: string } {
  const cancellation = { reason: 'cancelled by request' };
  setHandler(statusQuery, () => state.snapshot());
  setHandler(cancelReasonSignal, (reason) => {
    cancellation.reason = reason;
  });
  setHandler(killSwitchSignal, ({ on }) => {
    state.paused = on;
  });
  setHandler(
    updateBudgetUpdate,
    async (budgetUsd) => {
      if (!patched(BUDGET_RECORDED_FIRST_PATCH)) {
        state.budgetUsd = budgetUsd;
        await acts.records.recordBudget({ job_id: input.job_id, budget_usd: budgetUsd });
        return { budget_usd: budgetUsd };
      }
      raises.inFlight++;
      raises.highestInFlight = Math.max(raises.highestInFlight, budgetUsd);
      try {
        // A raise taken before the run's start is recorded (an update held while no worker ran)
        // waits for it: the start writes the run's budget over a queued row.
        await condition(() => raises.runRecorded);
        await acts.records.recordBudget({ job_id: input.job_id, budget_usd: budgetUsd, run: input.run });
        // Two raises in flight may finish in either order: the higher stays (as in the row).
        state.budgetUsd = Math.max(state.budgetUsd, budgetUsd);
      } finally {
        if (--raises.inFlight === 0) raises.highestInFlight = 0;
      }
      return { budget_usd: state.budgetUsd };
    },
    {
      validator: (budgetUsd) => {
        // Above any raise still being recorded too (validators do not run on replay).
        const problem = validateBudgetRaise(Math.max(state.budgetUsd, raises.highestInFlight), budgetUsd);
        if (problem) throw new Error(problem);
      },
    },
  );
  return cancellation;
}

/** Ends the job: its state, its row and its search attribute say `status`. */
async function finish({ input, state, acts }: Job, status: JobStatus, reason: string | null): Promise<void> {
  state.end(status, reason);
  // Runs even when the workflow is being cancelled, so Temporal and the database agree.
  await CancellationScope.nonCancellable(async () => {
    await acts.records.finishJob({ job_id: input.job_id, status, reason });
    upsertSearchAttributes([{ key: FLOW_JOB_STATUS, value: status }]);
  });
}

/** At a batch boundary: while the kill switch is on, the job is `paused` and spends nothing. */
async function waitWhilePaused(job: Job): Promise<void> {
  if (!job.state.paused) return;
  await markPaused(job, true);
  await condition(() => !job.state.paused);
  await markPaused(job, false);
}

/** The job's status says paused or running again, in the workflow, Temporal and the row alike. */
async function markPaused({ input, state, acts }: Job, paused: boolean): Promise<void> {
  const status = paused ? 'paused' : 'running';
  state.status = status;
  if (paused) state.phase = 'paused';
  upsertSearchAttributes([{ key: FLOW_JOB_STATUS, value: status }]);
  await acts.records.setJobStatus({ job_id: input.job_id, status });
}

/** The root cause's message: an activity failure's own message is only "Activity task failed". */
function failureReason(error: unknown): string {
  let cause = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}
