/**
 * The model provider is infrastructure: when it cannot answer (ProviderUnavailableError: 5xx, 429,
 * a refused connection, an answer broken off), the activity that called it fails retryably and
 * Temporal runs it again within `infrastructure_retry_minutes`, waiting as long as the provider's
 * Retry-After asked. The agent's trajectories, the judge's scores and the optimizer's update all
 * call it; each also stops a call the activity no longer waits for (cancellation, worker shutdown).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ProviderUnavailableError } from '../adapters/llm/chatClient';

/** A retryable failure; the next attempt waits as long as the provider's Retry-After asked, when it sent one (at most 5 min). */
export function providerRetry(error: ProviderUnavailableError): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'ProviderUnavailable',
    message: error.message,
    cause: error,
    ...(error.retryAfterMs !== undefined ? { nextRetryDelay: error.retryAfterMs } : {}),
  });
}

/** The running activity's cancellation signal; undefined outside an activity (code called directly, as tests do). */
export function activityCancellationSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}
