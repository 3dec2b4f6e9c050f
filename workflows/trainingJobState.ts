/**
 * The state of one training job inside its workflow, as a plain object: what the status query
 * returns, what an iteration changes. No Temporal API here, so it is unit-tested directly.
 */
import type { GRPOConfig } from '../training/grpoConfig';
import type { TrainingJobInput } from '../training/jobInput';
import type { JobCarryOver } from '../training/carryOver';
import type { CheckpointPayload, CheckpointPosition } from '../training/checkpoints';
import type { EvaluationEpisode, EvaluationSummary } from '../training/evaluation';
import type { IterationMetrics } from '../training/iterationMetrics';
import type { JobPhase, JobStatus, TrainingJobStatus } from '../training/jobStatus';
import { type Policy } from '../training/policy';
import { startingPolicy } from '../training/startingPolicy';

export interface TrainingJobResult {
  job_id: string;
  status: JobStatus;
  iterations: number;
  trajectories: number;
  spend_usd: number;
  policy: Policy;
  success_rates: number[];
}

export class TrainingJobState {
  status: JobStatus = 'running';
  phase: JobPhase = 'starting';
  iteration = 0;
  groupsDone = 0;
  groupsTotal = 0;
  trajectories = 0;
  spendUsd = 0;
  policy: Policy;
  lastMetrics: IterationMetrics | null = null;
  successRates: number[] = [];
  reason: string | null = null;
  /** The limit now in force: the config's, or a raise sent through the update_budget Update. */
  budgetUsd: number;
  alertsRaised: number[] = [];
  /** The global kill switch is on: the job waits at the next batch boundary. */
  paused: boolean;
  /** Model prices resolved at the start (an activity result, so replay sees the same). */
  prices: JobCarryOver['prices'] = null;
  /** The untrained policy's held-out episodes, run once per run. */
  baselineEpisodes: EvaluationEpisode[] | null = null;
  evaluation: EvaluationSummary | null = null;
  /** What the costliest trajectory so far was billed: an evaluation episode's estimate. */
  costliestTrajectoryUsd = 0;

  constructor(private readonly input: TrainingJobInput) {
    this.policy = startingPolicy(input);
    this.budgetUsd = input.config.budget_usd;
    this.spendUsd = input.prior_spend_usd;
    this.paused = input.start_paused;
    if (input.carry_over) this.restore(input.carry_over);
  }

  noteTrajectoryCosts(usd: number[]): void {
    this.costliestTrajectoryUsd = Math.max(this.costliestTrajectoryUsd, ...usd);
  }

  /** Everything the next workflow run needs to go on exactly here (continue-as-new). */
  carryOver(): JobCarryOver {
    return {
      iteration: this.iteration,
      policy: this.policy,
      spend_usd: this.spendUsd,
      budget_usd: this.budgetUsd,
      trajectories: this.trajectories,
      success_rates: [...this.successRates],
      last_metrics: this.lastMetrics,
      alerts_raised: [...this.alertsRaised],
      paused: this.paused,
      prices: this.prices,
      baseline_episodes: this.baselineEpisodes,
      evaluation: this.evaluation,
      costliest_trajectory_usd: this.costliestTrajectoryUsd,
    };
  }

  private restore(carried: JobCarryOver): void {
    this.iteration = carried.iteration;
    this.policy = carried.policy;
    this.spendUsd = carried.spend_usd;
    this.budgetUsd = carried.budget_usd;
    this.trajectories = carried.trajectories;
    this.successRates = [...carried.success_rates];
    this.lastMetrics = carried.last_metrics;
    this.alertsRaised = [...carried.alerts_raised];
    this.paused = carried.paused;
    this.prices = carried.prices;
    this.baselineEpisodes = carried.baseline_episodes ?? null;
    this.evaluation = carried.evaluation ?? null;
    this.costliestTrajectoryUsd = carried.costliest_trajectory_usd ?? 0;
  }

  /** A resumed run starts from a checkpoint of an earlier run. */
  restoreCheckpoint(checkpoint: Pick<CheckpointPosition, 'iteration'> & Pick<CheckpointPayload, 'policy' | 'optimizer_state'>): void {
    this.iteration = checkpoint.iteration;
    this.policy = checkpoint.policy;
    this.successRates = [...(checkpoint.optimizer_state.success_rates ?? [])];
    this.trajectories = checkpoint.optimizer_state.trajectories ?? 0;
  }

  get config(): GRPOConfig {
    return this.input.config;
  }

  beginIteration(groups: number): void {
    this.phase = 'collecting';
    this.groupsDone = 0;
    this.groupsTotal = groups;
  }

  recordGroup(trajectories: number, costUsd: number): void {
    this.groupsDone += 1;
    this.trajectories += trajectories;
    this.addSpend(costUsd);
  }

  addSpend(costUsd: number): void {
    this.spendUsd += costUsd;
  }

  finishIteration(iteration: number, metrics: IterationMetrics, policy: Policy): void {
    this.iteration = iteration;
    this.lastMetrics = metrics;
    this.policy = policy;
    this.successRates.push(metrics.success_rate);
  }

  /** A checkpoint's score: the latest held-out evaluation where there is one, else training reward. */
  checkpointScore(metrics: IterationMetrics): number {
    return this.evaluation ? this.evaluation.current.avg_reward.value : metrics.mean_reward;
  }

  end(status: JobStatus, reason: string | null = null): void {
    this.status = status;
    this.reason = reason;
    this.phase = 'finished';
  }

  snapshot(): TrainingJobStatus {
    return {
      job_id: this.input.job_id,
      agent_id: this.input.agent_id,
      status: this.status,
      run: this.input.run,
      phase: this.phase,
      iteration: this.iteration,
      iterations: this.config.iterations,
      groups_done: this.groupsDone,
      groups_total: this.groupsTotal,
      trajectories: this.trajectories,
      spend_usd: this.spendUsd,
      budget_usd: this.budgetUsd,
      budget_alerts: [...this.alertsRaised],
      policy_version: this.policy.version,
      lessons: this.policy.lessons.length,
      last_metrics: this.lastMetrics,
      success_rates: [...this.successRates],
      evaluation: this.evaluation,
      reason: this.reason,
    };
  }

  result(): TrainingJobResult {
    return {
      job_id: this.input.job_id,
      status: this.status,
      iterations: this.iteration,
      trajectories: this.trajectories,
      spend_usd: this.spendUsd,
      policy: this.policy,
      success_rates: [...this.successRates],
    };
  }
}
