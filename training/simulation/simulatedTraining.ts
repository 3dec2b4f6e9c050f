import { groupAdvantages, shuffleWithinGroup, stepActionKey, stepCredits } from '../advantages';
import { selectBatch } from '../batches';
import type { PolicyUpdateMode } from '../grpoConfig';
import type { Task } from '../task';
import type { TrajectoryStep } from '../trajectory';
import { renderSystemPrompt, type Policy } from '../policy';
import { applyLessonOperations, type LessonUpdateOptions } from '../lessonOperations';
import { buildPolicyUpdateEvidence, evidenceCredits, renderPolicyUpdateEvidence, type EvidenceCandidate } from '../policyEvidence';
import type { RewardInput } from '../rewards';
import { hashString } from '../statistics';
import { SimulatedEnvironment } from './environment';
import { simulatedAgentTurn, simulatedOptimizerTurn, type AgentMessage } from './simulatedModel';
import type { IdentifiedCandidate } from '../groupProposals';
import { emptyTally, hygienicUpdate, type HygieneTally, type SimulatedHygiene } from './hygienicUpdate';

/**
 * The whole GRPO loop in one process, with no servers: the simulated agent runs groups, the
 * reward scores them, advantages (and step credits) are computed, the simulated optimizer reads
 * the same evidence the policy-update activity builds, and the held-out tasks are evaluated after
 * every update. For measuring learning itself (tests/perf/creditAssignment.ts, unit tests), where
 * a real job's I/O would only add noise and time. Deterministic in its options.
 */

const TIMESTAMP = '2024-01-01T00:00:00.000Z';

export interface SimulatedEpisode extends RewardInput {
  final_answer: string | null;
}

/** One run of the simulated agent on a simulated task, recorded as a trajectory's steps. */
export function runSimulatedEpisode(policy: Policy, task: Task, seed: number, maxTurns: number): SimulatedEpisode {
  const environment = new SimulatedEnvironment();
  const tools = environment.tools(task);
  const toolNames = tools.map((tool) => tool.name);
  const system = renderSystemPrompt(policy);
  const messages: AgentMessage[] = [
    { role: 'system', content: system },
    { role: 'user', content: task.prompt },
  ];
  const steps: TrajectoryStep[] = [];
  const toolCalls: { name: string; arguments: Record<string, unknown> }[] = [];
  let finalAnswer: string | null = null;
  for (let turn = 0; turn < maxTurns && finalAnswer === null; turn++) {
    const action = simulatedAgentTurn({ system, messages, toolNames, tools, seed });
    const base = {
      index: turn,
      state: JSON.stringify(messages[messages.length - 1]),
      started_at: TIMESTAMP,
      ended_at: TIMESTAMP,
      usage: { prompt_tokens: 0, completion_tokens: 0 },
      cost_usd: 0,
      logprob: Math.log(action.probability),
    };
    if (action.type === 'tool_call') {
      const result = environment.executeTool(task, action.tool, action.arguments);
      const call = { id: `call-${turn}`, name: action.tool, arguments: action.arguments };
      toolCalls.push(call);
      messages.push(
        { role: 'assistant', content: null, tool_calls: [{ name: action.tool }] },
        { role: 'tool', content: result.error ?? result.output },
      );
      steps.push({ ...base, action: { type: 'tool_call', content: null }, tool_calls: [call], result: result.output, error: result.error });
    } else {
      finalAnswer = action.content;
      steps.push({ ...base, action: { type: 'final_answer', content: finalAnswer }, tool_calls: [], result: null, error: null });
    }
  }
  const { success, verified } = environment.judge(task, { toolCalls, finalAnswer });
  return { steps, success, verified, error: finalAnswer === null ? 'out of turns' : null, final_answer: finalAnswer };
}

export interface SimulatedTrainingOptions {
  trainingTasks: Task[];
  heldOutTasks: Task[];
  /** At most this many iterations (fewer when `targetSuccess` is reached). */
  iterations: number;
  groupSize: number;
  batchSize: number;
  maxTurns: number;
  seed: number;
  gamma: number;
  creditAssignment: boolean;
  policyUpdate: PolicyUpdateMode;
  /** `shuffled_advantages` shuffles each group's rewards before any credit is computed. */
  control?: 'none' | 'shuffled_advantages';
  reward: (trajectory: RewardInput) => number;
  update: LessonUpdateOptions;
  /** Runs per held-out task in each evaluation (the same seeds every time: common random numbers). */
  evalSamples: number;
  /** Stop after the first update whose held-out success rate reaches this. */
  targetSuccess?: number;
  /** Policy hygiene (issue 16): per-group proposals, one consolidation, budget, guard, counters, the gate. */
  hygiene?: SimulatedHygiene;
  /** Show the optimizer failure patterns, from which it may write "do not call" lessons (issue 14 item 5). */
  avoidLessons?: boolean;
}

export interface SimulatedTrainingResult {
  /** Held-out success rate before training (index 0) and after each update. */
  heldOutSuccess: number[];
  /** The first iteration after which held-out success reached the target, else null. */
  iterationsToTarget: number | null;
  policy: Policy;
  /** With hygiene: what it did over the run. */
  hygiene?: HygieneTally;
}

export function heldOutSuccessRate(policy: Policy, tasks: readonly Task[], samples: number, seed: number, maxTurns: number): number {
  let successes = 0;
  tasks.forEach((task, taskIndex) => {
    for (let sample = 0; sample < samples; sample++) {
      if (runSimulatedEpisode(policy, task, hashString(`eval:${seed}:${taskIndex}:${sample}`), maxTurns).success) successes += 1;
    }
  });
  return successes / (tasks.length * samples);
}

export function runSimulatedTraining(options: SimulatedTrainingOptions, initial: Policy): SimulatedTrainingResult {
  const { trainingTasks, seed } = options;
  if (options.heldOutTasks.length === 0 || !(options.evalSamples >= 1)) {
    throw new Error('runSimulatedTraining: needs at least one held-out task and evalSamples >= 1');
  }
  const evaluate = (policy: Policy) => heldOutSuccessRate(policy, options.heldOutTasks, options.evalSamples, seed, options.maxTurns);
  let policy = initial;
  const heldOutSuccess = [evaluate(policy)];
  let iterationsToTarget: number | null = null;
  const tally = emptyTally();
  for (let iteration = 1; iteration <= options.iterations && iterationsToTarget === null; iteration++) {
    const candidates: EvidenceCandidate[] = [];
    const groups: IdentifiedCandidate[][] = [];
    for (const queryIndex of selectBatch(trainingTasks.length, iteration, options.batchSize, seed)) {
      const task = trainingTasks[queryIndex];
      const runs = Array.from({ length: options.groupSize }, (_, sample) =>
        runSimulatedEpisode(policy, task, hashString(`${seed}:${iteration}:${queryIndex}:${sample}`), options.maxTurns),
      );
      const rewards = runs.map((run) => options.reward(run));
      const credited = options.control === 'shuffled_advantages' ? shuffleWithinGroup(rewards, hashString(`${seed}:${iteration}:${queryIndex}:shuffle`)) : rewards;
      const advantages = groupAdvantages(credited);
      const credits = options.creditAssignment
        ? stepCredits(runs.map((run, i) => ({ reward: credited[i], actions: run.steps.map(stepActionKey) })), options.gamma)
        : null;
      const group = runs.map((run, i) => ({
        trajectory_id: `${iteration}:${queryIndex}:${i}`,
        trajectory: run,
        advantage: advantages[i],
        query: task.prompt,
        stepCredits: credits ? credits[i] : null,
        family: task.family ?? null,
      }));
      candidates.push(...group);
      groups.push(group);
    }
    const evidence = buildPolicyUpdateEvidence(policy.lessons, candidates, options.policyUpdate, undefined, { failurePatterns: options.avoidLessons === true });
    if (options.hygiene) {
      const { hygiene } = options;
      policy = hygienicUpdate(
        {
          policy,
          groups,
          iteration,
          seed,
          mode: options.policyUpdate,
          update: options.update,
          hygiene,
          validation: options.heldOutTasks,
          succeeds: (candidate, task, episodeSeed) => runSimulatedEpisode(candidate, task, episodeSeed, options.maxTurns).success,
        },
        tally,
      );
    } else if (evidence.trajectories.length > 0) {
      const { operations } = simulatedOptimizerTurn(`Current lessons and trajectories:\n\n${renderPolicyUpdateEvidence(evidence)}`);
      policy = applyLessonOperations(policy, operations, evidenceCredits(evidence), options.update).policy;
    }
    heldOutSuccess.push(evaluate(policy));
    if (options.targetSuccess !== undefined && heldOutSuccess[iteration] >= options.targetSuccess) iterationsToTarget = iteration;
  }
  return { heldOutSuccess, iterationsToTarget, policy, ...(options.hygiene ? { hygiene: tally } : {}) };
}
