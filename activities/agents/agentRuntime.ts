import type { Task } from '../../training/task';
import type { TrajectoryStep } from '../../training/trajectory';

/** What an agent is asked to do once: one task, under the current policy. */
export interface AgentRunRequest {
  task: Task;
  /** The policy rendered as a system prompt (base prompt + weighted lessons). */
  systemPrompt: string;
  model: string;
  maxSteps: number;
  maxTokens: number;
  /** Makes a seeded model (the simulated one) reproducible. */
  seed: number;
  /** Aborted on activity cancellation or when the trajectory's time is up. */
  signal: AbortSignal;
  /**
   * Called after every step, so a run that later throws still leaves its steps behind. `state`, when
   * the agent can go on from a step, is what it needs to (plain JSON): the activity heartbeats it.
   */
  onStep(step: TrajectoryStep, state?: unknown): void;
  /** Where an interrupted attempt of this run stopped: go on from there (an agent that cannot starts over). */
  resume?: AgentResumePoint;
  /** Tells Temporal the run is alive while it waits on something slow (an external agent service). */
  heartbeat?(): void;
}

/** The steps an interrupted attempt took and the agent's state after the last of them. */
export interface AgentResumePoint {
  steps: TrajectoryStep[];
  state: unknown;
}

export interface AgentRunResult {
  finalAnswer: string | null;
  success: boolean;
  verified: boolean;
  /** Why the run did not finish normally (for example it ran out of steps), else null. */
  error: string | null;
}

/**
 * An agent Flow can train: the tool-using LLM agent (llmAgent.ts) or the HTTP adapter to an
 * external agent service (httpAgent.ts). It may throw; the trajectory activity records that as a
 * failed trajectory, never a failed job.
 */
export interface AgentRuntime {
  run(request: AgentRunRequest): Promise<AgentRunResult>;
}

export interface ToolOutcome {
  output: string;
  /** Why the tool refused or failed (the agent sees it as the tool's answer), else null. */
  error: string | null;
}

/**
 * The world an agent acts in: its tools, and the judge of its final answer. Tools may be
 * asynchronous (real HTTP); `signal` stops them with the trajectory.
 */
export interface AgentEnvironment {
  /** The tools offered for `task` (an environment may offer each kind of task its own). */
  tools(task?: Task): { name: string; description: string; parameters: Record<string, unknown> }[];
  executeTool(task: Task, name: string, args: Record<string, unknown>, signal?: AbortSignal): ToolOutcome | Promise<ToolOutcome>;
  judge(task: Task, run: { toolCalls: { name: string; arguments: Record<string, unknown> }[]; finalAnswer: string | null }): {
    success: boolean;
    verified: boolean;
  };
}
