/**
 * FLOW-011, the budget guard: every LLM call an activity makes goes through a GuardedChatClient
 * opened with that activity's allowance, and no call starts when what was spent plus the most
 * this call could cost would exceed it. Activities never hold the raw ChatClient: they get a
 * GuardedChatFactory, whose only way to a client is `open`, which needs an allowance (or an
 * explicit `null`, no cap). So a new call site is guarded by construction.
 */
import { ApplicationFailure } from '@temporalio/common';
import { callWorstCaseUsd, formatUsd } from '../training/budget';
import type { ChatClient, ChatRequest, ChatResult } from './llm/chatClient';
import { type ModelPrice, type ModelPrices, resolveModelPrice } from './llm/pricing';

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
  ) {
    super(
      `budget allowance exceeded: a ${model} call could cost up to $${callWorstCaseUsd.toFixed(6)}, and $${spentUsd.toFixed(6)} ` +
        `of this activity's ${formatUsd(allowanceUsd)} allowance ($${allowanceUsd.toFixed(6)}) is spent`,
      BudgetAllowanceExceededError.TYPE,
      true,
      [{ model, allowance_usd: allowanceUsd, spent_usd: spentUsd, call_worst_case_usd: callWorstCaseUsd }],
    );
  }
}
Object.defineProperty(BudgetAllowanceExceededError.prototype, 'name', { value: 'BudgetAllowanceExceededError', enumerable: true });

export interface AllowanceOptions {
  /** USD this activity may spend on LLM calls; `null` says, explicitly, no cap. */
  allowanceUsd: number | null;
  /** The job's `config.prices`: they price worst cases and actual calls before the table does. */
  prices?: ModelPrices | null;
}

/** A ChatClient under an allowance; it counts what its calls cost. */
export class GuardedChatClient implements ChatClient {
  private spent = 0;
  private inFlight = 0;
  private started = 0;

  constructor(
    private readonly inner: ChatClient,
    private readonly options: AllowanceOptions,
  ) {}

  /** USD the completed calls cost. */
  get spentUsd(): number {
    return this.spent;
  }

  /** Calls started (refused ones are not). */
  get calls(): number {
    return this.started;
  }

  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatResult> {
    const price: ModelPrice = resolveModelPrice(request.model, this.options.prices);
    const worstCase = callWorstCaseUsd(price, request.max_tokens, promptTokenUpperBound(request));
    const { allowanceUsd } = this.options;
    // Concurrent calls reserve their worst case, so together they cannot cross the allowance either.
    if (allowanceUsd !== null && this.spent + this.inFlight + worstCase > allowanceUsd) {
      throw new BudgetAllowanceExceededError(request.model, allowanceUsd, this.spent + this.inFlight, worstCase);
    }
    this.inFlight += worstCase;
    this.started++;
    try {
      const override = this.options.prices && Object.hasOwn(this.options.prices, request.model) ? this.options.prices[request.model] : undefined;
      const result = await this.inner.complete(request, signal, override ? { price: override } : {});
      this.spent += result.costUsd;
      return result;
    } finally {
      this.inFlight -= worstCase;
    }
  }
}

/** What activities get instead of a ChatClient: clients come only with an allowance. */
export class GuardedChatFactory {
  constructor(private readonly inner: ChatClient) {}

  open(options: AllowanceOptions): GuardedChatClient {
    const { allowanceUsd } = options;
    if (allowanceUsd !== null && !(typeof allowanceUsd === 'number' && Number.isFinite(allowanceUsd) && allowanceUsd >= 0)) {
      throw ApplicationFailure.nonRetryable(`allowance_usd must be a finite number >= 0 (got ${String(allowanceUsd)})`, 'InvalidAllowance');
    }
    return new GuardedChatClient(this.inner, options);
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
