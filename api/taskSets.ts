/**
 * Where a job's training and evaluation queries come from: inline, a named built-in set, JSONL
 * text (one TaskSchema object a line, as `flow start --tasks file.jsonl` sends it), or a JSONL
 * file the API process reads from its task directory (FLOW_TASK_DIR, default ./tasks). Every
 * line is validated with TaskSchema; errors name the field and the line.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { TaskSchema, type Task } from '../training/task';
import { describeZodError } from '../training/zodErrors';
import { simulatedTaskSet } from '../training/simulation/environment';
import { findUnsafeValue } from './paramsGuard';

export const TASK_SET_NAMES = ['simulated-small', 'simulated', 'tools-calculator'] as const;
export type TaskSetName = (typeof TASK_SET_NAMES)[number];

/** The most queries one set may hold (as the job input allows). */
export const MAX_TASKS = 2000;
/** JSONL text or a task file larger than this is refused before it is parsed. */
export const MAX_TASK_BYTES = 10 * 1024 * 1024;
export const TASK_DIR_ENV = 'FLOW_TASK_DIR';

/** Bad task input; the message names the parameter, and the line where there is one. */
export class TaskSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskSetError';
  }
}

export function builtInTaskSet(name: TaskSetName): Task[] {
  if (name === 'tools-calculator') return calculatorTaskSet();
  return simulatedTaskSet({ queriesPerFamily: name === 'simulated-small' ? 2 : 4, seed: 1 });
}

/** Arithmetic for the `tools` environment's calculator; answers worked out here, not by the tool. */
function calculatorTaskSet(): Task[] {
  return Array.from({ length: 20 }, (_, i) => {
    const a = 12 + 7 * i;
    const b = 3 + (i % 9);
    const c = 100 + 13 * i;
    return { id: `calc-${i}`, prompt: `What is \`${a} * ${b} + ${c}\`?`, expected_answer: String(a * b + c), expected_tool: 'calculator' };
  });
}

/**
 * Tasks from JSONL text: one JSON object a line; blank lines are skipped. `source` names the
 * parameter in errors: "training_queries_jsonl line 3: prompt: Invalid input: expected string".
 */
export function parseTasksJsonl(text: string, source: string): Task[] {
  if (Buffer.byteLength(text, 'utf8') > MAX_TASK_BYTES) throw new TaskSetError(`${source}: larger than ${MAX_TASK_BYTES} bytes`);
  const tasks: Task[] = [];
  const firstLineOf = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index].trim();
    if (line === '') continue;
    const where = `${source} line ${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new TaskSetError(`${where}: not valid JSON (${(error as Error).message})`);
    }
    // JSON escapes can spell what the params check refused in plain strings (\u0000, lone surrogates).
    const unsafe = findUnsafeValue(value);
    if (unsafe) throw new TaskSetError(`${where}: ${unsafe.path}: ${unsafe.problem}`);
    const parsed = TaskSchema.safeParse(value);
    if (!parsed.success) throw new TaskSetError(`${where}: ${describeZodError(parsed.error, value)}`);
    const first = firstLineOf.get(parsed.data.id);
    if (first !== undefined) throw new TaskSetError(`${where}: duplicate task id ${JSON.stringify(parsed.data.id)} (first on line ${first})`);
    firstLineOf.set(parsed.data.id, index + 1);
    if (tasks.length === MAX_TASKS) throw new TaskSetError(`${where}: more than ${MAX_TASKS} tasks`);
    tasks.push(parsed.data);
  }
  if (tasks.length === 0) throw new TaskSetError(`${source}: no tasks (one JSON object a line, e.g. {"id":"q1","prompt":"...","expected_answer":"..."})`);
  return tasks;
}

/**
 * Tasks from a JSONL file under the task directory. The path is taken relative to it, and a
 * path that leads outside it (.., an absolute path elsewhere, a symlink out) is refused: API
 * callers must not make the server read arbitrary files. Errors name the file as the caller gave
 * it and the directory by its variable, never by where it is on the server's disk.
 */
export async function readTaskFile(file: string, source: string, env: NodeJS.ProcessEnv = process.env): Promise<Task[]> {
  const root = path.resolve(env[TASK_DIR_ENV] || 'tasks');
  let realRoot: string;
  try {
    realRoot = await fs.realpath(root);
  } catch {
    throw new TaskSetError(`${source}: this server has no task directory (${TASK_DIR_ENV}); send the tasks inline or as JSONL text`);
  }
  const outside = () => new TaskSetError(`${source}: ${JSON.stringify(file)} is outside the task directory (${TASK_DIR_ENV}); give a path relative to it`);
  const resolved = path.resolve(realRoot, file);
  if (!isInside(realRoot, resolved)) throw outside();
  let real: string;
  try {
    real = await fs.realpath(resolved);
  } catch {
    throw new TaskSetError(`${source}: no file ${JSON.stringify(file)} in the task directory (${TASK_DIR_ENV})`);
  }
  if (!isInside(realRoot, real)) throw outside();
  const stat = await fs.stat(real);
  if (!stat.isFile()) throw new TaskSetError(`${source}: ${JSON.stringify(file)} is not a file`);
  if (stat.size > MAX_TASK_BYTES) throw new TaskSetError(`${source}: ${JSON.stringify(file)} is larger than ${MAX_TASK_BYTES} bytes`);
  return parseTasksJsonl(await fs.readFile(real, 'utf8'), `${source} ${JSON.stringify(file)}`);
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/** The task parameters of `training.start_grpo` (api/schemas.ts). */
export interface TaskInputParams {
  training_queries?: Task[];
  task_set?: TaskSetName;
  training_queries_jsonl?: string;
  task_file?: string;
  evaluation_queries?: Task[];
  evaluation_queries_jsonl?: string;
  evaluation_task_file?: string;
}

export const TRAINING_TASK_SOURCES = ['training_queries', 'task_set', 'training_queries_jsonl', 'task_file'] as const;
export const EVALUATION_TASK_SOURCES = ['evaluation_queries', 'evaluation_queries_jsonl', 'evaluation_task_file'] as const;

/** The training (and, if given, evaluation) queries, from whichever source the params name. */
export async function resolveTaskInput(params: TaskInputParams, env: NodeJS.ProcessEnv = process.env): Promise<{ training_queries: Task[]; evaluation_queries?: Task[] }> {
  const training = params.training_queries
    ? params.training_queries
    : params.task_set
      ? builtInTaskSet(params.task_set)
      : params.training_queries_jsonl !== undefined
        ? parseTasksJsonl(params.training_queries_jsonl, 'training_queries_jsonl')
        : params.task_file !== undefined
          ? await readTaskFile(params.task_file, 'task_file', env)
          : null;
  if (training === null) throw new TaskSetError(`give exactly one of ${TRAINING_TASK_SOURCES.join(', ')}`);
  const evaluation = params.evaluation_queries
    ? params.evaluation_queries
    : params.evaluation_queries_jsonl !== undefined
      ? parseTasksJsonl(params.evaluation_queries_jsonl, 'evaluation_queries_jsonl')
      : params.evaluation_task_file !== undefined
        ? await readTaskFile(params.evaluation_task_file, 'evaluation_task_file', env)
        : undefined;
  return { training_queries: training, ...(evaluation ? { evaluation_queries: evaluation } : {}) };
}
