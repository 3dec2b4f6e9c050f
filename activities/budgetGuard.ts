/**
 * FLOW-011, the budget guard: every LLM call an activity makes goes through a GuardedChatClient
 * opened with that activity's allowance, and no call starts when what was spent plus the most
 * this call could cost would exceed it. Activities never hold the raw ChatClient: they get a
 * GuardedChatFactory, whose only way to a client is `open`, which needs an allowance (or an
 * explicit `null`, no cap). So a new call site is guarded by construction.
 */
import { randomUUID } from 'node:crypto';
import { Context, type Info } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { callWorstCaseUsd, formatUsd } from '../training/budget';
import { ProviderUnavailableError, type ChatClient, type ChatRequest, type ChatResult } from '../adapters/llm/chatClient';
import { costOf, type ModelPrice, type ModelPrices, resolveModelPrice } from '../adapters/llm/pricing';
import type { StoredCallLookup } from '../adapters/llm/storedCalls';
import type { BudgetRefusal, SpendLedgerRepository } from '../adapters/db/spendLedgerRepository';

/** Tokens a model may count beyond the request's text: role markers, tool-definition preamble. */
const PROMPT_OVERHEAD_TOKENS = 64;
const MESSAGE_OVERHEAD_TOKENS = 8;

/**
 * A bound of a request's prompt tokens: the UTF-8 bytes of its messages and tool definitions
 * (byte-level tokenizers never make a token of less than one byte) plus per-message overhead.
 * Deliberately loose (English text is about four bytes a token): it is a bound, not a guess.
 */
export function promptTokenUpperBound(request: Pick<ChatRequest, 'messages' | 'tools'>): number {
  const text = JSON.stringify(request.messages) + (request.tools ? JSON.stringify(request.tools) : '');
  return Buffer.byteLength(text, 'utf8') + PROMPT_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS * request.messages.length;
}

/**
 * No call was started: it could have taken the activity past its allowance. A non-retryable
 * ApplicationFailure of type 'BudgetAllowanceExceeded', so when an activity lets it escape,
 * Temporal does not retry it and the workflow sees that type.
 */
export class BudgetAllowanceExceededError extends ApplicationFailure {
  static readonly TYPE = 'BudgetAllowanceExceeded';

  constructor(
    readonly model: string,
    readonly allowanceUsd: number,
    /** What the activity had spent (and had in flight) when the call was refused. */
    readonly spentUsd: number,
    readonly callWorstCaseUsd: number,
    message = `budget allowance exceeded: a ${model} call could cost up to $${callWorstCaseUsd.toFixed(6)}, and $${spentUsd.toFixed(6)} ` +
      `of this activity's ${formatUsd(allowanceUsd)} allowance ($${allowanceUsd.toFixed(6)}) is spent`,
  ) {
    super(
      message,
      BudgetAllowanceExceededError.TYPE,
      true,
      [{ model, allowance_usd: allowanceUsd, spent_usd: spentUsd, call_worst_case_usd: callWorstCaseUsd }],
    );
  }
}
Object.defineProperty(BudgetAllowanceExceededError.prototype, 'name', { value: 'BudgetAllowanceExceededError', enumerable: true });

/**
 * No call was started: with it, the job's calls (those in flight at their worst case) could cost
 * more than the job's budget. The training job's own guard, held in the spend ledger across every
 * activity and worker of the job; handled like an allowance refusal.
 */
export class JobBudgetExhaustedError extends BudgetAllowanceExceededError {
  constructor(model: string, refusal: BudgetRefusal, callWorstCaseUsd: number) {
    super(
      model,
      refusal.budgetUsd,
      refusal.committedUsd,
      callWorstCaseUsd,
      `the job's budget is spent: its calls have cost or may still cost $${refusal.committedUsd.toFixed(6)} of ${formatUsd(refusal.budgetUsd)}, ` +
        `and a ${model} call could cost up to $${callWorstCaseUsd.toFixed(6)} more`,
    );
  }
}
Object.defineProperty(JobBudgetExhaustedError.prototype, 'name', { value: 'JobBudgetExhaustedError', enumerable: true });

export interface AllowanceOptions {
  /** USD this activity may spend on LLM calls; `null` says, explicitly, no cap. */
  allowanceUsd: number | null;
  /** The job's `config.prices`: they price worst cases and actual calls before the table does. */
  prices?: ModelPrices | null;
  /** The job the calls are billed to in the spend ledger; by default the workflow's id (= the job id of a training job). */
  jobId?: string;
}

/** Where billed calls are written (adapters/db/spendLedgerRepository.ts). */
export type SpendLedger = Pick<SpendLedgerRepository, 'open' | 'settle' | 'spentBefore' | 'unsettledBefore'>;

/** The activity attempt a client's calls are billed to. */
interface LedgerScope {
  ledger: SpendLedger;
  jobId: string;
  activity: string;
  attempt: number;
  /** Calls of a training job are admitted against its budget (on-demand evaluations have their own). */
  budgeted: boolean;
}

/**
 * A ChatClient under an allowance; it counts what its calls cost. With a ledger, each call is
 * written to it as it returns, and what the activity's earlier (killed) attempts were billed
 * counts as spent: the allowance holds across retries, and `spentUsd` is what the activity was
 * billed in all. One client per activity attempt.
 */
export class GuardedChatClient implements ChatClient {
  /** What this attempt's own calls cost. */
  private spentThisAttempt = 0;
  /** What the ledger billed earlier attempts, once read (then it counts against the allowance). */
  private earlierRead = 0;
  private inFlight = 0;
  private started = 0;
  private earlierAttempts: Promise<number> | null = null;

  constructor(
    private readonly inner: ChatClient,
    private readonly options: AllowanceOptions,
    private readonly scope: LedgerScope | null = null,
    /** Where the provider says what calls cost that no attempt heard back from; null: they stay at their worst case. */
    private readonly storedCalls: StoredCallLookup | null = null,
  ) {}

  /** USD the completed calls cost (with a ledger: this activity's earlier attempts included). */
  get spentUsd(): number {
    return this.spentThisAttempt + this.earlierRead;
  }

  /** What the ledger says this activity's earlier attempts were billed (0 without a ledger). */
  earlierAttemptsUsd(): Promise<number> {
    const scope = this.scope;
    if (!scope) return Promise.resolve(0);
    // Read once, and counted as spent from then on: the allowance holds across attempts.
    return (this.earlierAttempts ??= this.readEarlierAttempts(scope).then(
      (usd) => (this.earlierRead = usd),
      (error: Error) => {
        this.earlierAttempts = null;
        throw error;
      },
    ));
  }

  /**
   * What the activity was billed in all, as it returns: this attempt's completed calls (a step
   * cut short still billed its call) plus its earlier attempts' calls, read from the ledger now.
   * Read again, not the first read: an attempt that timed out may have gone on calling after this
   * one started, and its calls are billed to the job as well.
   */
  async billedUsd(): Promise<number> {
    const scope = this.scope;
    if (!scope || scope.attempt <= 1) return this.spentThisAttempt;
    // An attempt that made no call yet settles its predecessors' open calls here; that read is fresh.
    const readNow = this.earlierAttempts === null;
    const earlier = await this.earlierAttemptsUsd();
    if (readNow) return this.spentThisAttempt + earlier;
    // Calls still open when this attempt started may be settled by now (recorded, or too old to be billed).
    return this.spentThisAttempt + (await this.readEarlierAttempts(scope));
  }

  /** Settles what the provider can say of earlier attempts' open calls, then reads what they were billed. */
  private readEarlierAttempts(scope: LedgerScope): Promise<number> {
    return ledgered(
      this.settleFromProvider(scope).then(() => scope.ledger.spentBefore(scope.activity, scope.attempt)),
      'read',
    );
  }

  /**
   * Calls earlier attempts left open (killed mid-call) are settled at what the provider recorded
   * for them, when it keeps completions, and at $0 when it has no record of one older than any
   * call can run there (it never reached the provider). One it has no record of yet, or a provider
   * that cannot be asked, stays at its worst case: never counted below what may have been billed.
   */
  private async settleFromProvider(scope: LedgerScope): Promise<void> {
    const lookup = this.storedCalls;
    if (!lookup || scope.attempt <= 1) return;
    for (const { callKey, model, ageMs } of await scope.ledger.unsettledBefore(scope.activity, scope.attempt)) {
      const recorded = await lookup.usageOf(callKey).catch(() => undefined);
      if (recorded === undefined) continue; // the provider did not answer: it may still say later
      if (recorded === null) {
        if (lookup.neverBilled(ageMs)) await scope.ledger.settle(callKey, { promptTokens: 0, completionTokens: 0, costUsd: 0 });
        continue;
      }
      const costUsd = costOf(model, recorded.usage, { price: this.priceOverride(model), reportedCostUsd: recorded.reportedCostUsd });
      await scope.ledger.settle(callKey, { promptTokens: recorded.usage.prompt_tokens, completionTokens: recorded.usage.completion_tokens, costUsd });
    }
  }

  /** The job's own price for `model` (`config.prices`), if it gives one. */
  private priceOverride(model: string): ModelPrice | undefined {
    const { prices } = this.options;
    return prices && Object.hasOwn(prices, model) ? prices[model] : undefined;
  }

  /** Calls started (refused ones are not). */
  get calls(): number {
    return this.started;
  }

  /**
   * One chat completion. A provider that failed in a way worth trying again at once (no answer,
   * or its own 5xx: ProviderUnavailableError.sendAgain) is sent the request once more, as a call
   * of its own: admitted against the budget and written to the ledger like the first, so what the
   * first request may have been billed is counted too. Further retries are the activity's.
   */
  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatResult> {
    try {
      return await this.completeOnce(request, signal, ADMISSION_WAIT_MS);
    } catch (error) {
      if (!(error instanceof ProviderUnavailableError && error.sendAgain) || signal?.aborted) throw error;
      if (error.billing !== 'unknown') return this.completeOnce(request, signal, ADMISSION_WAIT_MS);
      // The first request is held at its worst case until a later attempt settles it from the
      // provider's record: near the end of the budget it may be what leaves no room, and waiting
      // would not free it. So the call is sent again only if it fits now; refused, the provider's
      // failure is the answer (the activity is retried, and its retry settles the first request).
      return this.completeOnce(request, signal, 0).catch((again: unknown) => {
        throw again instanceof BudgetAllowanceExceededError ? error : again;
      });
    }
  }

  /** One request to the provider, admitted (waiting up to `admissionWaitMs` for room) and ledgered as one call. */
  private async completeOnce(request: ChatRequest, signal: AbortSignal | undefined, admissionWaitMs: number): Promise<ChatResult> {
    // Nothing is opened in the ledger for a call that would not be sent.
    signal?.throwIfAborted();
    const scope = this.scope;
    await this.earlierAttemptsUsd();
    const price: ModelPrice = resolveModelPrice(request.model, this.options.prices);
    const worstCase = callWorstCaseUsd(price, request.max_tokens, promptTokenUpperBound(request));
    const { allowanceUsd } = this.options;
    // Concurrent calls reserve their worst case, so together they cannot cross the allowance either.
    if (allowanceUsd !== null && this.spentUsd + this.inFlight + worstCase > allowanceUsd) {
      throw new BudgetAllowanceExceededError(request.model, allowanceUsd, this.spentUsd + this.inFlight, worstCase);
    }
    this.inFlight += worstCase;
    const callKey = randomUUID();
    try {
      // In the ledger before it is made: a kill mid-call leaves the call counted at its worst case.
      if (scope) {
        await admit(scope, { callKey, jobId: scope.jobId, activity: scope.activity, attempt: scope.attempt, model: request.model, costUsd: worstCase }, signal, admissionWaitMs);
        // Cancelled while it was admitted: never sent, so billed nothing.
        if (signal?.aborted) {
          await ledgered(scope.ledger.settle(callKey, { promptTokens: 0, completionTokens: 0, costUsd: 0 }));
          signal.throwIfAborted();
        }
      }
      this.started++;
      const override = this.priceOverride(request.model);
      const result = await this.inner.complete(request, signal, { ...(override ? { price: override } : {}), ...(scope ? { callKey } : {}) }).catch(async (error: unknown) => {
        // A call the provider refused is not billed; one it answered with usage but no message is
        // billed that usage. One we stopped waiting for (cancellation, the trajectory's timeout) or
        // whose answer broke off may have been billed anything: it stays at its worst case, as a
        // killed attempt's call does, until the provider's record settles it.
        const billing = error instanceof ProviderUnavailableError ? error.billing : 'none';
        if (scope && !signal?.aborted && billing !== 'unknown') {
          const billed = billing === 'none' ? { promptTokens: 0, completionTokens: 0, costUsd: 0 } : { promptTokens: billing.usage.prompt_tokens, completionTokens: billing.usage.completion_tokens, costUsd: billing.costUsd };
          await ledgered(scope.ledger.settle(callKey, billed));
          this.spentThisAttempt += billed.costUsd;
        }
        // A call left open (what it cost is unknown, or we stopped waiting for it) counts as spent
        // at the worst case the ledger holds it at: a call sent after it must fit the allowance
        // beside it, and the activity (a trajectory cut off by its timeout) reports it as billed.
        if (signal?.aborted || billing === 'unknown') this.spentThisAttempt += worstCase;
        throw error;
      });
      this.spentThisAttempt += result.costUsd;
      if (scope) {
        const { prompt_tokens: promptTokens, completion_tokens: completionTokens } = result.usage;
        await ledgered(scope.ledger.settle(callKey, { promptTokens, completionTokens, costUsd: result.costUsd }));
      }
      return result;
    } finally {
      this.inFlight -= worstCase;
    }
  }
}

/** What activities get instead of a ChatClient: clients come only with an allowance. */
export class GuardedChatFactory {
  constructor(
    private readonly inner: ChatClient,
    /** Where calls are billed; without one (unit tests), nothing is written. */
    private readonly ledger: SpendLedger | null = null,
    /** The provider's stored completions, when it keeps them (adapters/llm/storedCalls.ts). */
    private readonly storedCalls: StoredCallLookup | null = null,
  ) {}

  open(options: AllowanceOptions): GuardedChatClient {
    const { allowanceUsd } = options;
    if (allowanceUsd !== null && !(typeof allowanceUsd === 'number' && Number.isFinite(allowanceUsd) && allowanceUsd >= 0)) {
      throw ApplicationFailure.nonRetryable(`allowance_usd must be a finite number >= 0 (got ${String(allowanceUsd)})`, 'InvalidAllowance');
    }
    return new GuardedChatClient(this.inner, options, this.scopeOf(options.jobId), this.storedCalls);
  }

  /**
   * The current activity attempt, when there is a ledger and an activity. The job is the one
   * named, else the workflow's id (a training job's workflow id is its job id).
   */
  private scopeOf(jobId: string | undefined): LedgerScope | null {
    const info = this.ledger ? currentActivityInfo() : null;
    const execution = info?.workflowExecution;
    if (!info || !execution) return null;
    return {
      ledger: this.ledger!,
      jobId: jobId ?? execution.workflowId,
      activity: `${execution.runId}/${info.activityId}`,
      attempt: info.attempt,
      budgeted: info.workflowType === 'trainingJob',
    };
  }
}

/**
 * The spend ledger could not be written (its database is unreachable). Not the agent's fault:
 * the episode rethrows it (activities/trajectories.ts), so the activity fails and is retried once
 * the database is back, instead of recording a failed trajectory.
 */
export class LedgerUnavailableError extends Error {
  override readonly name = 'LedgerUnavailableError';
}

async function ledgered<T>(access: Promise<T>, verb: 'read' | 'written' = 'written'): Promise<T> {
  try {
    return await access;
  } catch (error) {
    throw new LedgerUnavailableError(`the spend ledger could not be ${verb}: ${(error as Error).message}`, { cause: error });
  }
}

/** How long a call waits for the job's calls in flight to return and free budget before it is refused. */
export const ADMISSION_WAIT_MS = 30_000;
const ADMISSION_POLL_MS = 100;

/**
 * Opens the call in the ledger, admitted against the job's budget. While the budget cannot hold
 * its worst case only because other calls of the job are in flight (at their worst case; they
 * settle at what they cost), it waits for them, up to ADMISSION_WAIT_MS: so a job spends its
 * budget nearly to the end instead of stopping when the in-flight worst cases first touch it.
 */
async function admit(scope: LedgerScope, entry: Parameters<SpendLedger['open']>[0], signal: AbortSignal | undefined, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const refusal = await ledgered(scope.ledger.open(entry, { budgeted: scope.budgeted }));
    if (!refusal) return;
    const wouldFitWhenSettled = refusal.committedUsd - refusal.inFlightUsd + entry.costUsd <= refusal.budgetUsd;
    if (!wouldFitWhenSettled || Date.now() >= deadline || signal?.aborted) throw new JobBudgetExhaustedError(entry.model, refusal, entry.costUsd);
    await new Promise((resolve) => setTimeout(resolve, ADMISSION_POLL_MS));
  }
}

/** The running activity's info, or null outside an activity (Context.current() throws there). */
function currentActivityInfo(): Info | null {
  try {
    return Context.current().info;
  } catch {
    return null;
  }
}

/** A factory from either a factory or a bare client (which it then guards). */
export function guardedChats(source: ChatClient | GuardedChatFactory): GuardedChatFactory {
  return source instanceof GuardedChatFactory ? source : new GuardedChatFactory(source);
}

/** An activity input's optional `allowance_usd`: absent (or null) means no cap. */
export function allowanceOf(input: { allowance_usd?: number | null }): number | null {
  return input.allowance_usd ?? null;
}
