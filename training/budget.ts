import { z } from 'zod';

/**
 * FLOW-011, the arithmetic of budgets: worst cases, the check before a batch, alert thresholds
 * and budget raises. Pure (zod only), so the workflow imports it as well as activities and the
 * API. Money is compared in micro-dollars, so a sum such as 0.1 + 0.2 does not cross 0.3.
 */

/** A model's list price in USD per million tokens. */
export const ModelPriceSchema = z
  .object({
    input_usd_per_mtok: z.number().min(0).max(100_000),
    output_usd_per_mtok: z.number().min(0).max(100_000),
  })
  .strict();
export type ModelPrice = z.infer<typeof ModelPriceSchema>;

/** The largest budget a job may have (the config's `budget_usd` maximum). */
export const MAX_BUDGET_USD = 1_000_000;

/** Prompt tokens per call assumed before any call of the job has reported its usage. */
export const DEFAULT_PROMPT_TOKEN_BOUND = 8_192;
/** Head-room over the largest prompt seen so far: prompts grow with steps and lessons. */
export const PROMPT_TOKEN_MARGIN = 1.5;

/** Spend thresholds, as fractions of the budget, at which an alert is raised (each once). */
export const BUDGET_ALERT_THRESHOLDS: readonly number[] = [0.75, 0.9];

const MICRO = 1_000_000;
const micros = (usd: number) => Math.round(usd * MICRO);

/** The most one call can cost: its whole prompt bound in and `maxTokens` completion tokens out. */
export function callWorstCaseUsd(price: ModelPrice, maxTokens: number, promptTokens: number): number {
  return (promptTokens * price.input_usd_per_mtok + maxTokens * price.output_usd_per_mtok) / MICRO;
}

/**
 * The bound of prompt tokens per call for worst cases: the largest prompt seen so far with a
 * margin, or `fallback` (by default DEFAULT_PROMPT_TOKEN_BOUND) before any call reported usage.
 */
export function promptTokenBound(observedMaxPerCall: number | null, fallback: number = DEFAULT_PROMPT_TOKEN_BOUND): number {
  if (observedMaxPerCall === null || !Number.isFinite(observedMaxPerCall) || observedMaxPerCall < 0) return fallback;
  return Math.ceil(observedMaxPerCall * PROMPT_TOKEN_MARGIN);
}

export interface PricedCalls {
  price: ModelPrice;
  /** The caller's bound of prompt tokens per call (see promptTokenBound). */
  promptTokens: number;
}

/** The most one trajectory can cost: `max_steps` agent calls. */
export function trajectoryWorstCaseUsd(input: { max_steps: number; max_tokens: number } & PricedCalls): number {
  return input.max_steps * callWorstCaseUsd(input.price, input.max_tokens, input.promptTokens);
}

/** The most one policy update can cost: every optimizer attempt. */
export function policyUpdateWorstCaseUsd(input: { optimizer_attempts: number; max_tokens: number } & PricedCalls): number {
  return input.optimizer_attempts * callWorstCaseUsd(input.price, input.max_tokens, input.promptTokens);
}

export interface IterationWorstCaseInput {
  batch_size: number;
  group_size: number;
  max_steps: number;
  max_tokens: number;
  optimizer_attempts: number;
  agent: PricedCalls;
  optimizer: PricedCalls;
}

/**
 * The most one iteration can cost: every agent call of the batch (batch_size × group_size ×
 * max_steps) and every policy-update attempt, each with a full `max_tokens` completion.
 */
export function iterationWorstCaseUsd(input: IterationWorstCaseInput): number {
  const trajectories = input.batch_size * input.group_size;
  return (
    trajectories * trajectoryWorstCaseUsd({ max_steps: input.max_steps, max_tokens: input.max_tokens, ...input.agent }) +
    policyUpdateWorstCaseUsd({ optimizer_attempts: input.optimizer_attempts, max_tokens: input.max_tokens, ...input.optimizer })
  );
}

/** Optimizer prompts carry whole trajectories, so their bound is larger than an agent's. */
export const OPTIMIZER_PROMPT_TOKENS = 32_768;

/** What jobs started before call admission reserve before each iteration (workflows/trainingJob.ts). */
export interface IterationReserve {
  /** The iteration's worst case (with its evaluation, if one is due), reserved by the pre-flight check. */
  total: number;
  /** The most one held-out query's evaluation episodes (one policy) may spend; 0 when none is due. */
  perEvaluationQuery: number;
  /** The most one trajectory may spend: its share of what the budget has left. */
  perTrajectory: number;
  /** The most the policy update may spend (all its attempts at their worst case). */
  policyUpdate: number;
}

export interface IterationReserveInput {
  batch_size: number;
  group_size: number;
  max_steps: number;
  max_tokens: number;
  eval_samples: number;
  optimizer_attempts: number;
  prices: { agent: ModelPrice; optimizer: ModelPrice };
  /** Query evaluations (a query under one policy) due with the iteration; 0 when none is. */
  evaluation_queries: number;
  spend_usd: number;
  budget_usd: number;
}

/**
 * The worst case of one iteration, reserved before it starts. Each activity gets an allowance
 * its budget guard enforces; the allowances add up to no more than what the budget has left, so
 * the job can never spend past its limit. Every call is priced with DEFAULT_PROMPT_TOKEN_BOUND
 * prompt tokens (OPTIMIZER_PROMPT_TOKENS for the optimizer) and max_tokens out.
 */
export function iterationReserve(input: IterationReserveInput): IterationReserve {
  const agent = { price: input.prices.agent, promptTokens: promptTokenBound(null) };
  const optimizer = { price: input.prices.optimizer, promptTokens: promptTokenBound(null, OPTIMIZER_PROMPT_TOKENS) };
  const policyUpdate = policyUpdateWorstCaseUsd({ optimizer_attempts: input.optimizer_attempts, max_tokens: input.max_tokens, ...optimizer });
  // Each evaluation episode at most a trajectory's worst case.
  const perEvaluationQuery = input.evaluation_queries > 0 ? input.eval_samples * trajectoryWorstCaseUsd({ max_steps: input.max_steps, max_tokens: input.max_tokens, ...agent }) : 0;
  const evaluation = input.evaluation_queries * perEvaluationQuery;
  const training = iterationWorstCaseUsd({ ...input, agent, optimizer });
  const left = Math.max(0, input.budget_usd - input.spend_usd - policyUpdate - evaluation);
  return { total: training + evaluation, perEvaluationQuery, perTrajectory: left / (input.batch_size * input.group_size), policyUpdate };
}

/**
 * Why a reserve-era iteration must not start (its worst case would cross the budget), or null.
 * Without a reserve (histories from before the pre-flight) only a spent budget stops it, with the
 * message those jobs were recorded with.
 */
export function reserveRefusal(spentUsd: number, budgetUsd: number, iteration: number, reserve: IterationReserve | null, configBudgetUsd = budgetUsd): string | null {
  if (!reserve) return spentUsd >= budgetUsd ? `spent $${spentUsd.toFixed(4)} of a $${configBudgetUsd} budget before iteration ${iteration}` : null;
  if (preflight(spentUsd, reserve.total, budgetUsd).ok) return null;
  return `spent ${formatUsd(spentUsd)} of a ${formatUsd(budgetUsd)} budget; iteration ${iteration} could cost up to ${formatUsd(reserve.total)}, so it was not started`;
}

/**
 * The query evaluations (a query under one policy) an iteration runs, for its budget: held-out
 * (with the baseline the first time) and, after the last iteration, the test split for both
 * policies. One count serves the reserve of older jobs and the admission check.
 */
export function iterationEvaluationQueries(due: { heldOut: number; test: number; baselineDone: boolean; validation: boolean; testing: boolean }): number {
  return (due.validation ? due.heldOut * (due.baselineDone ? 1 : 2) : 0) + (due.testing ? due.test * 2 : 0);
}

export interface AdmissionCheck {
  spentUsd: number;
  budgetUsd: number;
  iteration: number;
  /** Evaluation episodes due with the iteration (query evaluations × eval_samples). */
  evaluationEpisodes: number;
  /** What the costliest trajectory so far was billed: an evaluation episode's estimate. */
  costliestTrajectoryUsd: number;
  agentPrice: ModelPrice;
  maxTokens: number;
}

/**
 * Under call admission, why iteration `iteration` must not start, or null: the budget is spent, or
 * the evaluation due with it (its episodes at the costliest trajectory's cost so far) would not
 * fit in what is left: an evaluation cut short would report on the episodes that had money, not
 * on the policy. Training itself is admitted call by call (the spend ledger), so the job spends
 * its budget nearly to the end, and an iteration that runs out stops there.
 */
export function admissionRefusal(check: AdmissionCheck): string | null {
  const evaluation = check.evaluationEpisodes * check.costliestTrajectoryUsd;
  // Less than this and not even one agent call (its max_tokens out, before any prompt) can be admitted.
  const oneCall = callWorstCaseUsd(check.agentPrice, check.maxTokens, 0);
  if (preflight(check.spentUsd, evaluation + oneCall, check.budgetUsd).ok) return null;
  const spent = `spent ${formatUsd(check.spentUsd)} of a ${formatUsd(check.budgetUsd)} budget`;
  return evaluation > 0
    ? `${spent}; the evaluation due with iteration ${check.iteration} would cost about ${formatUsd(evaluation)}, so the iteration was not started`
    : `${spent}: not enough for one more model call before iteration ${check.iteration}`;
}

/** Why a job stops when calls of an iteration under way were refused (call admission). */
export function budgetRanOutReason(budgetUsd: number, spentUsd: number, iteration: number): string {
  return `the ${formatUsd(budgetUsd)} budget ran out during iteration ${iteration} (spent ${formatUsd(spentUsd)}): its model calls were refused, so the policy was not updated`;
}

/** Under a reserve: what a group's reward judge may spend, i.e. what its trajectories left of their allowances. */
export function judgeAllowanceUsd(reserve: IterationReserve, billedUsd: readonly number[]): number {
  return Math.max(0, reserve.perTrajectory * billedUsd.length - billedUsd.reduce((sum, usd) => sum + usd, 0));
}

/** Under a reserve: what the policy update may spend, i.e. what the groups left of the budget, never more than its worst case. */
export function policyUpdateAllowanceUsd(reserve: IterationReserve, spentUsd: number, budgetUsd: number): number {
  return Math.max(0, Math.min(reserve.policyUpdate, budgetUsd - spentUsd));
}

export interface PreflightResult {
  /** The work may start: even its worst case stays within the budget. */
  ok: boolean;
  /** By how much the worst case would cross the budget (0 when ok). */
  shortfall_usd: number;
}

/** The check before each batch: a batch whose worst case could cross the budget is not started. */
export function preflight(spentUsd: number, reserveUsd: number, budgetUsd: number): PreflightResult {
  const over = micros(spentUsd) + micros(reserveUsd) - micros(budgetUsd);
  return { ok: over <= 0, shortfall_usd: over > 0 ? over / MICRO : 0 };
}

/** The thresholds that `spentUsd` has reached and that were not raised before, in order. */
export function alertsToRaise(spentUsd: number, budgetUsd: number, alreadyRaised: readonly number[]): number[] {
  return BUDGET_ALERT_THRESHOLDS.filter((threshold) => micros(spentUsd) >= micros(threshold * budgetUsd) && !alreadyRaised.includes(threshold));
}

/** Why a proposed new budget is refused, or null when it is a valid raise. */
export function validateBudgetRaise(currentBudgetUsd: number, proposed: unknown): string | null {
  if (typeof proposed !== 'number' || !Number.isFinite(proposed)) return `budget_usd must be a finite number (got ${String(proposed)})`;
  if (proposed <= 0) return `budget_usd must be positive (got ${proposed})`;
  if (proposed <= currentBudgetUsd) return `budget_usd must be greater than the current budget of ${formatUsd(currentBudgetUsd)} (got ${proposed})`;
  if (proposed > MAX_BUDGET_USD) return `budget_usd must be at most ${formatUsd(MAX_BUDGET_USD)} (got ${proposed})`;
  return null;
}

/** Rounded to the cent, half away from zero (1.005 → 1.01). */
export function roundUsdCents(usd: number): number {
  // `+ 0` turns -0 (a negative amount under half a cent) into 0.
  return (Math.sign(usd) * Math.round(Math.abs(micros(usd)) / 10_000)) / 100 + 0;
}

/** "$1,234.50", "-$0.25": to the cent, with thousands separators. */
export function formatUsd(usd: number): string {
  const cents = roundUsdCents(usd);
  const [whole, fraction] = Math.abs(cents).toFixed(2).split('.');
  return `${cents < 0 ? '-' : ''}$${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${fraction}`;
}
