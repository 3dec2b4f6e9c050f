import type { Task } from '../task';
import { hashString, seededRandom } from '../statistics';
import {
  type ArgumentFamilyRule,
  convertAmount,
  LEDGER_ARGUMENT_FAMILY_RULES,
  LEDGER_FAMILIES,
  LEDGER_ORDER_FAMILY_RULES,
  LEDGER_TOOLS,
} from './ledgerFamilies';

/**
 * The built-in simulated environment. Each task family has HIDDEN rules: one tool that knows the
 * answer, and for some families a requirement to verify the answer before giving it. Success
 * therefore depends on what the policy's lessons tell the agent, so learning can be measured
 * honestly. The agent and the optimizer never see these rules (simulatedModel.ts does not import
 * this file); they can only learn them from what trajectories observed.
 */

export const SIMULATED_VERIFICATION_TOOL = 'verify_answer';

export interface SimulatedTool {
  name: string;
  description: string;
  /** JSON schema of the arguments, as an OpenAI-style tool definition expects. */
  parameters: Record<string, unknown>;
}

const queryParameters = (description: string): Record<string, unknown> => ({
  type: 'object',
  properties: { query: { type: 'string', description } },
  required: ['query'],
  additionalProperties: false,
});

export const SIMULATED_TOOLS: readonly SimulatedTool[] = [
  {
    name: 'lookup_docs',
    description: 'Search internal documentation and policy manuals.',
    parameters: queryParameters('What to look up'),
  },
  {
    name: 'calculator',
    description: 'Evaluate a calculation or formula.',
    parameters: queryParameters('The calculation or question to compute'),
  },
  {
    name: 'query_database',
    description: 'Query the operational database (accounts, orders, stock, readings).',
    parameters: queryParameters('What to query'),
  },
  {
    name: 'web_search',
    description: 'Search the public web.',
    parameters: queryParameters('The search query'),
  },
  {
    name: SIMULATED_VERIFICATION_TOOL,
    description: 'Check a candidate answer before giving it.',
    parameters: {
      type: 'object',
      properties: { answer: { type: 'string', description: 'The answer to check' } },
      required: ['answer'],
      additionalProperties: false,
    },
  },
];

export type SimulatedToolName = 'lookup_docs' | 'calculator' | 'query_database' | 'web_search';

interface FamilyRule {
  requiredTool: SimulatedToolName;
  needsVerification: boolean;
  /** The question, given a task-specific random source. */
  question: (random: () => number) => string;
  /** An answer in the family's format; called again with other seeds for wrong answers. */
  answer: (random: () => number) => string;
}

const int = (random: () => number, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

/** The hidden rules. Tests and benchmarks may read them; the agent and optimizer must not. */
export const SIMULATED_FAMILY_RULES: Readonly<Record<string, Readonly<FamilyRule>>> = {
  billing: {
    requiredTool: 'query_database',
    needsVerification: true,
    question: (r) => `What is the outstanding balance on account ${int(r, 1000, 9999)}?`,
    answer: (r) => `$${int(r, 10, 999)}.${String(int(r, 0, 99)).padStart(2, '0')}`,
  },
  geography: {
    requiredTool: 'web_search',
    needsVerification: false,
    question: (r) => `What is the population of the town with postal code ${int(r, 10000, 99999)}?`,
    answer: (r) => String(int(r, 1200, 98000)),
  },
  arithmetic: {
    requiredTool: 'calculator',
    needsVerification: true,
    question: (r) => `What is ${int(r, 12, 99)} * ${int(r, 12, 99)} adjusted by ledger rule R-${int(r, 1, 40)}?`,
    answer: (r) => String(int(r, 100, 9999)),
  },
  shipping: {
    requiredTool: 'lookup_docs',
    needsVerification: false,
    question: (r) => `How many business days does delivery take for parcel class P-${int(r, 100, 999)}?`,
    answer: (r) => `${int(r, 1, 14)} business days`,
  },
  inventory: {
    requiredTool: 'query_database',
    needsVerification: false,
    question: (r) => `How many units of SKU ${int(r, 10000, 99999)} are in stock?`,
    answer: (r) => `${int(r, 0, 500)} units`,
  },
  weather: {
    requiredTool: 'web_search',
    needsVerification: true,
    question: (r) => `What is tomorrow's forecast high at station W-${int(r, 100, 999)}?`,
    answer: (r) => `${int(r, -10, 38)}°C`,
  },
};

export const SIMULATED_FAMILIES: readonly string[] = Object.keys(SIMULATED_FAMILY_RULES);

/**
 * Multi-step families (FLOW-015), where intermediate steps matter: the answer sits at the end of
 * a hidden chain of tools. The first tool of the chain returns a lead; a lead is good only with
 * the chain's next tool (the lead passed as the query), which returns the next lead or, at the
 * end, the answer. Any other tool at any stage finds nothing useful. Not in the default task
 * set: name them in `families`.
 */
export interface MultiStepFamilyRule {
  chain: readonly SimulatedToolName[];
  question: (random: () => number) => string;
  answer: (random: () => number) => string;
}

export const SIMULATED_MULTI_STEP_FAMILY_RULES: Readonly<Record<string, Readonly<MultiStepFamilyRule>>> = {
  refund: {
    chain: ['query_database', 'lookup_docs', 'calculator'],
    question: (r) => `What refund is due on returned order O-${int(r, 10000, 99999)}?`,
    answer: (r) => `$${int(r, 5, 400)}.${String(int(r, 0, 99)).padStart(2, '0')}`,
  },
  warranty: {
    chain: ['lookup_docs', 'web_search', 'query_database'],
    question: (r) => `Until which week is device serial D-${int(r, 100000, 999999)} under warranty?`,
    answer: (r) => `week ${int(r, 1, 52)} of ${int(r, 2026, 2031)}`,
  },
};

export const SIMULATED_MULTI_STEP_FAMILIES: readonly string[] = Object.keys(SIMULATED_MULTI_STEP_FAMILY_RULES);

/** A tool result that is not an answer but a lead to follow with another tool (public: agents may know it). */
export const LEAD_PREFIX = 'lead: ';

export const NO_RELEVANT_RESULT = 'no relevant result';
export const VERIFIED_CORRECT = 'verified: correct';
export const VERIFIED_INCORRECT = 'verified: incorrect';

export interface SimulatedTaskSetOptions {
  queriesPerFamily: number;
  seed: number;
  families?: readonly string[];
  /** Prefix prompts with `[family]` (default true); the ledger families (ledgerFamilies.ts) never are. */
  tagged?: boolean;
  /** Set `Task.family` (default true). Without it and without a tag, only the query's words say what kind of task it is. */
  withFamily?: boolean;
}

type ChainRule = Readonly<{ chain: readonly string[]; question: (random: () => number) => string; answer: (random: () => number) => string }>;

type AnyRule =
  | { kind: 'single'; rule: Readonly<FamilyRule> }
  | { kind: 'chain'; rule: ChainRule; ledger: boolean }
  | { kind: 'argument'; rule: Readonly<ArgumentFamilyRule> };

const has = (rules: object, family: string) => Object.prototype.hasOwnProperty.call(rules, family);

function ruleFor(family: string): AnyRule {
  if (has(SIMULATED_FAMILY_RULES, family)) return { kind: 'single', rule: SIMULATED_FAMILY_RULES[family] };
  if (has(SIMULATED_MULTI_STEP_FAMILY_RULES, family)) return { kind: 'chain', rule: SIMULATED_MULTI_STEP_FAMILY_RULES[family], ledger: false };
  if (has(LEDGER_ARGUMENT_FAMILY_RULES, family)) return { kind: 'argument', rule: LEDGER_ARGUMENT_FAMILY_RULES[family] };
  if (has(LEDGER_ORDER_FAMILY_RULES, family)) return { kind: 'chain', rule: LEDGER_ORDER_FAMILY_RULES[family], ledger: true };
  throw new Error(
    `unknown simulated task family "${family}"; known families: ${[...SIMULATED_FAMILIES, ...SIMULATED_MULTI_STEP_FAMILIES, ...LEDGER_FAMILIES].join(', ')}`,
  );
}

/** The tool a task's family needs, where one tool decides (tool accuracy is not defined for a chain). */
function expectedTool(rule: AnyRule): string | undefined {
  if (rule.kind === 'single') return rule.rule.requiredTool;
  if (rule.kind === 'argument') return rule.rule.tool;
  return undefined;
}

const usesLedgerTools = (rule: AnyRule) => rule.kind === 'argument' || (rule.kind === 'chain' && rule.ledger);

/**
 * Tasks interleaved by family: `[family] question` (the ledger families and `tagged: false`: the
 * question alone), with the expected answer fixed by the seed.
 */
export function simulatedTaskSet(options: SimulatedTaskSetOptions): Task[] {
  const { queriesPerFamily, seed } = options;
  if (!(Number.isInteger(queriesPerFamily) && queriesPerFamily >= 1)) {
    throw new Error(`simulatedTaskSet: queriesPerFamily must be a positive integer, got ${queriesPerFamily}`);
  }
  const families = options.families ?? SIMULATED_FAMILIES;
  const rules = families.map((family) => ({ family, rule: ruleFor(family) }));
  const tasks: Task[] = [];
  for (let index = 0; index < queriesPerFamily; index++) {
    for (const { family, rule } of rules) {
      const random = seededRandom(`task:${seed}:${family}:${index}`);
      const question = rule.rule.question(random);
      const tool = expectedTool(rule);
      tasks.push({
        // The environment finds a task's rules from its family, its tag, or else this id.
        id: `sim-${seed}-${family}-${index}`,
        prompt: options.tagged !== false && !usesLedgerTools(rule) ? `[${family}] ${question}` : question,
        ...(options.withFamily !== false ? { family } : {}),
        expected_answer: rule.rule.answer(random),
        ...(tool !== undefined ? { expected_tool: tool } : {}),
      });
    }
  }
  return tasks;
}

export interface ToolResult {
  output: string;
  error: string | null;
}

export interface EpisodeRecord {
  toolCalls: { name: string; arguments: Record<string, unknown> }[];
  finalAnswer: string | null;
}

const FAMILY_TAG = /^\s*\[([^\]]+)\]/;
const TASK_ID = /^sim-\d+-(.+)-\d+$/;

const VERIFICATION_TOOL = SIMULATED_TOOLS.find((tool) => tool.name === SIMULATED_VERIFICATION_TOOL)!;

export class SimulatedEnvironment {
  /** The tools a task is offered: its family set's (the ledger families have their own), and verification. */
  tools(task?: Task): SimulatedTool[] {
    const family = task === undefined ? undefined : familyOf(task);
    const ledger = family !== undefined && LEDGER_FAMILIES.includes(family);
    return (ledger ? [...LEDGER_TOOLS, VERIFICATION_TOOL] : SIMULATED_TOOLS).map((tool) => ({ ...tool }));
  }

  executeTool(task: Task, name: string, args: Record<string, unknown>): ToolResult {
    const { rule: anyRule, expected } = this.hiddenStateOf(task);
    const offered = this.tools(task);
    if (name === SIMULATED_VERIFICATION_TOOL) {
      const answer = args.answer;
      if (typeof answer !== 'string') {
        return { output: '', error: `verify_answer needs {"answer": string}, got ${JSON.stringify(args)}` };
      }
      return { output: answer.trim() === expected ? VERIFIED_CORRECT : VERIFIED_INCORRECT, error: null };
    }
    if (!offered.some((tool) => tool.name === name)) {
      return {
        output: '',
        error: `unknown tool "${name}"; available tools: ${offered.map((tool) => tool.name).join(', ')}`,
      };
    }
    if (anyRule.kind === 'chain') return { output: this.chainOutput(task, anyRule.rule, name, args, expected), error: null };
    if (anyRule.kind === 'argument') return this.argumentOutput(task, anyRule.rule, name, args, expected);
    const rule = anyRule.rule;
    if (name === rule.requiredTool) return { output: expected, error: null };
    return { output: this.wrongOutput(task, rule, name, expected), error: null };
  }

  /** The lead that stage `stage` of a chain hands out, fixed per task. */
  private lead(task: Task, stage: number): string {
    return `reference R${stage + 1}-${int(seededRandom(`lead:${task.id}:${stage}`), 10_000, 99_999)}`;
  }

  /** The family's tool answers with the right value of its argument; another value converts to a wrong amount. */
  private argumentOutput(task: Task, rule: Readonly<ArgumentFamilyRule>, name: string, args: Record<string, unknown>, expected: string): ToolResult {
    if (name !== rule.tool) return { output: this.wrongOutput(task, rule, name, expected), error: null };
    const value = args[rule.argument];
    const property = (LEDGER_TOOLS.find((tool) => tool.name === name)!.parameters.properties as Record<string, { enum: string[] }>)[rule.argument];
    if (typeof value !== 'string' || !property.enum.includes(value)) {
      return { output: '', error: `${name} needs "${rule.argument}", one of ${property.enum.join(', ')}; got ${JSON.stringify(value)}` };
    }
    // The right amount, in the currency asked for: any other currency reads as another number.
    return { output: value === rule.value ? expected : convertAmount(expected, rule.value, value), error: null };
  }

  private chainOutput(task: Task, rule: ChainRule, name: string, args: Record<string, unknown>, expected: string): string {
    const query = typeof args.query === 'string' ? args.query : '';
    // Stage k is reached with the lead of stage k - 1 in the query (the furthest lead counts).
    let stage = rule.chain.length - 1;
    while (stage > 0 && !query.includes(this.lead(task, stage - 1))) stage -= 1;
    if (name !== rule.chain[stage]) return this.wrongOutput(task, rule, name, expected);
    return stage === rule.chain.length - 1 ? expected : `${LEAD_PREFIX}${this.lead(task, stage)}`;
  }

  /** Success needs the right answer and, for families that demand it, a verification first. */
  judge(task: Task, episode: EpisodeRecord): { success: boolean; verified: boolean } {
    const { rule, expected } = this.hiddenStateOf(task);
    const verified = episode.toolCalls.some((call) => call.name === SIMULATED_VERIFICATION_TOOL);
    const correct = episode.finalAnswer !== null && episode.finalAnswer.trim() === expected;
    const needsVerification = rule.kind === 'single' && rule.rule.needsVerification;
    return { success: correct && (verified || !needsVerification), verified };
  }

  private hiddenStateOf(task: Task): { rule: AnyRule; expected: string } {
    const family = familyOf(task);
    if (family === undefined || task.expected_answer === undefined) {
      throw new Error(
        `task "${task.id}" is not a simulated task: it needs a family (or a [family] tag, or a simulated task's id) and an expected_answer`,
      );
    }
    return { rule: ruleFor(family), expected: task.expected_answer };
  }

  /** A plausible wrong value or nothing useful, fixed per task and tool so reruns agree. */
  private wrongOutput(task: Task, rule: Pick<FamilyRule, 'answer'>, tool: string, expected: string): string {
    const random = seededRandom(`wrong:${task.id}:${tool}`);
    if (random() < 0.4) return NO_RELEVANT_RESULT;
    const candidate = rule.answer(random);
    // A wrong tool must never hand out the right answer by chance.
    return candidate === expected ? NO_RELEVANT_RESULT : candidate;
  }
}

/** A task's family: `Task.family`, its `[family]` tag, or the family in a simulated task's id. */
function familyOf(task: Task): string | undefined {
  return task.family ?? FAMILY_TAG.exec(task.prompt)?.[1] ?? TASK_ID.exec(task.id)?.[1];
}
