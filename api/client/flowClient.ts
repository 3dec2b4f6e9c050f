/**
 * The typed TypeScript client of the JSON-RPC facade. Its types are the zod types of
 * api/schemas.ts, so a change to the contract is a compile error here and in every caller.
 * Needs only `fetch` (Node 18+ or a browser).
 */
import type { MethodName, MethodParams, MethodResult } from '../schemas';

export class FlowApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'FlowApiError';
  }

  /** The application error's name in lower case (for example `job_not_found`), when known. */
  get reason(): string | undefined {
    return (this.data as { reason?: string } | undefined)?.reason;
  }
}

export interface FlowClientOptions {
  /** The API's base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  token: string;
  fetch?: typeof fetch;
  /** Per call; default 30 s. */
  timeoutMs?: number;
}

let nextId = 1;

/** A JSON-RPC 2.0 response: `jsonrpc` "2.0" and either a result or an error object with a numeric code. */
function isRpcResponse(body: unknown): body is { result?: unknown; error?: { code: number; message: string; data?: unknown } } {
  if (body === null || typeof body !== 'object' || (body as { jsonrpc?: unknown }).jsonrpc !== '2.0') return false;
  const { error } = body as { error?: unknown };
  if (error === undefined) return 'result' in body;
  return error !== null && typeof error === 'object' && typeof (error as { code?: unknown }).code === 'number' && typeof (error as { message?: unknown }).message === 'string';
}

export class FlowClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: FlowClientOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  async call<M extends MethodName>(method: M, params: MethodParams<M>): Promise<MethodResult<M>> {
    const id = nextId++;
    const response = await this.fetch(`${this.options.url.replace(/\/$/, '')}/rpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id, method, params: params ?? {} }),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
    });
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new FlowApiError(-32603, `the server answered HTTP ${response.status} with a body that is not JSON`, { http_status: response.status });
    }
    if (!isRpcResponse(body)) {
      // A wrong URL (another service, a path prefix) answers something else: say so, not "undefined".
      throw new FlowApiError(-32603, `the server at ${this.options.url} answered HTTP ${response.status}, not a JSON-RPC response: is FLOW_API_URL the Flow API's base URL?`, {
        http_status: response.status,
      });
    }
    if (body.error) throw new FlowApiError(body.error.code, body.error.message, body.error.data);
    return body.result as MethodResult<M>;
  }

  startGrpo(params: MethodParams<'training.start_grpo'>) {
    return this.call('training.start_grpo', params);
  }

  getStatus(jobId: string) {
    return this.call('training.get_status', { job_id: jobId });
  }

  listJobs(params: MethodParams<'training.list_jobs'> = {}) {
    return this.call('training.list_jobs', params);
  }

  cancel(jobId: string, reason?: string) {
    return this.call('training.cancel', { job_id: jobId, ...(reason ? { reason } : {}) });
  }

  exportTrajectories(params: MethodParams<'training.export_trajectories'>) {
    return this.call('training.export_trajectories', params);
  }

  /** Every page of an export, `pageSize` at a time (at most 10,000 per call). */
  async *exportAll(params: Omit<MethodParams<'training.export_trajectories'>, 'offset' | 'limit'>, pageSize = 1000) {
    for (let offset = 0; ; offset += pageSize) {
      const page = await this.exportTrajectories({ ...params, offset, limit: pageSize });
      yield page;
      if (page.count < pageSize || offset + page.count >= page.total) return;
    }
  }

  /** Raises a running job's budget; a lower one is refused (-32602). */
  updateBudget(jobId: string, budgetUsd: number) {
    return this.call('training.update_budget', { job_id: jobId, budget_usd: budgetUsd });
  }

  /** Admin tokens only: turns the global kill switch on or off. */
  killSwitch(on: boolean, reason?: string) {
    return this.call('training.kill_switch', { on, ...(reason ? { reason } : {}) });
  }

  getKillSwitch() {
    return this.call('training.get_kill_switch', {});
  }

  /** Starts a new run of a finished job from a checkpoint (default the best). */
  /** Evaluates a checkpoint (default the best) against the untrained baseline; waits for the result. */
  evaluate(jobId: string, checkpoint?: MethodParams<'training.evaluate'>['checkpoint'], options: { budgetUsd?: number } = {}) {
    return this.call('training.evaluate', {
      job_id: jobId,
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      ...(options.budgetUsd !== undefined ? { budget_usd: options.budgetUsd } : {}),
    });
  }

  resume(jobId: string, checkpoint?: MethodParams<'training.resume'>['checkpoint'], options: { budgetUsd?: number } = {}) {
    return this.call('training.resume', {
      job_id: jobId,
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      ...(options.budgetUsd !== undefined ? { budget_usd: options.budgetUsd } : {}),
    });
  }

  /** A checkpoint's policy (default the best) as JSON, or as the system prompt the agent is sent (`text`). */
  getPolicy(jobId: string, options: { checkpoint?: MethodParams<'training.get_policy'>['checkpoint']; format?: 'json' | 'text' } = {}) {
    return this.call('training.get_policy', { job_id: jobId, ...options });
  }

  /** Makes a checkpoint the agent's active policy version, if its test-split evaluation allows it. */
  promotePolicy(params: MethodParams<'agents.promote_policy'>) {
    return this.call('agents.promote_policy', params);
  }

  /** Makes an earlier version's content active again (as a new version). */
  rollbackPolicy(agentId: string, toVersion: number, reason?: string) {
    return this.call('agents.rollback', { agent_id: agentId, to_version: toVersion, ...(reason ? { reason } : {}) });
  }

  listPolicyVersions(agentId: string, page: { limit?: number; cursor?: string } = {}) {
    return this.call('agents.list_policy_versions', { agent_id: agentId, ...page });
  }

  getActivePolicy(agentId: string) {
    return this.call('agents.get_active_policy', { agent_id: agentId });
  }

  discover() {
    return this.call('rpc.discover', {});
  }
}
