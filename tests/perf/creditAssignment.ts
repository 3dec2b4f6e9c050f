/**
 * Credit-assignment benchmark (FLOW-015): iterations until held-out success reaches a target on
 * the multi-step simulated families (refund, warranty: a hidden chain of three tools, each lead
 * unlocking the next), with and without credit assignment, over many seeds; a Welch t-test
 * (@stdlib/stats-ttest2) on the iteration counts. A pure in-process GRPO loop
 * (training/simulation/simulatedTraining.ts): the same evidence builder, simulated optimizer and
 * lesson arithmetic as a real job, no servers, so the comparison is fast and exactly repeatable.
 *
 * Run alone with `npx tsx tests/perf/bench.ts --only credit`; `npm run bench` runs it last.
 * Writes `credit_assignment_*` keys into docs/performance/benchmark_results.json and its own
 * section of benchmark_results.md (between markers, so other benchmarks' text is kept).
 *
 * The Welch test on iterations-to-target (seeds 1–100) gave a 1.21× speedup at p = 0.14; it is
 * kept as it was. It treats runs that never reached the target as if they had at iteration 40.
 *
 * LOG-RANK RE-TEST, DECLARED BEFORE IT WAS RUN (issue 14 item 8; not edited after the run):
 *   A survival analysis suited to censored runs: the log-rank (Mantel–Cox) test, two-sided,
 *   χ² on 1 df (tests/perf/survival.ts, checked against scipy.stats.logrank), comparing the
 *   distributions of iterations until held-out success reaches 0.6, without against with
 *   credit assignment. Fresh seeds 101–300 (200 runs per arm, the same seeds in both arms),
 *   every other setting as CREDIT_SETTINGS; a run that never reaches the target in 40
 *   iterations is censored at 40. Keys: credit_assignment_logrank_p, _statistic, _seeds,
 *   _censored_without, _censored_with, _reached_without, _reached_with. Reported whatever it
 *   says; the bar for "validated" is p < 0.05 with the credit arm reaching the target sooner
 *   (more events than expected under H0). `npx tsx tests/perf/creditAssignment.ts --logrank`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ttest2 from '@stdlib/stats-ttest2';
import { DEFAULT_BASE_PROMPT } from '../../training/jobInput';
import { initialPolicy } from '../../training/policy';
import { outcomeReward } from '../../training/rewards';
import { SIMULATED_MULTI_STEP_FAMILIES, simulatedTaskSet } from '../../training/simulation/environment';
import { runSimulatedTraining, type SimulatedTrainingOptions } from '../../training/simulation/simulatedTraining';
import { machine, mergeResults, type Results } from './results';
import { round } from './stats';
import { logRankTest, type LogRankResult } from './survival';

export const CREDIT_SETTINGS = {
  seeds: Number(process.env.BENCH_CREDIT_SEEDS ?? 100),
  /** Iterations at most; a run that never reaches the target counts as this many (censored). */
  maxIterations: 40,
  targetSuccess: 0.6,
  queriesPerFamily: 8,
  heldOutPerFamily: 4,
  groupSize: 8,
  batchSize: 4,
  maxTurns: 6,
  gamma: 0.99,
  evalSamples: 4,
  update: { learningRate: 0.5, clip: 0.2, maxLessons: 20 },
} as const;

export interface CreditArm {
  iterations: number[];
  /** Per run: it reached the target (false: censored at maxIterations). */
  reached: boolean[];
  censored: number;
  mean: number;
}

export interface CreditAssignmentResult {
  without: CreditArm;
  with: CreditArm;
  speedup: number;
  p: number;
  t: number;
  df: number;
  seconds: number;
}

function arm(creditAssignment: boolean, overrides: Partial<SimulatedTrainingOptions> = {}, seeds: { from: number; to: number } = { from: 1, to: CREDIT_SETTINGS.seeds }): CreditArm {
  const s = CREDIT_SETTINGS;
  const families = SIMULATED_MULTI_STEP_FAMILIES;
  const iterations: number[] = [];
  const reached: boolean[] = [];
  let censored = 0;
  for (let seed = seeds.from; seed <= seeds.to; seed++) {
    const result = runSimulatedTraining(
      {
        trainingTasks: simulatedTaskSet({ queriesPerFamily: s.queriesPerFamily, seed, families }),
        // Held-out tasks come from another seed: never trained on.
        heldOutTasks: simulatedTaskSet({ queriesPerFamily: s.heldOutPerFamily, seed: seed + 100_000, families }),
        iterations: s.maxIterations,
        groupSize: s.groupSize,
        batchSize: s.batchSize,
        maxTurns: s.maxTurns,
        seed,
        gamma: s.gamma,
        creditAssignment,
        policyUpdate: 'positive_only',
        // The outcome reward: the shaped reward's cost per step would make progress along the
        // chain look worse than giving up early, in both arms alike.
        reward: outcomeReward,
        update: s.update,
        evalSamples: s.evalSamples,
        targetSuccess: s.targetSuccess,
        ...overrides,
      },
      initialPolicy(DEFAULT_BASE_PROMPT),
    );
    if (result.iterationsToTarget === null) censored += 1;
    iterations.push(result.iterationsToTarget ?? s.maxIterations);
    reached.push(result.iterationsToTarget !== null);
  }
  return { iterations, reached, censored, mean: iterations.reduce((a, b) => a + b, 0) / iterations.length };
}

export function measureCreditAssignment(overrides: Partial<SimulatedTrainingOptions> = {}): CreditAssignmentResult {
  const started = performance.now();
  const without = arm(false, overrides);
  const withCredit = arm(true, overrides);
  // Welch's t-test (unequal variances), two-sided: is the mean number of iterations different?
  const test = ttest2(without.iterations, withCredit.iterations, { variance: 'unequal' });
  return {
    without,
    with: withCredit,
    speedup: without.mean / withCredit.mean,
    p: test.pValue,
    t: test.statistic,
    df: test.df,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The declared log-rank re-test (see the header): seeds 101–300, censored at maxIterations. */
export const LOGRANK_SEEDS = { from: 101, to: 300 } as const;

export interface CreditLogRankResult {
  without: CreditArm;
  with: CreditArm;
  test: LogRankResult;
  seconds: number;
}

export function measureCreditLogRank(): CreditLogRankResult {
  const started = performance.now();
  const without = arm(false, {}, LOGRANK_SEEDS);
  const withCredit = arm(true, {}, LOGRANK_SEEDS);
  // A run that never reached the target is censored at maxIterations.
  const samples = (a: CreditArm) => a.iterations.map((time, i) => ({ time, event: a.reached[i] }));
  return { without, with: withCredit, test: logRankTest(samples(without), samples(withCredit)), seconds: (performance.now() - started) / 1000 };
}

export function writeCreditLogRankResults(r: CreditLogRankResult, jsonFile: string, mdFile: string): Results {
  let existing: Results = {};
  if (existsSync(jsonFile)) existing = JSON.parse(readFileSync(jsonFile, 'utf8')) as Results;
  const results = mergeResults(
    jsonFile,
    {
      credit_assignment_logrank_p: Number(r.test.p.toPrecision(4)),
      credit_assignment_logrank_statistic: round(r.test.statistic, 4),
      credit_assignment_logrank_seeds: LOGRANK_SEEDS.to - LOGRANK_SEEDS.from + 1,
      credit_assignment_logrank_censored_without: r.without.censored,
      credit_assignment_logrank_censored_with: r.with.censored,
      credit_assignment_logrank_reached_without: r.test.observedA,
      credit_assignment_logrank_reached_with: r.test.observedB,
    },
    ['credit_assignment_logrank_'],
    { machine: existing.machine ?? machine(), measured_at: existing.measured_at ?? new Date().toISOString() },
  );
  const start = '<!-- credit-logrank:start -->';
  const end = '<!-- credit-logrank:end -->';
  const sooner = r.test.observedB > r.test.expectedB;
  const validated = r.test.p < 0.05 && sooner;
  const section = [
    start,
    '### Credit assignment, re-tested with a log-rank test (issue 14)',
    '',
    `Declared before running (tests/perf/creditAssignment.ts header): log-rank test of iterations to ${CREDIT_SETTINGS.targetSuccess} held-out success, without vs with credit assignment, censored at ${CREDIT_SETTINGS.maxIterations}, fresh seeds ${LOGRANK_SEEDS.from}–${LOGRANK_SEEDS.to}; the Welch result above (p = 0.14) stays as it was.`,
    '',
    '| Figure | Value |',
    '| --- | ---: |',
    `| Log-rank p, two-sided (\`credit_assignment_logrank_p\`) | ${r.test.p.toPrecision(4)} |`,
    `| χ² (1 df) (\`credit_assignment_logrank_statistic\`) | ${r.test.statistic.toFixed(3)} |`,
    `| Runs that reached the target, without / with | ${r.test.observedA} / ${r.test.observedB} of ${LOGRANK_SEEDS.to - LOGRANK_SEEDS.from + 1} each |`,
    `| Expected under H0, without / with | ${r.test.expectedA.toFixed(1)} / ${r.test.expectedB.toFixed(1)} |`,
    `| Mean iterations (censored counted as ${CREDIT_SETTINGS.maxIterations}), without / with | ${r.without.mean.toFixed(2)} / ${r.with.mean.toFixed(2)} |`,
    '',
    `Result: ${validated ? 'credit assignment reaches the target sooner, validated at p < 0.05' : `NOT validated at p < 0.05 (${sooner ? 'the credit arm reached the target sooner than expected under H0, but not significantly' : 'the credit arm did not reach the target sooner'})`}. ${r.seconds.toFixed(1)} s.`,
    end,
  ].join('\n');
  const md = existsSync(mdFile) ? readFileSync(mdFile, 'utf8') : '# Benchmark results\n';
  const a = md.indexOf(start);
  const b = md.indexOf(end);
  let next: string;
  if (a >= 0 && b > a) next = md.slice(0, a) + section + md.slice(b + end.length);
  else if (md.includes(MARK_END)) next = md.replace(MARK_END, `${MARK_END}\n\n${section}`);
  else next = `${md.trimEnd()}\n\n${section}\n`;
  writeFileSync(mdFile, next);
  return results;
}

const MARK_START = '<!-- credit-assignment:start -->';
const MARK_END = '<!-- credit-assignment:end -->';

export function creditAssignmentMarkdown(r: CreditAssignmentResult): string[] {
  const s = CREDIT_SETTINGS;
  const verdict = r.p < 0.05 && r.speedup > 1 ? 'a validated improvement (p < 0.05)' : 'NOT a validated improvement (the bar is p < 0.05 with a speedup > 1)';
  return [
    MARK_START,
    '## Credit assignment (FLOW-015)',
    '',
    `| Figure | Value |`,
    `| --- | ---: |`,
    `| Mean iterations to ${s.targetSuccess} held-out success, without credit assignment (\`credit_assignment_iterations_without\`) | ${r.without.mean.toFixed(2)} |`,
    `| Same, with credit assignment (\`credit_assignment_iterations_with\`) | ${r.with.mean.toFixed(2)} |`,
    `| Speedup, without ÷ with (\`credit_assignment_speedup\`) | ${r.speedup.toFixed(3)}× |`,
    `| Welch t-test p, two-sided (\`credit_assignment_p\`) | ${r.p.toFixed(4)} |`,
    '',
    `Result: ${verdict}; t = ${r.t.toFixed(3)}, df = ${r.df.toFixed(1)}. Runs that never reached the target in ${s.maxIterations} iterations (counted as ${s.maxIterations}): ${r.without.censored} without, ${r.with.censored} with.`,
    '',
    `Per seed (1..${s.seeds}), iterations without: ${r.without.iterations.join(', ')}; with: ${r.with.iterations.join(', ')}.`,
    '',
    `How: tests/perf/creditAssignment.ts runs the GRPO loop in process (training/simulation/simulatedTraining.ts: simulated agent, the policy updater's evidence builder, the simulated optimizer, the lesson arithmetic) on the multi-step families ${SIMULATED_MULTI_STEP_FAMILIES.join(' and ')} ` +
      `(${s.queriesPerFamily} training queries each, ${s.heldOutPerFamily} held-out queries each from another seed, ${s.evalSamples} runs per held-out query with the same seeds at every evaluation), ` +
      `group ${s.groupSize}, batch ${s.batchSize}, max ${s.maxTurns} turns, learning rate ${s.update.learningRate}, clip ${s.update.clip}, the outcome reward, gamma ${s.gamma}. ` +
      `Both arms use the same seeds; "with" stores each step's credit (Q − V over the group, training/advantages.ts stepCredits) and shows it to the optimizer, which then learns from positively credited steps (cited by step ref) instead of whole positive-advantage runs. ${r.seconds.toFixed(1)} s.`,
    MARK_END,
  ];
}

/** Merges the figures into the results JSON and replaces (or adds) this benchmark's Markdown section. */
export function writeCreditAssignmentResults(r: CreditAssignmentResult, jsonFile: string, mdFile: string): Results {
  let existing: Results = {};
  if (existsSync(jsonFile)) existing = JSON.parse(readFileSync(jsonFile, 'utf8')) as Results;
  const results = mergeResults(
    jsonFile,
    {
      credit_assignment_speedup: round(r.speedup, 3),
      credit_assignment_p: round(r.p, 4),
      credit_assignment_iterations_without: round(r.without.mean, 2),
      credit_assignment_iterations_with: round(r.with.mean, 2),
      credit_assignment_seeds: CREDIT_SETTINGS.seeds,
    },
    ['credit_assignment_'],
    // This benchmark alone does not re-measure the others: their time and machine stay.
    { machine: existing.machine ?? machine(), measured_at: existing.measured_at ?? new Date().toISOString() },
  );
  const section = creditAssignmentMarkdown(r).join('\n');
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

export async function runCreditAssignmentBench(options: { jsonFile: string; mdFile: string; log: (line?: string) => void }): Promise<CreditAssignmentResult> {
  const s = CREDIT_SETTINGS;
  options.log(`credit_assignment: ${s.seeds} seeds × 2 arms, multi-step families, target held-out success ${s.targetSuccess}, at most ${s.maxIterations} iterations`);
  const r = measureCreditAssignment();
  options.log(`    without: mean ${r.without.mean.toFixed(2)} iterations (${r.without.iterations.join(' ')}; ${r.without.censored} never reached)`);
  options.log(`    with:    mean ${r.with.mean.toFixed(2)} iterations (${r.with.iterations.join(' ')}; ${r.with.censored} never reached)`);
  options.log(`    speedup ${r.speedup.toFixed(3)}×, Welch t = ${r.t.toFixed(3)}, df = ${r.df.toFixed(1)}, p = ${r.p.toFixed(4)}${r.p < 0.05 && r.speedup > 1 ? '' : '  (bar p < 0.05 with speedup > 1: MISSED)'}; ${r.seconds.toFixed(1)} s`);
  writeCreditAssignmentResults(r, options.jsonFile, options.mdFile);
  options.log(`    wrote ${path.basename(options.jsonFile)} and ${path.basename(options.mdFile)}`);
  return r;
}

if (require.main === module && process.argv.includes('--logrank')) {
  const dir = path.resolve(__dirname, '..', '..', 'docs', 'performance');
  const r = measureCreditLogRank();
  process.stdout.write(
    `log-rank, seeds ${LOGRANK_SEEDS.from}-${LOGRANK_SEEDS.to}: chi2 = ${r.test.statistic.toFixed(3)}, p = ${r.test.p.toPrecision(4)}; reached ${r.test.observedA} without (expected ${r.test.expectedA.toFixed(1)}), ${r.test.observedB} with (expected ${r.test.expectedB.toFixed(1)}); ${r.seconds.toFixed(1)} s\n`,
  );
  writeCreditLogRankResults(r, path.join(dir, 'benchmark_results.json'), path.join(dir, 'benchmark_results.md'));
}
