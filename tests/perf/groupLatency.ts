/**
 * group8_vs_single_ratio: does a GRPO group of 8 trajectories take as long as ONE trajectory of
 * the same latency? Runs the real `trainingJob` workflow on a real worker (real Temporal dev
 * server, real PostgreSQL, the LLM agent talking HTTP to the simulated model server) with every
 * model call taking 500 ms and every trajectory making exactly 3 model calls.
 *
 * Figures come from the trajectories table: a trajectory's duration is ended_at − started_at
 * (set by the runTrajectory activity around the agent run); a group's wall time is
 * max(ended_at) − min(started_at) over its 8 rows. A second, activity-level view from the
 * workflow history (scheduled → completed, so it includes Temporal dispatch and the row write)
 * is reported alongside.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, tsToMs } from '@temporalio/common';
import { NativeConnection, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { startTrainingJob } from '../../api/trainingJobs';
import { createPrismaClient, createRepositories } from '../../adapters/db';
import type { TrainingJobRequest } from '../../training/jobInput';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { startSimulatedModelServer, type ChatCompletionRequestBody, type ScriptedResponse } from '../../workers/dev/simulatedModelServer';
import { createTrainingWorker } from '../../workers/trainingWorker';
import { median, quantile } from './stats';

export const MODEL_LATENCY_MS = 500;
export const MODEL_CALLS_PER_TRAJECTORY = 3;
export const GROUP_SIZE = 8;

export interface GroupLatencyOptions {
  temporalAddress: string;
  databaseUrl: string;
  workflowBundle: WorkflowBundleWithSourceMap;
  /** Measured groups (one per iteration of one job, batch_size 1). */
  groups: number;
  log: (line: string) => void;
}

export interface GroupMeasurement {
  iteration: number;
  /** max(ended_at) − min(started_at) of the group's rows, ms. */
  groupMs: number;
  /** Median ended_at − started_at of the group's rows, ms. */
  singleMedianMs: number;
  ratio: number;
  /** From the history: first runTrajectory scheduled → last completed, ms. */
  activityGroupMs: number;
  /** From the history: median activity started → completed, ms. */
  activitySingleMedianMs: number;
  activityRatio: number;
}

export interface GroupLatencyResult {
  groups: GroupMeasurement[];
  warmup: GroupMeasurement[];
  modelCalls: number;
  expectedModelCalls: number;
  ratioP50: number;
  ratioP95: number;
  groupSecondsP50: number;
  groupSecondsP95: number;
  singleSecondsP50: number;
  activityRatioP50: number;
  activityRatioP95: number;
  jobSeconds: number;
}

/**
 * The agent's turns, scripted by how many assistant turns the conversation already has:
 * a documentation lookup, a verification of what it returned, then that as the final answer.
 * The first tool varies with the request's seed, so rewards (and advantages) vary in a group.
 * Requests without tools (the policy updater's) get the simulated optimizer's answer.
 */
export function threeTurnAgent(body: ChatCompletionRequestBody): ScriptedResponse {
  if (!body.tools || body.tools.length === 0) return undefined;
  const turn = body.messages.filter((m) => m.role === 'assistant').length + 1;
  const lastTool = [...body.messages].reverse().find((m) => m.role === 'tool')?.content ?? '';
  const firstTool = body.messages.find((m) => m.role === 'tool')?.content ?? '';
  const question = body.messages.find((m) => m.role === 'user')?.content ?? '';
  const tools = ['lookup_docs', 'query_database', 'calculator', 'web_search'];
  if (turn === 1) return { kind: 'tool_call', name: tools[(body.seed ?? 0) % tools.length], arguments: { query: question }, logprobs: [-0.4] };
  if (turn === 2) return { kind: 'tool_call', name: 'verify_answer', arguments: { answer: lastTool }, logprobs: [-0.2] };
  return { kind: 'content', content: firstTool, logprobs: [-0.1] };
}

export async function measureGroupLatency(options: GroupLatencyOptions): Promise<GroupLatencyResult> {
  const { log } = options;
  const model = await startSimulatedModelServer({ latencyMs: MODEL_LATENCY_MS, respond: threeTurnAgent });
  const prisma = createPrismaClient(options.databaseUrl, { poolSize: 20 });
  const repos = createRepositories(prisma);
  const nativeConnection = await NativeConnection.connect({ address: options.temporalAddress });
  const connection = await Connection.connect({ address: options.temporalAddress });
  const client = new Client({ connection });
  const taskQueue = `bench-${process.pid}-${randomUUID().slice(0, 8)}`;
  try {
    const worker = await createTrainingWorker({
      connection: nativeConnection,
      taskQueue,
      prisma,
      llm: { baseURL: model.url },
      workflowBundle: options.workflowBundle,
      identity: `bench-worker-${process.pid}`,
    });
    return await worker.runUntil(async () => {
      const runJob = async (iterations: number) => {
        const callsBefore = model.calls();
        const started = Date.now();
        const { jobId } = await startTrainingJob(client, repos, jobRequest(iterations), { taskQueue });
        const result = await client.workflow.getHandle(jobId).result();
        if (result.status !== 'completed') throw new Error(`bench job ${jobId} ended ${result.status}`);
        const seconds = (Date.now() - started) / 1000;
        const rows = await repos.trajectories.listForJob(jobId);
        const nonScripted = rows.filter((row) => (row.steps as unknown[]).length !== MODEL_CALLS_PER_TRAJECTORY);
        if (rows.length !== iterations * GROUP_SIZE || nonScripted.length > 0) {
          throw new Error(`bench job ${jobId}: expected ${iterations * GROUP_SIZE} trajectories of ${MODEL_CALLS_PER_TRAJECTORY} steps, got ${rows.length} (${nonScripted.length} with another step count)`);
        }
        const activities = await activityTimings(client, jobId);
        const groups = [...new Set(rows.map((row) => row.iteration))].sort((a, b) => a - b).map((iteration) => {
          const group = rows.filter((row) => row.iteration === iteration);
          const starts = group.map((row) => row.startedAt.getTime());
          const ends = group.map((row) => row.endedAt.getTime());
          const groupMs = Math.max(...ends) - Math.min(...starts);
          const singleMedianMs = median(group.map((row) => row.endedAt.getTime() - row.startedAt.getTime()));
          const acts = activities.filter((a) => a.iteration === iteration);
          if (acts.length !== GROUP_SIZE) throw new Error(`bench job ${jobId}: iteration ${iteration} has ${acts.length} runTrajectory completions in its history`);
          const activityGroupMs = Math.max(...acts.map((a) => a.completedMs)) - Math.min(...acts.map((a) => a.scheduledMs));
          const activitySingleMedianMs = median(acts.map((a) => a.completedMs - a.startedMs));
          return {
            iteration,
            groupMs,
            singleMedianMs,
            ratio: groupMs / singleMedianMs,
            activityGroupMs,
            activitySingleMedianMs,
            activityRatio: activityGroupMs / activitySingleMedianMs,
          };
        });
        return { groups, seconds, calls: model.calls() - callsBefore };
      };

      log(`  warm-up job: 1 iteration × 1 query × group of ${GROUP_SIZE} (not counted)`);
      const warmup = await runJob(1);
      log(`  measured job: ${options.groups} iterations × 1 query × group of ${GROUP_SIZE}, max_parallel ${GROUP_SIZE}`);
      const measured = await runJob(options.groups);
      const expectedModelCalls = options.groups * (GROUP_SIZE * MODEL_CALLS_PER_TRAJECTORY + 1); // + one policy update per iteration
      const ratios = measured.groups.map((g) => g.ratio);
      const activityRatios = measured.groups.map((g) => g.activityRatio);
      const groupSeconds = measured.groups.map((g) => g.groupMs / 1000);
      return {
        groups: measured.groups,
        warmup: warmup.groups,
        modelCalls: measured.calls,
        expectedModelCalls,
        ratioP50: quantile(ratios, 0.5),
        ratioP95: quantile(ratios, 0.95),
        groupSecondsP50: quantile(groupSeconds, 0.5),
        groupSecondsP95: quantile(groupSeconds, 0.95),
        singleSecondsP50: median(measured.groups.map((g) => g.singleMedianMs / 1000)),
        activityRatioP50: quantile(activityRatios, 0.5),
        activityRatioP95: quantile(activityRatios, 0.95),
        jobSeconds: measured.seconds,
      };
    });
  } finally {
    await connection.close().catch(() => undefined);
    await nativeConnection.close().catch(() => undefined);
    await prisma.$disconnect().catch(() => undefined);
    await model.close().catch(() => undefined);
  }
}

function jobRequest(iterations: number): TrainingJobRequest {
  return {
    job_id: `bench-group-${randomUUID()}`,
    agent_id: 'bench-agent',
    tenant_id: 'bench',
    owner_id: 'bench',
    training_queries: simulatedTaskSet({ queriesPerFamily: 2, seed: 17 }),
    config: {
      iterations,
      batch_size: 1,
      group_size: GROUP_SIZE,
      max_parallel: GROUP_SIZE,
      max_steps: 6,
      checkpoint_interval: 100_000,
      // Only trajectories and policy updates are timed and counted here: no held-out evaluation.
      evaluate: false,
      budget_usd: 1000,
      seed: 5,
    },
  };
}

interface ActivityTiming {
  iteration: number;
  scheduledMs: number;
  startedMs: number;
  completedMs: number;
}

/** runTrajectory timings from the workflow history (the input names the iteration). */
async function activityTimings(client: Client, jobId: string): Promise<ActivityTiming[]> {
  const history = await client.workflow.getHandle(jobId).fetchHistory();
  const scheduled = new Map<string, { iteration: number; scheduledMs: number }>();
  const started = new Map<string, number>();
  const timings: ActivityTiming[] = [];
  for (const event of history.events ?? []) {
    const id = String(event.eventId);
    const time = tsToMs(event.eventTime);
    const sched = event.activityTaskScheduledEventAttributes;
    if (sched?.activityType?.name === 'runTrajectory') {
      const input = defaultPayloadConverter.fromPayload<{ iteration: number }>(sched.input!.payloads![0]);
      scheduled.set(id, { iteration: input.iteration, scheduledMs: time });
    }
    const start = event.activityTaskStartedEventAttributes;
    if (start && scheduled.has(String(start.scheduledEventId))) started.set(String(start.scheduledEventId), time);
    const done = event.activityTaskCompletedEventAttributes;
    if (done && scheduled.has(String(done.scheduledEventId))) {
      const key = String(done.scheduledEventId);
      const s = scheduled.get(key)!;
      timings.push({ iteration: s.iteration, scheduledMs: s.scheduledMs, startedMs: started.get(key) ?? s.scheduledMs, completedMs: time });
    }
  }
  return timings;
}
