/**
 * Operators find jobs with the official `temporal` CLI: by the agent, status and priority
 * search attributes, and with `temporal workflow describe`.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { startTrainingJob } from '../../api/trainingJobs';
import { resolveTemporalCli } from '../../workers/dev/devStack';
import { jobRequest, requireEnv, startHarness, type Harness } from '../support/harness';

const run = promisify(execFile);
const temporal = async (...args: string[]) =>
  JSON.parse((await run(resolveTemporalCli(), [...args, '--address', requireEnv('TEMPORAL_ADDRESS'), '--output', 'json'])).stdout);

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

test('`temporal workflow list --query` finds a finished job by agent, status and priority; `describe` shows the values', async () => {
  const agentId = `cli-agent-${randomUUID()}`;
  const request = jobRequest({ agent_id: agentId, config: { iterations: 1, batch_size: 1, group_size: 2, priority: 'P0' } });
  const { jobId } = await startTrainingJob(h.client, h.repos, request, { taskQueue: h.taskQueue });
  await h.run(h.client.workflow.getHandle(jobId).result());

  const query = `FlowAgentId = '${agentId}' AND FlowJobStatus = 'completed' AND FlowPriority = 'P0'`;
  let listed: { execution: { workflowId: string } }[] = [];
  // Visibility is eventually consistent: the CLI sees the final status shortly after the end.
  for (let attempt = 0; attempt < 50 && listed.length === 0; attempt++) {
    const out = await temporal('workflow', 'list', '--query', query);
    listed = Array.isArray(out) ? out : [];
    if (listed.length === 0) await new Promise((r) => setTimeout(r, 200));
  }
  expect(listed.map((w) => w.execution.workflowId)).toEqual([jobId]);
  // The other values of the same attributes do not match it.
  expect(await temporal('workflow', 'list', '--query', `FlowAgentId = '${agentId}' AND FlowPriority = 'P2'`)).toEqual([]);

  const described = await temporal('workflow', 'describe', '--workflow-id', jobId);
  const text = JSON.stringify(described);
  expect(described.workflowExecutionInfo.status).toBe('WORKFLOW_EXECUTION_STATUS_COMPLETED');
  expect(described.workflowExecutionInfo.type.name).toBe('trainingJob');
  const fields = described.workflowExecutionInfo.searchAttributes.indexedFields;
  const decode = (field: { data: string }) => JSON.parse(Buffer.from(field.data, 'base64').toString('utf8'));
  expect(decode(fields.FlowAgentId)).toBe(agentId);
  expect(decode(fields.FlowJobStatus)).toBe('completed');
  expect(decode(fields.FlowPriority)).toBe('P0');
  expect(text).toContain(jobId);
});
