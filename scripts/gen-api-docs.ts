/**
 * Writes docs/api/training-api.md from the API's OpenRPC document (`rpc.discover`, built from the
 * zod schemas in api/schemas.ts): every method with its permission, params, result, errors and
 * an example call. `npm run docs:api` regenerates it; tests/integration/apiDocs.test.ts fails
 * when the committed file differs from what a running server's `rpc.discover` renders to.
 *
 *   npm run docs:api                 # from the code's own document
 *   npm run docs:api -- --check      # exit 1 if the committed file is out of date
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { NO_NUL_PATTERN } from '../api/paramsGuard';

export const API_DOCS_PATH = path.resolve(__dirname, '..', 'docs', 'api', 'training-api.md');

type Schema = {
  type?: string | string[];
  description?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
};

interface OpenRpcError {
  code: number;
  message: string;
  data?: { reason?: string; description?: string };
}

interface OpenRpcMethod {
  name: string;
  summary: string;
  description?: string;
  params: { name: string; required: boolean; schema: Schema }[];
  result: { name: string; schema: Schema };
  errors: OpenRpcError[];
  'x-permission'?: string;
  'x-admin-only'?: boolean;
}

export interface OpenRpcDocument {
  openrpc: string;
  info: { title: string; version: string; description?: string };
  methods: OpenRpcMethod[];
  components?: { errors?: Record<string, OpenRpcError> };
}

/**
 * A realistic params object per method for the examples. A method missing here (one added
 * later) gets an example built from its schema's required fields.
 */
export const EXAMPLE_PARAMS: Record<string, Record<string, unknown>> = {
  'training.start_grpo': {
    agent_id: 'support-agent',
    task_set: 'simulated-small',
    config: { iterations: 8, group_size: 8, batch_size: 4, learning_rate: 0.5, budget_usd: 5 },
    idempotency_key: 'support-agent-2026-11-25',
  },
  'training.get_status': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10' },
  'training.list_jobs': { agent_id: 'support-agent', status: 'running', limit: 20 },
  'training.cancel': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10', reason: 'wrong task set' },
  'training.export_trajectories': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10', format: 'jsonl_chat', min_reward: 0.8, limit: 500 },
  'training.update_budget': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10', budget_usd: 20 },
  'training.kill_switch': { on: true, reason: 'provider incident' },
  'training.get_kill_switch': {},
  'training.resume': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10', checkpoint: { run: 1, iteration: 4 }, budget_usd: 10 },
  'training.evaluate': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10', checkpoint: 'best', budget_usd: 1 },
  'training.get_history': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10' },
  'training.list_checkpoints': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10' },
  'training.get_server_info': {},
  'training.get_policy': { job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10', checkpoint: 'best', format: 'text' },
  'agents.promote_policy': { agent_id: 'support-agent', job_id: 'job-0c5e7d4e-8c1b-4a3e-9f63-2f1d5a7b9e10', checkpoint: { run: 1, iteration: 8 }, reason: 'test split +0.19 success, p = 0.003' },
  'agents.rollback': { agent_id: 'support-agent', to_version: 2, reason: 'v3 answers in the wrong language' },
  'agents.list_policy_versions': { agent_id: 'support-agent' },
  'agents.get_active_policy': { agent_id: 'support-agent' },
  'rpc.discover': {},
};

const code = (text: unknown) => `\`${String(text).replace(/`/g, "'")}\``;
/** Table cells: no pipes or newlines. */
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');

/** A short type expression for a JSON Schema: `string`, `integer`, `"a" \| "b"`, `object[]`, … */
export function typeName(schema: Schema): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((value) => JSON.stringify(value)).join(' | ');
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return union.map(typeName).join(' | ');
  const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
  if (types.length === 0) return schema.properties ? 'object' : 'any';
  return types
    .map((type) => {
      if (type === 'array') {
        const item = schema.items ? typeName(schema.items) : 'any';
        return /[ |]/.test(item) ? `(${item})[]` : `${item}[]`;
      }
      if (type === 'object' && !schema.properties && typeof schema.additionalProperties === 'object') {
        return `{ [key]: ${typeName(schema.additionalProperties)} }`;
      }
      return type;
    })
    .join(' | ');
}

/** What the schema allows beyond its type, in words: ranges, lengths, pattern, default. */
export function constraints(schema: Schema): string[] {
  const notes: string[] = [];
  const range = (low?: number, high?: number, lowOpen = false, highOpen = false) => {
    if (low === undefined && high === undefined) return;
    if (low !== undefined && high !== undefined) notes.push(`${lowOpen ? '>' : ''}${low}${lowOpen || highOpen ? ' … ' : '–'}${highOpen ? '<' : ''}${high}`);
    else if (low !== undefined) notes.push(`${lowOpen ? '>' : '≥'} ${low}`);
    else notes.push(`${highOpen ? '<' : '≤'} ${high}`);
  };
  range(schema.minimum ?? schema.exclusiveMinimum, schema.maximum ?? schema.exclusiveMaximum, schema.exclusiveMinimum !== undefined, schema.exclusiveMaximum !== undefined);
  if (schema.minLength !== undefined || schema.maxLength !== undefined) {
    notes.push(`length ${schema.minLength ?? 0}–${schema.maxLength ?? '∞'}`);
  }
  if (schema.minItems !== undefined || schema.maxItems !== undefined) notes.push(`${schema.minItems ?? 0}–${schema.maxItems ?? '∞'} items`);
  // The no-NUL pattern every free-text string carries is said once, in the header.
  if (schema.pattern && schema.pattern !== NO_NUL_PATTERN) notes.push(`pattern ${code(schema.pattern)}`);
  if (schema.format) notes.push(`format ${schema.format}`);
  if (schema.default !== undefined) notes.push(`default ${code(JSON.stringify(schema.default))}`);
  return notes;
}

interface Row {
  name: string;
  type: string;
  required: boolean;
  notes: string;
}

/** Rows for a property and, recursively, the fields of the objects inside it (`config.group_size`, `trajectories[].steps`). */
function rows(name: string, schema: Schema, required: boolean, depth = 0): Row[] {
  const union = (schema.anyOf ?? schema.oneOf)?.filter((member) => member.type !== 'null');
  const object = schema.properties ? schema : schema.items?.properties ? schema.items : union?.length === 1 && union[0].properties ? union[0] : undefined;
  const notes = [(schema.description ?? '').replace(/\.$/, ''), ...constraints(schema)].filter(Boolean).join('; ');
  const own: Row = { name, type: typeName(schema), required, notes };
  if (!object || depth >= 2) return [own];
  const prefix = object === schema.items ? `${name}[]` : name;
  const inner = Object.entries(object.properties ?? {}).flatMap(([key, child]) => rows(`${prefix}.${key}`, child, (object.required ?? []).includes(key), depth + 1));
  return [own, ...inner];
}

function table(entries: Row[]): string[] {
  if (entries.length === 0) return ['None.', ''];
  return [
    '| name | type | required | notes |',
    '| --- | --- | --- | --- |',
    ...entries.map((row) => `| ${code(row.name)} | ${cell(code(row.type))} | ${row.required ? 'yes' : 'no'} | ${cell(row.notes)} |`),
    '',
  ];
}

/** An example built from a schema's required fields, for a method with no hand-written one. */
export function exampleFromSchema(schema: Schema): unknown {
  if (schema.default !== undefined) return schema.default;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return exampleFromSchema(union.find((member) => member.type !== 'null') ?? union[0]);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object':
      return Object.fromEntries((schema.required ?? []).map((key) => [key, exampleFromSchema(schema.properties?.[key] ?? {})]));
    case 'array':
      return schema.minItems ? [exampleFromSchema(schema.items ?? {})] : [];
    case 'integer':
    case 'number':
      return schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 1);
    case 'boolean':
      return true;
    default:
      return 'string';
  }
}

function exampleParams(method: OpenRpcMethod): Record<string, unknown> {
  const known = EXAMPLE_PARAMS[method.name];
  if (known) return known;
  return Object.fromEntries(method.params.filter((param) => param.required).map((param) => [param.name, exampleFromSchema(param.schema)]));
}

const anchor = (name: string) => name.toLowerCase().replace(/[^a-z0-9_ -]/g, '').replace(/ /g, '-');

/** The Markdown reference for an OpenRPC document; deterministic (same document, same bytes). */
export function renderApiReference(document: OpenRpcDocument): string {
  const lines: string[] = [
    `# ${document.info.title} reference`,
    '',
    '<!-- GENERATED by `npm run docs:api` (scripts/gen-api-docs.ts) from the OpenRPC document that `rpc.discover` returns. Do not edit: tests/integration/apiDocs.test.ts fails when this file differs from the running API. -->',
    '',
    `OpenRPC ${document.openrpc}, API version ${document.info.version}. ${document.info.description ?? ''}`.trim(),
    '',
    '## Calling the API',
    '',
    'Every call is an HTTP `POST /rpc` with a JSON-RPC 2.0 body and a bearer token (a JWT with `iss` `flow`,',
    '`aud` `flow-api`, `sub`, `exp` and a `tenant` claim; `scripts/flow token` mints a development one).',
    'Params are always by name. A batch is a JSON array of requests (at most 50).',
    '',
    '```bash',
    'curl -s http://127.0.0.1:8080/rpc \\',
    '  -H "authorization: Bearer $FLOW_TOKEN" -H "content-type: application/json" \\',
    `  -d '{"jsonrpc": "2.0", "id": 1, "method": "training.list_jobs", "params": {"limit": 5}}'`,
    '```',
    '',
    'A failure is a JSON-RPC error object: `code` (listed per method below), `message` (says what was',
    'wrong, naming the field), `data.reason` (the error name in lower case) and, for internal errors,',
    '`data.request_id` to find the server log line. The typed TypeScript client is `api/client/flowClient.ts`;',
    'the `flow` CLI wraps it.',
    '',
    '## Methods',
    '',
    '| method | permission | summary |',
    '| --- | --- | --- |',
    ...document.methods.map(
      (method) => `| [${code(method.name)}](#${anchor(method.name)}) | ${code(method['x-permission'] ?? '')}${method['x-admin-only'] ? ', admin' : ''} | ${cell(method.summary)} |`,
    ),
    '',
  ];
  for (const method of document.methods) {
    const params = exampleParams(method);
    lines.push(
      `## ${method.name}`,
      '',
      method.summary,
      '',
      `Permission: ${code(method['x-permission'] ?? 'none')}${method['x-admin-only'] ? ' and an admin token' : ''}.`,
      '',
      '### Params',
      '',
      ...table(method.params.flatMap((param) => rows(param.name, param.schema, param.required))),
      `### Result (${code(typeName(method.result.schema))})`,
      '',
      ...table(Object.entries(method.result.schema.properties ?? {}).flatMap(([key, schema]) => rows(key, schema, (method.result.schema.required ?? []).includes(key)))),
      '### Errors',
      '',
      '| code | reason | meaning |',
      '| --- | --- | --- |',
      ...method.errors.map((error) => `| ${error.code} | ${code(error.data?.reason ?? '')} | ${cell(`${error.message}. ${error.data?.description ?? ''}`.trim())} |`),
      '',
      '### Example',
      '',
      '```json',
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: method.name, params }, null, 2),
      '```',
      '',
    );
  }
  const errors = Object.entries(document.components?.errors ?? {});
  if (errors.length) {
    lines.push('## All error codes', '', '| code | name | meaning |', '| --- | --- | --- |');
    for (const [name, error] of errors) lines.push(`| ${error.code} | ${code(name)} | ${cell(`${error.message}. ${error.data?.description ?? ''}`.trim())} |`);
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

async function main(argv: string[]): Promise<number> {
  const { buildOpenRpcDocument } = await import('../api/openrpc');
  const rendered = renderApiReference(buildOpenRpcDocument() as unknown as OpenRpcDocument);
  if (argv.includes('--check')) {
    let committed = '';
    try {
      committed = readFileSync(API_DOCS_PATH, 'utf8');
    } catch {
      committed = '';
    }
    if (committed === rendered) return 0;
    console.error(`${path.relative(process.cwd(), API_DOCS_PATH)} is out of date; run \`npm run docs:api\``);
    return 1;
  }
  mkdirSync(path.dirname(API_DOCS_PATH), { recursive: true });
  writeFileSync(API_DOCS_PATH, rendered);
  console.log(`wrote ${path.relative(process.cwd(), API_DOCS_PATH)}`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (status) => process.exit(status),
    (error: Error) => {
      console.error(error.message);
      process.exit(1);
    },
  );
}
