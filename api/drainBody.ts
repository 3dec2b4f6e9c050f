/**
 * Reading what is left of a request body before answering early (a 413, a 405): a client still
 * sending when the connection closes sees a reset, not the answer. Bounded, since a client may
 * send without end; past the bound the answer closes the connection.
 */

/** How much of a body is read and thrown away before the early answer is sent. */
const DRAIN_LIMIT_BYTES = 64 * 1024 * 1024;
const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Reads and discards what is left of a request body, up to DRAIN_LIMIT_BYTES or
 * DRAIN_TIMEOUT_MS. True when the body ended; false when the bound stopped the reading, and the
 * answer must then close the connection (`connection: close`), or the rest would be read forever.
 */
export async function drain(
  raw: NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean },
  { limitBytes = DRAIN_LIMIT_BYTES, timeoutMs = DRAIN_TIMEOUT_MS }: { limitBytes?: number; timeoutMs?: number } = {},
): Promise<boolean> {
  if (raw.readableEnded) return true;
  if (raw.destroyed) return false;
  return new Promise<boolean>((resolve) => {
    let read = 0;
    const done = (ended: boolean) => {
      clearTimeout(timer);
      raw.removeListener('data', onData);
      raw.removeListener('end', onEnd);
      raw.removeListener('error', onError);
      raw.removeListener('close', onClose);
      resolve(ended);
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > limitBytes) done(false);
    };
    const onEnd = () => done(true);
    const onError = () => done(false);
    const onClose = () => done(raw.readableEnded === true);
    const timer = setTimeout(() => done(false), timeoutMs);
    raw.on('data', onData);
    raw.once('end', onEnd);
    raw.once('error', onError);
    raw.once('close', onClose);
    raw.resume();
  });
}
