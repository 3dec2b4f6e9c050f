/**
 * The learning benchmark's arms for what the policy updater sees (issue 14 items 4, 5): the
 * argument-rule families, families with no [family] tag, and avoid lessons on vs off. The analysis
 * is declared in tests/perf/learningBench.ts's header ("THE UPDATER'S EVIDENCE"), which runs these
 * arms and writes their keys with its own; `npx tsx tests/perf/learningUpdaterArms.ts` prints them alone.
 */
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import type { Task } from '../../training/task';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import { type EvaluationEpisode, taskFamily } from '../../training/evaluation';
import { runLevelEvidence } from '../../training/evaluationStatistics';
import { initialPolicy, type Policy } from '../../training/policy';
import { outcomeReward } from '../../training/rewards';
import { SIMULATED_FAMILIES, simulatedTaskSet, type SimulatedTaskSetOptions } from '../../training/simulation/environment';
import { LEDGER_ARGUMENT_FAMILIES, LEDGER_FAMILIES } from '../../training/simulation/ledgerFamilies';
import { parseLesson } from '../../training/simulation/lessonForms';
import { runSimulatedEpisode, runSimulatedTraining } from '../../training/simulation/simulatedTraining';
import { hashString } from '../../training/statistics';
import { round } from './stats';

/** The settings of tests/perf/learningBench.ts (LEARNING_SETTINGS), repeated so this file stands alone. */
export const UPDATER_SETTINGS = {
  seeds: 30,
  trainingPerFamily: 3,
  validationPerFamily: 2,
  testPerFamily: 2,
  iterations: 10,
  groupSize: 8,
  batchSize: 4,
  maxTurns: 6,
  testSamples: 4,
  update: { learningRate: 0.5, clip: 0.2, maxLessons: 20 },
} as const;

type TaskShape = Pick<SimulatedTaskSetOptions, 'families' | 'tagged' | 'withFamily'>;

const BUILT_IN: TaskShape = { families: SIMULATED_FAMILIES };
const LEDGER: TaskShape = { families: LEDGER_FAMILIES };
const UNTAGGED: TaskShape = { families: SIMULATED_FAMILIES, tagged: false, withFamily: false };
const UNTAGGED_FAMILY: TaskShape = { families: SIMULATED_FAMILIES, tagged: false };

/** One run: the test episodes of the untrained baseline and of the trained policy (same episode seeds). */
export interface UpdaterRun {
  seed: number;
  baseline: EvaluationEpisode[];
  trained: EvaluationEpisode[];
  /** The tasks the episodes ran, by query_index. */
  test: Task[];
  delta: number;
  significant: boolean;
  avoidLessons: number;
}

function episodes(policy: Policy, tasks: readonly Task[], seed: number): EvaluationEpisode[] {
  const s = UPDATER_SETTINGS;
  return tasks.flatMap((task, queryIndex) =>
    Array.from({ length: s.testSamples }, (_, sample) => {
      const episode = runSimulatedEpisode(policy, task, hashString(`test:${seed}:${queryIndex}:${sample}`), s.maxTurns);
      return {
        reward: outcomeReward(episode),
        success: episode.success,
        steps: episode.steps.length,
        scored_tool_calls: 0,
        correct_tool_calls: 0,
        error: episode.error,
        query_index: queryIndex,
        family: taskFamily(task),
      };
    }),
  );
}

export function runUpdaterArm(shape: TaskShape, seed: number, avoidLessons: boolean): UpdaterRun {
  const s = UPDATER_SETTINGS;
  const tasks = (queriesPerFamily: number, taskSeed: number) => simulatedTaskSet({ ...shape, queriesPerFamily, seed: taskSeed });
  const initial = initialPolicy(DEFAULT_BASE_PROMPT);
  const test = tasks(s.testPerFamily, seed + 200_000);
  const { policy } = runSimulatedTraining(
    {
      trainingTasks: tasks(s.trainingPerFamily, seed),
      heldOutTasks: tasks(s.validationPerFamily, seed + 100_000),
      iterations: s.iterations,
      groupSize: s.groupSize,
      batchSize: s.batchSize,
      maxTurns: s.maxTurns,
      seed,
      gamma: 0.99,
      creditAssignment: false,
      policyUpdate: 'positive_only',
      control: 'none',
      reward: outcomeReward,
      update: s.update,
      evalSamples: 1,
      avoidLessons,
    },
    initial,
  );
  const baseline = episodes(initial, test, seed);
  const trained = episodes(policy, test, seed);
  const evidence = runLevelEvidence(trained, baseline, s.testSamples);
  const avoid = policy.lessons.filter((lesson) => /^avoid_/.test(parseLesson(lesson.text)?.form.kind ?? '')).length;
  return { seed, baseline, trained, test, delta: evidence.success_test.mean_difference, significant: evidence.significant_improvement, avoidLessons: avoid };
}

export interface Interval {
  mean: number;
  ci_low: number;
  ci_high: number;
}

/** Mean and Student-t 95% interval over runs. */
export function interval(values: readonly number[]): Interval {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (n - 1));
  const half = tQuantile(0.975, n - 1) * (sd / Math.sqrt(n));
  return { mean, ci_low: mean - half, ci_high: mean + half };
}

/** Success rate of a run's episodes on the given families (all when `families` is absent). */
function successRate(run: UpdaterRun, which: 'baseline' | 'trained', families?: readonly string[]): number {
  const picked = run[which].filter((episode) => families === undefined || families.includes(episode.family ?? ''));
  return picked.filter((episode) => episode.success).length / picked.length;
}

export interface UpdaterResult {
  argument: Interval;
  argumentBaseline: number;
  ordering: number;
  orderingBaseline: number;
  untagged: Interval;
  untaggedVerdictRate: number;
  untaggedFamily: Interval;
  avoid: Interval;
  avoidLedger: Interval;
  avoidOnDelta: number;
  avoidArgument: number;
  avoidLessonsMean: number;
  perSeed: { argument: number[]; untagged: number[]; avoid: number[]; avoidLedger: number[] };
  seconds: number;
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const ORDERING_FAMILIES = LEDGER_FAMILIES.filter((family) => !LEDGER_ARGUMENT_FAMILIES.includes(family));

export function measureUpdaterArms(seedCount: number = UPDATER_SETTINGS.seeds): UpdaterResult {
  const started = performance.now();
  const seeds = Array.from({ length: seedCount }, (_, i) => i + 1);
  const arm = (shape: TaskShape, avoid: boolean) => seeds.map((seed) => runUpdaterArm(shape, seed, avoid));
  const builtInOff = arm(BUILT_IN, false);
  const builtInOn = arm(BUILT_IN, true);
  const ledgerOff = arm(LEDGER, false);
  const ledgerOn = arm(LEDGER, true);
  const untagged = arm(UNTAGGED, false);
  const untaggedFamily = arm(UNTAGGED_FAMILY, false);
  const argument = ledgerOff.map((run) => successRate(run, 'trained', LEDGER_ARGUMENT_FAMILIES));
  const avoid = builtInOn.map((run, i) => successRate(run, 'trained') - successRate(builtInOff[i], 'trained'));
  const avoidLedger = ledgerOn.map((run, i) => successRate(run, 'trained') - successRate(ledgerOff[i], 'trained'));
  return {
    argument: interval(argument),
    argumentBaseline: mean(ledgerOff.map((run) => successRate(run, 'baseline', LEDGER_ARGUMENT_FAMILIES))),
    ordering: mean(ledgerOff.map((run) => successRate(run, 'trained', ORDERING_FAMILIES))),
    orderingBaseline: mean(ledgerOff.map((run) => successRate(run, 'baseline', ORDERING_FAMILIES))),
    untagged: interval(untagged.map((run) => run.delta)),
    untaggedVerdictRate: untagged.filter((run) => run.significant).length / untagged.length,
    untaggedFamily: interval(untaggedFamily.map((run) => run.delta)),
    avoid: interval(avoid),
    avoidLedger: interval(avoidLedger),
    avoidOnDelta: mean(builtInOn.map((run) => run.delta)),
    avoidArgument: mean(ledgerOn.map((run) => successRate(run, 'trained', LEDGER_ARGUMENT_FAMILIES))),
    avoidLessonsMean: mean(builtInOn.map((run) => run.avoidLessons)),
    perSeed: { argument, untagged: untagged.map((run) => run.delta), avoid, avoidLedger },
    seconds: (performance.now() - started) / 1000,
  };
}

const withInterval = (key: string, x: Interval): Record<string, number> => ({
  [key]: round(x.mean, 4),
  [`${key}_ci_low`]: round(x.ci_low, 4),
  [`${key}_ci_high`]: round(x.ci_high, 4),
});

export function updaterFigures(r: UpdaterResult): Record<string, number> {
  return {
    ...withInterval('learning_argument_rule_success', r.argument),
    learning_argument_rule_baseline_success: round(r.argumentBaseline, 4),
    learning_ordering_rule_success: round(r.ordering, 4),
    learning_ordering_rule_baseline_success: round(r.orderingBaseline, 4),
    ...withInterval('learning_untagged_success_gain', r.untagged),
    learning_untagged_verdict_rate: round(r.untaggedVerdictRate, 4),
    ...withInterval('learning_untagged_family_success_gain', r.untaggedFamily),
    ...withInterval('learning_avoid_delta_success', r.avoid),
    ...withInterval('learning_avoid_ledger_delta_success', r.avoidLedger),
    learning_avoid_on_delta_success_mean: round(r.avoidOnDelta, 4),
    learning_avoid_argument_rule_success: round(r.avoidArgument, 4),
    learning_avoid_lessons_mean: round(r.avoidLessonsMean, 2),
  };
}

/** The declared decision: avoid lessons on by default only if neither paired mean is below 0. */
export function avoidLessonsEarnDefault(r: UpdaterResult): boolean {
  return r.avoid.mean >= 0 && r.avoidLedger.mean >= 0;
}

const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
const range = (x: Interval) => `${signed(x.mean)} [${signed(x.ci_low)}, ${signed(x.ci_high)}]`;

/** Rows for the learning section's table (tests/perf/learningBench.ts learningMarkdown). */
export function updaterMarkdownRows(r: UpdaterResult): string[] {
  const bar = (ok: boolean) => (ok ? 'met' : '**MISSED**');
  return [
    `| Argument-rule families (ledger set), trained success on test [95% interval over runs] (\`learning_argument_rule_success\`) | ${r.argument.mean.toFixed(3)} [${r.argument.ci_low.toFixed(3)}, ${r.argument.ci_high.toFixed(3)}]; untrained ${r.argumentBaseline.toFixed(3)} | ≥ 0.8: ${bar(r.argument.mean >= 0.8)} |`,
    `| Ordering-rule family (ledger set), trained success on test (\`learning_ordering_rule_success\`) | ${r.ordering.toFixed(3)}; untrained ${r.orderingBaseline.toFixed(3)} | |`,
    `| No \`[family]\` tag and no Task.family: mean Δ success (\`learning_untagged_success_gain\`) | ${range(r.untagged)}; verdict rate ${(100 * r.untaggedVerdictRate).toFixed(1)}% | > 0: ${bar(r.untagged.mean > 0)} |`,
    `| No tag, Task.family set: mean Δ success (\`learning_untagged_family_success_gain\`) | ${range(r.untaggedFamily)} | |`,
    `| Avoid lessons on − off, built-in families, paired by seed (\`learning_avoid_delta_success\`) | ${range(r.avoid)} | default on only if ≥ 0 here and on the ledger set |`,
    `| Avoid lessons on − off, ledger set (\`learning_avoid_ledger_delta_success\`) | ${range(r.avoidLedger)} | ${avoidLessonsEarnDefault(r) ? 'avoid_lessons default: on' : 'avoid_lessons default: stays off'} |`,
    `| Avoid lessons on: Δ success, built-in (\`learning_avoid_on_delta_success_mean\`); argument-rule success (\`learning_avoid_argument_rule_success\`); avoid lessons kept (\`learning_avoid_lessons_mean\`) | ${signed(r.avoidOnDelta)}; ${r.avoidArgument.toFixed(3)}; ${r.avoidLessonsMean.toFixed(2)} | |`,
  ];
}

export function updaterMarkdownNotes(r: UpdaterResult): string[] {
  return [
    `Per seed argument-rule success: ${r.perSeed.argument.map((x) => x.toFixed(2)).join(', ')}.`,
    '',
    `Per seed Δ untagged: ${r.perSeed.untagged.map((x) => x.toFixed(2)).join(', ')}.`,
    '',
    `Per seed avoid on − off (built-in): ${r.perSeed.avoid.map((x) => x.toFixed(2)).join(', ')}; (ledger): ${r.perSeed.avoidLedger.map((x) => x.toFixed(2)).join(', ')}.`,
    '',
    `The updater arms (tests/perf/learningUpdaterArms.ts): ledger set ${LEDGER_FAMILIES.join(', ')} (argument rules: ${LEDGER_ARGUMENT_FAMILIES.join(', ')}), no tags; untagged: the built-in families with neither tag nor Task.family. ${r.seconds.toFixed(1)} s.`,
  ];
}

if (require.main === module) {
  const r = measureUpdaterArms();
  process.stdout.write(`${JSON.stringify(updaterFigures(r), null, 2)}\n`);
}
