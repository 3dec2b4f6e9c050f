/**
 * An honest learning test: a pure GRPO loop (no servers) over the simulated environment. The
 * simulated agent knows only its lessons; the simulated optimizer writes lessons only from what
 * positive-advantage trajectories did (whether they succeeded is not what it reads). If the
 * policy improves, it is because the advantages carried the signal: the control with advantages
 * shuffled within each group must not improve as much.
 *
 * The control used to zero the advantages; that gave no positive-advantage evidence, so the
 * policy stayed the initial one by construction and the assertion could not fail. Shuffled
 * advantages still reach the optimizer and still change the policy (lessons are written, weights
 * move), so whether it improves is an empirical question that this test could answer either way.
 * Across many seeds (npm run bench:learning) its per-run false-positive rate is measured.
 */
import { groupAdvantages, selectPositiveAdvantage, shuffleWithinGroup } from '../../training/advantages';
import { selectBatch } from '../../training/batches';
import type { Task } from '../../training/task';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import { TrajectoryStepSchema } from '../../training/trajectory';
import { IterationMetricsSchema, iterationMetrics, type IterationMetrics } from '../../training/iterationMetrics';
import { initialPolicy, type Policy } from '../../training/policy';
import { applyLessonOperations } from '../../training/lessonOperations';
import { renderPolicyUpdateEvidence, type PolicyUpdateEvidence } from '../../training/policyEvidence';
import { shapedReward } from '../../training/rewards';
import { simulatedTaskSet } from '../../training/simulation/environment';
import { simulatedOptimizerTurn } from '../../training/simulation/simulatedModel';
import { runSimulatedEpisode } from '../../training/simulation/simulatedTraining';
import { hashString } from '../../training/statistics';

const SEED = 7;
const ITERATIONS = 8;
const GROUP_SIZE = 8;
const BATCH_SIZE = 6;
const MAX_TURNS = 6;
const UPDATE = { learningRate: 0.5, clip: 0.3, maxLessons: 20 };


type EvidenceTrajectory = PolicyUpdateEvidence['trajectories'][number];

/** The shared in-process episode (training/simulation/simulatedTraining.ts), as the optimizer sees it. */
function runEpisode(policy: Policy, task: Task, seed: number) {
  const episode = runSimulatedEpisode(policy, task, seed, MAX_TURNS);
  const steps = episode.steps.map((step) => TrajectoryStepSchema.parse(step));
  const logProb = steps.reduce((sum, step) => sum + step.logprob!, 0);
  const seen: EvidenceTrajectory['steps'] = steps.map((step) =>
    step.action.type === 'tool_call'
      ? { action: 'tool_call', tool: step.tool_calls[0].name, result: step.result }
      : { action: 'final_answer', tool: null, result: null },
  );
  const reward = shapedReward({ success: episode.success, verified: episode.verified, steps, error: episode.error });
  return { success: episode.success, reward, logProb, seen, finalAnswer: episode.final_answer };
}

type AdvantageMode = 'grpo' | 'shuffled';

function train(mode: AdvantageMode): { metrics: IterationMetrics[]; policy: Policy } {
  const tasks = simulatedTaskSet({ queriesPerFamily: 2, seed: SEED });
  let policy = initialPolicy(DEFAULT_BASE_PROMPT);
  const metrics: IterationMetrics[] = [];
  for (let iteration = 1; iteration <= ITERATIONS; iteration++) {
    const groups: Parameters<typeof iterationMetrics>[0] = [];
    const evidence: EvidenceTrajectory[] = [];
    const advantageByRef: Record<string, number> = {};
    for (const queryIndex of selectBatch(tasks.length, iteration, BATCH_SIZE, SEED)) {
      const task = tasks[queryIndex];
      const runs = Array.from({ length: GROUP_SIZE }, (_, sample) =>
        runEpisode(policy, task, hashString(`${SEED}:${iteration}:${queryIndex}:${sample}`)),
      );
      const grpo = groupAdvantages(runs.map((run) => run.reward));
      const advantages = mode === 'shuffled' ? shuffleWithinGroup(grpo, hashString(`${SEED}:${iteration}:${queryIndex}:shuffle`)) : grpo;
      runs.forEach((run, sample) => {
        const ref = `i${iteration}-q${queryIndex}-s${sample}`;
        advantageByRef[ref] = advantages[sample];
        evidence.push({
          ref,
          advantage: advantages[sample],
          query: task.prompt,
          success: run.success,
          steps: run.seen,
          final_answer: run.finalAnswer,
        });
      });
      groups.push({
        rewards: runs.map((run) => run.reward),
        successes: runs.map((run) => run.success),
        advantages,
        logProbs: runs.map((run) => run.logProb),
      });
    }
    // As in the policy-update activity: the optimizer sees the positive-advantage trajectories.
    const message = `Propose lesson operations for this evidence.\n\n${renderPolicyUpdateEvidence({
      lessons: policy.lessons,
      trajectories: selectPositiveAdvantage(evidence),
    })}`;
    const { operations } = simulatedOptimizerTurn(message);
    const update = applyLessonOperations(policy, operations, advantageByRef, UPDATE);
    policy = update.policy;
    metrics.push(IterationMetricsSchema.parse(iterationMetrics(groups, update.churn)));
  }
  return { metrics, policy };
}

const successRate = (metrics: IterationMetrics[], from: number, to: number): number =>
  metrics.slice(from - 1, to).reduce((sum, m) => sum + m.success_rate, 0) / (to - from + 1);

describe('learning in the simulated environment', () => {
  const learned = train('grpo');
  const control = train('shuffled');

  it('starts from a low baseline', () => {
    const baseline = successRate(learned.metrics, 1, 2);
    expect(baseline).toBeGreaterThan(0.05);
    expect(baseline).toBeLessThan(0.35);
  });

  it('improves clearly with group-relative advantages', () => {
    const early = successRate(learned.metrics, 1, 2);
    const late = successRate(learned.metrics, 7, 8);
    expect(late - early).toBeGreaterThan(0.4);
    expect(learned.policy.lessons.length).toBeGreaterThan(0);
    expect(learned.metrics.some((m) => m.lesson_churn > 0)).toBe(true);
    expect(learned.metrics.every((m) => m.trajectories === GROUP_SIZE * BATCH_SIZE && m.loss !== null)).toBe(true);
  });

  it('does not learn as much when the advantages are shuffled within each group (control)', () => {
    // The control really updates: it is not the initial policy by construction.
    expect(control.metrics.some((m) => m.lesson_churn > 0)).toBe(true);
    expect(control.policy).not.toEqual(initialPolicy(DEFAULT_BASE_PROMPT));
    const early = successRate(control.metrics, 1, 2);
    const late = successRate(control.metrics, 7, 8);
    expect(late - early).toBeLessThan(0.2);
    expect(successRate(learned.metrics, 7, 8) - successRate(control.metrics, 7, 8)).toBeGreaterThan(0.3);
  });

  it('reports the learning curve when FLOW_SHOW_LEARNING_CURVE=1', () => {
    const curve = (metrics: IterationMetrics[]) => metrics.map((m) => m.success_rate.toFixed(2)).join(' ');
    if (process.env.FLOW_SHOW_LEARNING_CURVE === '1') {
      process.stdout.write(`success rate per iteration\n  grpo:     ${curve(learned.metrics)}\n  shuffled: ${curve(control.metrics)}\n`);
    }
    expect(learned.metrics).toHaveLength(ITERATIONS);
  });
});
