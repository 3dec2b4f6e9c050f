import { Context } from '@temporalio/activity';

/** How often a running activity tells Temporal it is alive (the worker throttles to 2 s). */
export const KEEP_ALIVE_INTERVAL_MS = 1000;

/**
 * Runs `work` while heartbeating every second with `details()` (the activity's resume point, if
 * it has one). A worker killed mid-activity is then noticed within the activity's heartbeat
 * timeout, seconds, instead of its start-to-close timeout, minutes; and a slow model call cannot
 * make a live activity look dead.
 */
export async function keepAlive<T>(work: () => Promise<T>, details: () => unknown = () => undefined): Promise<T> {
  const context = Context.current();
  const beat = () => context.heartbeat(details());
  beat();
  const timer = setInterval(beat, KEEP_ALIVE_INTERVAL_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
