/**
 * How a training job's iterations are held to its budget, as the workflow wires it: which guard
 * applies (a worst-case reserve for jobs started before call admission, or admission of each call
 * in the spend ledger), the budget fields of activity inputs, the check before an iteration and
 * the alerts. The arithmetic is training/budget.ts; this file gathers its inputs.
 */
import type { EvaluationSplit } from '../training/evaluation';
import { MAX_OPTIMIZER_ATTEMPTS } from '../training/lessonOperations';
import {
  admissionRefusal,
  alertsToRaise,
  iterationEvaluationQueries,
  iterationReserve,
  type IterationReserve,
  reserveRefusal,
} from '../training/budget';
import type { Job } from './trainingJobActivities';

/**
 * How an iteration is held to its budget: the worst-case reserve and its allowances (jobs started
 * before call admission), or admission of each call in the spend ledger. Neither: histories from
 * before the budget pre-flight.
 */
export interface IterationBudget {
  reserve: IterationReserve | null;
  admission: boolean;
}

/** Which guards the job's history has: a budget at all (`budgeted`), and call admission. */
export interface BudgetGuards {
  budgeted: boolean;
  admission: boolean;
}

/** Spend is guarded (so budget alerts are raised): under a reserve or under call admission. */
export function spendGuarded(budget: IterationBudget): boolean {
  return budget.reserve !== null || budget.admission;
}

/** The budget fields of an activity's input: its allowance under a reserve; the job's prices whenever spend is guarded. */
export function budgetFields(job: Job, budget: IterationBudget, allowanceUsd: (reserve: IterationReserve) => number) {
  if (budget.reserve) return { allowance_usd: allowanceUsd(budget.reserve), prices: job.input.config.prices };
  return budget.admission ? { prices: job.input.config.prices } : {};
}

/** What iteration `iteration` may spend, and why it must not start (or null). */
export function iterationBudget(
  job: Job,
  iteration: number,
  split: EvaluationSplit | null,
  due: { evaluates: boolean; tests: boolean },
  guards: BudgetGuards,
): { budget: IterationBudget; refusal: string | null } {
  const { input, state } = job;
  const evaluations = split
    ? iterationEvaluationQueries({ heldOut: split.heldOut.length, test: split.test.length, baselineDone: Boolean(state.baselineEpisodes), validation: due.evaluates, testing: due.tests })
    : 0;
  const reserve = guards.budgeted && !guards.admission ? legacyReserve(job, split, due.evaluates || due.tests ? evaluations : 0) : null;
  const refusal = guards.admission
    ? admissionRefusal({
        spentUsd: state.spendUsd,
        budgetUsd: state.budgetUsd,
        iteration,
        evaluationEpisodes: evaluations * input.config.eval_samples,
        costliestTrajectoryUsd: state.costliestTrajectoryUsd,
        agentPrice: state.prices!.agent,
        maxTokens: input.config.max_tokens,
      })
    : reserveRefusal(state.spendUsd, state.budgetUsd, iteration, reserve, input.config.budget_usd);
  return { budget: { reserve, admission: guards.admission }, refusal };
}

/** The worst-case reserve of jobs started before call admission (training/budget.ts computes it). */
function legacyReserve({ input, state }: Job, split: EvaluationSplit | null, evaluationQueries: number): IterationReserve {
  const { config } = input;
  return iterationReserve({
    ...config,
    batch_size: Math.min(config.batch_size, split ? split.trainingIndices.length : input.training_queries.length),
    optimizer_attempts: MAX_OPTIMIZER_ATTEMPTS,
    prices: state.prices!,
    evaluation_queries: evaluationQueries,
    spend_usd: state.spendUsd,
    budget_usd: state.budgetUsd,
  });
}

/** Raises each alert threshold once, as soon as spend crosses it. */
export async function raiseBudgetAlerts({ input, state, acts }: Job): Promise<void> {
  for (const threshold of alertsToRaise(state.spendUsd, state.budgetUsd, state.alertsRaised)) {
    // Marked before any await, so concurrent groups never raise the same alert twice.
    state.alertsRaised.push(threshold);
    const alert = { job_id: input.job_id, agent_id: input.agent_id, threshold, spend_usd: state.spendUsd, budget_usd: state.budgetUsd };
    await acts.records.recordBudgetAlert(alert);
    await acts.budget.sendBudgetAlert(alert);
  }
}
