/**
 * Bad input, table-driven: every case asserts the exact HTTP status and JSON-RPC error code,
 * that no stack trace leaks, and (after the table) that nothing was written or started: no job
 * row for the callers' tenant, no workflow for the agent, and another tenant's job untouched.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER, type TokenClaims } from '../../api/auth';
import { buildApiServer } from '../../api/server';
import { rpcError, startApiHarness, waitFor, writeVersions, type ApiHarness } from '../support/apiHarness';

let api: ApiHarness;
const tenant = `bad-input-${randomUUID().slice(0, 8)}`;
const agent = `bad-agent-${randomUUID().slice(0, 8)}`;
let victimJob: string;
let victimUpdatedAt: Date;

beforeAll(async () => {
  api = await startApiHarness();
  // Another tenant's job, queued (no worker runs in this file), which no case may touch.
  const victim = await (await api.client({ tenant: 'victim-tenant' })).startGrpo({ agent_id: 'victim-agent', task_set: 'simulated-small', config: { iterations: 1 } });
  victimJob = victim.job_id;
  victimUpdatedAt = (await api.h.repos.jobs.get(victimJob))!.updatedAt;
});

afterAll(async () => {
  if (victimJob) await api.h.client.workflow.getHandle(victimJob).terminate('test over').catch(() => undefined);
  await api?.close();
});

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const claims = (extra: Partial<TokenClaims> = {}) => ({ tenant, ...extra });
const callerToken = (extra: Partial<TokenClaims> = {}) => api.token(claims(extra));
const sign = (payload: Record<string, unknown>, configure: (jwt: SignJWT) => SignJWT, alg = 'HS256', secret = api.secret) =>
  configure(new SignJWT(payload).setProtectedHeader({ alg })).sign(new TextEncoder().encode(secret));
const standard = (jwt: SignJWT) => jwt.setSubject('mallory').setIssuer(DEFAULT_ISSUER).setAudience(DEFAULT_AUDIENCE).setIssuedAt();

const start = (params: Record<string, unknown>) => ({ jsonrpc: '2.0', id: 1, method: 'training.start_grpo', params: { agent_id: agent, task_set: 'simulated-small', ...params } });
const call = (method: string, params: unknown, id: unknown = 1) => ({ jsonrpc: '2.0', id, method, params });
const config = (values: Record<string, unknown>) => start({ config: values });

interface Case {
  name: string;
  body: () => unknown;
  /** The Authorization header; default a trainer token of the callers' tenant. */
  auth?: () => Promise<string | undefined>;
  contentType?: string;
  status?: number;
  code: number;
  /** Expected words in the message. */
  message?: RegExp;
  /** Words the message must not hold. */
  notMessage?: RegExp;
}

const bearer = async (token: Promise<string> | string) => `Bearer ${await token}`;
/** An admin of the callers' tenant: sees the victim's job, so checks past tenancy are reached. */
const admin = () => bearer(callerToken({ roles: ['admin'] }));
/** `[[[…1…]]]`, `depth` arrays deep, as JSON text (too deep for JSON.stringify here). */
const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
const rawCall = (method: string, params: string) => `{"jsonrpc":"2.0","id":1,"method":"${method}","params":${params}}`;
const INT4_MAX = 2 ** 31 - 1;
/** The server's task directory (FLOW_TASK_DIR, set below) and working directory: never in an answer. */
const taskDir = mkdtempSync(path.join(os.tmpdir(), 'flow-tasks-'));
process.env.FLOW_TASK_DIR = taskDir;
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const SERVER_DIR = new RegExp(`${escape(taskDir)}|${escape(process.cwd())}|${escape(os.tmpdir())}/`);
const httpAgent = (url: string) => start({ agent: { type: 'http', url } });

const cases: Case[] = [
  // The protocol
  { name: 'malformed JSON', body: () => '{"jsonrpc": "2.0", "method":', code: -32700 },
  { name: 'a bare number is not a request', body: () => 42, code: -32600 },
  { name: 'wrong JSON-RPC version', body: () => ({ jsonrpc: '1.0', id: 1, method: 'training.list_jobs', params: {} }), code: -32600, message: /2\.0/ },
  { name: 'no jsonrpc member', body: () => ({ id: 1, method: 'training.list_jobs', params: {} }), code: -32600 },
  { name: 'method is not a string', body: () => ({ jsonrpc: '2.0', id: 1, method: 7 }), code: -32600 },
  { name: 'id is an object', body: () => ({ jsonrpc: '2.0', id: { x: 1 }, method: 'training.list_jobs', params: {} }), code: -32600, message: /id/ },
  { name: 'params is a string', body: () => ({ jsonrpc: '2.0', id: 1, method: 'training.list_jobs', params: 'all' }), code: -32600, message: /params/ },
  { name: 'params is null', body: () => ({ jsonrpc: '2.0', id: 1, method: 'training.list_jobs', params: null }), code: -32600 },
  { name: 'unknown method', body: () => call('training.delete_everything', {}), code: -32601 },
  { name: 'empty batch', body: () => [], code: -32600 },
  { name: 'oversized batch', body: () => Array.from({ length: 51 }, (_, i) => call('training.list_jobs', {}, i)), code: -32041, message: /51/ },
  { name: 'oversized body', body: () => start({ base_prompt: 'x'.repeat(1_100_000) }), status: 413, code: -32040 },
  { name: 'not JSON content type', body: () => JSON.stringify(call('training.list_jobs', {})), contentType: 'text/plain', status: 415, code: -32043 },
  // Params and config values
  { name: 'start without agent_id', body: () => call('training.start_grpo', { task_set: 'simulated-small' }), code: -32602, message: /agent_id/ },
  { name: 'start with queries and a task set', body: () => start({ training_queries: [{ id: 'q', prompt: 'p' }] }), code: -32602, message: /exactly one/ },
  { name: 'start with neither queries nor a task set', body: () => call('training.start_grpo', { agent_id: agent }), code: -32602, message: /exactly one/ },
  { name: 'unknown start param', body: () => start({ learning_rate: 0.1 }), code: -32602, message: /learning_rate/ },
  { name: 'group_size below 2', body: () => config({ group_size: 1 }), code: -32602, message: /config\.group_size/ },
  { name: 'group_size as a string', body: () => config({ group_size: '8' }), code: -32602, message: /config\.group_size/ },
  { name: 'learning_rate above 1', body: () => config({ learning_rate: 5 }), code: -32602, message: /config\.learning_rate/ },
  { name: 'negative budget', body: () => config({ budget_usd: -1 }), code: -32602, message: /config\.budget_usd/ },
  { name: 'unknown priority', body: () => config({ priority: 'P9' }), code: -32602, message: /config\.priority/ },
  { name: 'unknown config key', body: () => config({ turbo: true }), code: -32602, message: /turbo/ },
  { name: 'iterations zero', body: () => config({ iterations: 0 }), code: -32602, message: /config\.iterations/ },
  { name: 'empty training queries', body: () => call('training.start_grpo', { agent_id: agent, training_queries: [] }), code: -32602, message: /training_queries/ },
  { name: 'query without a prompt', body: () => call('training.start_grpo', { agent_id: agent, training_queries: [{ id: 'q' }] }), code: -32602, message: /prompt/ },
  { name: 'unknown task set', body: () => start({ task_set: 'imagenet' }), code: -32602, message: /task_set/ },
  { name: 'idempotency key with spaces', body: () => start({ idempotency_key: 'a b' }), code: -32602, message: /idempotency_key/ },
  { name: 'status without job_id', body: () => call('training.get_status', {}), code: -32602, message: /job_id/ },
  { name: 'status with a numeric job_id', body: () => call('training.get_status', { job_id: 42 }), code: -32602, message: /job_id/ },
  { name: 'list with limit 0', body: () => call('training.list_jobs', { limit: 0 }), code: -32602, message: /limit/ },
  { name: 'list with an unknown status', body: () => call('training.list_jobs', { status: 'sleeping' }), code: -32602, message: /status/ },
  { name: 'list with a bad date', body: () => call('training.list_jobs', { created_after: 'yesterday' }), code: -32602, message: /created_after/ },
  { name: 'list with a forged cursor', body: () => call('training.list_jobs', { cursor: 'job-forged' }), code: -32602, message: /cursor/ },
  { name: 'export above 10,000', body: () => call('training.export_trajectories', { job_id: 'job-x', limit: 10_001 }), code: -32030, message: /10000/ },
  { name: 'export with a negative offset', body: () => call('training.export_trajectories', { job_id: 'job-x', offset: -1 }), code: -32602, message: /offset/ },
  { name: 'export with min_reward above 1', body: () => call('training.export_trajectories', { job_id: 'job-x', min_reward: 2 }), code: -32602, message: /min_reward/ },
  { name: 'export in an unknown format', body: () => call('training.export_trajectories', { job_id: 'job-x', format: 'csv' }), code: -32602, message: /format/ },
  { name: 'export with iteration_from after iteration_to', body: () => call('training.export_trajectories', { job_id: victimJob, iteration_from: 3, iteration_to: 1 }), code: -32602, message: /iteration_from/ },
  // Tokens
  { name: 'no token', body: () => start({}), auth: async () => undefined, code: -32001 },
  { name: 'not a bearer token', body: () => start({}), auth: async () => 'Basic YWxpY2U6c2VjcmV0', code: -32002 },
  { name: 'bearer garbage', body: () => start({}), auth: async () => 'Bearer not-a-jwt', code: -32002 },
  { name: 'expired token', body: () => start({}), auth: () => bearer(sign({ tenant, roles: ['trainer'] }, (j) => standard(j).setExpirationTime(Math.floor(Date.now() / 1000) - 600))), code: -32003 },
  { name: 'wrongly signed token', body: () => start({}), auth: () => bearer(sign({ tenant, roles: ['trainer'] }, (j) => standard(j).setExpirationTime('1h'), 'HS256', 'x'.repeat(64))), code: -32004 },
  { name: 'alg none', body: () => start({}), auth: async () => `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'mallory', tenant, roles: ['admin'], iss: DEFAULT_ISSUER, aud: DEFAULT_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })}.`, code: -32005 },
  { name: 'an algorithm not pinned (HS384)', body: () => start({}), auth: () => bearer(sign({ tenant, roles: ['trainer'] }, (j) => standard(j).setExpirationTime('1h'), 'HS384')), code: -32005 },
  { name: 'wrong issuer', body: () => start({}), auth: () => bearer(sign({ tenant, roles: ['trainer'] }, (j) => standard(j).setIssuer('someone-else').setExpirationTime('1h'))), code: -32006, message: /iss/ },
  { name: 'wrong audience', body: () => start({}), auth: () => bearer(sign({ tenant, roles: ['trainer'] }, (j) => standard(j).setAudience('another-api').setExpirationTime('1h'))), code: -32006, message: /aud/ },
  { name: 'no exp claim', body: () => start({}), auth: () => bearer(sign({ tenant, roles: ['trainer'] }, standard)), code: -32006, message: /exp/ },
  { name: 'nbf in the future', body: () => start({}), auth: () => bearer(sign({ tenant, roles: ['trainer'] }, (j) => standard(j).setNotBefore('1h').setExpirationTime('2h'))), code: -32006, message: /nbf/ },
  { name: 'no tenant claim', body: () => start({}), auth: () => bearer(sign({ roles: ['trainer'] }, (j) => standard(j).setExpirationTime('1h'))), code: -32006, message: /tenant/ },
  // Roles and tenancy
  { name: 'viewer may not start', body: () => start({}), auth: () => bearer(callerToken({ roles: ['viewer'] })), code: -32010, message: /training:start/ },
  { name: 'viewer may not cancel', body: () => call('training.cancel', { job_id: victimJob }), auth: () => bearer(callerToken({ roles: ['viewer'] })), code: -32010, message: /training:cancel/ },
  { name: 'viewer may not export', body: () => call('training.export_trajectories', { job_id: victimJob }), auth: () => bearer(callerToken({ roles: ['viewer'] })), code: -32010, message: /data_export/ },
  { name: 'no roles may not view', body: () => call('training.get_status', { job_id: victimJob }), auth: () => bearer(callerToken({ roles: [] })), code: -32010 },
  { name: "another tenant's job: status", body: () => call('training.get_status', { job_id: victimJob }), code: -32020 },
  { name: "another tenant's job: cancel", body: () => call('training.cancel', { job_id: victimJob, reason: 'sabotage' }), code: -32020 },
  { name: "another tenant's job: export", body: () => call('training.export_trajectories', { job_id: victimJob }), code: -32020 },
  { name: 'starting for another tenant', body: () => start({ tenant_id: 'victim-tenant' }), code: -32010, message: /admin/ },
  { name: "listing another tenant's jobs", body: () => call('training.list_jobs', { tenant_id: 'victim-tenant' }), code: -32010, message: /admin/ },
  { name: 'cancel an unknown job', body: () => call('training.cancel', { job_id: 'job-does-not-exist' }), code: -32020 },
  // Steering and resuming
  { name: 'update_budget with a negative budget', body: () => call('training.update_budget', { job_id: victimJob, budget_usd: -1 }), code: -32602, message: /budget_usd/ },
  { name: 'update_budget with a zero budget', body: () => call('training.update_budget', { job_id: victimJob, budget_usd: 0 }), code: -32602, message: /budget_usd/ },
  { name: 'update_budget with a budget as a string', body: () => call('training.update_budget', { job_id: victimJob, budget_usd: '50' }), code: -32602, message: /budget_usd/ },
  { name: 'update_budget above the maximum', body: () => call('training.update_budget', { job_id: victimJob, budget_usd: 1e9 }), code: -32602, message: /budget_usd/ },
  { name: 'update_budget without job_id', body: () => call('training.update_budget', { budget_usd: 50 }), code: -32602, message: /job_id/ },
  { name: 'viewer may not update a budget', body: () => call('training.update_budget', { job_id: victimJob, budget_usd: 50 }), auth: () => bearer(callerToken({ roles: ['viewer'] })), code: -32010, message: /training:budget/ },
  { name: "another tenant's job: update_budget", body: () => call('training.update_budget', { job_id: victimJob, budget_usd: 50 }), code: -32020 },
  { name: 'update_budget of an unknown job', body: () => call('training.update_budget', { job_id: 'job-does-not-exist', budget_usd: 50 }), code: -32020 },
  { name: 'viewer may not pull the kill switch', body: () => call('training.kill_switch', { on: true }), auth: () => bearer(callerToken({ roles: ['viewer'] })), code: -32010, message: /training:budget/ },
  { name: 'a trainer (not admin) may not pull the kill switch', body: () => call('training.kill_switch', { on: true, reason: 'sabotage' }), code: -32010, message: /admin/ },
  { name: 'kill_switch with on as a string', body: () => call('training.kill_switch', { on: 'yes' }), auth: () => bearer(callerToken({ roles: ['admin'] })), code: -32602, message: /on/ },
  { name: 'kill_switch without on', body: () => call('training.kill_switch', { reason: 'outage' }), auth: () => bearer(callerToken({ roles: ['admin'] })), code: -32602, message: /on/ },
  { name: 'kill_switch with an unknown param', body: () => call('training.kill_switch', { on: true, scope: 'all' }), auth: () => bearer(callerToken({ roles: ['admin'] })), code: -32602, message: /scope/ },
  { name: 'get_kill_switch with a param', body: () => call('training.get_kill_switch', { on: true }), code: -32602, message: /on/ },
  { name: 'no roles may not read the kill switch', body: () => call('training.get_kill_switch', {}), auth: () => bearer(callerToken({ roles: [] })), code: -32010 },
  { name: 'resume with a malformed checkpoint selector', body: () => call('training.resume', { job_id: victimJob, checkpoint: 'first' }), code: -32602, message: /checkpoint/ },
  { name: 'resume with a checkpoint run 0', body: () => call('training.resume', { job_id: victimJob, checkpoint: { run: 0, iteration: 1 } }), code: -32602, message: /checkpoint/ },
  { name: 'resume with a negative checkpoint iteration', body: () => call('training.resume', { job_id: victimJob, checkpoint: { run: 1, iteration: -1 } }), code: -32602, message: /checkpoint/ },
  { name: 'resume with a checkpoint as "run:iteration" text', body: () => call('training.resume', { job_id: victimJob, checkpoint: '1:2' }), code: -32602, message: /checkpoint/ },
  { name: 'resume with a negative budget', body: () => call('training.resume', { job_id: victimJob, budget_usd: -3 }), code: -32602, message: /budget_usd/ },
  { name: 'viewer may not resume', body: () => call('training.resume', { job_id: victimJob }), auth: () => bearer(callerToken({ roles: ['viewer'] })), code: -32010, message: /training:start/ },
  { name: "another tenant's job: resume", body: () => call('training.resume', { job_id: victimJob, checkpoint: 'best' }), code: -32020 },
  { name: 'resume an unknown job', body: () => call('training.resume', { job_id: 'job-does-not-exist' }), code: -32020 },
  // Hostile input (issue 15): what the database cannot store is -32602 naming the field, never -32603
  { name: 'NUL in base_prompt', body: () => start({ base_prompt: 'be\u0000nice' }), code: -32602, message: /base_prompt: contains a NUL/ },
  { name: 'NUL in agent_id', body: () => call('training.start_grpo', { agent_id: 'a\u0000b', task_set: 'simulated-small' }), code: -32602, message: /agent_id: contains a NUL/ },
  { name: 'NUL in a query prompt', body: () => call('training.start_grpo', { agent_id: agent, training_queries: [{ id: 'q', prompt: 'x\u0000' }] }), code: -32602, message: /training_queries\.0\.prompt: contains a NUL/ },
  { name: 'NUL in JSONL task text', body: () => start({ task_set: undefined, training_queries_jsonl: '{"id":"q","prompt":"a\\u0000b"}' }), code: -32602, message: /training_queries_jsonl line 1: prompt: contains a NUL/ },
  { name: 'NUL in a job id', body: () => call('training.get_status', { job_id: 'job-\u0000' }), code: -32602, message: /job_id: contains a NUL/ },
  { name: 'NUL in a list cursor', body: () => call('training.list_jobs', { cursor: 'job-\u0000' }), code: -32602, message: /cursor: contains a NUL/ },
  { name: 'NUL in a cancel reason', body: () => call('training.cancel', { job_id: victimJob, reason: 'a\u0000' }), auth: admin, code: -32602, message: /reason: contains a NUL/ },
  { name: 'NUL in a field name', body: () => config({ 'x\u0000': 1 }), code: -32602, message: /config\.x\?: its name contains a NUL/ },
  { name: 'NUL in a kill switch reason', body: () => call('training.kill_switch', { on: false, reason: 'a\u0000' }), auth: admin, code: -32602, message: /reason: contains a NUL/ },
  { name: 'lone high surrogate in agent_id', body: () => call('training.start_grpo', { agent_id: 'a\ud800', task_set: 'simulated-small' }), code: -32602, message: /agent_id: is not well-formed Unicode/ },
  { name: 'lone low surrogate in a prompt', body: () => call('training.start_grpo', { agent_id: agent, training_queries: [{ id: 'q', prompt: '\udc00x' }] }), code: -32602, message: /training_queries\.0\.prompt: is not well-formed Unicode/ },
  { name: 'lone surrogate in a job id', body: () => call('training.get_status', { job_id: 'job-\udbff' }), code: -32602, message: /job_id: is not well-formed Unicode/ },
  { name: 'iteration_from above int4', body: () => call('training.export_trajectories', { job_id: victimJob, iteration_from: INT4_MAX + 1 }), auth: admin, code: -32602, message: /iteration_from/ },
  { name: 'iteration_to above int4', body: () => call('training.export_trajectories', { job_id: victimJob, iteration_to: INT4_MAX + 1 }), auth: admin, code: -32602, message: /iteration_to/ },
  { name: 'export run above int4', body: () => call('training.export_trajectories', { job_id: victimJob, run: INT4_MAX + 1 }), auth: admin, code: -32602, message: /run/ },
  { name: 'export offset above int4', body: () => call('training.export_trajectories', { job_id: victimJob, offset: INT4_MAX + 1 }), auth: admin, code: -32602, message: /offset/ },
  { name: 'resume from a checkpoint run above int4', body: () => call('training.resume', { job_id: victimJob, checkpoint: { run: INT4_MAX + 1, iteration: 0 } }), auth: admin, code: -32602, message: /checkpoint/ },
  { name: 'evaluate a checkpoint iteration above int4', body: () => call('training.evaluate', { job_id: victimJob, checkpoint: { run: 1, iteration: INT4_MAX + 1 } }), auth: admin, code: -32602, message: /checkpoint/ },
  { name: 'a job id nested 5,000 deep', body: () => rawCall('training.get_status', `{"job_id":${nested(5000)}}`), code: -32602, message: /job_id\.0\.0.*nested deeper/ },
  { name: 'a price nested 100,000 deep', body: () => rawCall('training.start_grpo', `{"agent_id":"${agent}","task_set":"simulated-small","config":{"prices":{"m":${nested(100_000)}}}}`), code: -32602, message: /config\.prices\.m\..*nested deeper/ },
  { name: 'params nested 5,000 deep', body: () => rawCall('training.list_jobs', nested(5000)), code: -32602, message: /nested deeper/ },
  { name: 'a checkpoint selector nested 5,000 deep', body: () => rawCall('training.resume', `{"job_id":"${victimJob}","checkpoint":{"run":${nested(5000)},"iteration":0}}`), code: -32602, message: /checkpoint\.run/ },
  { name: 'task_file outside the task directory: no disk path', body: () => start({ task_set: undefined, task_file: '../../../etc/passwd' }), code: -32602, message: /task_file.*outside the task directory/, notMessage: SERVER_DIR },
  { name: 'task_file that does not exist: no disk path', body: () => start({ task_set: undefined, task_file: 'missing.jsonl' }), code: -32602, message: /task_file/, notMessage: SERVER_DIR },
  // Found by a hostile-client probe (stop 24): each was -32603 or accepted
  { name: 'a control character in agent_id (start)', body: () => call('training.start_grpo', { agent_id: 'tab\tagent', task_set: 'simulated-small' }), code: -32602, message: /agent_id: no control characters/ },
  { name: 'a control character in agent_id (list filter)', body: () => call('training.list_jobs', { agent_id: 'bell\u0007' }), code: -32602, message: /agent_id: no control characters/ },
  { name: 'a control character in agent_id (registry)', body: () => call('agents.list_policy_versions', { agent_id: 'tab\tagent' }), code: -32602, message: /agent_id: no control characters/ },
  // fetch and browsers resolve "/agents/./policy" to "/agents/policy": such an agent could never read its policy.
  { name: 'agent_id "." (start)', body: () => call('training.start_grpo', { agent_id: '.', task_set: 'simulated-small' }), code: -32602, message: /agent_id: no control characters, and not "\." or "\.\."/ },
  { name: 'agent_id ".." (registry)', body: () => call('agents.get_active_policy', { agent_id: '..' }), code: -32602, message: /agent_id: no control characters, and not "\." or "\.\."/ },
  { name: 'created_after in year 0', body: () => call('training.list_jobs', { created_after: '0000-01-01T00:00:00Z' }), code: -32602, message: /created_after: a date-time from 0001-01-01 to 9999-12-31/ },
  { name: 'created_before in year 10000 once in UTC', body: () => call('training.list_jobs', { created_before: '9999-12-31T23:59:59-12:00' }), code: -32602, message: /created_before/ },
  { name: 'a NUL in the tenant claim', body: () => start({}), auth: () => bearer(callerToken({ tenant: 'a\u0000b' })), code: -32006, message: /claim "tenant" contains a control character/ },
  { name: 'a subject of 3,000 characters', body: () => start({}), auth: () => bearer(callerToken({ subject: 's'.repeat(3000) })), code: -32006, message: /claim "sub" is longer than 200 characters/ },
  { name: 'a lone surrogate in the subject', body: () => start({}), auth: () => bearer(callerToken({ subject: 'x\ud800' })), code: -32006, message: /claim "sub" is not well-formed Unicode/ },
  { name: "another tenant's job id as a list cursor", body: () => call('training.list_jobs', { cursor: victimJob }), code: -32602, message: /cursor: not a cursor this server issued/ },
  // SSRF: an http agent whose URL is an address in a denied range is refused at the start
  { name: 'http agent on loopback', body: () => httpAgent('http://127.0.0.1:9/internal/admin'), code: -32602, message: /agent\.url.*127\.0\.0\.1.*loopback.*FLOW_HTTP_AGENT_ALLOW/ },
  { name: 'http agent on the metadata address', body: () => httpAgent('http://169.254.169.254/latest/meta-data/'), code: -32602, message: /agent\.url.*link-local/ },
  { name: 'http agent on a private address (10/8)', body: () => httpAgent('http://10.0.0.7/agent'), code: -32602, message: /agent\.url.*private/ },
  { name: 'http agent on a private address (192.168/16)', body: () => httpAgent('https://192.168.1.1/agent'), code: -32602, message: /agent\.url.*private/ },
  { name: 'http agent on a private address (172.16/12)', body: () => httpAgent('http://172.31.255.1:8000/agent'), code: -32602, message: /agent\.url.*private/ },
  { name: 'http agent on 0.0.0.0', body: () => httpAgent('http://0.0.0.0:8080/'), code: -32602, message: /agent\.url/ },
  { name: 'http agent on a decimal loopback address', body: () => httpAgent('http://2130706433:8080/'), code: -32602, message: /agent\.url.*loopback/ },
  { name: 'http agent on IPv6 loopback', body: () => httpAgent('http://[::1]:8080/'), code: -32602, message: /agent\.url.*loopback/ },
  { name: 'http agent on IPv4-mapped IPv6 loopback', body: () => httpAgent('http://[::ffff:127.0.0.1]:8080/'), code: -32602, message: /agent\.url.*loopback/ },
  { name: 'http agent on an IPv6 unique-local address', body: () => httpAgent('http://[fd00::1]/'), code: -32602, message: /agent\.url.*unique/ },
  { name: 'http agent on carrier-grade NAT space', body: () => httpAgent('http://100.64.0.1/'), code: -32602, message: /agent\.url/ },
  { name: 'http agent URL with credentials', body: () => httpAgent('http://user:pw@agents.example.com/'), code: -32602, message: /agent\.url.*credentials/ },
];

test('the table has at least 40 cases', () => {
  expect(cases.length).toBeGreaterThanOrEqual(40);
});

test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
  const authorization = c.auth ? await c.auth() : await bearer(callerToken());
  const body = c.body();
  const response = await fetch(`${api.url}/rpc`, {
    method: 'POST',
    headers: { 'content-type': c.contentType ?? 'application/json', ...(authorization ? { authorization } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  expect(response.status).toBe(c.status ?? 200);
  const parsed = JSON.parse(text);
  const answer = Array.isArray(parsed) ? parsed[0] : parsed;
  expect(answer.jsonrpc).toBe('2.0');
  expect(answer.result).toBeUndefined();
  expect(answer.error.code).toBe(c.code);
  if (c.message) expect(answer.error.message).toMatch(c.message);
  if (c.notMessage) expect(answer.error.message).not.toMatch(c.notMessage);
  expect(text).not.toMatch(/\n\s+at |\.ts:\d+/);
});

const post = async (body: unknown, headers: Record<string, string> = {}, url = api.url) => {
  const response = await fetch(`${url}/rpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: await bearer(callerToken()), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as any };
};

test('x-request-id: an id-like value is adopted; anything else is replaced by a generated id', async () => {
  const adopted = await post(call('training.list_jobs', { cursor: 'job-forged' }), { 'x-request-id': 'trace-4711.a:b_c' });
  expect(adopted.headers.get('x-request-id')).toBe('trace-4711.a:b_c');
  expect(adopted.body.error.data.request_id).toBeUndefined(); // -32602 carries none; the header does
  for (const hostile of ['<script>alert(1)</script>', 'a'.repeat(129), 'two words', '../../etc', '"quoted"', '']) {
    const answer = await post(call('training.list_jobs', { limit: 1 }), { 'x-request-id': hostile });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  }
});

test('the Authorization scheme is case-insensitive (RFC 6750): bearer, BEARER and Bearer all work', async () => {
  const token = await callerToken();
  for (const scheme of ['bearer', 'BEARER', 'Bearer', 'bEaReR']) {
    const answer = await post(call('training.list_jobs', { limit: 1 }), { authorization: `${scheme} ${token}` });
    expect(answer.body.error).toBeUndefined();
    expect(answer.body.result.jobs).toEqual([]);
  }
});

test("a list cursor answers the same for another tenant's job id as for one that does not exist", async () => {
  const foreign = await post(call('training.list_jobs', { cursor: victimJob }));
  const missing = await post(call('training.list_jobs', { cursor: 'job-00000000-0000-0000-0000-000000000000' }));
  expect(foreign.body.error).toEqual(missing.body.error);
  expect(foreign.body.error.code).toBe(-32602);
  // The victim's own tenant pages past it as usual.
  const own = await post(call('training.list_jobs', { cursor: victimJob }), { authorization: await bearer(api.token({ tenant: 'victim-tenant' })) });
  expect(own.body.result.jobs.map((job: { job_id: string }) => job.job_id)).not.toContain(victimJob);
});

/** The JSON body of a raw HTTP/1.1 answer (after its headers). */
const jsonBodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

test('a 12 MB upload is answered 413 with the JSON-RPC error, not reset mid-body', async () => {
  // A client that sends its whole body before it reads (as Python's http.client does): closed
  // early, it failed with EPIPE/ECONNRESET and never saw the answer.
  const body = JSON.stringify(start({ base_prompt: 'x'.repeat(12 * 1024 * 1024) }));
  const { port } = new URL(api.url);
  const token = await callerToken();
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
    socket.write(`POST /rpc HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`);
    socket.end(body);
  });
  expect(answer).toMatch(/^HTTP\/1\.1 413 /);
  expect(jsonBodyOf(answer).error).toMatchObject({ code: -32040 });
  // fetch, which reads while it sends, gets the same answer.
  const fetched = await post(body);
  expect(fetched.status).toBe(413);
  expect(fetched.body.error).toMatchObject({ code: -32040 });
});

test('a body sent without end to an early answer (405 on the policy path, 413 on /rpc): the server closes the connection after a bounded read', async () => {
  const { port } = new URL(api.url);
  const token = await callerToken();
  const chunk = Buffer.alloc(256 * 1024, 'x');
  const endless = (target: string) =>
    new Promise<{ answer: string; sentMb: number }>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1');
      let received = '';
      let sent = 0;
      let closed = false;
      socket.on('data', (data) => (received += data.toString()));
      socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
      socket.on('close', () => {
        closed = true;
        resolve({ answer: received, sentMb: sent / 2 ** 20 });
      });
      socket.write(`POST ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ntransfer-encoding: chunked\r\n\r\n`);
      // Chunks for as long as the server keeps the connection (at most 200 MB here).
      const pump = () => {
        while (!closed && sent < 200 * 2 ** 20) {
          sent += chunk.length;
          socket.write(`${chunk.length.toString(16)}\r\n`);
          socket.write(chunk);
          if (!socket.write('\r\n')) return void socket.once('drain', pump);
        }
      };
      pump();
    });
  for (const [target, status] of [['/agents/some-agent/policy', 405], ['/rpc', 413]] as const) {
    const { answer, sentMb } = await endless(target);
    // The answer, when the client's kernel kept it: a close with the client's bytes still unread
    // is a reset, which may discard it (finite bodies get it: the 12 MB upload above, the policy path's 405 test below).
    if (answer !== '') expect({ target, status: answer.slice(0, 12) }).toEqual({ target, status: `HTTP/1.1 ${status}` });
    // The server closed the connection (the promise settles on close) after at most the 64 MB it
    // reads before answering, not after everything the client would send.
    expect(sentMb).toBeLessThan(200);
  }
}, 60_000);

/**
 * What a raw connection receives until the server closes it, or until `enough` says the answer is
 * complete or `untilMs` passes (then `closed` is false).
 */
function rawExchange(url: string, send: (socket: net.Socket) => void, untilMs: number, enough: (answer: string) => boolean = () => false) {
  return new Promise<{ answer: string; closed: boolean; afterMs: number }>((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    let answer = '';
    const stop = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, closed: false, afterMs: Date.now() - started });
    };
    const timer = setTimeout(stop, untilMs);
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (enough(answer)) stop();
    });
    // A write racing the server's close fails with EPIPE or ECONNRESET: the close is what is awaited.
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closed: true, afterMs: Date.now() - started });
    });
    socket.on('connect', () => send(socket));
  });
}

test('a client too slow to send its request (headers or body) is answered 408 in the API error shape and closed; a slow client between requests is not', async () => {
  const timed = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos }, { auth: api.auth, logger: false, requestTimeoutMs: 1_500 });
  const url = await timed.listen({ host: '127.0.0.1', port: 0 });
  try {
    const token = await callerToken();
    const body = JSON.stringify(call('training.get_kill_switch', {}));
    const head = `POST /rpc HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const refusedInTime = (exchange: { answer: string; closed: boolean; afterMs: number }) => {
      expect(exchange.closed).toBe(true);
      expect(exchange.afterMs).toBeLessThan(5_000);
      expect(exchange.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(jsonBodyOf(exchange.answer)).toMatchObject({ id: null, error: { code: -32044, data: { reason: 'request_timeout' } } });
    };
    // Headers never finished (a slowloris): before, Node's own 60 s, answered in fastify's shape.
    refusedInTime(await rawExchange(url, (socket) => socket.write(head.slice(0, 40)), 20_000));
    // Headers sent, the body never finished: before, the connection was held for as long as the client liked.
    refusedInTime(await rawExchange(url, (socket) => socket.write(head + body.slice(0, 10)), 20_000));
    // A body trickled a byte at a time, each well within the limit, still has to arrive whole in time.
    refusedInTime(
      await rawExchange(url, (socket) => {
        socket.write(head);
        let sent = 0;
        const trickle = setInterval(() => (sent < body.length - 1 && socket.writable ? socket.write(body[sent++]) : clearInterval(trickle)), 200);
        socket.on('close', () => clearInterval(trickle));
      }, 20_000),
    );
    // A keep-alive connection idle for longer than the limit between two requests is still served.
    const twoAnswers = (answer: string) => (answer.match(/HTTP\/1\.1 200 /g) ?? []).length === 2 && answer.endsWith('}');
    const keptAlive = await rawExchange(url, (socket) => {
      socket.write(head + body);
      setTimeout(() => socket.write(head + body), 2_500);
    }, 20_000, twoAnswers);
    expect(keptAlive.closed).toBe(false);
    expect(keptAlive.answer.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    // Headers over Node's 16 KB: 431 in the same shape (fastify's own shape before).
    const oversized = await rawExchange(url, (socket) => socket.write(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: ${'p'.repeat(20_000)}\r\n\r\n`), 10_000);
    expect(oversized.answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(jsonBodyOf(oversized.answer).error).toMatchObject({ code: -32040 });
  } finally {
    await timed.close();
  }
}, 90_000);

test('the API is built with the request timeouts it promises (30 s, 10 s for the headers)', async () => {
  const built = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos }, { auth: api.auth, logger: false });
  try {
    expect({ requestTimeout: built.server.requestTimeout, headersTimeout: built.server.headersTimeout }).toEqual({ requestTimeout: 30_000, headersTimeout: 10_000 });
  } finally {
    await built.close();
  }
});

/** A raw keep-alive connection: what it has received, whether the server closed it, and a wait for either. */
function heldConnection(url: string, { allowHalfOpen = false } = {}) {
  const socket = net.connect({ port: Number(new URL(url).port), host: '127.0.0.1', allowHalfOpen });
  const held = { socket, received: '', closed: false, opened: new Promise((resolve) => socket.once('connect', resolve)) };
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((waiter) => waiter());
  socket.on('data', (chunk) => ((held.received += chunk.toString()), wake()));
  socket.on('error', () => undefined); // a reset is seen as the close
  socket.on('close', () => ((held.closed = true), wake()));
  const until = (done: () => boolean, ms = 10_000) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(done()), ms);
      const check = () => (done() ? (clearTimeout(timer), resolve(true)) : waiters.push(check));
      check();
    });
  const answers = (status: number) => (held.received.match(new RegExp(`HTTP/1\\.1 ${status} `, 'g')) ?? []).length;
  return Object.assign(held, { until, answers });
}

test('connections over FLOW_API_MAX_CONNECTIONS take the place of the keep-alive connection idle the longest; with none idle, a new one is answered 503 (-32045) and closed, its request not served', async () => {
  const capped = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos }, { auth: api.auth, logger: false, maxConnections: 3 });
  const url = await capped.listen({ host: '127.0.0.1', port: 0 });
  let requestsSeen = 0;
  capped.server.on('request', () => requestsSeen++);
  const connections: Array<ReturnType<typeof heldConnection>> = [];
  const open = async (options: { allowHalfOpen?: boolean } = {}) => {
    const connection = heldConnection(url, options);
    connections.push(connection);
    await connection.opened;
    return connection;
  };
  const health = 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n';
  const served = async (connection: ReturnType<typeof heldConnection>, count: number) => {
    expect(await connection.until(() => connection.answers(200) >= count)).toBe(true);
  };
  const refused = async (connection: ReturnType<typeof heldConnection>) => {
    expect(await connection.until(() => /\}$/.test(connection.received), 5_000)).toBe(true);
    expect(connection.received).toMatch(/^HTTP\/1\.1 503 /);
    expect(connection.received).toMatch(/\r\nretry-after: 1\r\n/i);
    expect(jsonBodyOf(connection.received)).toMatchObject({ id: null, error: { code: -32045, data: { reason: 'too_many_connections' } } });
  };
  const serverConnections = () => new Promise<number>((resolve, reject) => capped.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
  try {
    // Three keep-alive connections, each served once and then idle: a, the longest.
    const [a, b, c] = [await open(), await open(), await open()];
    for (const connection of [a, b, c]) {
      connection.socket.write(health);
      await served(connection, 1);
    }
    // A fourth is served, and a is closed to make room; b and c stay, and still serve.
    const d = await open();
    d.socket.write(health);
    await served(d, 1);
    expect(await a.until(() => a.closed)).toBe(true);
    b.socket.write(health);
    await served(b, 2);
    expect(b.closed || c.closed || d.closed).toBe(false);

    // Now b, c and d each have a request in progress (headers sent, the body unfinished), seen by the server.
    const unfinished = 'POST /rpc HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{"jsonrpc":';
    const before = requestsSeen;
    for (const connection of [b, c, d]) connection.socket.write(unfinished);
    await waitFor(async () => requestsSeen - before, (seen) => seen === 3);
    // e keeps its side open after the answer, as a slow client would.
    const e = await open({ allowHalfOpen: true });
    e.socket.write(health);
    await refused(e);
    expect(e.answers(200)).toBe(0); // its request was not served
    expect(b.closed || c.closed || d.closed).toBe(false);
    // A refused connection still lingering does not count: c's client leaves, and the next one is served.
    c.socket.destroy();
    await waitFor(serverConnections, (count) => count === 3); // b, d and e (lingering)
    const f = await open();
    f.socket.write(health);
    await served(f, 1);
    // The server lets e go after its linger (2 s): b, d and f are left.
    await waitFor(serverConnections, (count) => count === 3, 5_000);

    // b's request completes (and is answered: it is no JSON-RPC call), so b is idle, and the next connection takes its place.
    b.socket.write('"2.0"}   ');
    expect(await b.until(() => (b.received.match(/HTTP\/1\.1 \d{3} /g) ?? []).length === 3)).toBe(true);
    expect(b.received).toMatch(/"error"/);
    // f (idle since its answer) is idle longer than b: a connection that sends nothing yet takes f's place.
    const g = await open();
    expect(await f.until(() => f.closed)).toBe(true);
    const h = await open();
    h.socket.write(health);
    await served(h, 1);
    expect(await b.until(() => b.closed)).toBe(true);
    // Now d is busy, g has not sent its first request, h is idle: h goes for the next one.
    const i = await open();
    expect(await h.until(() => h.closed)).toBe(true);
    // d busy, g and i with no first request yet: neither is closed to make room, so j is refused.
    const j = await open();
    await refused(j);
    expect(d.closed || g.closed || i.closed).toBe(false);
    g.socket.write(health);
    await served(g, 1);
  } finally {
    connections.forEach((connection) => connection.socket.destroy());
    await capped.close();
  }
}, 60_000);

test('the rate limit counts calls, not HTTP requests: batches use it up as fast as single calls would', async () => {
  const limited = await buildApiServer({ client: api.h.client, prisma: api.h.prisma, repos: api.h.repos }, { auth: api.auth, logger: false, rateLimit: { max: 120, timeWindowMs: 60_000 } });
  const url = await limited.listen({ host: '127.0.0.1', port: 0 });
  try {
    const batch = (n: number) => Array.from({ length: n }, (_, i) => call('training.get_kill_switch', {}, i));
    const first = await post(batch(50), {}, url);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-ratelimit-remaining')).toBe('70');
    expect((await post(batch(50), {}, url)).status).toBe(200);
    // 100 calls so far: a batch of 50 would make 150 > 120.
    const refused = await post(batch(50), {}, url);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect(refused.body.error).toMatchObject({ code: -32042 });
    expect(refused.body.error.message).toMatch(/120 calls/);
    // Another token has its own count.
    expect((await post(batch(50), { authorization: await bearer(api.token({ tenant, subject: 'rate-limit-other' })) }, url)).status).toBe(200);
  } finally {
    await limited.close();
  }
});

test('the dashboard sends a Content-Security-Policy and X-Frame-Options with every file', async () => {
  for (const file of ['/', '/dashboard/app.js', '/dashboard/style.css', '/vendor/preact/dist/preact.module.js']) {
    const response = await fetch(`${api.url}${file}`);
    expect(response.status).toBe(200);
    const policy = response.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("default-src 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(policy).not.toContain('unsafe-inline');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  }
});

test('a body that is not UTF-8 is a parse error, not text with U+FFFD in it', async () => {
  const bytes = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"training.start_grpo","params":{"task_set":"simulated-small","agent_id":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]);
  const response = await fetch(`${api.url}/rpc`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: await bearer(callerToken()) }, body: bytes });
  expect(response.status).toBe(200);
  expect(((await response.json()) as any).error).toMatchObject({ code: -32700, message: 'Parse error: the body is not valid UTF-8' });
});

test('an unknown method is -32601 with a reason, like every other error; as a notification it is not answered', async () => {
  const { body } = await post(call('training.no_such_method', {}, 7));
  expect(body).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32601, message: 'Method not found: no method "training.no_such_method"; rpc.discover lists them', data: { reason: 'method_not_found' } } });
  expect((await post(call('__proto__', {}, 8))).body.error).toMatchObject({ code: -32601, data: { reason: 'method_not_found' } });
  const notification = await fetch(`${api.url}/rpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: await bearer(callerToken()) },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'training.no_such_method' }),
  });
  expect(notification.status).toBe(204);
});

test('GET /agents/{agent_id}/policy takes every agent id the methods take, and answers bad paths in its own error shape', async () => {
  const agentToken = await api.token({ tenant, subject: 'poller', roles: ['agent'] });
  const get = async (segment: string) => {
    const response = await fetch(`${api.url}/agents/${segment}/policy`, { headers: { authorization: `Bearer ${agentToken}` } });
    return { status: response.status, body: (await response.json()) as any };
  };
  // 150 and 200 characters (fastify's default refused more than 100), and 200 that are 1,800 once encoded.
  for (const id of ['a'.repeat(150), 'b'.repeat(200), '\u20ac'.repeat(200)]) {
    expect(await get(encodeURIComponent(id))).toMatchObject({ status: 404, body: { error: { code: -32026, data: { reason: 'policy_not_found' } } } });
  }
  expect(await get('c'.repeat(201))).toMatchObject({ status: 400, body: { error: { code: -32602, message: expect.stringContaining('agent_id: 1-200 characters') } } });
  expect(await get('tab%09agent')).toMatchObject({ status: 400, body: { error: { code: -32602 } } });
  expect(await get('%ZZ')).toMatchObject({ status: 400, body: { error: { code: -32602, message: expect.stringContaining('not valid percent-encoding'), data: { reason: 'invalid_params' } } } });
  expect(await get('d'.repeat(1801))).toMatchObject({ status: 414, body: { error: { code: -32602, message: expect.stringContaining('over 1800 characters') } } });
  // The JSON-RPC twin says the same of the same id.
  const twin = await post(call('agents.get_active_policy', { agent_id: 'a'.repeat(150) }), { authorization: await bearer(agentToken) });
  expect(twin.body.error).toMatchObject({ code: -32026 });
  // The path is read-only: other methods are 405 with Allow, in the same error shape (fastify's own 404 before).
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
    const response = await fetch(`${api.url}/agents/some-agent/policy`, { method, headers: { authorization: `Bearer ${agentToken}` } });
    expect({ method, status: response.status, allow: response.headers.get('allow'), body: await response.json() }).toMatchObject({
      method,
      status: 405,
      allow: 'GET, HEAD, OPTIONS',
      body: { error: { code: -32600, message: expect.stringContaining(`${method} is not allowed on /agents/{agent_id}/policy`) } },
    });
  }
  // Whatever the body: the method is the answer, not the media type (415) or the size (413).
  for (const [contentType, body] of [['text/plain', 'promote me'], ['application/json', 'x'.repeat(2 * 1024 * 1024)]]) {
    const response = await fetch(`${api.url}/agents/some-agent/policy`, { method: 'POST', headers: { authorization: `Bearer ${agentToken}`, 'content-type': contentType }, body });
    expect({ contentType, status: response.status, allow: response.headers.get('allow') }).toEqual({ contentType, status: 405, allow: 'GET, HEAD, OPTIONS' });
  }
  const options = await fetch(`${api.url}/agents/some-agent/policy`, { method: 'OPTIONS' });
  expect({ status: options.status, allow: options.headers.get('allow') }).toEqual({ status: 204, allow: 'GET, HEAD, OPTIONS' });
  // An answer depends on the token's tenant: private, and varying with Authorization (the fastify route's headers; the fast path's are in a unit test).
  const readable = `headers-agent-${process.pid}`;
  await writeVersions(api.h.repos, tenant, readable, 1);
  // A token read for the first time goes through the fastify route (the fast path only knows tokens verified before).
  const reader = await api.token({ tenant, subject: `first-read-${process.pid}`, roles: ['agent'] });
  const read = await fetch(`${api.url}/agents/${readable}/policy`, { headers: { authorization: `Bearer ${reader}` } });
  expect({ status: read.status, cache: read.headers.get('cache-control'), vary: read.headers.get('vary'), etag: read.headers.get('etag') }).toEqual({
    status: 200,
    cache: 'private, no-cache',
    vary: 'Authorization',
    etag: expect.stringMatching(/^"/),
  });
});

test('nothing was written or started by any bad request', async () => {
  expect(await api.h.prisma.trainingJob.count({ where: { tenantId: tenant } })).toBe(0);
  expect(await api.h.prisma.trainingJob.count({ where: { agentId: agent } })).toBe(0);
  expect((await api.h.client.workflow.count(`FlowAgentId = "${agent}"`)).count).toBe(0);
  const victim = (await api.h.repos.jobs.get(victimJob))!;
  expect(victim.status).toBe('queued');
  expect(victim.updatedAt).toEqual(victimUpdatedAt);
  expect((await api.h.client.workflow.getHandle(victimJob).describe()).status.name).toBe('RUNNING');
});

test('agents.list_policy_versions pages: newest first, limit (default 50, at most 500) and next_cursor; a cursor it did not issue is -32602', async () => {
  const agentId = `paged-agent-${process.pid}`;
  await writeVersions(api.h.repos, tenant, agentId, 120);
  const client = await api.client({ tenant });
  const first = await client.listPolicyVersions(agentId);
  expect({ n: first.versions.length, newest: first.versions[0].version, oldest: first.versions.at(-1)!.version, active: first.active_version, next: first.next_cursor }).toEqual({ n: 50, newest: 120, oldest: 71, active: 120, next: '71' });
  const second = await client.listPolicyVersions(agentId, { cursor: first.next_cursor!, limit: 60 });
  expect({ n: second.versions.length, newest: second.versions[0].version, active: second.active_version, activeFlags: second.versions.filter((v) => v.active).length, next: second.next_cursor }).toEqual({ n: 60, newest: 70, active: 120, activeFlags: 0, next: '11' });
  const last = await client.listPolicyVersions(agentId, { cursor: second.next_cursor! });
  expect({ versions: last.versions.map((v) => v.version), next: last.next_cursor }).toEqual({ versions: [10, 9, 8, 7, 6, 5, 4, 3, 2, 1], next: null });
  for (const cursor of ['abc', '0', '-5', '1.5', '9999999999', '2147483648']) {
    expect(await rpcError(client.listPolicyVersions(agentId, { cursor }))).toMatchObject({ code: -32602, message: expect.stringContaining('cursor: not a cursor this server issued') });
  }
  expect(await rpcError(client.listPolicyVersions(agentId, { limit: 501 }))).toMatchObject({ code: -32602 });
});
