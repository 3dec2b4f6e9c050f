/**
 * FLOW-011, the budget's side effects: the prices a job pays (resolved once, at its start, so
 * the workflow's arithmetic never reads a table) and alerts to a webhook when spend crosses a
 * threshold of the budget.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { formatUsd } from '../training/budget';
import { type ModelPrice, type ModelPrices, resolveModelPrice, UnknownModelPriceError } from '../adapters/llm/pricing';

export interface ResolvePricesInput {
  model: string;
  optimizer_model: string;
  /** The job's `config.prices`. */
  prices?: ModelPrices | null;
}

export interface ResolvedPrices {
  agent: ModelPrice;
  optimizer: ModelPrice;
}

export interface BudgetAlertInput {
  job_id: string;
  agent_id: string;
  /** The fraction of the budget crossed, e.g. 0.75. */
  threshold: number;
  spend_usd: number;
  budget_usd: number;
}

export interface BudgetAlertResult {
  /** False when no webhook is configured (the alert was only logged). */
  delivered: boolean;
  /** The webhook's HTTP status, when it was called. */
  status: number | null;
}

export const BUDGET_WEBHOOK_TIMEOUT_MS = 10_000;

export interface BudgetActivityOptions {
  /** Where alerts are POSTed; by default FLOW_BUDGET_WEBHOOK_URL, read at each alert. Null: log only. */
  webhookUrl?: string | null;
  timeoutMs?: number;
}

export function createBudgetActivities(options: BudgetActivityOptions = {}) {
  const webhookUrl = () => (options.webhookUrl !== undefined ? options.webhookUrl : process.env.FLOW_BUDGET_WEBHOOK_URL || null);
  return {
    /** The agent's and the optimizer's prices; a model with none is a non-retryable failure. */
    async resolvePrices(input: ResolvePricesInput): Promise<ResolvedPrices> {
      try {
        return { agent: resolveModelPrice(input.model, input.prices), optimizer: resolveModelPrice(input.optimizer_model, input.prices) };
      } catch (error) {
        if (error instanceof UnknownModelPriceError) throw ApplicationFailure.nonRetryable(error.message, 'UnknownModelPrice', { model: error.model });
        throw error;
      }
    },

    /**
     * POSTs the alert as JSON to the webhook. Network errors, timeouts, 5xx and 429 throw and
     * are retried by Temporal; any other 4xx is the webhook refusing it, not retried. With
     * `Idempotency-Key` (job and threshold) a receiver can drop a retry's duplicate.
     */
    async sendBudgetAlert(input: BudgetAlertInput): Promise<BudgetAlertResult> {
      const context = Context.current();
      const percent = Math.round(input.threshold * 100);
      const message = `job ${input.job_id} (agent ${input.agent_id}) has spent ${formatUsd(input.spend_usd)} of its ${formatUsd(input.budget_usd)} budget (crossed ${percent}%)`;
      const url = webhookUrl();
      if (!url) {
        context.log.warn(`budget alert: ${message} (FLOW_BUDGET_WEBHOOK_URL is not set: not sent)`, { job_id: input.job_id, threshold: input.threshold });
        return { delivered: false, status: null };
      }
      if (!/^https?:\/\//i.test(url)) throw ApplicationFailure.nonRetryable(`the budget webhook URL must be http(s): ${url}`, 'BudgetWebhookMisconfigured');

      const body = {
        type: 'flow.budget_alert',
        job_id: input.job_id,
        agent_id: input.agent_id,
        threshold: input.threshold,
        spend_usd: input.spend_usd,
        budget_usd: input.budget_usd,
        message,
      };
      const signal = AbortSignal.any([context.cancellationSignal, AbortSignal.timeout(options.timeoutMs ?? BUDGET_WEBHOOK_TIMEOUT_MS)]);
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `${input.job_id}:budget-alert:${input.threshold}` },
          body: JSON.stringify(body),
          signal,
        });
      } catch (error) {
        // Checked by shape: fetch's DOMException need not be an Error of this realm.
        const { name, message } = error as { name?: unknown; message?: unknown };
        const reason = name === 'TimeoutError' ? 'timed out' : typeof message === 'string' ? message : String(error);
        throw new Error(`budget webhook ${url}: ${reason}`);
      }
      // Read the body so the connection is released; keep a little of it for the message.
      const text = (await response.text().catch(() => '')).slice(0, 200);
      if (response.ok) {
        context.log.info(`budget alert sent: ${message}`, { job_id: input.job_id, threshold: input.threshold, status: response.status });
        return { delivered: true, status: response.status };
      }
      const problem = `budget webhook ${url} answered HTTP ${response.status}${text ? `: ${text}` : ''}`;
      if (response.status >= 400 && response.status < 500 && response.status !== 429) {
        throw ApplicationFailure.nonRetryable(problem, 'BudgetWebhookRejected', { status: response.status });
      }
      throw new Error(problem);
    },
  };
}
