import { PRIORITIES, PrioritySchema } from '../../training/priority';
import { GRPOConfigSchema } from '../../training/grpoConfig';
import { TaskSchema } from '../../training/task';
import { DEFAULT_BASE_PROMPT, TrainingJobInputSchema } from '../../training/jobInput';
import { TokenUsageSchema, ToolCallSchema, TrajectorySchema, TrajectoryStepSchema } from '../../training/trajectory';
import { describeZodError } from '../../training/zodErrors';
import { JOB_STATUSES, JobStatusSchema, isTerminalJobStatus } from '../../training/jobStatus';

describe('describeZodError', () => {
  it('names the path, the message and the offending value', () => {
    const input = { group_size: 1 };
    const result = GRPOConfigSchema.safeParse(input);
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(describeZodError(result.error, input)).toMatch(/^group_size: .*\(got 1\)$/);
  });

  it('copes with a missing input, a root-level issue and paths through non-objects', () => {
    const rootResult = GRPOConfigSchema.safeParse('nope');
    if (rootResult.success) throw new Error('expected failure');
    expect(describeZodError(rootResult.error)).toMatch(/^\(input\): /);
    expect(describeZodError(rootResult.error, 'nope')).toMatch(/\(got "nope"\)$/);

    const nested = { job_id: 'j', agent_id: 'a', training_queries: 'not-an-array' };
    const nestedResult = TrainingJobInputSchema.safeParse(nested);
    if (nestedResult.success) throw new Error('expected failure');
    expect(describeZodError(nestedResult.error, nested)).toContain('training_queries: ');

    const deep = { job_id: 'j', agent_id: 'a', training_queries: [null] };
    const deepResult = TrainingJobInputSchema.safeParse(deep);
    if (deepResult.success) throw new Error('expected failure');
    expect(describeZodError(deepResult.error, deep)).toContain('training_queries.0: ');

    const missing = { job_id: 'j', agent_id: 'a', training_queries: [{ prompt: 'p' }] };
    const missingResult = TrainingJobInputSchema.safeParse(missing);
    if (missingResult.success) throw new Error('expected failure');
    // The missing id has no value to show, so no "(got ...)".
    expect(describeZodError(missingResult.error, missing)).toMatch(/^training_queries\.0\.id: [^(]*$/);
  });

  it('fills defaults', () => {
    const config = GRPOConfigSchema.parse({});
    expect(config.group_size).toBe(8);
    expect(TrainingJobInputSchema.parse({ job_id: 'j', agent_id: 'a', training_queries: [{ id: 'q', prompt: 'p' }] }).config).toEqual(
      config,
    );
  });
});

describe('job status vocabulary', () => {
  it('marks exactly the finished statuses terminal', () => {
    expect(JOB_STATUSES.filter(isTerminalJobStatus)).toEqual(['completed', 'failed', 'cancelled', 'budget_exceeded']);
    expect(JobStatusSchema.safeParse('running').success).toBe(true);
    expect(JobStatusSchema.safeParse('done').success).toBe(false);
  });
});

describe('trajectory schemas', () => {
  it('accept a recorded trajectory and name a bad step', () => {
    const step = {
      index: 0,
      state: 'user asked',
      action: { type: 'final_answer', content: '42' },
      tool_calls: [],
      result: null,
      started_at: '2024-01-01T00:00:00.000Z',
      ended_at: '2024-01-01T00:00:01.000Z',
      usage: { prompt_tokens: 10, completion_tokens: 2 },
      cost_usd: 0.0001,
      logprob: -0.2,
      error: null,
    };
    const trajectory = {
      job_id: 'job-1',
      run: 1,
      iteration: 0,
      query_index: 0,
      sample_index: 3,
      query_id: 'q',
      agent_id: 'agent',
      steps: [step],
      final_answer: '42',
      success: true,
      verified: false,
      error: null,
      usage: { prompt_tokens: 10, completion_tokens: 2 },
      cost_usd: 0.0001,
      log_prob: -0.2,
      started_at: step.started_at,
      ended_at: step.ended_at,
    };
    expect(TrajectorySchema.parse(trajectory)).toEqual(trajectory);
    expect(TrajectoryStepSchema.safeParse({ ...step, tool_calls: [{ id: 'c', name: 'calc', arguments: [] }] }).success).toBe(false);
    expect(ToolCallSchema.parse({ id: 'c', name: 'calc', arguments: { x: 1 } }).name).toBe('calc');
    expect(TokenUsageSchema.safeParse({ prompt_tokens: -1, completion_tokens: 0 }).success).toBe(false);
    expect(PrioritySchema.options).toEqual([...PRIORITIES]);
    expect(TaskSchema.safeParse({ id: 'q', prompt: 'p', extra: 1 }).success).toBe(false);
    expect(DEFAULT_BASE_PROMPT.length).toBeGreaterThan(0);
  });

  it('describeZodError shows nothing when the input does not reach the issue path', () => {
    const result = GRPOConfigSchema.safeParse({ group_size: 1 });
    if (result.success) throw new Error('expected failure');
    expect(describeZodError(result.error, 'a string, not the parsed object')).toMatch(/^group_size: [^(]*$/);
    expect(describeZodError(result.error, null)).toMatch(/^group_size: [^(]*$/);
  });

  it('describeZodError describes a value nested too deep to serialise instead of overflowing the stack', () => {
    for (const [deep, shown] of [
      [JSON.parse(`${'['.repeat(100_000)}1${']'.repeat(100_000)}`), '[…]'],
      [JSON.parse(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`), '{…}'],
    ] as const) {
      const input = { group_size: deep };
      const result = GRPOConfigSchema.safeParse(input);
      if (result.success) throw new Error('expected failure');
      expect(describeZodError(result.error, input)).toBe(`group_size: Invalid input: expected number, received ${Array.isArray(deep) ? 'array' : 'object'} (got ${shown})`);
    }
  });
});
