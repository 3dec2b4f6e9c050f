/**
 * The calculator tool: arithmetic expressions evaluated by mathjs, never by `eval`. The mathjs
 * instance is built from only the functions a calculator needs (no matrices, units, strings,
 * symbolic algebra), and the functions that could reach the parser or the instance from inside
 * an expression (`import`, `evaluate`, `parse`, ...) are replaced by ones that refuse, as the
 * mathjs security guide advises. Results must be finite real numbers.
 */
import {
  absDependencies,
  addDependencies,
  cbrtDependencies,
  ceilDependencies,
  cosDependencies,
  create,
  divideDependencies,
  eDependencies,
  evaluateDependencies,
  expDependencies,
  floorDependencies,
  log10Dependencies,
  log2Dependencies,
  logDependencies,
  maxDependencies,
  minDependencies,
  modDependencies,
  multiplyDependencies,
  piDependencies,
  powDependencies,
  roundDependencies,
  sinDependencies,
  sqrtDependencies,
  subtractDependencies,
  tanDependencies,
  unaryMinusDependencies,
  unaryPlusDependencies,
} from 'mathjs';
import type { ToolOutcome } from '../agents/agentRuntime';

export const CALCULATOR_TOOL = 'calculator';
export const MAX_EXPRESSION_CHARS = 500;

export const CALCULATOR_TOOL_DEFINITION = {
  name: CALCULATOR_TOOL,
  description:
    'Evaluates an arithmetic expression and returns the number. Supports + - * / ^ %, parentheses, ' +
    'sqrt, cbrt, abs, round, floor, ceil, exp, log, log2, log10, sin, cos, tan, min, max, pi and e.',
  parameters: {
    type: 'object',
    properties: { expression: { type: 'string', description: 'for example "(12 + 7) * 3 / 4"' } },
    required: ['expression'],
    additionalProperties: false,
  },
};

const math = create(
  {
    evaluateDependencies,
    addDependencies,
    subtractDependencies,
    multiplyDependencies,
    divideDependencies,
    powDependencies,
    modDependencies,
    unaryMinusDependencies,
    unaryPlusDependencies,
    sqrtDependencies,
    cbrtDependencies,
    absDependencies,
    roundDependencies,
    floorDependencies,
    ceilDependencies,
    expDependencies,
    logDependencies,
    log2Dependencies,
    log10Dependencies,
    sinDependencies,
    cosDependencies,
    tanDependencies,
    minDependencies,
    maxDependencies,
    piDependencies,
    eDependencies,
  },
  { number: 'number' },
);
const limitedEvaluate = math.evaluate.bind(math);
const refuse = (name: string) => () => {
  throw new Error(`function ${name} is not available in the calculator`);
};
math.import(
  Object.fromEntries(
    ['import', 'createUnit', 'evaluate', 'parse', 'compile', 'simplify', 'derivative', 'resolve', 'reviver', 'replacer'].map((name) => [
      name,
      refuse(name),
    ]),
  ),
  { override: true },
);

/** Evaluates `expression`; a bad or unsupported expression is a tool error, with mathjs's reason. */
export function calculate(expression: unknown): ToolOutcome {
  if (typeof expression !== 'string' || expression.trim() === '') {
    return { output: '', error: `calculator needs {"expression": string}, got ${JSON.stringify(expression) ?? 'nothing'}` };
  }
  if (expression.length > MAX_EXPRESSION_CHARS) {
    return { output: '', error: `expression is ${expression.length} characters; the calculator takes at most ${MAX_EXPRESSION_CHARS}` };
  }
  let value: unknown;
  try {
    // A fresh, empty scope per call: no variable survives between calls or tasks.
    value = limitedEvaluate(expression, new Map());
  } catch (error) {
    return { output: '', error: `cannot evaluate ${JSON.stringify(expression)}: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return { output: '', error: `${JSON.stringify(expression)} does not evaluate to a finite number` };
  }
  return { output: formatNumber(value), error: null };
}

/** 14 significant digits, so 0.1 + 0.2 reads 0.3 and integers read as integers. */
export function formatNumber(value: number): string {
  return String(Number(value.toPrecision(14)));
}
