/**
 * Which agent runs a trajectory, from the job's `agent` and `environment`: the tool-using LLM
 * agent in the simulated environment or among real tools, or the HTTP adapter to an external
 * agent service. Built per trajectory, around that trajectory's budget-guarded LLM client.
 */
import type { AgentSpec } from '../../training/task';
import { SimulatedEnvironment } from '../../training/simulation/environment';
import type { ChatClient } from '../../adapters/llm/chatClient';
import { HTTP_FETCH_ALLOW_ENV, parseAllowList, type HttpFetchOptions } from '../tools/httpFetch';
import { ToolsEnvironment } from '../tools/toolsEnvironment';
import type { AgentEnvironment, AgentRuntime } from './agentRuntime';
import { HTTP_AGENT_ALLOW_ENV, HttpAgent, type HttpAgentTrajectory } from './httpAgent';
import { LlmAgent } from './llmAgent';

export type EnvironmentName = 'simulated' | 'tools';

export interface AgentSelection extends HttpAgentTrajectory {
  /** Absent in trajectories scheduled before jobs named them: the simulated LLM agent then. */
  environment?: EnvironmentName;
  agent?: AgentSpec;
}

export interface AgentFactoryOptions {
  /** The HTTP fetch tool's limits; by default the allow-list is FLOW_HTTP_FETCH_ALLOW. */
  httpFetch?: HttpFetchOptions;
  /** Hosts agent services may live on; by default FLOW_HTTP_AGENT_ALLOW, and any public address when that is unset (agentUrlPolicy.ts). */
  httpAgentAllow?: readonly string[];
}

export class AgentFactory {
  private readonly environments: Record<EnvironmentName, AgentEnvironment>;
  private readonly httpAgentAllow: readonly string[] | undefined;

  constructor(options: AgentFactoryOptions = {}, env: NodeJS.ProcessEnv = process.env) {
    this.environments = {
      simulated: new SimulatedEnvironment(),
      tools: new ToolsEnvironment(options.httpFetch ?? { allow: parseAllowList(env[HTTP_FETCH_ALLOW_ENV]) }),
    };
    this.httpAgentAllow = options.httpAgentAllow ?? (env[HTTP_AGENT_ALLOW_ENV] ? parseAllowList(env[HTTP_AGENT_ALLOW_ENV], HTTP_AGENT_ALLOW_ENV) : undefined);
  }

  runtimeFor(chat: ChatClient, selection: AgentSelection): AgentRuntime {
    const environment = selection.environment ?? 'simulated';
    const agent = selection.agent ?? { type: 'llm' };
    if (agent.type === 'http') {
      const { job_id, run, iteration, query_index, sample_index } = selection;
      return new HttpAgent(agent, { environment, trajectory: { job_id, run, iteration, query_index, sample_index }, allow: this.httpAgentAllow });
    }
    return new LlmAgent(chat, this.environments[environment], { toolCalls: agent.tool_calls });
  }
}
