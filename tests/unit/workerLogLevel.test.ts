/**
 * FLOW_WORKER_LOG_LEVEL: the Temporal SDK's log level for a worker process, its lines as JSON
 * (workers/telemetry.ts). Unset keeps the SDK's own logger; a bad value is refused naming it.
 */
import { sdkLoggerFromEnv } from '../../workers/telemetry';

test('unset or empty: the SDK default logger is kept', () => {
  expect(sdkLoggerFromEnv({})).toEqual({});
  expect(sdkLoggerFromEnv({ FLOW_WORKER_LOG_LEVEL: '' })).toEqual({});
});

test('a level (any case) logs that level and above, one JSON object per line with the metadata', () => {
  const lines: string[] = [];
  const { logger } = sdkLoggerFromEnv({ FLOW_WORKER_LOG_LEVEL: 'debug' }, (line) => lines.push(line));
  logger!.trace('not shown');
  logger!.debug('Activity started', { activityId: '7', attempt: 2, workflowId: 'job-1', big: 5n });
  logger!.warn('careful');
  expect(lines).toHaveLength(2);
  expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
  const first = JSON.parse(lines[0]);
  expect(first).toMatchObject({ level: 'DEBUG', message: 'Activity started', activityId: '7', attempt: 2, workflowId: 'job-1', big: '5' });
  expect(Date.parse(first.time)).toBeGreaterThan(Date.parse('2020-01-01'));
  expect(JSON.parse(lines[1])).toMatchObject({ level: 'WARN', message: 'careful' });
});

test('a value that is not a level is refused, naming the variable and the levels', () => {
  expect(() => sdkLoggerFromEnv({ FLOW_WORKER_LOG_LEVEL: 'loud' })).toThrow('FLOW_WORKER_LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARN, ERROR (got "loud")');
});
