/**
 * A second family set for the simulated environment (issue 14 item 4), with tools of its own and
 * tasks that carry no `[family]` tag: rules the first set cannot express.
 *   - Argument-value rules: the right tool is `convert`, but only one `currency` gives the right
 *     amount, and which one depends on the family (invoice totals in EUR, expense claims in GBP).
 *   - An ordering rule: `fetch_statement` must come before `reconcile` (the statement's lead is
 *     what reconcile needs); reconcile first, or either tool alone, finds nothing useful.
 * HIDDEN like the first set's rules: the simulated agent and optimizer never import this file.
 * Not in the default task set: name the families in `families`.
 */
export const CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY', 'CHF'] as const;

/** Units of each currency per euro: an amount converted into the wrong currency is another number. */
const PER_EURO: Readonly<Record<string, number>> = { USD: 1.08, EUR: 1, GBP: 0.86, JPY: 162.4, CHF: 0.95 };

/** An amount in currency `from` as it would read in currency `to`. */
export function convertAmount(amount: string, from: string, to: string): string {
  return ((Number(amount) * PER_EURO[to]) / PER_EURO[from]).toFixed(2);
}

/** The set's tools (the environment adds its verification tool), as OpenAI-style definitions. */
export const LEDGER_TOOLS: readonly { name: string; description: string; parameters: Record<string, unknown> }[] = [
  {
    name: 'convert',
    description: 'Convert an amount from a document into a currency.',
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'The document or amount to convert' },
        currency: { type: 'string', enum: [...CURRENCIES], description: 'The currency to convert into' },
      },
      required: ['query', 'currency'],
      additionalProperties: false,
    },
  },
  {
    name: 'fetch_statement',
    description: 'Fetch the statement of an account or ledger.',
    parameters: {
      type: 'object',
      properties: { query: { type: 'string', description: 'Which statement to fetch' } },
      required: ['query'],
      additionalProperties: false,
    },
  },
  {
    name: 'reconcile',
    description: 'Reconcile a statement and report the resulting balance.',
    parameters: {
      type: 'object',
      properties: { query: { type: 'string', description: 'The statement reference to reconcile' } },
      required: ['query'],
      additionalProperties: false,
    },
  },
];

export type LedgerToolName = 'convert' | 'fetch_statement' | 'reconcile';

const int = (random: () => number, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
const amount = (random: () => number) => `${int(random, 100, 9999)}.${String(int(random, 0, 99)).padStart(2, '0')}`;

/** One tool answers, and only with this value of one of its arguments. */
export interface ArgumentFamilyRule {
  tool: LedgerToolName;
  argument: string;
  value: string;
  question: (random: () => number) => string;
  answer: (random: () => number) => string;
}

export const LEDGER_ARGUMENT_FAMILY_RULES: Readonly<Record<string, Readonly<ArgumentFamilyRule>>> = {
  invoice_total: {
    tool: 'convert',
    argument: 'currency',
    value: 'EUR',
    question: (r) => `What is the total of invoice INV-${int(r, 10000, 99999)} in the reporting currency?`,
    answer: amount,
  },
  expense_claim: {
    tool: 'convert',
    argument: 'currency',
    value: 'GBP',
    question: (r) => `How much is expense claim EC-${int(r, 1000, 9999)} worth once converted for the travel budget?`,
    answer: amount,
  },
};

/** Two tools in a required order: the first hands out a lead, the second turns it into the answer. */
export interface OrderFamilyRule {
  chain: readonly [LedgerToolName, LedgerToolName];
  question: (random: () => number) => string;
  answer: (random: () => number) => string;
}

export const LEDGER_ORDER_FAMILY_RULES: Readonly<Record<string, Readonly<OrderFamilyRule>>> = {
  ledger_close: {
    chain: ['fetch_statement', 'reconcile'],
    question: (r) => `What is the closing balance of ledger account LA-${int(r, 100, 999)} at month end?`,
    answer: amount,
  },
};

export const LEDGER_ARGUMENT_FAMILIES: readonly string[] = Object.keys(LEDGER_ARGUMENT_FAMILY_RULES);
export const LEDGER_FAMILIES: readonly string[] = [...LEDGER_ARGUMENT_FAMILIES, ...Object.keys(LEDGER_ORDER_FAMILY_RULES)];
