/**
 * Records of how a running job is steered: paused and resumed by the kill switch, budget raised
 * through the update_budget Update, budget alerts raised. Idempotent, as Temporal retries need.
 */
import type { BudgetAlertInput } from './budget';
import type { Repositories } from '../adapters/db';

export function createJobControlActivities(repos: Repositories) {
  return {
    async setJobStatus(input: { job_id: string; status: 'paused' | 'running' }): Promise<void> {
      await repos.jobs.setStatus(input.job_id, input.status);
    },

    /** `run` is absent in records scheduled by workflow code older than it. */
    async recordBudget(input: { job_id: string; budget_usd: number; run?: number }): Promise<void> {
      await repos.jobs.setBudget(input.job_id, input.budget_usd, input.run);
    },

    async recordBudgetAlert(input: BudgetAlertInput): Promise<void> {
      await repos.jobs.appendBudgetAlert(input.job_id, {
        threshold: input.threshold,
        spend_usd: input.spend_usd,
        budget_usd: input.budget_usd,
        at: new Date().toISOString(),
      });
    },
  };
}
