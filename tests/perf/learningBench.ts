/**
 * Learning benchmark (issue 14): does training make the agent better, with the RUN as the unit,
 * over many seeds, against controls? `npm run bench:learning` (or `npx tsx tests/perf/learningBench.ts`).
 *
 * ANALYSIS, DECLARED BEFORE THE FIRST RUN (this block is not edited after running; results go to
 * docs/performance/benchmark_results.json and .md, whatever they say):
 *
 *   Environment: the built-in single-step simulated families (training/simulation/environment.ts,
 *   SIMULATED_FAMILIES), run in process (training/simulation/simulatedTraining.ts: the simulated
 *   agent, the policy updater's evidence builder, the simulated optimizer, the lesson arithmetic;
 *   no servers). Reward: `outcome` (the product default).
 *   Per run (seed s = 1..30, the same seeds in every arm): training queries simulatedTaskSet(3 per
 *   family, seed s); validation queries (2 per family, seed s + 100000), only for the learning
 *   curve, never for selection; TEST queries (2 per family, seed s + 200000), never trained on,
 *   never used to pick anything. 10 iterations, group 8, batch 4, at most 6 turns, learning rate
 *   0.5, clip 0.2, 20 lessons. The policy evaluated is the one the run ends with.
 *   Arms:
 *     trained   — GRPO advantages;
 *     shuffled  — advantages shuffled within each group before the update (the updater still
 *                 writes lessons, from the wrong trajectories);
 *     no_update — the policy never changes. Two comparisons: (a) on the same seeds as the baseline
 *                 (identical episodes: its false-positive rate is 0 by construction and is reported
 *                 only because the issue names the key); (b) on fresh seeds (different episodes of
 *                 the same policy), which measures the verdict's false-positive rate under pure
 *                 episode noise and could come out either way.
 *   Per run: the arm's policy and the untrained baseline each run every test query 4 times on the
 *   same seeds (hash of seed, query, sample); Δ_r = mean over test queries of (policy − baseline)
 *   success rate; the per-run verdict is the product's (training/evaluationStatistics.ts
 *   runLevelEvidence): paired t on per-query success, p < 0.05, bootstrap interval over queries
 *   above 0.
 *   Across runs: mean Δ of each arm with a Student-t 95% interval over the 30 runs; Welch's
 *   t-test of trained Δ against shuffled Δ (two-sided); the false-positive rate of each control's
 *   per-run verdict (share of runs with significant_improvement); the trained arm's verdict rate.
 *   Keys: learning_trained_delta_success_mean/_ci_low/_ci_high, learning_shuffled_delta_success_mean/
 *   _ci_low/_ci_high, learning_no_update_fresh_delta_success_mean, learning_trained_vs_shuffled_p,
 *   learning_trained_verdict_rate, learning_shuffled_false_positive_rate,
 *   learning_no_update_false_positive_rate, learning_no_update_fresh_false_positive_rate,
 *   learning_seeds.
 *   Bars: learning_trained_delta_success_ci_low > 0; learning_shuffled_false_positive_rate ≤ 0.10;
 *   learning_no_update_false_positive_rate = 0; learning_no_update_fresh_false_positive_rate ≤ 0.10.
 *   Not measured here (not built yet): learning_argument_rule_success and
 *   learning_untagged_success_gain need the argument-rule family and an updater that reads tool
 *   arguments and Task.family (issue 14 item 4); they are reported as missing, not guessed.
 *
 * POLICY HYGIENE (issue 16 items 4-7), DECLARED BEFORE ITS FIRST RUN (same rule: not edited after):
 *
 *   Arms added, on the same 30 seeds, tasks, settings and test episodes as above:
 *     hygiene         — per-group proposals and one consolidation per iteration (training/
 *                       consolidation.ts), helpful/harmful counters with the worst harmful lesson
 *                       dropped, near-duplicates merged (Jaccard 0.8), the collapse guard (30% of the
 *                       library's lesson tokens), max_policy_tokens 2000, and the cheap gate (4
 *                       validation queries x 2 runs per policy, same seeds for parent and candidate;
 *                       the validation split is used for this acceptance, the test split never);
 *     hygiene_no_gate — the same without the gate (says whether the gate earns its episodes).
 *   "off" is the trained arm above (GRPO advantages, one update per iteration, no hygiene).
 *   Tokens: the rendered system prompt the run ends with, counted with o200k_base (the simulated
 *   model is not an OpenAI family, so o200k is the documented stand-in; adapters/llm/tokenCounter.ts).
 *   Per seed: success difference = Δ_hygiene − Δ_off (both against the same baseline episodes, so
 *   it is the difference of their test-split success). Across seeds: mean with a Student-t 95%
 *   interval over the 30 paired differences.
 *   Keys: policy_hygiene_success_delta (+ _ci_low, _ci_high); policy_hygiene_no_gate_success_delta
 *   (+ _ci_low, _ci_high); policy_hygiene_tokens_ratio = (sum over seeds of the hygiene arm's end
 *   tokens) ÷ (the same sum for off); policy_hygiene_tokens_on_mean, policy_hygiene_tokens_off_mean;
 *   policy_token_budget_violations = updates, over every run of both hygiene arms, after which the
 *   rendered policy was over max_policy_tokens (the off arm has no budget; its largest end size is
 *   reported as policy_hygiene_tokens_off_max); policy_collapse_refusals, policy_gate_refusals,
 *   policy_harmful_dropped, policy_lesson_merges: totals over both hygiene arms' runs.
 *   Bars: policy_hygiene_success_delta >= -0.02 (the mean; its interval is reported beside it);
 *   policy_hygiene_tokens_ratio <= 0.7; policy_token_budget_violations = 0; refusals are counted,
 *   no bar. The gate stays off by default unless hygiene (with gate) beats hygiene_no_gate.
 *
 *   ADDED AFTER THE RUNS (information, no bar; the analysis above is unchanged): how far removing
 *   lessons alone could take the ratio. policy_hygiene_tokens_removal_floor = (sum over seeds of
 *   the off arm's end policy rendered with only the lessons its environment needs: a family's
 *   required first tool, verification where the family requires it, by SIMULATED_FAMILY_RULES) ÷
 *   (the same sum with every lesson); policy_hygiene_lessons_off_mean and
 *   policy_hygiene_lessons_needed_off_mean beside it. A hygiene that only drops or merges
 *   identical advice cannot end below this floor without dropping advice the tasks need.
 *
 * THE UPDATER'S EVIDENCE (issue 14 items 4, 5), DECLARED BEFORE ITS FIRST RUN (same rule: not
 * edited after; the arms live in tests/perf/learningUpdaterArms.ts):
 *
 *   Same seeds s = 1..30, settings, reward (outcome), updater mode (positive_only), test episodes
 *   (4 per test query, the same episode seeds for the baseline and the arm's policy) as above;
 *   avoid lessons off unless the arm says on.
 *   Ledger set: training/simulation/ledgerFamilies.ts (invoice_total and expense_claim: the tool
 *   convert, right only with currency EUR resp. GBP; ledger_close: fetch_statement, then reconcile),
 *   its own tools, no [family] tag, Task.family set; 3 training, 2 validation, 2 test queries per
 *   family from seeds s, s + 100000, s + 200000.
 *   Arms:
 *     argument         — trained on the ledger set. learning_argument_rule_success = mean over the
 *                        30 runs of the trained policy's test success rate on the argument-value
 *                        families' test queries (invoice_total, expense_claim; 16 episodes a run).
 *                        Reported beside it: its Student-t 95% interval over runs (_ci_low,
 *                        _ci_high), the untrained baseline's rate on the same episodes
 *                        (learning_argument_rule_baseline_success), and the ordering family's
 *                        trained and baseline rates (learning_ordering_rule_success,
 *                        learning_ordering_rule_baseline_success).
 *     untagged         — trained on the built-in single-step families with neither a [family] tag
 *                        nor Task.family (simulatedTaskSet tagged: false, withFamily: false): the
 *                        updater can group only by the words the queries share. Per run Δ_r = test
 *                        success of the trained policy − the untrained baseline (as the trained arm).
 *                        learning_untagged_success_gain = mean Δ_r over the 30 runs (+ _ci_low,
 *                        _ci_high: Student-t 95%), learning_untagged_verdict_rate = share of runs
 *                        whose product verdict is a significant improvement.
 *     untagged_family  — the same with Task.family set (still no tag): information only,
 *                        learning_untagged_family_success_gain (+ _ci_low, _ci_high).
 *     avoid_on         — the trained arm (built-in tagged families) and the argument arm (ledger
 *                        set) again with avoid lessons on (failure patterns shown to the optimizer).
 *   Avoid on vs off: per seed, d_s = test success rate with avoid lessons on − off (same seeds, same
 *   test episodes); mean over the 30 seeds with a Student-t 95% interval, separately on the built-in
 *   families (learning_avoid_delta_success, _ci_low, _ci_high; "off" is the trained arm) and on the
 *   ledger set (learning_avoid_ledger_delta_success, _ci_low, _ci_high; "off" is the argument arm);
 *   beside them learning_avoid_on_delta_success_mean (the on arm's Δ against the baseline on the
 *   built-in families), learning_avoid_argument_rule_success (the argument-rule rate with avoid on)
 *   and learning_avoid_lessons_mean (avoid lessons in the policies the on arm ends with, built-in).
 *   Bars: learning_argument_rule_success >= 0.8; learning_untagged_success_gain > 0 (the mean; its
 *   interval is reported beside it). Decision: avoid_lessons becomes the product default only if
 *   both mean paired differences (built-in and ledger) are >= 0; otherwise it stays off. Reported
 *   whatever the figures are.
 *
 * AMENDMENT, DECLARED 2026-12-06 07:15 UTC BEFORE THE NEXT RUN (the blocks above stay as declared):
 *
 *   The run at 8c61ffc measured learning_shuffled_false_positive_rate 0.367 (bar 0.10), and on
 *   seeds outside this benchmark's (1001-1200) the positive-only updater's shuffled control was
 *   called "improved" in 16-19% of runs before and after the issue-14 changes: positive-only
 *   updates lock in whatever tool the policy already favours, right or wrong, because the
 *   positive-advantage trajectories of a group mostly follow the current lessons. An exploration
 *   on seeds 1001-1060 (not seeds 1-30, so the declared seeds stay unseen for this question):
 *   shuffled control "improved" in 0.217 of runs with positive_only and 0.017 with contrastive
 *   (lessons only from what a group's better runs did and its worse runs did not); trained runs
 *   significant in 1.000 of runs both ways (mean Δ 0.726 vs 0.664).
 *   Change: the product's default updater mode (config.policy_update) becomes `contrastive`, and
 *   the trained, shuffled, no_update and hygiene arms use the product default (not a fixed mode),
 *   so the benchmark measures what a job gets. The updater-evidence arms keep positive_only, as
 *   declared for them. Seeds, settings, keys, bars and the analysis are unchanged; seeds 1-30 are
 *   then run once and reported whatever they show.
 */
import path from 'node:path';
import { mean } from 'simple-statistics';
import ttest2 from '@stdlib/stats-ttest2';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import type { Task } from '../../training/task';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import { GRPOConfigSchema } from '../../training/grpoConfig';
import { taskFamily, type EvaluationEpisode } from '../../training/evaluation';
import { runLevelEvidence } from '../../training/evaluationStatistics';
import { initialPolicy, type Policy } from '../../training/policy';
import { outcomeReward } from '../../training/rewards';
import { SIMULATED_FAMILIES, SIMULATED_FAMILY_RULES, simulatedTaskSet } from '../../training/simulation/environment';
import { parseLesson } from '../../training/simulation/lessonForms';
import { runSimulatedEpisode, runSimulatedTraining } from '../../training/simulation/simulatedTraining';
import { hashString } from '../../training/statistics';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { machine, mergeResults, type Results } from './results';
import { tokenCounterFor } from '../../adapters/llm/tokenCounter';
import { renderSystemPrompt } from '../../training/policy';
import { emptyTally, type HygieneTally, type SimulatedHygiene } from '../../training/simulation/hygienicUpdate';
import { DEFAULT_MAX_POLICY_TOKENS, DEFAULT_MAX_UPDATE_REMOVAL_SHARE } from '../../training/tokenBudget';
import { DEFAULT_MERGE_SIMILARITY } from '../../training/lessonDedup';
import { round } from './stats';
import { measureUpdaterArms, updaterFigures, updaterMarkdownNotes, updaterMarkdownRows, type UpdaterResult } from './learningUpdaterArms';

export const LEARNING_SETTINGS = {
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

/** What a job's updater does unless its config says otherwise. */
const DEFAULT_POLICY_UPDATE = GRPOConfigSchema.parse({}).policy_update;

export type Arm = 'trained' | 'shuffled' | 'no_update' | 'no_update_fresh' | 'hygiene' | 'hygiene_no_gate';

export interface RunOutcome {
  seed: number;
  delta: number;
  significant: boolean;
  /** Tokens of the rendered policy the run ends with (o200k_base). */
  tokens: number;
  /** Its lessons, and the tokens with only the lessons the environment needs (neededBySimulatedRule). */
  lessons: number;
  neededLessons: number;
  neededTokens: number;
  hygiene?: HygieneTally;
}

/** The simulated model is not an OpenAI family: o200k_base stands in (adapters/llm/tokenCounter.ts). */
const countTokens = tokenCounterFor('flow-sim-1').count;

export function hygieneSettings(gate: boolean): SimulatedHygiene {
  return {
    options: { maxPolicyTokens: DEFAULT_MAX_POLICY_TOKENS, maxUpdateRemovalShare: DEFAULT_MAX_UPDATE_REMOVAL_SHARE, mergeSimilarity: DEFAULT_MERGE_SIMILARITY },
    count: countTokens,
    gate: gate ? { queries: 4, samples: 2 } : null,
  };
}

/** Every test query `testSamples` times; `salt` picks the seeds (same salt = same episodes for the same policy). */
function testEpisodes(policy: Policy, tasks: readonly Task[], seed: number, salt: string): EvaluationEpisode[] {
  const s = LEARNING_SETTINGS;
  return tasks.flatMap((task, queryIndex) =>
    Array.from({ length: s.testSamples }, (_, sample) => {
      const episode = runSimulatedEpisode(policy, task, hashString(`${salt}:${seed}:${queryIndex}:${sample}`), s.maxTurns);
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

/** Whether a lesson's advice is what its family's rule needs: the required first tool, or verification where required. */
export function neededBySimulatedRule(text: string): boolean {
  const parsed = parseLesson(text);
  const family = parsed?.scope.family;
  if (!parsed || family == null || !Object.hasOwn(SIMULATED_FAMILY_RULES, family)) return false;
  const rule = SIMULATED_FAMILY_RULES[family];
  if (parsed.form.kind === 'first') return parsed.form.tool === rule.requiredTool;
  return parsed.form.kind === 'verify' && rule.needsVerification;
}

export function runArm(arm: Arm, seed: number): RunOutcome {
  const s = LEARNING_SETTINGS;
  const families = SIMULATED_FAMILIES;
  const initial = initialPolicy(DEFAULT_BASE_PROMPT);
  const test = simulatedTaskSet({ queriesPerFamily: s.testPerFamily, seed: seed + 200_000, families });
  let policy = initial;
  let hygiene: HygieneTally | undefined;
  if (arm === 'trained' || arm === 'shuffled' || arm === 'hygiene' || arm === 'hygiene_no_gate') {
    const trained = runSimulatedTraining(
      {
        trainingTasks: simulatedTaskSet({ queriesPerFamily: s.trainingPerFamily, seed, families }),
        heldOutTasks: simulatedTaskSet({ queriesPerFamily: s.validationPerFamily, seed: seed + 100_000, families }),
        iterations: s.iterations,
        groupSize: s.groupSize,
        batchSize: s.batchSize,
        maxTurns: s.maxTurns,
        seed,
        gamma: 0.99,
        creditAssignment: false,
        // The product's default updater mode (the amendment above): what a job gets.
        policyUpdate: DEFAULT_POLICY_UPDATE,
        control: arm === 'shuffled' ? 'shuffled_advantages' : 'none',
        reward: outcomeReward,
        update: s.update,
        evalSamples: 1,
        ...(arm === 'hygiene' || arm === 'hygiene_no_gate' ? { hygiene: hygieneSettings(arm === 'hygiene') } : {}),
      },
      initial,
    );
    policy = trained.policy;
    hygiene = trained.hygiene;
  }
  const baseline = testEpisodes(initial, test, seed, 'test');
  const current = testEpisodes(policy, test, seed, arm === 'no_update_fresh' ? 'fresh' : 'test');
  const evidence = runLevelEvidence(current, baseline, s.testSamples);
  const needed = policy.lessons.filter((lesson) => neededBySimulatedRule(lesson.text));
  return {
    seed,
    delta: evidence.success_test.mean_difference,
    significant: evidence.significant_improvement,
    tokens: countTokens(renderSystemPrompt(policy)),
    lessons: policy.lessons.length,
    neededLessons: needed.length,
    neededTokens: countTokens(renderSystemPrompt({ ...policy, lessons: needed })),
    ...(hygiene ? { hygiene } : {}),
  };
}

export interface ArmSummary {
  runs: RunOutcome[];
  mean: number;
  ci_low: number;
  ci_high: number;
  verdict_rate: number;
}

function summarize(runs: RunOutcome[]): ArmSummary {
  const deltas = runs.map((r) => r.delta);
  const n = deltas.length;
  const mean = deltas.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(deltas.reduce((sum, d) => sum + (d - mean) ** 2, 0) / (n - 1));
  const half = tQuantile(0.975, n - 1) * (sd / Math.sqrt(n));
  return { runs, mean, ci_low: mean - half, ci_high: mean + half, verdict_rate: runs.filter((r) => r.significant).length / n };
}

export interface PairedSummary {
  mean: number;
  ci_low: number;
  ci_high: number;
}

/** Mean and Student-t 95% interval of per-seed differences. */
function paired(a: RunOutcome[], b: RunOutcome[]): PairedSummary {
  const diffs = a.map((run, i) => run.delta - b[i].delta);
  const n = diffs.length;
  const mean = diffs.reduce((x, y) => x + y, 0) / n;
  const sd = Math.sqrt(diffs.reduce((sum, d) => sum + (d - mean) ** 2, 0) / (n - 1));
  const half = tQuantile(0.975, n - 1) * (sd / Math.sqrt(n));
  return { mean, ci_low: mean - half, ci_high: mean + half };
}

export interface HygieneSummary {
  success: PairedSummary;
  successNoGate: PairedSummary;
  tokensOnMean: number;
  tokensOffMean: number;
  tokensOffMax: number;
  tokensRatio: number;
  /** Post hoc: the off arm with only needed lessons ÷ the off arm (tokens), and its lessons. */
  removalFloor: number;
  lessonsOffMean: number;
  neededLessonsOffMean: number;
  tally: HygieneTally;
}

function summarizeHygiene(arms: Record<Arm, ArmSummary>): HygieneSummary {
  const sum = (runs: RunOutcome[], of: (run: RunOutcome) => number = (run) => run.tokens) => runs.reduce((total, run) => total + of(run), 0);
  const tally = emptyTally();
  for (const run of [...arms.hygiene.runs, ...arms.hygiene_no_gate.runs]) {
    for (const key of Object.keys(tally) as (keyof HygieneTally)[]) tally[key] += run.hygiene![key];
  }
  return {
    success: paired(arms.hygiene.runs, arms.trained.runs),
    successNoGate: paired(arms.hygiene_no_gate.runs, arms.trained.runs),
    tokensOnMean: sum(arms.hygiene.runs) / arms.hygiene.runs.length,
    tokensOffMean: sum(arms.trained.runs) / arms.trained.runs.length,
    tokensOffMax: Math.max(...arms.trained.runs.map((run) => run.tokens)),
    tokensRatio: sum(arms.hygiene.runs) / sum(arms.trained.runs),
    removalFloor: sum(arms.trained.runs, (run) => run.neededTokens) / sum(arms.trained.runs),
    lessonsOffMean: mean(arms.trained.runs.map((run) => run.lessons)),
    neededLessonsOffMean: mean(arms.trained.runs.map((run) => run.neededLessons)),
    tally,
  };
}

export interface LearningBenchResult {
  arms: Record<Arm, ArmSummary>;
  trainedVsShuffled: { t: number; df: number; p: number };
  hygiene: HygieneSummary;
  /** The updater-evidence arms (issue 14 items 4, 5; tests/perf/learningUpdaterArms.ts). */
  updater?: UpdaterResult;
  seconds: number;
}

export function measureLearning(): LearningBenchResult {
  const started = performance.now();
  const seeds = Array.from({ length: LEARNING_SETTINGS.seeds }, (_, i) => i + 1);
  const armNames = ['trained', 'shuffled', 'no_update', 'no_update_fresh', 'hygiene', 'hygiene_no_gate'] as const;
  const arms = Object.fromEntries(armNames.map((arm) => [arm, summarize(seeds.map((seed) => runArm(arm, seed)))])) as Record<Arm, ArmSummary>;
  const test = ttest2(arms.trained.runs.map((r) => r.delta), arms.shuffled.runs.map((r) => r.delta), { variance: 'unequal' });
  return { arms, trainedVsShuffled: { t: test.statistic, df: test.df, p: test.pValue }, hygiene: summarizeHygiene(arms), updater: measureUpdaterArms(LEARNING_SETTINGS.seeds), seconds: (performance.now() - started) / 1000 };
}

export function learningFigures(r: LearningBenchResult): Record<string, number> {
  return {
    learning_trained_delta_success_mean: round(r.arms.trained.mean, 4),
    learning_trained_delta_success_ci_low: round(r.arms.trained.ci_low, 4),
    learning_trained_delta_success_ci_high: round(r.arms.trained.ci_high, 4),
    learning_shuffled_delta_success_mean: round(r.arms.shuffled.mean, 4),
    learning_shuffled_delta_success_ci_low: round(r.arms.shuffled.ci_low, 4),
    learning_shuffled_delta_success_ci_high: round(r.arms.shuffled.ci_high, 4),
    learning_no_update_fresh_delta_success_mean: round(r.arms.no_update_fresh.mean, 4),
    learning_trained_vs_shuffled_p: Number(r.trainedVsShuffled.p.toPrecision(3)),
    learning_trained_verdict_rate: round(r.arms.trained.verdict_rate, 4),
    learning_shuffled_false_positive_rate: round(r.arms.shuffled.verdict_rate, 4),
    learning_no_update_false_positive_rate: round(r.arms.no_update.verdict_rate, 4),
    learning_no_update_fresh_false_positive_rate: round(r.arms.no_update_fresh.verdict_rate, 4),
    learning_seeds: LEARNING_SETTINGS.seeds,
    ...hygieneFigures(r.hygiene),
    ...(r.updater ? updaterFigures(r.updater) : {}),
  };
}

export function hygieneFigures(h: HygieneSummary): Record<string, number> {
  return {
    policy_hygiene_success_delta: round(h.success.mean, 4),
    policy_hygiene_success_delta_ci_low: round(h.success.ci_low, 4),
    policy_hygiene_success_delta_ci_high: round(h.success.ci_high, 4),
    policy_hygiene_no_gate_success_delta: round(h.successNoGate.mean, 4),
    policy_hygiene_no_gate_success_delta_ci_low: round(h.successNoGate.ci_low, 4),
    policy_hygiene_no_gate_success_delta_ci_high: round(h.successNoGate.ci_high, 4),
    policy_hygiene_tokens_ratio: round(h.tokensRatio, 4),
    policy_hygiene_tokens_on_mean: round(h.tokensOnMean, 1),
    policy_hygiene_tokens_off_mean: round(h.tokensOffMean, 1),
    policy_hygiene_tokens_off_max: h.tokensOffMax,
    policy_hygiene_tokens_removal_floor: round(h.removalFloor, 4),
    policy_hygiene_lessons_off_mean: round(h.lessonsOffMean, 2),
    policy_hygiene_lessons_needed_off_mean: round(h.neededLessonsOffMean, 2),
    policy_token_budget_violations: h.tally.budget_violations,
    policy_collapse_refusals: h.tally.collapse_refusals,
    policy_gate_refusals: h.tally.gate_refusals,
    policy_harmful_dropped: h.tally.harmful_dropped,
    policy_lesson_merges: h.tally.merges,
    policy_hygiene_updates: h.tally.updates,
  };
}

/** The keys this benchmark owns in benchmark_results.json. */
export const LEARNING_KEY_PREFIXES = ['learning_', 'policy_hygiene_', 'policy_token_budget_', 'policy_collapse_', 'policy_gate_', 'policy_harmful_', 'policy_lesson_merges'];

const MARK_START = '<!-- learning:start -->';
const MARK_END = '<!-- learning:end -->';
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;

export function learningMarkdown(r: LearningBenchResult): string {
  const s = LEARNING_SETTINGS;
  const { trained, shuffled, no_update: noUpdate, no_update_fresh: fresh } = r.arms;
  const bar = (ok: boolean) => (ok ? 'met' : '**MISSED**');
  return [
    MARK_START,
    '## Learning across runs (issue 14)',
    '',
    `The run is the unit: ${s.seeds} seeds per arm; per run, Δ = the arm's policy minus the untrained baseline in task success on the run's test queries (mean over queries). The analysis was declared in tests/perf/learningBench.ts before the first run.`,
    '',
    '| Figure | Value | Bar |',
    '| --- | ---: | --- |',
    `| Trained: mean Δ success [95% interval over runs] (\`learning_trained_delta_success_*\`) | ${signed(trained.mean)} [${signed(trained.ci_low)}, ${signed(trained.ci_high)}] | ci_low > 0: ${bar(trained.ci_low > 0)} |`,
    `| Shuffled advantages: mean Δ success (\`learning_shuffled_delta_success_*\`) | ${signed(shuffled.mean)} [${signed(shuffled.ci_low)}, ${signed(shuffled.ci_high)}] | |`,
    `| No update, fresh episodes: mean Δ success (\`learning_no_update_fresh_delta_success_mean\`) | ${signed(fresh.mean)} | |`,
    `| Welch t-test, trained Δ vs shuffled Δ across runs (\`learning_trained_vs_shuffled_p\`) | p = ${r.trainedVsShuffled.p.toPrecision(3)} (t = ${r.trainedVsShuffled.t.toFixed(2)}, df = ${r.trainedVsShuffled.df.toFixed(1)}) | |`,
    `| Trained runs whose own verdict is "significant improvement" (\`learning_trained_verdict_rate\`) | ${pct(trained.verdict_rate)} | |`,
    `| Shuffled runs with a "significant improvement" verdict (\`learning_shuffled_false_positive_rate\`) | ${pct(shuffled.verdict_rate)} | ≤ 10%: ${bar(shuffled.verdict_rate <= 0.1)} |`,
    `| No-update runs, same seeds as the baseline (\`learning_no_update_false_positive_rate\`; 0 by construction) | ${pct(noUpdate.verdict_rate)} | = 0: ${bar(noUpdate.verdict_rate === 0)} |`,
    `| No-update runs, fresh episodes (\`learning_no_update_fresh_false_positive_rate\`) | ${pct(fresh.verdict_rate)} | ≤ 10%: ${bar(fresh.verdict_rate <= 0.1)} |`,
    ...(r.updater
      ? updaterMarkdownRows(r.updater)
      : ['| Argument-rule family (`learning_argument_rule_success`), no-tag gain (`learning_untagged_success_gain`) | not measured in this run | |']),
    '',
    `Per seed (1..${s.seeds}) Δ trained: ${trained.runs.map((x) => x.delta.toFixed(2)).join(', ')}.`,
    '',
    `Per seed Δ shuffled: ${shuffled.runs.map((x) => x.delta.toFixed(2)).join(', ')}.`,
    '',
    ...hygieneMarkdown(r),
    '',
    ...(r.updater ? [...updaterMarkdownNotes(r.updater), ''] : []),
    `How: the single-step simulated families (${SIMULATED_FAMILIES.join(', ')}); ${s.trainingPerFamily} training, ${s.validationPerFamily} validation and ${s.testPerFamily} test queries per family, each from its own seed; ${s.iterations} iterations, group ${s.groupSize}, batch ${s.batchSize}, the outcome reward; ${s.testSamples} runs per test query and policy on the same seeds; the verdict is the product's (paired t on per-query success, bootstrap over queries). ${r.seconds.toFixed(1)} s.`,
    MARK_END,
  ].join('\n');
}

function hygieneMarkdown(r: LearningBenchResult): string[] {
  const h = r.hygiene;
  const bar = (ok: boolean) => (ok ? 'met' : '**MISSED**');
  const interval = (p: PairedSummary) => `${signed(p.mean)} [${signed(p.ci_low)}, ${signed(p.ci_high)}]`;
  return [
    '### Policy hygiene (issue 16 items 4-7)',
    '',
    `Hygiene on (per-group proposals with one consolidation per iteration, counters and harmful-lesson drops, near-duplicate merges, the collapse guard, max_policy_tokens ${DEFAULT_MAX_POLICY_TOKENS}, the cheap gate) against off (the trained arm), same ${LEARNING_SETTINGS.seeds} seeds; per seed the difference of test-split success. Declared in tests/perf/learningBench.ts before the first run.`,
    '',
    '| Figure | Value | Bar |',
    '| --- | ---: | --- |',
    `| Test success, hygiene on − off [95% interval over seeds] (\`policy_hygiene_success_delta*\`) | ${interval(h.success)} | ≥ −0.02: ${bar(h.success.mean >= -0.02)} |`,
    `| Test success, hygiene without the gate − off (\`policy_hygiene_no_gate_success_delta*\`) | ${interval(h.successNoGate)} | |`,
    `| Rendered policy tokens at the end, on ÷ off (\`policy_hygiene_tokens_ratio\`) | ${h.tokensRatio.toFixed(3)} (${h.tokensOnMean.toFixed(0)} vs ${h.tokensOffMean.toFixed(0)} tokens on average; off at most ${h.tokensOffMax}) | ≤ 0.7: ${bar(h.tokensRatio <= 0.7)} |`,
    `| Added after the runs (information): off with only the lessons its tasks need, ÷ off (\`policy_hygiene_tokens_removal_floor\`) | ${h.removalFloor.toFixed(3)} (off ends with ${h.lessonsOffMean.toFixed(1)} lessons on average, ${h.neededLessonsOffMean.toFixed(1)} of them needed) | |`,
    `| Updates over max_policy_tokens, all hygiene runs (\`policy_token_budget_violations\`) | ${h.tally.budget_violations} of ${h.tally.updates} | = 0: ${bar(h.tally.budget_violations === 0)} |`,
    `| Updates refused by the collapse guard (\`policy_collapse_refusals\`) | ${h.tally.collapse_refusals} | counted |`,
    `| Updates refused by the gate (\`policy_gate_refusals\`) | ${h.tally.gate_refusals} | counted |`,
    `| Harmful lessons dropped, near-duplicate merges (\`policy_harmful_dropped\`, \`policy_lesson_merges\`) | ${h.tally.harmful_dropped}, ${h.tally.merges} | |`,
  ];
}

export function writeLearningResults(r: LearningBenchResult, jsonFile: string, mdFile: string): Results {
  let existing: Results = {};
  if (existsSync(jsonFile)) existing = JSON.parse(readFileSync(jsonFile, 'utf8')) as Results;
  const results = mergeResults(jsonFile, learningFigures(r), LEARNING_KEY_PREFIXES, {
    machine: existing.machine ?? machine(),
    measured_at: existing.measured_at ?? new Date().toISOString(),
  });
  const section = learningMarkdown(r);
  const md = existsSync(mdFile) ? readFileSync(mdFile, 'utf8') : '# Benchmark results\n';
  const start = md.indexOf(MARK_START);
  const end = md.indexOf(MARK_END);
  let next: string;
  if (start >= 0 && end > start) next = md.slice(0, start) + section + md.slice(end + MARK_END.length);
  else if (md.includes('\n## Machine')) next = md.replace('\n## Machine', `\n${section}\n\n## Machine`);
  else next = `${md.trimEnd()}\n\n${section}\n`;
  writeFileSync(mdFile, next);
  return results;
}

if (require.main === module) {
  const dir = path.resolve(__dirname, '..', '..', 'docs', 'performance');
  const r = measureLearning();
  for (const [arm, summary] of Object.entries(r.arms)) {
    process.stdout.write(`${arm.padEnd(16)} mean Δ ${signed(summary.mean)} [${signed(summary.ci_low)}, ${signed(summary.ci_high)}], verdict rate ${pct(summary.verdict_rate)}\n`);
  }
  process.stdout.write(`trained vs shuffled: Welch p = ${r.trainedVsShuffled.p.toPrecision(3)}; ${r.seconds.toFixed(1)} s\n`);
  writeLearningResults(r, path.join(dir, 'benchmark_results.json'), path.join(dir, 'benchmark_results.md'));
  process.stdout.write('wrote docs/performance/benchmark_results.json and .md\n');
}
