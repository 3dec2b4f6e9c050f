/**
 * Every side effect of a training job, as Temporal activities. The workflow imports only the
 * type `TrainingActivities`; workers build the implementations with `createActivities`.
 */
import { createDefaultRewardRegistry, type RewardRegistry } from '../training/rewards';
import { createEvaluationActivities } from './evaluation';
import { AgentFactory, type AgentSelection } from './agents/agentFactory';
import type { AgentRuntime } from './agents/agentRuntime';
import { blobStoreFromEnv, type BlobStore } from '../adapters/checkpoints/blobStore';
import { CheckpointStore } from '../adapters/checkpoints/checkpointStore';
import { createBudgetActivities } from './budget';
import { GuardedChatFactory } from './budgetGuard';
import { StoredCallLookup } from '../adapters/llm/storedCalls';
import { createRepositories, type PrismaClient } from '../adapters/db';
import { createGrpoActivities } from './grpo';
import { createJobControlActivities } from './jobControl';
import { createJobRecordActivities } from './jobRecords';
import { ChatClient, type LlmSettings } from '../adapters/llm/chatClient';
import { createPolicyUpdateActivities } from './policyUpdate';
import { createPolicyConsolidationActivities } from './policyConsolidation';
import { createRewardActivities } from './rewards';
import { evaluationRewardOf } from './evaluationReward';
import { excludingMarkedTrajectories } from './markedTrajectories';
import { createTrajectoryActivities } from './trajectories';
import { keepAlive } from './keepAlive';
import type { HttpFetchOptions } from './tools/httpFetch';

export interface ActivityDependencies {
  prisma: PrismaClient;
  llm: LlmSettings;
  rewards?: RewardRegistry;
  /**
   * The agent under training; by default the tool-using LLM agent in the simulated environment,
   * built per trajectory around that trajectory's budget-guarded client. A runtime given here
   * makes its own calls, outside the guard.
   */
  agent?: AgentRuntime;
  /** Where checkpoint payloads go; by default what the environment says (`blobStoreFromEnv`). */
  blobStore?: BlobStore;
  /** The `tools` environment's HTTP fetch limits; by default the allow-list is FLOW_HTTP_FETCH_ALLOW. */
  httpFetch?: HttpFetchOptions;
}

export function createActivities(deps: ActivityDependencies) {
  const repos = createRepositories(deps.prisma);
  // Activities get LLM clients only through `chats.open`, under an allowance (FLOW-011).
  // Every call an activity makes is billed to the spend ledger as it returns.
  // With stored calls on, a retry settles the calls a killed attempt left open at what the provider recorded.
  const storedCalls = deps.llm.storedCalls ? new StoredCallLookup(deps.llm.storedCalls) : null;
  const chats = new GuardedChatFactory(new ChatClient(deps.llm), repos.ledger, storedCalls);
  // Per trajectory: the job's agent (LLM or HTTP service) in the job's environment (simulated or tools).
  const agents = new AgentFactory({ httpFetch: deps.httpFetch });
  const rewardRegistry = deps.rewards ?? createDefaultRewardRegistry();
  const agentFor = (chat: ChatClient, selection: AgentSelection): AgentRuntime => deps.agent ?? agents.runtimeFor(chat, selection);
  return {
    ...createTrajectoryActivities({ chats, agentFor, trajectories: repos.trajectories }),
    // The group steps heartbeat while they run (a judge or the optimizer may wait on a slow model),
    // so a worker killed during one is noticed in seconds (the workflow's heartbeat timeout).
    ...keptAlive(createRewardActivities({ rewards: rewardRegistry, trajectories: repos.trajectories, chats })),
    // Trajectories the reward step marked (reward_error) are left out of their group's advantages.
    ...keptAlive(excludingMarkedTrajectories(createGrpoActivities({ trajectories: repos.trajectories }), repos.trajectories)),
    ...keptAlive(createPolicyUpdateActivities({ chat: chats, trajectories: repos.trajectories })),
    ...createPolicyConsolidationActivities({ trajectories: repos.trajectories }),
    ...createJobRecordActivities(repos, new CheckpointStore(repos.progress, deps.blobStore ?? blobStoreFromEnv())),
    ...createJobControlActivities(repos),
    ...createEvaluationActivities({
      chats,
      agentFor,
      // Judge and group strategies are scored 'shaped' in evaluation (activities/evaluationReward.ts).
      rewardOf: evaluationRewardOf(rewardRegistry),
      progress: repos.progress,
    }),
    ...createBudgetActivities(),
  };
}

export type TrainingActivities = ReturnType<typeof createActivities>;

/** The same activities, each heartbeating while it runs. */
function keptAlive<A extends Record<string, (input: never) => Promise<unknown>>>(activities: A): A {
  return Object.fromEntries(
    Object.entries(activities).map(([name, activity]) => [name, (input: never) => keepAlive(() => activity(input))]),
  ) as A;
}
