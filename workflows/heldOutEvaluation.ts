/**
 * FLOW-010 in workflow code: run a policy and the untrained baseline on the held-out queries
 * (one activity per query and policy, under the job's concurrency limit), then have an activity
 * compute and store the statistics. Shared by the training loop (scheduled evaluations) and
 * `evaluateCheckpoint` (training.evaluate). Deterministic: seeds come from the config.
 */
import type { TrainingActivities } from '../activities';
import type { TrainingJobInput } from '../training/jobInput';
import type { EvaluationEpisode, EvaluationSplitName, EvaluationSummary } from '../training/evaluation';
import { renderSystemPrompt, type Policy } from '../training/policy';
import { startingPolicy } from '../training/startingPolicy';
import { hashString } from '../training/statistics';
import { ConcurrencyLimit, settleAll } from './concurrencyLimit';

export interface EvaluationActivities {
  runEvaluationEpisodes: TrainingActivities['runEvaluationEpisodes'];
  recordEvaluation: TrainingActivities['recordEvaluation'];
}

export interface HeldOutEvaluationRequest {
  input: TrainingJobInput;
  /** The run and iteration the evaluated policy belongs to (where the result is stored). */
  run: number;
  iteration: number;
  kind: EvaluationSummary['kind'];
  policy: Policy;
  heldOut: TrainingJobInput['training_queries'];
  /** Which split `heldOut` is (validation scores checkpoints; test only reports); absent: validation. */
  split?: EvaluationSplitName;
  /** The baseline's episodes when already run (the baseline never changes within a run). */
  baselineEpisodes: EvaluationEpisode[] | null;
  /** USD one query's episodes of one policy may spend; absent = no cap. */
  allowancePerQueryUsd?: number;
  limit: ConcurrencyLimit;
}

export interface HeldOutEvaluationResult {
  summary: EvaluationSummary;
  baselineEpisodes: EvaluationEpisode[];
  /** What this evaluation spent (the baseline's episodes too when they ran now). */
  costUsd: number;
}

type PolicyEpisodes = { episodes: EvaluationEpisode[]; costUsd: number };

/** How the job's agent runs, the same for training trajectories and evaluation episodes. */
export function agentRunSettings(input: TrainingJobInput) {
  const { config } = input;
  return {
    model: config.model,
    max_steps: config.max_steps,
    max_tokens: config.max_tokens,
    timeout_seconds: config.trajectory_timeout_seconds,
    environment: input.environment,
    agent: input.agent,
  };
}

/** Runs the episodes; `beforeRecord` lets the caller count the spend before the row is written. */
export async function evaluateOnHeldOut(
  acts: EvaluationActivities,
  request: HeldOutEvaluationRequest,
  beforeRecord: (costUsd: number) => Promise<void> = async () => undefined,
): Promise<HeldOutEvaluationResult> {
  const { input, heldOut, limit } = request;
  const { config } = input;
  const runPolicy = async (policy: 'current' | 'baseline', systemPrompt: string): Promise<PolicyEpisodes> => {
    const results = await settleAll(
      heldOut.map((task, queryIndex) =>
        limit.run(() =>
          acts.runEvaluationEpisodes({
            job_id: input.job_id,
            run: request.run,
            iteration: request.iteration,
            policy,
            query_index: queryIndex,
            task,
            system_prompt: systemPrompt,
            ...agentRunSettings(input),
            // The same seeds for both policies and every evaluation: only the policy differs.
            seeds: Array.from({ length: config.eval_samples }, (_, sample) => hashString(`${config.seed}:${request.split === 'test' ? 'test' : 'eval'}:${queryIndex}:${sample}`)),
            reward_strategy: config.reward_strategy,
            ...(request.allowancePerQueryUsd !== undefined ? { allowance_usd: request.allowancePerQueryUsd } : {}),
            // The job's own prices price every call, with or without an allowance.
            ...(config.prices ? { prices: config.prices } : {}),
          }),
        ),
      ),
    );
    return { episodes: results.flatMap((result) => result.episodes), costUsd: results.reduce((sum, result) => sum + result.cost_usd, 0) };
  };
  const [current, baseline] = (await settleAll([
    runPolicy('current', renderSystemPrompt(request.policy)),
    request.baselineEpisodes ? Promise.resolve(null) : runPolicy('baseline', renderSystemPrompt(startingPolicy(input))),
  ])) as [PolicyEpisodes, PolicyEpisodes | null];
  const baselineEpisodes = baseline ? baseline.episodes : request.baselineEpisodes!;
  const costUsd = current.costUsd + (baseline?.costUsd ?? 0);
  await beforeRecord(costUsd);
  const summary = await acts.recordEvaluation({
    job_id: input.job_id,
    run: request.run,
    iteration: request.iteration,
    kind: request.kind,
    held_out_queries: heldOut.length,
    samples_per_query: config.eval_samples,
    current: current.episodes,
    baseline: baselineEpisodes,
    cost_usd: costUsd,
    ...(request.split ? { split: request.split } : {}),
  });
  return { summary, baselineEpisodes, costUsd };
}
