/**
 * One GRPO iteration of a training job, step by step: the batch, a group of trajectories per
 * query (run, scored, advantages computed, progress published), the policy update, the
 * iteration's record; then, when due, the held-out evaluation and the checkpoint. Every step's
 * activity input is built by a plain function; the awaits stay where they always were, so the
 * command sequence (and its interleaving across concurrent groups) is unchanged.
 */
import { patched } from '@temporalio/workflow';
import type { TrajectorySummary } from '../activities/trajectories';
import { selectBatch } from '../training/batches';
import { judgeAllowanceUsd, policyUpdateAllowanceUsd } from '../training/budget';
import type { EvaluationSplit, EvaluationSplitName } from '../training/evaluation';
import { iterationMetrics, type GroupOutcome, type IterationMetrics } from '../training/iterationMetrics';
import { renderSystemPrompt } from '../training/policy';
import { hashString } from '../training/statistics';
import { settleAll } from './concurrencyLimit';
import { agentRunSettings, evaluateOnHeldOut } from './heldOutEvaluation';
import { hygienicPolicyUpdate, type HygieneStepResult } from './policyHygieneStep';
import { budgetFields, type IterationBudget, raiseBudgetAlerts, spendGuarded } from './jobBudget';
import type { Job } from './trainingJobActivities';

type Task = Job['input']['training_queries'][number];

/**
 * Guards policy hygiene (issue 16): with `policy_hygiene` on, a proposal activity per group and
 * one consolidation activity (and the gate's episodes) replace the single policy update.
 */
const HYGIENE_PATCH = 'policy-hygiene-v1';

/** What one group (one query, group_size trajectories) left for the policy update. */
interface GroupResult {
  task: Task;
  trajectoryIds: string[];
  outcome: GroupOutcome;
  /** A trajectory of the group was stopped by the budget (its allowance, or a refused call). */
  budgetStopped: boolean;
}

/** Runs iteration `iteration`; null when, under call admission, the budget stopped a trajectory (no update learns from it). */
export async function runIteration(job: Job, iteration: number, budget: IterationBudget, split: EvaluationSplit | null): Promise<IterationMetrics | null> {
  const { input, state, acts } = job;
  const batch = iterationBatch(job, iteration, split);
  const systemPrompt = renderSystemPrompt(state.policy);
  state.beginIteration(batch.length);
  const groups = await settleAll(batch.map((queryIndex) => runGroup(job, iteration, queryIndex, systemPrompt, budget)));
  // Under call admission a trajectory stopped by the budget failed for want of money, not skill:
  // no update learns from that iteration, and the job ends.
  if (budget.admission && groups.some((group) => group.budgetStopped)) return null;

  state.phase = 'updating_policy';
  const { config } = input;
  const hygienic = config.control !== 'no_policy_update' && config.policy_hygiene && patched(HYGIENE_PATCH);
  // The `no_policy_update` control keeps the untrained policy: it must show no improvement.
  const update =
    config.control === 'no_policy_update'
      ? keepPolicy(job)
      : hygienic
        ? await hygienicPolicyUpdate(hygieneActivities(job), hygieneRequest(job, iteration, batch, groups, split))
        : await acts.policy.updatePolicy(policyUpdateInput(job, iteration, groups, budget));
  state.addSpend(update.cost_usd);
  if (spendGuarded(budget)) await raiseBudgetAlerts(job);
  const metrics: IterationMetrics = {
    // Invalid model outputs (issue 13) are counted per iteration: the agents' from the reward step, the updater's here.
    ...iterationMetrics(groups.map((group) => group.outcome), update.churn, update.invalid_outputs ?? 0),
    // Policy hygiene's refusals and removals are recorded with the iteration, never skipped silently.
    ...('hygiene' in update ? { policy_hygiene: (update as HygieneStepResult).hygiene } : {}),
  };
  state.finishIteration(iteration, metrics, update.policy);
  await acts.records.recordIteration({ job_id: input.job_id, run: input.run, iteration, metrics, policy_version: update.policy.version, spend_usd: state.spendUsd });
  await acts.records.recordJobProgress({ job_id: input.job_id, iteration, phase: 'iteration_done', spend_usd: state.spendUsd, last_metrics: metrics });
  return metrics;
}

/** The iteration's queries: with a held-out split, from the training part only (indices into training_queries). */
function iterationBatch({ input }: Job, iteration: number, split: EvaluationSplit | null): number[] {
  const { config } = input;
  return split
    ? selectBatch(split.trainingIndices.length, iteration, config.batch_size, config.seed).map((i) => split.trainingIndices[i])
    : selectBatch(input.training_queries.length, iteration, config.batch_size, config.seed);
}

/** One group: its trajectories, their rewards and advantages; progress is published after every group. */
async function runGroup(job: Job, iteration: number, queryIndex: number, systemPrompt: string, budget: IterationBudget): Promise<GroupResult> {
  const { input, state, acts, limit } = job;
  const task = input.training_queries[queryIndex];
  const summaries = await settleAll(
    Array.from({ length: input.config.group_size }, (_, sampleIndex) =>
      limit.run(() => acts.trajectories.runTrajectory(trajectoryInput(job, iteration, queryIndex, sampleIndex, systemPrompt, budget))),
    ),
  );
  const trajectoryIds = summaries.map((s) => s.trajectory_id);
  const scored = await acts.scoring.rewardGroup(rewardInput(job, iteration, queryIndex, summaries, budget));
  // What the judge's LLM calls cost (absent in histories from before judges).
  state.addSpend(scored.cost_usd ?? 0);
  const { advantages } = await acts.scoring.computeGroupAdvantages(advantagesInput(job, iteration, queryIndex, trajectoryIds, scored));
  state.recordGroup(summaries.length, summaries.reduce((sum, s) => sum + billedUsd(s), 0));
  state.noteTrajectoryCosts(summaries.map(billedUsd));
  // Published after every group, so status from the row is never more than a group behind.
  await acts.records.recordJobProgress({ job_id: input.job_id, iteration: state.iteration, phase: 'collecting', spend_usd: state.spendUsd });
  if (spendGuarded(budget)) await raiseBudgetAlerts(job);
  const outcome: GroupOutcome = { rewards: scored.rewards, successes: scored.successes, advantages, logProbs: scored.log_probs, invalidOutputs: scored.invalid_outputs };
  return { task, trajectoryIds, outcome, budgetStopped: summaries.some((s) => s.allowance_exceeded) };
}

type TrajectoryInput = Parameters<Job['acts']['trajectories']['runTrajectory']>[0];
type RewardInput = Parameters<Job['acts']['scoring']['rewardGroup']>[0];
type Scored = Awaited<ReturnType<Job['acts']['scoring']['rewardGroup']>>;
type AdvantagesInput = Parameters<Job['acts']['scoring']['computeGroupAdvantages']>[0];
type PolicyUpdateInput = Parameters<Job['acts']['policy']['updatePolicy']>[0];

function trajectoryInput(job: Job, iteration: number, queryIndex: number, sampleIndex: number, systemPrompt: string, budget: IterationBudget): TrajectoryInput {
  const { input } = job;
  return {
    job_id: input.job_id,
    agent_id: input.agent_id,
    run: input.run,
    iteration,
    query_index: queryIndex,
    sample_index: sampleIndex,
    task: input.training_queries[queryIndex],
    system_prompt: systemPrompt,
    ...agentRunSettings(input),
    // The job id is left out on purpose: two jobs with the same seed and input train alike.
    seed: hashString(`${input.config.seed}:${input.run}:${iteration}:${queryIndex}:${sampleIndex}`),
    ...budgetFields(job, budget, (reserve) => reserve.perTrajectory),
  };
}

function rewardInput(job: Job, iteration: number, queryIndex: number, summaries: TrajectorySummary[], budget: IterationBudget): RewardInput {
  const { input } = job;
  const { config } = input;
  const task = input.training_queries[queryIndex];
  return {
    trajectory_ids: summaries.map((s) => s.trajectory_id),
    // Absent, the reward registry's default for the agent type.
    reward_strategy: config.reward_strategy,
    agent_type: input.agent.type,
    task: { prompt: task.prompt, expected_answer: task.expected_answer, expected_tool: task.expected_tool },
    judge: { model: config.judge?.model ?? config.optimizer_model, rubric: config.judge?.rubric },
    max_tokens: config.max_tokens,
    seed: hashString(`${config.seed}:${input.run}:${iteration}:${queryIndex}:judge`),
    // A judge may spend what this group's runs left of their allowances, so the reserve still holds.
    ...budgetFields(job, budget, (reserve) => judgeAllowanceUsd(reserve, summaries.map(billedUsd))),
  };
}

function advantagesInput({ input }: Job, iteration: number, queryIndex: number, trajectoryIds: string[], scored: Scored): AdvantagesInput {
  const { config } = input;
  return {
    trajectory_ids: trajectoryIds,
    rewards: scored.rewards,
    // Trajectories whose reward failed validation get advantage 0 and are left out of the group's.
    reward_errors: scored.reward_errors,
    step_counts: scored.step_counts,
    gamma: config.gamma,
    credit_assignment: config.credit_assignment,
    control: config.control,
    seed: hashString(`${config.seed}:${input.run}:${iteration}:${queryIndex}:shuffle`),
  };
}

function policyUpdateInput(job: Job, iteration: number, groups: GroupResult[], budget: IterationBudget): PolicyUpdateInput {
  const { input, state } = job;
  const { config } = input;
  return {
    policy: state.policy,
    candidates: groups.flatMap((group) =>
      group.trajectoryIds.map((id, i) => ({
        trajectory_id: id,
        advantage: group.outcome.advantages[i],
        query: group.task.prompt,
        // The updater groups evidence by family (absent: by what the queries share).
        ...(group.task.family !== undefined ? { family: group.task.family } : {}),
      })),
    ),
    learning_rate: config.learning_rate,
    clip: config.clip,
    max_lessons: config.max_lessons,
    optimizer_model: config.optimizer_model,
    max_tokens: config.max_tokens,
    seed: hashString(`${config.seed}:${input.run}:${iteration}:policy`),
    credit_assignment: config.credit_assignment,
    policy_update: config.policy_update,
    avoid_lessons: config.avoid_lessons,
    // The token budget holds for every job (issue 16), counted with the agent model's tokenizer.
    max_policy_tokens: config.max_policy_tokens,
    model: config.model,
    // What the groups left of the budget, never more than the update's worst case.
    ...budgetFields(job, budget, (reserve) => policyUpdateAllowanceUsd(reserve, state.spendUsd, state.budgetUsd)),
  };
}

/** Policy hygiene's activities, named one by one: an activity proxy has no keys to spread. */
function hygieneActivities({ acts }: Job) {
  return {
    proposeLessonOperations: acts.policy.proposeLessonOperations,
    consolidatePolicy: acts.consolidation.consolidatePolicy,
    runEvaluationEpisodes: acts.evaluation.runEvaluationEpisodes,
  };
}

function hygieneRequest({ input, state, limit }: Job, iteration: number, batch: number[], groups: GroupResult[], split: EvaluationSplit | null) {
  return {
    input,
    policy: state.policy,
    iteration,
    groups: groups.map((group, i) => ({ queryIndex: batch[i], task: group.task, trajectoryIds: group.trajectoryIds, advantages: group.outcome.advantages })),
    validation: split ? split.heldOut : [],
    limit,
  };
}

/** What a trajectory was billed, killed attempts included (histories from before the spend ledger: its steps' cost). */
function billedUsd(summary: TrajectorySummary): number {
  return summary.billed_usd ?? summary.cost_usd;
}

function keepPolicy({ state }: Job) {
  return { policy: state.policy, cost_usd: 0, churn: { added: 0, edited: 0, reweighted: 0, dropped: 0 }, invalid_outputs: 0 };
}

/** Every checkpoint_interval iterations and at the end; scored by the latest evaluation if any. */
export async function checkpointIfDue({ input, state, acts }: Job, iteration: number, metrics: IterationMetrics): Promise<void> {
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
export async function evaluateHeldOut(job: Job, iteration: number, split: EvaluationSplit, budget: IterationBudget, on: EvaluationSplitName = 'validation'): Promise<void> {
  const { input, state, acts, limit } = job;
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
      if (spendGuarded(budget)) await raiseBudgetAlerts(job);
    },
  );
  // The test split only reports: it neither scores checkpoints nor replaces the validation result.
  if (!test) {
    state.baselineEpisodes = evaluated.baselineEpisodes;
    state.evaluation = evaluated.summary;
  }
  await acts.records.recordJobProgress({ job_id: input.job_id, iteration, phase: 'evaluated', spend_usd: state.spendUsd });
}
