import { DEFAULT_STATUS_CACHE_TTL_MS, JobStatusCache, oncePerRow, statusCacheTtlFromEnv } from '../../api/jobStatusCache';

/** A load that counts its reads and answers what `rows` holds at the time of the read. */
function counted(rows: Map<string, { status: string } | Error | null>) {
  const reads: string[] = [];
  const load = async (jobId: string) => {
    reads.push(jobId);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const row = rows.get(jobId) ?? null;
    if (row instanceof Error) throw row;
    return row;
  };
  return { reads, load };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('callers of one job share the read in flight and, within the TTL, its answer', async () => {
  const rows = new Map([['a', { status: 'running' }]]);
  const { reads, load } = counted(rows);
  const cache = new JobStatusCache(load, 200);
  const answers = await Promise.all([cache.get('a'), cache.get('a'), cache.get('a')]);
  expect(answers).toEqual([{ status: 'running' }, { status: 'running' }, { status: 'running' }]);
  expect(reads).toEqual(['a']);
  rows.set('a', { status: 'completed' });
  expect(await cache.get('a')).toEqual({ status: 'running' });
  expect(reads).toEqual(['a']);
});

test('after the TTL the row is read again', async () => {
  const rows = new Map([['a', { status: 'running' }]]);
  const { reads, load } = counted(rows);
  const cache = new JobStatusCache(load, 30);
  await cache.get('a');
  rows.set('a', { status: 'completed' });
  await sleep(60);
  expect(await cache.get('a')).toEqual({ status: 'completed' });
  expect(reads).toEqual(['a', 'a']);
});

test('forget drops the copy: the next caller reads the change at once', async () => {
  const rows = new Map([['a', { status: 'running' }]]);
  const { reads, load } = counted(rows);
  const cache = new JobStatusCache(load, 60_000);
  await cache.get('a');
  rows.set('a', { status: 'cancelled' });
  cache.forget('a');
  expect(await cache.get('a')).toEqual({ status: 'cancelled' });
  expect(reads).toEqual(['a', 'a']);
});

test('a job not found and a failed read are not kept', async () => {
  const rows = new Map<string, { status: string } | Error | null>([['b', new Error('connection refused')]]);
  const { reads, load } = counted(rows);
  const cache = new JobStatusCache(load, 60_000);
  expect(await cache.get('missing')).toBeNull();
  await expect(cache.get('b')).rejects.toThrow('connection refused');
  await sleep(1); // the copies are dropped once their reads settle
  rows.set('missing', { status: 'queued' });
  rows.set('b', { status: 'running' });
  expect(await cache.get('missing')).toEqual({ status: 'queued' });
  expect(await cache.get('b')).toEqual({ status: 'running' });
  expect(reads).toEqual(['missing', 'b', 'missing', 'b']);
});

test('a TTL of 0 reads every time', async () => {
  const { reads, load } = counted(new Map([['a', { status: 'running' }]]));
  const cache = new JobStatusCache(load, 0);
  await Promise.all([cache.get('a'), cache.get('a')]);
  await cache.get('a');
  expect(reads).toEqual(['a', 'a', 'a']);
});

test('FLOW_STATUS_CACHE_TTL_MS: unset is the default, 0 turns it off, anything but whole milliseconds up to a minute is refused', () => {
  expect(statusCacheTtlFromEnv({})).toBe(DEFAULT_STATUS_CACHE_TTL_MS);
  expect(statusCacheTtlFromEnv({ FLOW_STATUS_CACHE_TTL_MS: '' })).toBe(DEFAULT_STATUS_CACHE_TTL_MS);
  expect(statusCacheTtlFromEnv({ FLOW_STATUS_CACHE_TTL_MS: '0' })).toBe(0);
  expect(statusCacheTtlFromEnv({ FLOW_STATUS_CACHE_TTL_MS: '1000' })).toBe(1000);
  for (const bad of ['soon', '-1', '2.5', '60001']) {
    expect(() => statusCacheTtlFromEnv({ FLOW_STATUS_CACHE_TTL_MS: bad })).toThrow(`FLOW_STATUS_CACHE_TTL_MS must be an integer from 0 to 60000 (ms; 0: no copies), got "${bad}"`);
  }
});

test('a lookup arms no timer (each one would wake the process again a moment after the answer)', async () => {
  jest.useFakeTimers();
  try {
    const cache = new JobStatusCache(async () => ({ status: 'running' }), 250);
    await cache.get('a');
    await cache.get('a');
    expect(jest.getTimerCount()).toBe(0);
  } finally {
    jest.useRealTimers();
  }
});

test('oncePerRow: callers sharing a row read share what is built from it; a row read again is built again', async () => {
  const rows = new Map([['a', { status: 'running' }]]);
  const { reads, load } = counted(rows);
  const cache = new JobStatusCache(load, 30);
  const built: string[] = [];
  const answer = oncePerRow((row: { status: string }) => {
    built.push(row.status);
    return { answer: row.status };
  });
  const first = answer((await cache.get('a'))!);
  const second = answer((await cache.get('a'))!);
  expect(second).toBe(first);
  expect(built).toEqual(['running']);
  rows.set('a', { status: 'completed' });
  await sleep(60);
  expect(answer((await cache.get('a'))!)).toEqual({ answer: 'completed' });
  expect(built).toEqual(['running', 'completed']);
  expect(reads).toEqual(['a', 'a']);
});
