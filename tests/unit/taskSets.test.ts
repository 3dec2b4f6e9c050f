/**
 * Task sets: JSONL text and files (every line validated, errors naming the line), the task
 * directory's fence, named built-in sets, the start_grpo params' one-source rule, and
 * `flow start --tasks` (against a real local HTTP server standing in for the API).
 */
import { mkdtempSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../api/cli/flow';
import { StartGrpoParamsSchema } from '../../api/schemas';
import { builtInTaskSet, MAX_TASKS, parseTasksJsonl, readTaskFile, resolveTaskInput, TASK_SET_NAMES, TaskSetError } from '../../api/taskSets';
import { calculate } from '../../activities/tools/calculator';
import { TaskSchema } from '../../training/task';

const line = (task: object) => JSON.stringify(task);
const q1 = { id: 'q1', prompt: 'What is 2+2?', expected_answer: '4', expected_tool: 'calculator' };
const q2 = { id: 'q2', prompt: '[shipping] How long for P-100?', family: 'shipping', expected_answer: '3 business days' };

describe('parseTasksJsonl', () => {
  test('one task a line; blank lines and CRLF are fine', () => {
    expect(parseTasksJsonl(`${line(q1)}\r\n\n  ${line(q2)}  \n`, 'tasks')).toEqual([q1, q2]);
  });

  test.each([
    [`${line(q1)}\n{"id": "q2", "prompt": `, /^training_queries_jsonl line 2: not valid JSON \(/],
    [`${line(q1)}\n\n${line({ id: 'q3' })}`, /^training_queries_jsonl line 3: prompt: Invalid input: expected string, received undefined$/],
    [line({ ...q1, prompt: 42 }), /^training_queries_jsonl line 1: prompt: Invalid input: expected string, received number \(got 42\)$/],
    [line({ ...q1, answer: '4' }), /^training_queries_jsonl line 1: \(input\): Unrecognized key: "answer"/],
    [`${line(q1)}\n${line(q2)}\n${line(q1)}`, /^training_queries_jsonl line 3: duplicate task id "q1" \(first on line 1\)$/],
    ['[1, 2]', /^training_queries_jsonl line 1: \(input\): Invalid input: expected object, received array/],
    ['\n \n', /^training_queries_jsonl: no tasks/],
  ])('%#: a bad line is refused, naming the parameter, the line and the field', (text, message) => {
    expect(() => parseTasksJsonl(text, 'training_queries_jsonl')).toThrow(TaskSetError);
    expect(() => parseTasksJsonl(text, 'training_queries_jsonl')).toThrow(message);
  });

  test(`at most ${MAX_TASKS} tasks and 10 MB`, () => {
    const many = Array.from({ length: MAX_TASKS + 1 }, (_, i) => line({ id: `t${i}`, prompt: 'p' })).join('\n');
    expect(() => parseTasksJsonl(many, 'x')).toThrow(`x line ${MAX_TASKS + 1}: more than ${MAX_TASKS} tasks`);
    expect(() => parseTasksJsonl('x'.repeat(10 * 1024 * 1024 + 1), 'x')).toThrow('x: larger than 10485760 bytes');
  });
});

describe('readTaskFile: only files inside the task directory', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'flow-tasks-'));
  const dir = path.join(root, 'tasks');
  const env = { FLOW_TASK_DIR: dir };
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  writeFileSync(path.join(dir, 'train.jsonl'), `${line(q1)}\n${line(q2)}\n`);
  writeFileSync(path.join(dir, 'sub', 'bad.jsonl'), `${line(q1)}\n{"id": 7}\n`);
  writeFileSync(path.join(root, 'secret.jsonl'), line(q1));
  symlinkSync(path.join(root, 'secret.jsonl'), path.join(dir, 'escape.jsonl'));

  test('reads and validates a JSONL file by its path under the directory', async () => {
    expect(await readTaskFile('train.jsonl', 'task_file', env)).toEqual([q1, q2]);
    await expect(readTaskFile('sub/bad.jsonl', 'task_file', env)).rejects.toThrow('task_file "sub/bad.jsonl" line 2: id: Invalid input: expected string, received number (got 7)');
  });

  test.each([
    ['../secret.jsonl', 'is outside the task directory'],
    [path.join(root, 'secret.jsonl'), 'is outside the task directory'],
    ['escape.jsonl', 'is outside the task directory'],
    ['.', 'is outside the task directory'],
    ['sub', '"sub" is not a file'],
    ['nope.jsonl', 'task_file: no file "nope.jsonl" in the task directory'],
  ])('%s is refused: %s', async (file, message) => {
    await expect(readTaskFile(file, 'task_file', env)).rejects.toThrow(message);
  });

  test('a missing task directory is reported by the variable that sets it, never by its path on the server', async () => {
    const refused = readTaskFile('train.jsonl', 'task_file', { FLOW_TASK_DIR: path.join(root, 'none') });
    await expect(refused).rejects.toThrow('task_file: this server has no task directory (FLOW_TASK_DIR); send the tasks inline or as JSONL text');
    await expect(refused).rejects.not.toThrow(root);
  });

  test('resolveTaskInput takes whichever source is given, training and evaluation', async () => {
    expect(await resolveTaskInput({ training_queries: [q1] })).toEqual({ training_queries: [q1] });
    expect((await resolveTaskInput({ task_set: 'simulated-small' })).training_queries).toEqual(builtInTaskSet('simulated-small'));
    expect(await resolveTaskInput({ training_queries_jsonl: line(q1), evaluation_queries_jsonl: line(q2) })).toEqual({ training_queries: [q1], evaluation_queries: [q2] });
    expect(await resolveTaskInput({ task_file: 'train.jsonl', evaluation_task_file: 'train.jsonl' }, env)).toEqual({ training_queries: [q1, q2], evaluation_queries: [q1, q2] });
    expect(await resolveTaskInput({ training_queries: [q1], evaluation_queries: [q2] })).toEqual({ training_queries: [q1], evaluation_queries: [q2] });
    await expect(resolveTaskInput({})).rejects.toThrow('give exactly one of training_queries, task_set, training_queries_jsonl, task_file');
  });
});

describe('built-in task sets', () => {
  test.each(TASK_SET_NAMES)('%s holds valid tasks with unique ids', (name) => {
    const tasks = builtInTaskSet(name);
    expect(tasks.length).toBeGreaterThan(0);
    for (const task of tasks) TaskSchema.parse(task);
    expect(new Set(tasks.map((t) => t.id)).size).toBe(tasks.length);
  });

  test('tools-calculator answers are what the calculator computes', () => {
    for (const task of builtInTaskSet('tools-calculator')) {
      const expression = /`([^`]+)`/.exec(task.prompt)![1];
      expect(calculate(expression).output).toBe(task.expected_answer);
      expect(task.expected_tool).toBe('calculator');
    }
  });
});

describe('start_grpo params: exactly one training source, at most one evaluation source', () => {
  const base = { agent_id: 'a' };
  test('each source alone is accepted, with the environment and agent', () => {
    for (const source of [{ training_queries: [q1] }, { task_set: 'simulated' }, { training_queries_jsonl: line(q1) }, { task_file: 'train.jsonl' }]) {
      expect(StartGrpoParamsSchema.safeParse({ ...base, ...source }).success).toBe(true);
    }
    const http = { type: 'http', url: 'http://agent.local:9000/run', timeout_seconds: 5, max_attempts: 2 };
    expect(StartGrpoParamsSchema.parse({ ...base, task_set: 'tools-calculator', environment: 'tools', agent: http })).toMatchObject({ environment: 'tools', agent: http });
  });

  test.each([
    [{}, 'training_queries', 'give exactly one of training_queries, task_set, training_queries_jsonl, task_file'],
    [{ task_set: 'simulated', task_file: 'x.jsonl' }, 'training_queries', 'give exactly one of'],
    [{ task_set: 'simulated', evaluation_queries: [q1], evaluation_queries_jsonl: line(q2) }, 'evaluation_queries', 'give at most one of evaluation_queries, evaluation_queries_jsonl, evaluation_task_file'],
    [{ task_set: 'simulated', environment: 'moon' }, 'environment', 'Invalid option'],
    [{ task_set: 'simulated', agent: { type: 'http', url: 'ftp://x' } }, 'agent.url', 'an http:// or https:// URL'],
  ])('%j is refused at %s', (params, field, message) => {
    const parsed = StartGrpoParamsSchema.safeParse({ ...base, ...params });
    expect(parsed.success).toBe(false);
    const issue = parsed.error!.issues.find((i) => i.path.join('.') === field);
    expect(issue?.message).toContain(message);
  });
});

describe('flow start --tasks / --eval-tasks', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flow-cli-tasks-'));
  const config = path.join(dir, 'job.json');
  writeFileSync(config, JSON.stringify({ agent_id: 'cli', task_set: 'simulated-small', evaluation_queries: [q2], config: { iterations: 1 } }));
  writeFileSync(path.join(dir, 'train.jsonl'), `${line(q1)}\n`);
  writeFileSync(path.join(dir, 'eval.jsonl'), `${line(q2)}\n`);
  writeFileSync(path.join(dir, 'bad.jsonl'), `${line(q1)}\n{"id":"q9"}\n`);

  let server: http.Server;
  let url: string;
  const bodies: { method: string; params: Record<string, unknown> }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        bodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { job_id: 'job-cli', status: 'queued', created: true } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const run = async (...args: string[]) => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await main(['--url', url, '--token', 'test-token', 'start', config, ...args], { stdout, stderr, env: {} });
    return { code, out, err };
  };

  test('sends the files as JSONL text in place of the config file queries', async () => {
    const { code, out } = await run('--tasks', path.join(dir, 'train.jsonl'), '--eval-tasks', path.join(dir, 'eval.jsonl'));
    expect(code).toBe(0);
    expect(out).toBe('job-cli\n');
    const params = bodies[bodies.length - 1].params;
    expect(bodies[bodies.length - 1].method).toBe('training.start_grpo');
    expect(params).toEqual({ agent_id: 'cli', config: { iterations: 1 }, training_queries_jsonl: `${line(q1)}\n`, evaluation_queries_jsonl: `${line(q2)}\n` });
  });

  test('a bad line or a missing file is a usage error (exit 2) naming file and line; nothing is sent', async () => {
    const sent = bodies.length;
    const bad = await run('--tasks', path.join(dir, 'bad.jsonl'));
    expect(bad.code).toBe(2);
    expect(bad.err).toBe(`flow: ${path.join(dir, 'bad.jsonl')} line 2: prompt: Invalid input: expected string, received undefined\n`);
    const missing = await run('--eval-tasks', path.join(dir, 'none.jsonl'));
    expect(missing).toMatchObject({ code: 2, err: `flow: cannot read task file ${path.join(dir, 'none.jsonl')}: no such file\n` });
    const directory = await run('--tasks', dir);
    expect(directory).toMatchObject({ code: 2, err: `flow: cannot read task file ${dir}: it is a directory\n` });
    expect(bodies.length).toBe(sent);
  });
});
