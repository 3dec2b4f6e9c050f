/** api/drainBody.ts: what is left of a body is read before an early answer, within bounds. */
import { PassThrough } from 'node:stream';
import { drain } from '../../api/drainBody';

describe('drain', () => {
  it('reads a body to its end: true', async () => {
    const body = new PassThrough();
    const drained = drain(body);
    body.write(Buffer.alloc(1000));
    body.end(Buffer.alloc(10));
    expect(await drained).toBe(true);
    expect(await drain(body)).toBe(true); // already ended
  });

  it('stops at the size bound or the time bound: false, so the answer closes the connection', async () => {
    const endless = new PassThrough();
    const bySize = drain(endless, { limitBytes: 100, timeoutMs: 60_000 });
    endless.write(Buffer.alloc(60));
    endless.write(Buffer.alloc(60));
    expect(await bySize).toBe(false);
    expect(endless.listenerCount('data')).toBe(0);

    const slow = new PassThrough();
    const startedAt = Date.now();
    expect(await drain(slow, { timeoutMs: 50 })).toBe(false);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(45);
  });

  it('a stream that errors or closes before its end: false', async () => {
    const failing = new PassThrough();
    const drained = drain(failing);
    failing.destroy(new Error('reset'));
    expect(await drained).toBe(false);
    expect(['data', 'end', 'close'].map((event) => failing.listenerCount(event))).toEqual([0, 0, 0]);
    // Already destroyed: no wait for the time bound.
    const startedAt = Date.now();
    expect(await drain(failing, { timeoutMs: 5_000 })).toBe(false);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });
});
