/**
 * Every side effect of a training job, as Temporal activities. The workflow imports only the
 * type `TrainingActivities`; workers build the implementations with `createActivities`.
 */
import { createDefaultRewardRegistry, type RewardRegistry } from '../training/rewards';
import { SimulatedEnvironment } from '../training/simulation/environment';
import { LlmAgent } from './agents/llmAgent';
import type { AgentRuntime } from './agents/agentRuntime';
import { createRepositories, type PrismaClient } from './db';
import { createGrpoActivities } from './grpo';
import { createJobRecordActivities } from './jobRecords';
import { ChatClient, type LlmSettings } from './llm/chatClient';
import { createPolicyUpdateActivities } from './policyUpdate';
import { createRewardActivities } from './rewards';
import { createTrajectoryActivities } from './trajectories';

export interface ActivityDependencies {
  prisma: PrismaClient;
  llm: LlmSettings;
  rewards?: RewardRegistry;
  /** The agent under training; by default the tool-using LLM agent in the simulated environment. */
  agent?: AgentRuntime;
}

export function createActivities(deps: ActivityDependencies) {
  const repos = createRepositories(deps.prisma);
  const chat = new ChatClient(deps.llm);
  const agent = deps.agent ?? new LlmAgent(chat, new SimulatedEnvironment());
  return {
    ...createTrajectoryActivities({ agent, trajectories: repos.trajectories }),
    ...createRewardActivities({ rewards: deps.rewards ?? createDefaultRewardRegistry(), trajectories: repos.trajectories }),
    ...createGrpoActivities({ trajectories: repos.trajectories }),
    ...createPolicyUpdateActivities({ chat, trajectories: repos.trajectories }),
    ...createJobRecordActivities(repos),
  };
}

export type TrainingActivities = ReturnType<typeof createActivities>;
