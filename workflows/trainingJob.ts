/**
 * One training job = one `trainingJob` workflow (workflow id = job id). This file wires
 * messages and activities and runs the GRPO loop; the job's state is the plain
 * TrainingJobState, and all arithmetic is in training/. Deterministic: no I/O, clock or
 * randomness outside Temporal's APIs.
 */
import {
  ActivityCancellationType,
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
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { TrainingActivities } from '../activities';
import type { TrajectorySummary } from '../activities/trajectories';
import { TrainingJobInputSchema, type TrainingJobInput, type TrainingJobRequest } from '../training/jobInput';
import { describeZodError } from '../training/zodErrors';
import { selectBatch } from '../training/batches';
import { iterationMetrics, type GroupOutcome, type IterationMetrics } from '../training/iterationMetrics';
import type { JobStatus, TrainingJobStatus } from '../training/jobStatus';
import { renderSystemPrompt } from '../training/policy';
import { MAX_OPTIMIZER_ATTEMPTS } from '../training/lessonOperations';
import { evaluationDue, evaluationSplit, type EvaluationSplit, type EvaluationSplitName } from '../training/evaluation';
import { agentRunSettings, evaluateOnHeldOut } from './heldOutEvaluation';
import { hygienicPolicyUpdate, type HygieneStepResult } from './policyHygieneStep';
import {
  alertsToRaise,
  callWorstCaseUsd,
  formatUsd,
  iterationReserve,
  type IterationReserve,
  preflight,
  reserveRefusal,
  validateBudgetRaise,
} from '../training/budget';
import { hashString } from '../training/statistics';
import { ConcurrencyLimit, settleAll } from './concurrencyLimit';
import { FLOW_AGENT_ID, FLOW_JOB_STATUS, FLOW_PRIORITY } from './searchAttributes';
import { cpuTaskQueue, trajectoryTaskQueue } from './taskQueues';
import { evaluationEpisodeOptions, HEARTBEAT_TIMEOUT, infrastructureRetry } from './activityOptions';
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
 * Guards policy hygiene (issue 16): with `policy_hygiene` on, a proposal activity per group and
 * one consolidation activity (and the gate's episodes) replace the single policy update.
 */
const HYGIENE_PATCH = 'policy-hygiene-v1';

export async function trainingJob(request: TrainingJobRequest): Promise<TrainingJobResult> {
  // Jobs can be started from the `temporal` CLI, so the workflow validates its own input.
  const parsed = TrainingJobInputSchema.safeParse(request);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(`invalid training job input: ${describeZodError(parsed.error, request)}`, 'InvalidTrainingJobInput');
  }
  const input = parsed.data;
  const state = new TrainingJobState(input);
  let cancelReason = 'cancelled by request';
  const acts = activitiesFor(input);
  setHandler(statusQuery, () => state.snapshot());
  setHandler(cancelReasonSignal, (reason) => {
    cancelReason = reason;
  });
  setHandler(killSwitchSignal, ({ on }) => {
    state.paused = on;
  });
  setHandler(
    updateBudgetUpdate,
    async (budgetUsd) => {
      state.budgetUsd = budgetUsd;
      await acts.records.recordBudget({ job_id: input.job_id, budget_usd: budgetUsd });
      return { budget_usd: budgetUsd };
    },
    {
      validator: (budgetUsd) => {
        const problem = validateBudgetRaise(state.budgetUsd, budgetUsd);
        if (problem) throw new Error(problem);
      },
    },
  );

  const finish = async (status: JobStatus, reason: string | null) => {
    state.end(status, reason);
    // Runs even when the workflow is being cancelled, so Temporal and the database agree.
    await CancellationScope.nonCancellable(async () => {
      await acts.records.finishJob({ job_id: input.job_id, status, reason });
      upsertSearchAttributes([{ key: FLOW_JOB_STATUS, value: status }]);
    });
  };

  try {
    const continued = input.carry_over !== undefined;
    if (!continued) {
      upsertSearchAttributes([
        { key: FLOW_AGENT_ID, value: input.agent_id },
        { key: FLOW_PRIORITY, value: input.config.priority },
        { key: FLOW_JOB_STATUS, value: 'running' },
      ]);
      await acts.records.startJobRun({
        job_id: input.job_id,
        agent_id: input.agent_id,
        tenant_id: input.tenant_id,
        owner_id: input.owner_id,
        priority: input.config.priority,
        config: input.config,
        budget_usd: state.budgetUsd,
        run: input.run,
      });
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
    const limit = new ConcurrencyLimit(input.config.max_parallel);
    const admission = budgeted && patched(CALL_ADMISSION_PATCH);
    for (let iteration = state.iteration + 1; iteration <= input.config.iterations; iteration++) {
      await waitWhilePaused(input, state, acts);
      const evaluates = split !== null && split.heldOut.length > 0 && evaluationDue(iteration, input.config);
      // The test split is evaluated once, after the last iteration; it only reports.
      const tests = split !== null && split.test.length > 0 && iteration === input.config.iterations;
      const evaluations = evaluationQueries(state, split, evaluates, tests);
      const reserve = budgeted && !admission ? legacyReserve(input, state, split, evaluations, evaluates || tests) : null;
      const refusal = admission
        ? admissionRefusal(input, state, iteration, evaluations * input.config.eval_samples)
        : reserveRefusal(state.spendUsd, state.budgetUsd, iteration, reserve, input.config.budget_usd);
      if (refusal) {
        await finish('budget_exceeded', refusal);
        return state.result();
      }
      const budget: IterationBudget = { reserve, admission };
      const metrics = await runIteration(input, state, acts, limit, iteration, budget, split);
      if (metrics === null) {
        await finish(
          'budget_exceeded',
          `the ${formatUsd(state.budgetUsd)} budget ran out during iteration ${iteration} (spent ${formatUsd(state.spendUsd)}): its model calls were refused, so the policy was not updated`,
        );
        return state.result();
      }
      if (evaluates) await evaluateHeldOut(input, state, acts, limit, iteration, split, budget);
      // Before the checkpoint, so the last checkpoint holds the whole spend; it cannot move the score.
      if (tests) await evaluateHeldOut(input, state, acts, limit, iteration, split, budget, 'test');
      await checkpointIfDue(input, state, acts, iteration, metrics);
      if (workflowInfo().continueAsNewSuggested && iteration < input.config.iterations) {
        // No Update or signal may be lost across the switch.
        await condition(allHandlersFinished);
        await continueAsNew<typeof trainingJob>({ ...input, carry_over: state.carryOver() });
      }
    }
    await finish('completed', null);
    return state.result();
  } catch (error) {
    if (error instanceof ContinueAsNew) throw error;
    if (isCancellation(error)) {
      await finish('cancelled', cancelReason);
    } else {
      await finish('failed', failureReason(error));
    }
    throw error;
  }
}


/**
 * Under call admission, why iteration `iteration` must not start, or null: the budget is spent, or
 * the evaluation due with it (its episodes at the costliest trajectory's cost so far) would not
 * fit in what is left: an evaluation cut short would report on the episodes that had money, not
 * on the policy. Training itself is admitted call by call (the spend ledger), so the job spends
 * its budget nearly to the end, and an iteration that runs out stops there.
 */
function admissionRefusal(input: TrainingJobInput, state: TrainingJobState, iteration: number, episodes: number): string | null {
  const evaluation = episodes * state.costliestTrajectoryUsd;
  // Less than this and not even one agent call (its max_tokens out, before any prompt) can be admitted.
  const oneCall = callWorstCaseUsd(state.prices!.agent, input.config.max_tokens, 0);
  if (preflight(state.spendUsd, evaluation + oneCall, state.budgetUsd).ok) return null;
  return evaluation > 0
    ? `spent ${formatUsd(state.spendUsd)} of a ${formatUsd(state.budgetUsd)} budget; the evaluation due with iteration ${iteration} would cost about ${formatUsd(evaluation)}, so the iteration was not started`
    : `spent ${formatUsd(state.spendUsd)} of a ${formatUsd(state.budgetUsd)} budget: not enough for one more model call before iteration ${iteration}`;
}

/**
 * The query evaluations (a query under one policy) an iteration runs: held-out (with the
 * baseline the first time) and, after the last iteration, the test split for both policies.
 */
function evaluationQueries(state: TrainingJobState, split: EvaluationSplit | null, evaluates: boolean, tests: boolean): number {
  if (!split) return 0;
  return (evaluates ? split.heldOut.length * (state.baselineEpisodes ? 1 : 2) : 0) + (tests ? split.test.length * 2 : 0);
}

/** The worst-case reserve of jobs started before call admission (training/budget.ts computes it). */
function legacyReserve(input: TrainingJobInput, state: TrainingJobState, split: EvaluationSplit | null, evaluations: number, evaluated: boolean): IterationReserve {
  const { config } = input;
  return iterationReserve({
    ...config,
    batch_size: Math.min(config.batch_size, split ? split.trainingIndices.length : input.training_queries.length),
    optimizer_attempts: MAX_OPTIMIZER_ATTEMPTS,
    prices: state.prices!,
    evaluation_queries: evaluated ? evaluations : 0,
    spend_usd: state.spendUsd,
    budget_usd: state.budgetUsd,
  });
}

/** At a batch boundary: while the kill switch is on, the job is `paused` and spends nothing. */
async function waitWhilePaused(input: TrainingJobInput, state: TrainingJobState, acts: Activities): Promise<void> {
  if (!state.paused) return;
  await markPaused(input, state, acts, true);
  await condition(() => !state.paused);
  await markPaused(input, state, acts, false);
}

/** The job's status says paused or running again, in the workflow, Temporal and the row alike. */
async function markPaused(input: TrainingJobInput, state: TrainingJobState, acts: Activities, paused: boolean): Promise<void> {
  const status = paused ? 'paused' : 'running';
  state.status = status;
  if (paused) state.phase = 'paused';
  upsertSearchAttributes([{ key: FLOW_JOB_STATUS, value: status }]);
  await acts.records.setJobStatus({ job_id: input.job_id, status });
}


/**
 * How an iteration is held to its budget: the worst-case reserve and its allowances (jobs started
 * before CALL_ADMISSION_PATCH), or admission of each call in the spend ledger. Neither: histories
 * from before BUDGET_PATCH.
 */
interface IterationBudget {
  reserve: IterationReserve | null;
  admission: boolean;
}

/** The budget fields of an activity's input: its allowance under a reserve; the job's prices whenever spend is guarded. */
function budgetFields(config: TrainingJobInput['config'], budget: IterationBudget, allowanceUsd: (reserve: IterationReserve) => number) {
  if (budget.reserve) return { allowance_usd: allowanceUsd(budget.reserve), prices: config.prices };
  return budget.admission ? { prices: config.prices } : {};
}


/** Raises each alert threshold once, as soon as spend crosses it. */
async function raiseBudgetAlerts(input: TrainingJobInput, state: TrainingJobState, acts: Activities): Promise<void> {
  for (const threshold of alertsToRaise(state.spendUsd, state.budgetUsd, state.alertsRaised)) {
    // Marked before any await, so concurrent groups never raise the same alert twice.
    state.alertsRaised.push(threshold);
    const alert = { job_id: input.job_id, agent_id: input.agent_id, threshold, spend_usd: state.spendUsd, budget_usd: state.budgetUsd };
    await acts.records.recordBudgetAlert(alert);
    await acts.budget.sendBudgetAlert(alert);
  }
}

/** The root cause's message: an activity failure's own message is only "Activity task failed". */
function failureReason(error: unknown): string {
  let cause = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? cause.message : String(cause);
}

type Activities = ReturnType<typeof activitiesFor>;

/** Activity stubs grouped by what they need from Temporal. */
function activitiesFor(input: TrainingJobInput) {
  const retried = infrastructureRetry(input);
  const trajectories = proxyActivities<Pick<TrainingActivities, 'runTrajectory'>>({
    // Worker pools (workflows/taskQueues.ts); task priority is inherited from the workflow.
    taskQueue: trajectoryTaskQueue(workflowInfo().taskQueue),
    // The agent's own timeout ends a run as a failed trajectory; this bound is for lost workers.
    startToCloseTimeout: `${input.config.trajectory_timeout_seconds + 60}s`,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    // Wait for in-flight trajectories to stop before the job is recorded cancelled.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    ...retried,
  });
  const scoring = proxyActivities<Pick<TrainingActivities, 'rewardGroup' | 'computeGroupAdvantages'>>({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    // An LLM judge makes one call per trajectory (RULER one per group) with a slow model.
    startToCloseTimeout: '5m',
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    ...retried,
  });
  const policy = proxyActivities<Pick<TrainingActivities, 'updatePolicy' | 'proposeLessonOperations'>>({
    // LLM-bound (the optimizer model distils lessons), so with the trajectories.
    taskQueue: trajectoryTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '5m',
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    ...retried,
  });
  const records = proxyActivities<
    Pick<
      TrainingActivities,
      | 'startJobRun'
      | 'recordJobProgress'
      | 'recordIteration'
      | 'saveCheckpoint'
      | 'loadCheckpoint'
      | 'finishJob'
      | 'setJobStatus'
      | 'recordBudget'
      | 'recordBudgetAlert'
      | 'recordEvaluation'
    >
  >({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    // Single writes: a lost worker is noticed after this, not minutes later.
    startToCloseTimeout: '10s',
    ...retried,
  });
  const budget = proxyActivities<Pick<TrainingActivities, 'resolvePrices' | 'sendBudgetAlert'>>({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '30s',
    // A webhook that is down is retried for a while, never forever: the job goes on regardless.
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 8 },
  });
  const evaluation = proxyActivities<Pick<TrainingActivities, 'runEvaluationEpisodes'>>(evaluationEpisodeOptions(input));
  // Policy hygiene's consolidation: pure arithmetic and a tokenizer over one iteration's rows.
  const consolidation = proxyActivities<Pick<TrainingActivities, 'consolidatePolicy'>>({
    taskQueue: cpuTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: '2m',
    ...retried,
  });
  return { trajectories, scoring, policy, records, budget, evaluation, consolidation };
}

async function runIteration(
  input: TrainingJobInput,
  state: TrainingJobState,
  acts: Activities,
  limit: ConcurrencyLimit,
  iteration: number,
  budget: IterationBudget,
  split: EvaluationSplit | null,
): Promise<IterationMetrics | null> {
  const { config } = input;
  const alerts = budget.reserve !== null || budget.admission;
  // With a held-out split, batches come from the training part only (indices into training_queries).
  const batch = split
    ? selectBatch(split.trainingIndices.length, iteration, config.batch_size, config.seed).map((i) => split.trainingIndices[i])
    : selectBatch(input.training_queries.length, iteration, config.batch_size, config.seed);
  const systemPrompt = renderSystemPrompt(state.policy);
  state.beginIteration(batch.length);

  const groups = await settleAll(
    batch.map(async (queryIndex) => {
      const task = input.training_queries[queryIndex];
      const summaries = await settleAll(
        Array.from({ length: config.group_size }, (_, sampleIndex) =>
          limit.run(() =>
            acts.trajectories.runTrajectory({
              job_id: input.job_id,
              agent_id: input.agent_id,
              run: input.run,
              iteration,
              query_index: queryIndex,
              sample_index: sampleIndex,
              task,
              system_prompt: systemPrompt,
              ...agentRunSettings(input),
              // The job id is left out on purpose: two jobs with the same seed and input train alike.
              seed: hashString(`${config.seed}:${input.run}:${iteration}:${queryIndex}:${sampleIndex}`),
              ...budgetFields(config, budget, (reserve) => reserve.perTrajectory),
            }),
          ),
        ),
      );
      const trajectoryIds = summaries.map((s) => s.trajectory_id);
      const scored = await acts.scoring.rewardGroup({
        trajectory_ids: trajectoryIds,
        // Absent, the reward registry's default for the agent type.
        reward_strategy: config.reward_strategy,
        agent_type: input.agent.type,
        task: { prompt: task.prompt, expected_answer: task.expected_answer, expected_tool: task.expected_tool },
        judge: { model: config.judge?.model ?? config.optimizer_model, rubric: config.judge?.rubric },
        max_tokens: config.max_tokens,
        seed: hashString(`${config.seed}:${input.run}:${iteration}:${queryIndex}:judge`),
        // A judge may spend what this group's runs left of their allowances, so the reserve still holds.
        ...budgetFields(config, budget, (reserve) => Math.max(0, reserve.perTrajectory * summaries.length - summaries.reduce((sum, s) => sum + billedUsd(s), 0))),
      });
      // What the judge's LLM calls cost (absent in histories from before judges).
      state.addSpend(scored.cost_usd ?? 0);
      const { advantages } = await acts.scoring.computeGroupAdvantages({
        trajectory_ids: trajectoryIds,
        rewards: scored.rewards,
        // Trajectories whose reward failed validation get advantage 0 and are left out of the group's.
        reward_errors: scored.reward_errors,
        step_counts: scored.step_counts,
        gamma: config.gamma,
        credit_assignment: config.credit_assignment,
        control: config.control,
        seed: hashString(`${config.seed}:${input.run}:${iteration}:${queryIndex}:shuffle`),
      });
      state.recordGroup(summaries.length, summaries.reduce((sum, s) => sum + billedUsd(s), 0));
      state.noteTrajectoryCosts(summaries.map(billedUsd));
      // Published after every group, so status from the row is never more than a group behind.
      await acts.records.recordJobProgress({ job_id: input.job_id, iteration: state.iteration, phase: 'collecting', spend_usd: state.spendUsd });
      if (alerts) await raiseBudgetAlerts(input, state, acts);
      const outcome: GroupOutcome = { rewards: scored.rewards, successes: scored.successes, advantages, logProbs: scored.log_probs, invalidOutputs: scored.invalid_outputs };
      return { task, trajectoryIds, outcome, budgetStopped: summaries.some((s) => s.allowance_exceeded) };
    }),
  );
  // Under call admission a trajectory stopped by the budget failed for want of money, not skill:
  // no update learns from that iteration, and the job ends.
  if (budget.admission && groups.some((group) => group.budgetStopped)) return null;

  state.phase = 'updating_policy';
  // The `no_policy_update` control keeps the untrained policy: it must show no improvement.
  const hygienic = config.control !== 'no_policy_update' && config.policy_hygiene && patched(HYGIENE_PATCH);
  const update = config.control === 'no_policy_update' ? keepPolicy(state) : hygienic ? await hygienicPolicyUpdate(
    // Named one by one: an activity proxy has no keys to spread.
    {
      proposeLessonOperations: acts.policy.proposeLessonOperations,
      consolidatePolicy: acts.consolidation.consolidatePolicy,
      runEvaluationEpisodes: acts.evaluation.runEvaluationEpisodes,
    },
    {
      input,
      policy: state.policy,
      iteration,
      groups: groups.map((group, i) => ({ queryIndex: batch[i], task: group.task, trajectoryIds: group.trajectoryIds, advantages: group.outcome.advantages })),
      validation: split ? split.heldOut : [],
      limit,
    },
  ) : await acts.policy.updatePolicy({
    policy: state.policy,
    candidates: groups.flatMap((group) =>
      group.trajectoryIds.map((id, i) => ({ trajectory_id: id, advantage: group.outcome.advantages[i], query: group.task.prompt })),
    ),
    learning_rate: config.learning_rate,
    clip: config.clip,
    max_lessons: config.max_lessons,
    optimizer_model: config.optimizer_model,
    max_tokens: config.max_tokens,
    seed: hashString(`${config.seed}:${input.run}:${iteration}:policy`),
    credit_assignment: config.credit_assignment,
    policy_update: config.policy_update,
    // The token budget holds for every job (issue 16), counted with the agent model's tokenizer.
    max_policy_tokens: config.max_policy_tokens,
    model: config.model,
    // What the groups left of the budget, never more than the update's worst case.
    ...budgetFields(config, budget, (reserve) => Math.max(0, Math.min(reserve.policyUpdate, state.budgetUsd - state.spendUsd))),
  });
  state.addSpend(update.cost_usd);
  if (alerts) await raiseBudgetAlerts(input, state, acts);
  // Invalid model outputs (issue 13) are counted per iteration: the agents' from the reward step, the updater's here.
  const metrics: IterationMetrics = {
    ...iterationMetrics(groups.map((group) => group.outcome), update.churn, update.invalid_outputs ?? 0),
    // Policy hygiene's refusals and removals are recorded with the iteration, never skipped silently.
    ...('hygiene' in update ? { policy_hygiene: (update as HygieneStepResult).hygiene } : {}),
  };
  state.finishIteration(iteration, metrics, update.policy);

  await acts.records.recordIteration({
    job_id: input.job_id,
    run: input.run,
    iteration,
    metrics,
    policy_version: update.policy.version,
    spend_usd: state.spendUsd,
  });
  await acts.records.recordJobProgress({
    job_id: input.job_id,
    iteration,
    phase: 'iteration_done',
    spend_usd: state.spendUsd,
    last_metrics: metrics,
  });
  return metrics;
}

/** What a trajectory was billed, killed attempts included (histories from before the spend ledger: its steps' cost). */
function billedUsd(summary: TrajectorySummary): number {
  return summary.billed_usd ?? summary.cost_usd;
}

function keepPolicy(state: TrainingJobState) {
  return { policy: state.policy, cost_usd: 0, churn: { added: 0, edited: 0, reweighted: 0, dropped: 0 }, invalid_outputs: 0 };
}

/** Every checkpoint_interval iterations and at the end; scored by the latest evaluation if any. */
async function checkpointIfDue(input: TrainingJobInput, state: TrainingJobState, acts: Activities, iteration: number, metrics: IterationMetrics) {
  const { config } = input;
  if (iteration % config.checkpoint_interval !== 0 && iteration !== config.iterations) return;
  state.phase = 'checkpointing';
  await acts.records.saveCheckpoint({
    job_id: input.job_id,
    run: input.run,
    iteration,
    policy: state.policy,
    optimizer_state: { spend_usd: state.spendUsd, success_rates: state.successRates, trajectories: state.trajectories },
    metrics: state.evaluation?.iteration === iteration ? { ...metrics, evaluation: state.evaluation } : metrics,
    score: state.checkpointScore(metrics),
  });
}

/**
 * FLOW-010: the trained policy and the untrained baseline each run every held-out query
 * eval_samples times, with the same seeds, so only the policy differs. The baseline runs once
 * per run (it never changes); the activity records the statistics, which status then shows.
 */
async function evaluateHeldOut(
  input: TrainingJobInput,
  state: TrainingJobState,
  acts: Activities,
  limit: ConcurrencyLimit,
  iteration: number,
  split: EvaluationSplit,
  budget: IterationBudget,
  on: EvaluationSplitName = 'validation',
) {
  const { reserve } = budget;
  state.phase = 'evaluating';
  const test = on === 'test';
  const evaluated = await evaluateOnHeldOut(
    { runEvaluationEpisodes: acts.evaluation.runEvaluationEpisodes, recordEvaluation: acts.records.recordEvaluation },
    {
      input,
      run: input.run,
      iteration,
      kind: test ? 'test' : 'scheduled',
      policy: state.policy,
      heldOut: test ? split.test : split.heldOut,
      baselineEpisodes: test ? null : state.baselineEpisodes,
      split: on,
      ...(reserve ? { allowancePerQueryUsd: reserve.perEvaluationQuery } : {}),
      limit,
    },
    async (costUsd) => {
      state.addSpend(costUsd);
      if (reserve || budget.admission) await raiseBudgetAlerts(input, state, acts);
    },
  );
  // The test split only reports: it neither scores checkpoints nor replaces the validation result.
  if (!test) {
    state.baselineEpisodes = evaluated.baselineEpisodes;
    state.evaluation = evaluated.summary;
  }
  await acts.records.recordJobProgress({ job_id: input.job_id, iteration, phase: 'evaluated', spend_usd: state.spendUsd });
}
