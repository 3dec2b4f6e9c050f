import type { PolicyUpdateMode } from '../grpoConfig';
import type { LessonUpdateOptions } from '../lessonOperations';
import type { LessonObservation } from '../lessonProvenance';
import { renderSystemPrompt, type Policy } from '../policy';
import { buildPolicyUpdateEvidence, renderPolicyUpdateEvidence } from '../policyEvidence';
import { creditsByTrajectory, evidenceSources, type IdentifiedCandidate, withTrajectoryRefs } from '../groupProposals';
import type { GroupProposal } from '../consolidation';
import { revisePolicy, type HygieneOptions } from '../policyHygiene';
import type { CountTokens } from '../tokenBudget';
import { gateMinibatch, gateVerdict } from '../updateGate';
import type { Task } from '../task';
import { hashString } from '../statistics';
import { simulatedOptimizerTurn } from './simulatedModel';

/**
 * The policy hygiene of issue 16 in the in-process training loop (training/simulation/
 * simulatedTraining.ts), as a job with hygiene on runs it: the simulated optimizer proposes per
 * group, one consolidation per iteration (training/policyHygiene.ts revisePolicy), then, with the
 * gate on, the candidate and its parent run the same minibatch of validation episodes and the
 * candidate is kept only if it is not worse. Tallies what the benchmark reports.
 */

export interface SimulatedHygiene {
  options: HygieneOptions;
  count: CountTokens;
  /** The cheap gate: validation queries per minibatch and runs per query; null: off. */
  gate: { queries: number; samples: number } | null;
}

export interface HygieneTally {
  updates: number;
  collapse_refusals: number;
  gate_refusals: number;
  /** Updates after which the rendered policy was over max_policy_tokens (must stay 0). */
  budget_violations: number;
  harmful_dropped: number;
  merges: number;
  trimmed: number;
}

export function emptyTally(): HygieneTally {
  return { updates: 0, collapse_refusals: 0, gate_refusals: 0, budget_violations: 0, harmful_dropped: 0, merges: 0, trimmed: 0 };
}

export interface HygieneStep {
  policy: Policy;
  groups: readonly IdentifiedCandidate[][];
  iteration: number;
  seed: number;
  mode: PolicyUpdateMode;
  update: LessonUpdateOptions;
  hygiene: SimulatedHygiene;
  validation: readonly Task[];
  /** One episode's success under a policy (the loop's simulated agent), for the gate. */
  succeeds: (policy: Policy, task: Task, seed: number) => boolean;
}

function observe(candidate: IdentifiedCandidate): LessonObservation {
  return {
    trajectory_id: candidate.trajectory_id,
    success: candidate.trajectory.success,
    tools: candidate.trajectory.steps.flatMap((step) => step.tool_calls.map((call) => call.name)),
    query: candidate.query,
  };
}

/** One iteration's update with hygiene; `tally` is added to. */
export function hygienicUpdate(step: HygieneStep, tally: HygieneTally): Policy {
  const { policy, hygiene } = step;
  const proposals: GroupProposal[] = [];
  const credits: Record<string, number> = {};
  for (const group of step.groups) {
    const evidence = buildPolicyUpdateEvidence(policy.lessons, group, step.mode);
    if (evidence.trajectories.length === 0) continue;
    const { operations } = simulatedOptimizerTurn(`Current lessons and trajectories:\n\n${renderPolicyUpdateEvidence(evidence)}`);
    const sources = evidenceSources(evidence, group);
    proposals.push({ operations: withTrajectoryRefs(operations, sources) });
    Object.assign(credits, creditsByTrajectory(evidence, sources));
  }
  const observations = step.groups.flat().map(observe);
  const context = { job_id: 'simulated', run: 1, iteration: step.iteration };
  const report = revisePolicy({ parent: policy, proposals, credits, observations, context, update: step.update, hygiene: hygiene.options }, hygiene.count);
  tally.updates += 1;
  tally.collapse_refusals += Number(report.collapse_refusal !== null);
  tally.harmful_dropped += report.harmful_dropped.length;
  tally.merges += report.merged.length;
  tally.trimmed += report.trimmed.length;
  let next = report.policy;
  if (hygiene.gate && next.version !== policy.version) {
    const queries = gateMinibatch(step.validation.length, hygiene.gate.queries, step.iteration, step.seed);
    const seeds = queries.flatMap((q) => Array.from({ length: hygiene.gate!.samples }, (_, s) => ({ q, seed: hashString(`gate:${step.seed}:${step.iteration}:${q}:${s}`) })));
    const verdict = gateVerdict(
      seeds.map(({ q, seed }) => step.succeeds(policy, step.validation[q], seed)),
      seeds.map(({ q, seed }) => step.succeeds(next, step.validation[q], seed)),
    );
    if (!verdict.accepted) {
      tally.gate_refusals += 1;
      // The parent stays, its counters counted.
      next = report.counted_parent;
    }
  }
  // Cannot happen (revisePolicy fits the budget, a refused update keeps a parent that fitted): counted, not assumed.
  tally.budget_violations += Number(hygiene.count(renderSystemPrompt(next)) > hygiene.options.maxPolicyTokens);
  return next;
}
