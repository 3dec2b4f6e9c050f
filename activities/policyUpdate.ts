/**
 * FLOW-006, the policy updater: an LLM (through portkey-ai) reads the positive-advantage
 * trajectories and proposes lesson operations; pure code (training/lessonOperations.ts) validates,
 * weights by advantage, clips and applies them. A malformed answer is asked again, then
 * skipped, leaving the policy byte-identical. So is an update stopped by its budget allowance.
 */
import type { PolicyUpdateMode } from '../training/grpoConfig';
import type { TokenUsage, TrajectoryStep } from '../training/trajectory';
import { selectPositiveAdvantage } from '../training/advantages';
import { describeZodError } from '../training/zodErrors';
import { type Policy } from '../training/policy';
import {
  applyLessonOperations,
  type LessonChurn,
  type LessonOperation,
  LessonOperationsAnswerSchema,
  MAX_OPTIMIZER_ATTEMPTS,
} from '../training/lessonOperations';
import {
  buildPolicyUpdateEvidence,
  evidenceCredits,
  MAX_EVIDENCE_TRAJECTORIES,
  type PolicyUpdateEvidence,
  renderPolicyUpdateEvidence,
} from '../training/policyEvidence';
import { creditsByTrajectory, evidenceSources, type IdentifiedCandidate, withTrajectoryRefs } from '../training/groupProposals';
import { fitToTokenBudget } from '../training/tokenBudget';
import { tokenCounterFor } from '../adapters/llm/tokenCounter';
import { allowanceOf, BudgetAllowanceExceededError, type GuardedChatClient, type GuardedChatFactory, guardedChats } from './budgetGuard';
import { type ChatClient, type ChatMessage, type ChatRequest, isLocalModel, ProviderUnavailableError } from '../adapters/llm/chatClient';
import { activityCancellationSignal, providerRetry } from './providerRetry';
import { parseAnswerJson, parseUpdaterAnswer, structuredAnswerJsonSchema } from './policyUpdateAnswer';
import type { ModelPrice } from '../adapters/llm/pricing';
import { loadInOrder } from './trajectoryRows';
import type { TrajectoryRepository } from '../adapters/db';
import { loadPrompt } from './prompts';

const SYSTEM_PROMPT = loadPrompt('policyUpdate.md');
/** Appended when steps carry credit (FLOW-015) and when the evidence is contrastive. */
const STEP_CREDIT_PROMPT = loadPrompt('policyUpdateStepCredit.md');
const CONTRASTIVE_PROMPT = loadPrompt('policyUpdateContrastive.md');
/** Trajectories shown to the optimizer at most (the best evidence). */
export { MAX_EVIDENCE_TRAJECTORIES, MAX_OPTIMIZER_ATTEMPTS };
const RESULT_CHARS = 200;

export interface UpdatePolicyInput {
  policy: Policy;
  /** `family`: the task's Task.family (absent in older histories and for tasks without one). */
  candidates: { trajectory_id: string; advantage: number; query: string; family?: string }[];
  learning_rate: number;
  clip: number;
  max_lessons: number;
  optimizer_model: string;
  max_tokens: number;
  seed: number;
  /** USD this update may spend on LLM calls (FLOW-011); absent = no cap. */
  allowance_usd?: number;
  /** The job's `config.prices`, which price its calls before the price table does. */
  prices?: Record<string, ModelPrice>;
  /** Show each step's stored credit (FLOW-015): the optimizer sees which steps earned it. */
  credit_assignment?: boolean;
  /** `contrastive`: per group, what the best trajectories did that the worst did not. */
  policy_update?: PolicyUpdateMode;
  /** Show failure patterns, from which the optimizer may write "do not call" lessons (issue 14 item 5). */
  avoid_lessons?: boolean;
  /** The job's max_policy_tokens (issue 16), counted with the agent `model`'s tokenizer; absent in older histories. */
  max_policy_tokens?: number;
  model?: string;
}

export interface PolicyUpdateResult {
  policy: Policy;
  applied: number;
  rejected: string[];
  churn: LessonChurn;
  usage: TokenUsage;
  cost_usd: number;
  /** Why the policy was left unchanged without asking or applying, else null. */
  skipped_reason: string | null;
  /** The update was stopped by its budget allowance (`skipped_reason` says so). */
  allowance_exceeded: boolean;
  /** Answers that failed validation (not JSON, off the schema, cut off at max_tokens), each asked again or skipped. */
  invalid_outputs: number;
}

const NO_CHURN: LessonChurn = { added: 0, edited: 0, reweighted: 0, dropped: 0 };

/** What an update spent asking, and how many answers failed validation. */
interface AskSpend {
  usage: TokenUsage;
  costUsd: number;
  invalidOutputs: number;
}

/** The optimizer's valid answer with the evidence it answered, or why there is none. */
type OptimizerAnswer =
  | { skipped: string; allowanceExceeded: boolean }
  | { operations: LessonOperation[]; rejected: string[]; evidence: PolicyUpdateEvidence; candidates: IdentifiedCandidate[] };

/** Shown to the optimizer when lessons carry helpful/harmful counters (policy hygiene, issue 16). */
const COUNTERS_PROMPT = loadPrompt('policyUpdateCounters.md');

/**
 * Shows the optimizer the evidence of `input.candidates` and asks for operations, again when an
 * answer is malformed, at most MAX_OPTIMIZER_ATTEMPTS times. Lessons are shown with their
 * counters, not their provenance (ids of trajectories the optimizer cannot see).
 */
async function askOptimizer(chat: GuardedChatClient, trajectories: TrajectoryRepository, input: UpdatePolicyInput, spend: AskSpend): Promise<OptimizerAnswer> {
  const mode = input.policy_update ?? 'positive_only';
  const withCredit = input.credit_assignment === true;
  const avoid = input.avoid_lessons === true;
  // Step credits, contrasts and failure patterns need every trajectory; otherwise the best positive ones suffice.
  const pool =
    withCredit || mode === 'contrastive' || avoid ? input.candidates : selectPositiveAdvantage(input.candidates).slice(0, MAX_EVIDENCE_TRAJECTORIES);
  if (!pool.some((c) => c.advantage > 0) && !withCredit) return { skipped: 'no positive-advantage trajectories', allowanceExceeded: false };

  const rows = await loadInOrder(trajectories, pool.map((c) => c.trajectory_id));
  const candidates: IdentifiedCandidate[] = rows.map((row, i) => {
    const steps = (row.steps as unknown as TrajectoryStep[]).map(truncateResult);
    return {
      trajectory_id: pool[i].trajectory_id,
      trajectory: { steps, success: row.success, final_answer: row.finalAnswer },
      advantage: pool[i].advantage,
      query: pool[i].query,
      family: pool[i].family ?? null,
      stepCredits: withCredit ? storedStepCredits(row.stepAdvantages, steps.length) : null,
    };
  });
  const shownLessons = input.policy.lessons.map(({ provenance: _provenance, ...lesson }) => lesson);
  const evidence = buildPolicyUpdateEvidence(shownLessons, candidates, mode, MAX_EVIDENCE_TRAJECTORIES, { failurePatterns: avoid });
  if (evidence.trajectories.length === 0) {
    return {
      skipped: mode === 'contrastive' ? 'no group with both better and worse trajectories' : 'no positive-advantage trajectories or steps',
      allowanceExceeded: false,
    };
  }
  const withCounters = shownLessons.some((lesson) => lesson.counters !== undefined);
  const system = [
    SYSTEM_PROMPT,
    ...(withCredit ? [STEP_CREDIT_PROMPT] : []),
    ...(mode === 'contrastive' ? [CONTRASTIVE_PROMPT] : []),
    ...(withCounters ? [COUNTERS_PROMPT] : []),
  ].join('\n\n');
  const messages: ChatMessage[] = [
    { role: 'system', content: system },
    { role: 'user', content: `Current lessons and trajectories:\n\n${renderPolicyUpdateEvidence(evidence)}` },
  ];

  // A local model's answer is held to the evidence-first schema by the server's grammar; others get JSON mode.
  const responseFormat: ChatRequest['response_format'] = isLocalModel(input.optimizer_model)
    ? { type: 'json_schema', json_schema: { name: 'lessons', strict: true, schema: structuredAnswerJsonSchema(evidence) } }
    : { type: 'json_object' };
  let lastProblem = '';
  for (let attempt = 1; attempt <= MAX_OPTIMIZER_ATTEMPTS; attempt++) {
    let reply;
    try {
      reply = await chat.complete(
        { model: input.optimizer_model, messages, max_tokens: input.max_tokens, seed: input.seed + attempt, response_format: responseFormat },
        activityCancellationSignal(),
      );
    } catch (error) {
      // The guard refused the call: the policy stays as it is, and what was spent is reported.
      if (error instanceof BudgetAllowanceExceededError) return { skipped: error.message, allowanceExceeded: true };
      // The provider could not answer: the activity is retried after its Retry-After (activities/providerRetry.ts).
      if (error instanceof ProviderUnavailableError) throw providerRetry(error);
      throw error;
    }
    spend.usage.prompt_tokens += reply.usage.prompt_tokens;
    spend.usage.completion_tokens += reply.usage.completion_tokens;
    spend.costUsd += reply.costUsd;
    const parsed =
      reply.finishReason === 'length'
        ? { problem: `the answer reached max_tokens (${input.max_tokens}) before it was complete` }
        : parseUpdaterAnswer(reply.message.content, evidence);
    if ('operations' in parsed) return { operations: parsed.operations, rejected: parsed.rejected, evidence, candidates };
    spend.invalidOutputs += 1;
    lastProblem = parsed.problem;
    messages.push(
      { role: 'assistant', content: reply.message.content },
      { role: 'user', content: `That answer was not valid: ${parsed.problem}. Answer again with the JSON object only.` },
    );
  }
  return { skipped: `malformed optimizer answer after ${MAX_OPTIMIZER_ATTEMPTS} attempts: ${lastProblem}`, allowanceExceeded: false };
}

/** One group's proposal (policy hygiene): operations citing trajectory ids, and what those earned. */
export interface GroupProposalResult {
  operations: LessonOperation[];
  credits: Record<string, number>;
  rejected: string[];
  usage: TokenUsage;
  cost_usd: number;
  skipped_reason: string | null;
  allowance_exceeded: boolean;
  invalid_outputs: number;
}

/** `chat` is a guarded factory (the worker's); a bare client is guarded the same way. */
export function createPolicyUpdateActivities(deps: { chat: GuardedChatFactory | ChatClient; trajectories: TrajectoryRepository }) {
  const chats = guardedChats(deps.chat);
  /** One ask of the optimizer under the input's allowance, and what it used and cost in the result's fields. */
  const ask = async (input: UpdatePolicyInput) => {
    const chat = chats.open({ allowanceUsd: allowanceOf(input), prices: input.prices });
    // What killed attempts of this activity were billed (the spend ledger) counts too.
    const spend: AskSpend = { usage: { prompt_tokens: 0, completion_tokens: 0 }, costUsd: await chat.earlierAttemptsUsd(), invalidOutputs: 0 };
    const answer = await askOptimizer(chat, deps.trajectories, input, spend);
    return { answer, done: { usage: spend.usage, cost_usd: spend.costUsd, invalid_outputs: spend.invalidOutputs } };
  };
  return {
    async updatePolicy(input: UpdatePolicyInput): Promise<PolicyUpdateResult> {
      const { answer, done } = await ask(input);
      if ('skipped' in answer) {
        return { policy: input.policy, applied: 0, rejected: [], churn: NO_CHURN, ...done, skipped_reason: answer.skipped, allowance_exceeded: answer.allowanceExceeded };
      }
      const result = applyLessonOperations(input.policy, answer.operations, evidenceCredits(answer.evidence), {
        learningRate: input.learning_rate,
        clip: input.clip,
        maxLessons: input.max_lessons,
      });
      // The token budget holds for every job that has one (issue 16): the weakest lessons go until the policy fits.
      const fitted = input.max_policy_tokens !== undefined ? fitToTokenBudget(result.policy, input.max_policy_tokens, tokenCounterFor(input.model ?? input.optimizer_model).count) : null;
      const policy = fitted && fitted.trimmed.length > 0 ? { ...fitted.policy, version: input.policy.version + 1 } : result.policy;
      return {
        policy,
        applied: result.applied.length,
        rejected: [...answer.rejected, ...result.rejected.map((r) => `${r.operation.op}: ${r.reason}`)],
        churn: fitted ? { ...result.churn, dropped: result.churn.dropped + fitted.trimmed.length } : result.churn,
        ...done,
        skipped_reason: null,
        allowance_exceeded: false,
      };
    },

    /**
     * Policy hygiene, level one (issue 16 item 6): one group's proposed operations against the
     * iteration's policy, evidence cited by trajectory id (training/groupProposals.ts), nothing
     * applied: consolidatePolicy applies every group's proposals at once.
     */
    async proposeLessonOperations(input: UpdatePolicyInput): Promise<GroupProposalResult> {
      const { answer, done } = await ask(input);
      if ('skipped' in answer) {
        return { operations: [], credits: {}, rejected: [], ...done, skipped_reason: answer.skipped, allowance_exceeded: answer.allowanceExceeded };
      }
      const sources = evidenceSources(answer.evidence, answer.candidates);
      return {
        operations: withTrajectoryRefs(answer.operations, sources),
        credits: creditsByTrajectory(answer.evidence, sources),
        rejected: answer.rejected,
        ...done,
        skipped_reason: null,
        allowance_exceeded: false,
      };
    },
  };
}

/** The credits the GRPO step stored for a row's steps; null when there are none that fit. */
function storedStepCredits(stored: unknown, steps: number): number[] | null {
  return Array.isArray(stored) && stored.length === steps && stored.every((x) => typeof x === 'number' && Number.isFinite(x)) ? stored : null;
}

/** Long tool outputs are cut: the optimizer needs what a step found, not all of it. */
function truncateResult(step: TrajectoryStep): TrajectoryStep {
  return step.result === null || step.result.length <= RESULT_CHARS ? step : { ...step, result: step.result.slice(0, RESULT_CHARS) };
}

/** The operations in an optimizer answer, or what is wrong with it. Tolerates a ```json fence. */
export function parseOperations(content: string | null): { operations: LessonOperation[] } | { problem: string } {
  const parsed = parseAnswerJson(content);
  if ('problem' in parsed) return parsed;
  const { json } = parsed;
  const answer = LessonOperationsAnswerSchema.safeParse(json);
  if (!answer.success) return { problem: describeZodError(answer.error, json) };
  return { operations: answer.data.operations };
}
