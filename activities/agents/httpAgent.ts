/**
 * The HTTP agent adapter: Flow trains an agent that lives in another service. Per trajectory it
 * POSTs the task (without its expected answer and tool unless the job sets `expose_expected`)
 * and the current policy (httpAgentContract.ts) and records the trajectory the
 * service answers with. Each attempt has `timeout_seconds`; timeouts, connection errors, 5xx,
 * 408 and 429 are retried with exponential backoff up to `max_attempts`. Everything else a
 * misbehaving service does (invalid JSON, a response off the contract, a 4xx) ends the run at
 * once. A run that fails throws with the reason, which the trajectory activity records as a
 * failed trajectory: the job goes on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LESSONS_HEADER } from '../../training/policy';
import type { AgentSpec, Task } from '../../training/task';
import type { TrajectoryStep } from '../../training/trajectory';
import { describeZodError } from '../../training/zodErrors';
import { answersMatch } from '../tools/toolsEnvironment';
import { readCapped } from '../tools/httpFetch';
import { AgentAddressRefusedError, agentFetch, agentUrlRefusal } from '../../adapters/net/agentUrlPolicy';
import type { AgentRunRequest, AgentRunResult, AgentRuntime } from './agentRuntime';
import { HTTP_AGENT_PROTOCOL, HttpAgentResponseSchema, type HttpAgentRequest, type HttpAgentResponse } from './httpAgentContract';

export type HttpAgentSpec = Extract<AgentSpec, { type: 'http' }>;

export { HTTP_AGENT_ALLOW_ENV } from '../../adapters/net/agentUrlPolicy';

export interface HttpAgentTrajectory {
  job_id: string;
  run: number;
  iteration: number;
  query_index: number;
  sample_index: number;
}

export interface HttpAgentOptions {
  environment: string;
  trajectory: HttpAgentTrajectory;
  /** First retry's delay; each later one doubles, up to `maxBackoffMs`. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** The largest response body read; a larger one is a failed run. */
  maxResponseBytes?: number;
  /** How often a waiting run heartbeats (the worker throttles what it sends to Temporal). */
  heartbeatIntervalMs?: number;
  /** Hosts (`host` or `host:port`) agent services may live on; absent = any public address (agentUrlPolicy.ts). */
  allow?: readonly string[];
}

const RETRYABLE_STATUS = (status: number) => status >= 500 || status === 408 || status === 429;
const BODY_EXCERPT_CHARS = 200;

/** A failed attempt; `retryable` ones are tried again while attempts remain. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export class HttpAgent implements AgentRuntime {
  constructor(
    private readonly spec: HttpAgentSpec,
    private readonly options: HttpAgentOptions,
  ) {}

  async run(request: AgentRunRequest): Promise<AgentRunResult> {
    // A job names its agent's URL; the worker decides which hosts it may call (no SSRF).
    const refusal = agentUrlRefusal(this.spec.url, this.options.allow);
    if (refusal) throw new Error(`http agent ${this.spec.url} refused: ${refusal}`);
    const heartbeat = request.heartbeat ? setInterval(() => request.heartbeat!(), this.options.heartbeatIntervalMs ?? 1_000) : null;
    try {
      const response = await this.callWithRetries(request);
      return this.record(request, response);
    } finally {
      if (heartbeat) clearInterval(heartbeat);
    }
  }

  private async callWithRetries(request: AgentRunRequest): Promise<HttpAgentResponse> {
    const failures: string[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.attempt(request, attempt);
      } catch (error) {
        if (request.signal.aborted) throw error;
        if (!(error instanceof AttemptError)) throw error;
        failures.push(`attempt ${attempt}: ${error.message}`);
        if (!error.retryable || attempt >= this.spec.max_attempts) {
          const tried = error.retryable ? `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}` : 'not retried';
          throw new Error(`http agent ${this.spec.url} ${tried}: ${failures.join('; ')}`);
        }
        const base = this.options.baseBackoffMs ?? 250;
        const delay = Math.min(base * 2 ** (attempt - 1), this.options.maxBackoffMs ?? 5_000);
        // Jitter spreads the retries of a group's trajectories, which fail together.
        await sleep(delay * (0.8 + 0.4 * Math.random()), undefined, { signal: request.signal }).catch(() => {
          throw request.signal.reason;
        });
      }
    }
  }

  private async attempt(request: AgentRunRequest, attempt: number): Promise<HttpAgentResponse> {
    const timeoutMs = Math.round(this.spec.timeout_seconds * 1000);
    const timeout = AbortSignal.timeout(timeoutMs);
    const body: HttpAgentRequest = {
      protocol: HTTP_AGENT_PROTOCOL,
      trajectory: { ...this.options.trajectory, attempt },
      task: this.spec.expose_expected ? request.task : withoutAnswerKey(request.task),
      policy: { system_prompt: request.systemPrompt, lessons: lessonsOf(request.systemPrompt) },
      environment: this.options.environment,
      model: request.model,
      max_steps: request.maxSteps,
      max_tokens: request.maxTokens,
      seed: request.seed,
      timeout_ms: timeoutMs,
    };
    const t = this.options.trajectory;
    let text: string;
    let status: number;
    try {
      // Addresses checked as connected to, redirects never followed (agentUrlPolicy.ts).
      const response = await agentFetch(this.spec.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'idempotency-key': `${t.job_id}/${t.run}/${t.iteration}/${t.query_index}/${t.sample_index}`,
        },
        body: JSON.stringify(body),
        signal: AbortSignal.any([request.signal, timeout]),
      }, this.options.allow);
      status = response.status;
      const read = await readCapped(response, this.options.maxResponseBytes ?? 5 * 1024 * 1024);
      if (read.truncated) throw new AttemptError(`response larger than ${this.options.maxResponseBytes ?? 5 * 1024 * 1024} bytes`, false);
      text = read.text;
    } catch (error) {
      if (error instanceof AttemptError || request.signal.aborted) throw error;
      if (error instanceof AgentAddressRefusedError) throw new AttemptError(error.message, false);
      if (timeout.aborted) throw new AttemptError(`no complete answer within timeout_seconds=${this.spec.timeout_seconds}`, true);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new AttemptError(`connection failed: ${cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error))}`, true);
    }
    if (status < 200 || status >= 300) {
      throw new AttemptError(`HTTP ${status}: ${excerpt(text)}`, RETRYABLE_STATUS(status));
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new AttemptError(`the response is not valid JSON (${(error as Error).message}): ${excerpt(text)}`, false);
    }
    const parsed = HttpAgentResponseSchema.safeParse(json);
    if (!parsed.success) {
      // Cut like a body excerpt: what a service answers is stored and exported with the trajectory.
      throw new AttemptError(`the response does not match the ${HTTP_AGENT_PROTOCOL} contract: ${excerpt(describeZodError(parsed.error, json))}`, false);
    }
    if (parsed.data.steps.length > request.maxSteps) {
      throw new AttemptError(`the response has ${parsed.data.steps.length} steps, more than max_steps=${request.maxSteps}`, false);
    }
    return parsed.data;
  }

  /** The service's steps become Flow's; missing times are the time the answer arrived. */
  private record(request: AgentRunRequest, response: HttpAgentResponse): AgentRunResult {
    const now = new Date().toISOString();
    response.steps.forEach((step, index) => {
      const recorded: TrajectoryStep = {
        index,
        state: step.state,
        action: step.action,
        tool_calls: step.tool_calls.map((call, callIndex) => ({ id: call.id ?? `call_${index}_${callIndex}`, name: call.name, arguments: call.arguments })),
        result: step.result,
        started_at: step.started_at ?? now,
        ended_at: step.ended_at ?? step.started_at ?? now,
        usage: step.usage,
        cost_usd: step.cost_usd,
        logprob: step.logprob,
        error: step.error,
      };
      request.onStep(recorded);
    });
    const success = response.error === null && (response.success ?? judgeByExpectedAnswer(request.task, response.final_answer));
    return { finalAnswer: response.final_answer, success, verified: response.verified, error: response.error };
  }
}

/** The task as an agent under training may see it: no expected answer or tool. */
export function withoutAnswerKey(task: Task): Task {
  const { expected_answer: _answer, expected_tool: _tool, ...rest } = task;
  return rest;
}

function judgeByExpectedAnswer(task: Task, finalAnswer: string | null): boolean {
  return finalAnswer !== null && task.expected_answer !== undefined && answersMatch(finalAnswer, task.expected_answer);
}

const LESSON_LINE = /^- \[(\d+(?:\.\d+)?)\] (.+)$/;

/** The lessons of a rendered policy (training/policy.ts renderSystemPrompt), strongest first. */
export function lessonsOf(systemPrompt: string): { weight: number; text: string }[] {
  const at = systemPrompt.lastIndexOf(`\n${LESSONS_HEADER}\n`);
  if (at < 0) return [];
  return systemPrompt
    .slice(at + LESSONS_HEADER.length + 2)
    .split('\n')
    .map((line) => LESSON_LINE.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ weight: Math.min(1, Number(match[1])), text: match[2] }));
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > BODY_EXCERPT_CHARS ? `${flat.slice(0, BODY_EXCERPT_CHARS)}…` : flat || '(empty body)';
}
