/**
 * Issue 16, items 1-3, through the real API on real Temporal and PostgreSQL: a checkpoint's
 * policy (training.get_policy) as JSON and as the system prompt the agent was sent; the agent's
 * policy registry: a promotion is refused without a significant test-split improvement and
 * allowed with one, recorded (who, when, why, the evaluation); a forced promotion needs an admin
 * token and a reason; rollback; GET /agents/{agent_id}/policy with its ETag and 304; the `agent`
 * role reads its own tenant's policies only; and a job started from the active version.
 */
import { renderSystemPrompt, type Policy } from '../../training/policy';
import { startHarness, type Harness } from '../support/harness';
import { SIGNIFICANT_JOB } from '../support/significantJob';
import { rpcError, startApiHarness, waitFor, type ApiHarness } from '../support/apiHarness';
import type { FlowClient } from '../../api/client/flowClient';

let h: Harness;
let api: ApiHarness;
let worker: { stop(): Promise<void> };
/** The system prompt of every agent call the model server answered. */
const agentPrompts = new Set<string>();

beforeAll(async () => {
  h = await startHarness({
    model: {
      respond: (body) => {
        if (body.tools?.length) {
          const system = body.messages.find((m) => m.role === 'system')?.content;
          if (system) agentPrompts.add(system);
        }
        return undefined;
      },
    },
  });
  api = await startApiHarness({ harness: h });
  worker = await api.startWorker();
});
afterAll(async () => {
  await worker?.stop();
  await api?.close();
  await h?.close();
});

const { training_queries: trainingQueries, config } = SIGNIFICANT_JOB;
const AGENT = 'registry-agent';

async function runToEnd(client: FlowClient, params: Parameters<FlowClient['startGrpo']>[0]) {
  const { job_id } = await client.startGrpo(params);
  const status = await waitFor(
    () => client.getStatus(job_id),
    (s) => ['completed', 'failed', 'cancelled', 'budget_exceeded'].includes(s.status),
    600_000,
    500,
  );
  expect(status).toMatchObject({ status: 'completed' });
  return status;
}

async function getPolicy(agentId: string, token: string, headers: Record<string, string> = {}, query = '') {
  const response = await fetch(`${api.url}/agents/${encodeURIComponent(agentId)}/policy${query}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
  const text = await response.text();
  return { status: response.status, etag: response.headers.get('etag'), text, body: text ? JSON.parse(text) : undefined };
}

test('get_policy, promotion on evidence, forced promotion, rollback, the ETag read path and a job started from the active version', async () => {
  const trainer = await api.client();
  const admin = await api.client({ subject: 'root', roles: ['admin'] });
  const viewer = await api.client({ subject: 'vera', roles: ['viewer'] });
  const agentToken = await api.token({ subject: 'agent-runtime', roles: ['agent'] });
  const otherTenantAgent = await api.token({ subject: 'agent-b', tenant: 'tenant-b', roles: ['agent'] });

  // Nothing promoted yet: the read path says so, and a job cannot start from the active version.
  expect((await getPolicy(AGENT, agentToken)).status).toBe(404);
  expect(await rpcError(trainer.getActivePolicy(AGENT))).toMatchObject({ code: -32026, reason: 'policy_not_found' });
  const noBase = await rpcError(trainer.startGrpo({ agent_id: AGENT, task_set: 'simulated-small', base: 'active' }));
  expect(noBase).toMatchObject({ code: -32602 });
  expect(noBase.message).toContain('has no active policy version');

  const [trained, unchanged] = await Promise.all([
    runToEnd(trainer, { agent_id: AGENT, training_queries: trainingQueries, config }),
    runToEnd(trainer, { agent_id: AGENT, training_queries: trainingQueries, config: { ...config, control: 'no_policy_update' } }),
  ]);

  // 1. get_policy: JSON and text, and the text is what the agent was sent. The policy of the
  // checkpoint at iteration 5 ran iterations 6-10; the one at 10 ran the test evaluation.
  for (const iteration of [5, 10]) {
    const checkpoint = { run: 1, iteration };
    const json = await trainer.getPolicy(trained.job_id, { checkpoint });
    const text = await trainer.getPolicy(trained.job_id, { checkpoint, format: 'text' });
    expect(json).toMatchObject({ job_id: trained.job_id, agent_id: AGENT, format: 'json', checkpoint: { run: 1, iteration } });
    expect(json.system_prompt).toBeUndefined();
    expect(json.policy!.lessons.length).toBeGreaterThan(0);
    for (const lesson of json.policy!.lessons) expect(lesson).toEqual(expect.objectContaining({ id: expect.any(String), text: expect.any(String), weight: expect.any(Number) }));
    expect(text.policy).toBeUndefined();
    expect(text.content_hash).toBe(json.content_hash);
    expect(text.system_prompt).toBe(renderSystemPrompt(json.policy as Policy));
    expect(agentPrompts.has(text.system_prompt!)).toBe(true);
  }
  expect((await trainer.getPolicy(trained.job_id, { checkpoint: 'latest' })).checkpoint.iteration).toBe(10);
  expect(await rpcError(trainer.getPolicy(trained.job_id, { checkpoint: { run: 1, iteration: 7 } }))).toMatchObject({ code: -32024, reason: 'no_checkpoint' });
  const otherTenant = await api.client({ tenant: 'tenant-b' });
  expect(await rpcError(otherTenant.getPolicy(trained.job_id))).toMatchObject({ code: -32020 });
  expect(await rpcError(trainer.call('training.get_policy', { job_id: trained.job_id, format: 'yaml' } as never))).toMatchObject({ code: -32602 });

  // 2. Promotion is refused without the evidence, and nothing is written.
  const noTestEvaluation = await rpcError(trainer.promotePolicy({ agent_id: AGENT, job_id: trained.job_id, checkpoint: { run: 1, iteration: 5 } }));
  expect(noTestEvaluation).toMatchObject({ code: -32027, reason: 'promotion_refused' });
  expect(noTestEvaluation.message).toContain('has no test-split evaluation');
  const notSignificant = await rpcError(trainer.promotePolicy({ agent_id: AGENT, job_id: unchanged.job_id, checkpoint: 'latest' }));
  expect(notSignificant).toMatchObject({ code: -32027 });
  expect(notSignificant.message).toContain("no significant improvement over the job's untrained base prompt");
  expect(await rpcError(viewer.promotePolicy({ agent_id: AGENT, job_id: trained.job_id, checkpoint: 'latest' }))).toMatchObject({ code: -32010 });
  expect(await rpcError(trainer.promotePolicy({ agent_id: 'another-agent', job_id: trained.job_id, checkpoint: 'latest' }))).toMatchObject({ code: -32602 });
  expect((await trainer.listPolicyVersions(AGENT)).versions).toEqual([]);

  // ... and allowed with it: v1, recorded with its evaluation.
  const v1 = await trainer.promotePolicy({ agent_id: AGENT, job_id: trained.job_id, checkpoint: 'latest', reason: 'first trained policy' });
  expect(v1).toMatchObject({
    agent_id: AGENT,
    tenant_id: 'tenant-a',
    version: 1,
    kind: 'promote',
    active: true,
    source: { job_id: trained.job_id, run: 1, iteration: 10 },
    reason: 'first trained policy',
    refusal: null,
    created_by: 'alice',
    evaluation: { split: 'test', significant_improvement: true, iteration: 10 },
  });
  const v1Text = (await trainer.getPolicy(trained.job_id, { checkpoint: 'latest', format: 'text' })).system_prompt!;

  // 3. The read path: the agent role reads its tenant's active version with an ETag; 304 on a match.
  const read = await getPolicy(AGENT, agentToken);
  // A second API replica on the same database, which caches v1 now.
  const replica = await startApiHarness({ harness: h });
  const replicaAgentToken = await replica.token({ subject: 'agent-runtime', roles: ['agent'] });
  expect((await fetch(`${replica.url}/agents/${AGENT}/policy`, { headers: { authorization: `Bearer ${replicaAgentToken}` } })).headers.get('etag')).toBe(v1.etag);
  expect(read.status).toBe(200);
  expect(read.etag).toBe(v1.etag);
  expect(read.body).toMatchObject({ agent_id: AGENT, version: 1, etag: v1.etag, content_hash: v1.content_hash, system_prompt: v1Text, promoted_by: 'alice' });
  const notModified = await getPolicy(AGENT, agentToken, { 'if-none-match': v1.etag });
  expect({ status: notModified.status, text: notModified.text, etag: notModified.etag }).toEqual({ status: 304, text: '', etag: v1.etag });
  expect((await getPolicy(AGENT, agentToken, { 'if-none-match': '"v0-stale"' })).status).toBe(200);
  const agentRpc = await api.client({ subject: 'agent-runtime', roles: ['agent'] });
  expect(await agentRpc.getActivePolicy(AGENT)).toEqual(read.body);
  // The agent role reads policies and nothing else; other tenants' agents do not exist for it.
  expect(await rpcError(agentRpc.getStatus(trained.job_id))).toMatchObject({ code: -32010 });
  expect(await rpcError(agentRpc.listPolicyVersions(AGENT))).toMatchObject({ code: -32010 });
  expect((await getPolicy(AGENT, otherTenantAgent)).status).toBe(404);
  expect((await getPolicy(AGENT, otherTenantAgent, {}, '?tenant_id=tenant-a')).status).toBe(403);
  const noToken = await fetch(`${api.url}/agents/${AGENT}/policy`);
  expect(noToken.status).toBe(401);
  expect(((await noToken.json()) as { error: unknown }).error).toMatchObject({ code: -32001 });
  expect((await getPolicy(AGENT, await api.token({ roles: ['exporter'] }))).status).toBe(403);
  // Trainers and admins (any tenant, by name) may read it too.
  expect((await getPolicy(AGENT, await api.token())).status).toBe(200);
  expect((await getPolicy(AGENT, await api.token({ subject: 'root', tenant: 'ops', roles: ['admin'] }), {}, '?tenant_id=tenant-a')).body.version).toBe(1);

  // A job started from the active version: its agent is sent v1's prompt from the first call, its
  // input records which version, and its evaluation's baseline is v1 (so it speaks for v1).
  agentPrompts.clear();
  const fromActive = await runToEnd(trainer, {
    agent_id: AGENT,
    training_queries: trainingQueries,
    base: 'active',
    config: { ...config, iterations: 2, checkpoint_interval: 2, eval_interval: 2, control: 'no_policy_update' },
  });
  const input = (await h.repos.jobs.get(fromActive.job_id))!.input as { base_prompt: string; initial_policy: { version: number; content_hash: string } };
  expect(input.initial_policy).toMatchObject({ version: 1, content_hash: v1.content_hash });
  expect([...agentPrompts]).toEqual([v1Text]);
  expect((await trainer.getPolicy(fromActive.job_id, { checkpoint: 'latest', format: 'text' })).system_prompt).toBe(v1Text);

  // Its test evaluation compares v1 with itself: refused; a checkpoint of a job that did not start
  // from v1 is refused whatever its evaluation, since that evaluation says nothing about v1.
  const againstV1 = await rpcError(trainer.promotePolicy({ agent_id: AGENT, job_id: fromActive.job_id, checkpoint: 'latest' }));
  expect(againstV1).toMatchObject({ code: -32027 });
  expect(againstV1.message).toContain('no significant improvement over v1');
  const notAgainstV1 = await rpcError(trainer.promotePolicy({ agent_id: AGENT, job_id: trained.job_id, checkpoint: 'latest' }));
  expect(notAgainstV1.message).toContain('not against the active v1');

  // Forcing takes an admin token and a reason; both are recorded with the refusal it overrode.
  expect(await rpcError(trainer.promotePolicy({ agent_id: AGENT, job_id: unchanged.job_id, checkpoint: 'latest', force: true, reason: 'x' }))).toMatchObject({ code: -32010 });
  expect(await rpcError(admin.promotePolicy({ agent_id: AGENT, job_id: unchanged.job_id, checkpoint: 'latest', force: true, tenant_id: 'tenant-a' }))).toMatchObject({ code: -32602 });
  expect(await rpcError(admin.promotePolicy({ agent_id: AGENT, job_id: unchanged.job_id, checkpoint: 'latest', force: true, tenant_id: 'tenant-a', reason: ' \t ' }))).toMatchObject({ code: -32602, message: expect.stringContaining('reason: a forced promotion must say why') });
  const v2 = await admin.promotePolicy({ agent_id: AGENT, job_id: unchanged.job_id, checkpoint: 'latest', force: true, tenant_id: 'tenant-a', reason: 'incident 42: back to the base prompt' });
  expect(v2).toMatchObject({ version: 2, kind: 'force', reason: 'incident 42: back to the base prompt', created_by: 'root', evaluation: { significant_improvement: false } });
  expect(v2.refusal).toContain('not against the active v1');
  const afterForce = await getPolicy(AGENT, agentToken, { 'if-none-match': v1.etag });
  expect(afterForce.status).toBe(200);
  expect(afterForce.etag).toBe(v2.etag);
  expect(afterForce.body.version).toBe(2);
  // Another API replica (its own cache) that had served v1 learns of v2 within its cache TTL (1 s).
  const replicaV2 = await waitFor(
    async () => (await fetch(`${replica.url}/agents/${AGENT}/policy`, { headers: { authorization: `Bearer ${replicaAgentToken}` } })).headers.get('etag'),
    (etag) => etag === v2.etag,
    5_000,
    50,
  );
  expect(replicaV2).toBe(v2.etag);

  // Rollback: a new version with v1's content.
  expect(await rpcError(trainer.rollbackPolicy(AGENT, 2))).toMatchObject({ code: -32602 });
  expect(await rpcError(trainer.rollbackPolicy(AGENT, 9))).toMatchObject({ code: -32026 });
  expect(await rpcError(viewer.rollbackPolicy(AGENT, 1))).toMatchObject({ code: -32010 });
  const v3 = await trainer.rollbackPolicy(AGENT, 1, 'v2 lost the lessons');
  expect(v3).toMatchObject({ version: 3, kind: 'rollback', rollback_of: 1, content_hash: v1.content_hash, source: v1.source, reason: 'v2 lost the lessons', evaluation: null });
  const afterRollback = await getPolicy(AGENT, agentToken, { 'if-none-match': v2.etag });
  expect(afterRollback).toMatchObject({ status: 200, etag: v3.etag, body: { version: 3, kind: 'rollback', system_prompt: v1Text } });

  // The history: every version, newest first, never rewritten.
  const listed = await trainer.listPolicyVersions(AGENT);
  expect(listed).toMatchObject({ agent_id: AGENT, tenant_id: 'tenant-a', active_version: 3, can_promote: true, can_force: false });
  expect(listed.versions.map((v) => [v.version, v.kind, v.active])).toEqual([
    [3, 'rollback', true],
    [2, 'force', false],
    [1, 'promote', false],
  ]);
  expect(listed.versions[2]).toEqual({ ...v1, active: false });
  expect(await viewer.listPolicyVersions(AGENT)).toMatchObject({ can_promote: false, can_force: false });
  expect((await otherTenant.listPolicyVersions(AGENT)).versions).toEqual([]);
  await replica.close();
}, 1_500_000);
