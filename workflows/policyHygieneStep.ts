/**
 * Policy hygiene in workflow code (issue 16 items 4-7), for jobs with `policy_hygiene` on: each
 * group's proposal (one activity per group, in parallel under the job's limit), one consolidation
 * per iteration (an activity: tokens and counters need I/O), then, with `update_gate`, the cheap
 * gate: the candidate and its parent run the same minibatch of validation episodes and the
 * parent stays if the candidate did worse beyond chance (training/updateGate.ts). Every refusal is
 * returned for the iteration's metrics. Deterministic: seeds come from the config, the rest from
 * activity results in history.
 */
import { patched } from '@temporalio/workflow';
import type { TrainingActivities } from '../activities';
import type { TrainingJobInput } from '../training/jobInput';
import type { Task } from '../training/task';
import type { IterationMetrics } from '../training/iterationMetrics';
import type { LessonChurn } from '../training/lessonOperations';
import { renderSystemPrompt, type Policy } from '../training/policy';
import { hashString } from '../training/statistics';
import { gateMinibatch, gateVerdict } from '../training/updateGate';
import { type ConcurrencyLimit, settleAll } from './concurrencyLimit';
import { agentRunSettings } from './heldOutEvaluation';

/** The gate's sign test (training/updateGate.ts) replaced "not fewer successes" in jobs started after it. */
const GATE_SIGN_TEST_PATCH = 'update-gate-sign-test-v1';

export interface HygieneActivities {
  proposeLessonOperations: TrainingActivities['proposeLessonOperations'];
  consolidatePolicy: TrainingActivities['consolidatePolicy'];
  runEvaluationEpisodes: TrainingActivities['runEvaluationEpisodes'];
}

export interface HygieneGroup {
  queryIndex: number;
  task: Task;
  trajectoryIds: string[];
  advantages: number[];
}

export interface HygieneStepRequest {
  input: TrainingJobInput;
  policy: Policy;
  iteration: number;
  groups: HygieneGroup[];
  /** The validation queries the gate draws from (none: no gate). */
  validation: Task[];
  limit: ConcurrencyLimit;
}

export interface HygieneStepResult {
  policy: Policy;
  cost_usd: number;
  churn: LessonChurn;
  invalid_outputs: number;
  hygiene: NonNullable<IterationMetrics['policy_hygiene']>;
}

const NO_CHURN: LessonChurn = { added: 0, edited: 0, reweighted: 0, dropped: 0 };

export async function hygienicPolicyUpdate(acts: HygieneActivities, request: HygieneStepRequest): Promise<HygieneStepResult> {
  const { input, policy, iteration, limit } = request;
  const { config } = input;
  const priced = config.prices ? { prices: config.prices } : {};
  const proposals = await settleAll(
    request.groups.map((group) =>
      limit.run(() =>
        acts.proposeLessonOperations({
          policy,
          candidates: group.trajectoryIds.map((id, i) => ({ trajectory_id: id, advantage: group.advantages[i], query: group.task.prompt })),
          learning_rate: config.learning_rate,
          clip: config.clip,
          max_lessons: config.max_lessons,
          optimizer_model: config.optimizer_model,
          max_tokens: config.max_tokens,
          seed: hashString(`${config.seed}:${input.run}:${iteration}:${group.queryIndex}:propose`),
          credit_assignment: config.credit_assignment,
          policy_update: config.policy_update,
          ...priced,
        }),
      ),
    ),
  );
  let costUsd = proposals.reduce((sum, proposal) => sum + proposal.cost_usd, 0);
  const report = await acts.consolidatePolicy({
    job_id: input.job_id,
    run: input.run,
    iteration,
    policy,
    proposals: proposals.map((proposal) => ({ operations: proposal.operations })),
    credits: Object.assign({}, ...proposals.map((proposal) => proposal.credits)) as Record<string, number>,
    trajectory_ids: request.groups.flatMap((group) => group.trajectoryIds),
    queries: request.groups.flatMap((group) => group.trajectoryIds.map(() => group.task.prompt)),
    learning_rate: config.learning_rate,
    clip: config.clip,
    max_lessons: config.max_lessons,
    model: config.model,
    max_policy_tokens: config.max_policy_tokens,
    lesson_merge_similarity: config.lesson_merge_similarity,
    max_update_removal_share: config.max_update_removal_share,
  });
  let next = report.policy;
  let churn = report.churn;
  let tokens = report.tokens;
  let gateRefusal: string | null = null;
  let applied = { harmful_dropped: report.harmful_dropped, merged: report.merged, trimmed: report.trimmed };
  const gate = config.update_gate;
  if (gate && next.version !== policy.version && request.validation.length > 0) {
    const queries = gateMinibatch(request.validation.length, gate.queries, iteration, config.seed);
    const seeds = (q: number) => Array.from({ length: gate.samples }, (_, s) => hashString(`${config.seed}:${input.run}:${iteration}:${q}:${s}:gate`));
    const episodes = (label: 'current' | 'baseline', candidate: Policy) =>
      settleAll(
        queries.map((q) =>
          limit.run(() =>
            acts.runEvaluationEpisodes({
              job_id: input.job_id,
              run: input.run,
              iteration,
              // 'baseline' is the parent here: the policy the candidate must not fall below.
              policy: label,
              query_index: q,
              task: request.validation[q],
              system_prompt: renderSystemPrompt(candidate),
              ...agentRunSettings(input),
              seeds: seeds(q),
              reward_strategy: config.reward_strategy,
              ...priced,
            }),
          ),
        ),
      );
    const [parentRuns, candidateRuns] = await settleAll([episodes('baseline', policy), episodes('current', next)]);
    costUsd += [...parentRuns, ...candidateRuns].reduce((sum, result) => sum + result.cost_usd, 0);
    const successes = (runs: typeof parentRuns) => runs.flatMap((result) => result.episodes.map((episode) => episode.success));
    // Jobs whose gate ran before the sign test keep their first rule on replay.
    const verdict = gateVerdict(successes(parentRuns), successes(candidateRuns), patched(GATE_SIGN_TEST_PATCH) ? 'sign_test' : 'not_fewer');
    if (!verdict.accepted) {
      gateRefusal = verdict.reason;
      next = report.counted_parent;
      churn = NO_CHURN;
      tokens = report.parent_tokens;
      applied = { harmful_dropped: [], merged: [], trimmed: [] };
    }
  }
  return {
    policy: next,
    cost_usd: costUsd,
    churn,
    invalid_outputs: proposals.reduce((sum, proposal) => sum + proposal.invalid_outputs, 0),
    hygiene: {
      collapse_refusal: report.collapse_refusal,
      gate_refusal: gateRefusal,
      ...applied,
      conflicts: report.conflicts,
      policy_tokens: tokens,
    },
  };
}
