/**
 * docs/api/training-api.md is generated (scripts/gen-api-docs.ts, `npm run docs:api`) from the
 * OpenRPC document. Here a real API server is asked for `rpc.discover` and its answer rendered:
 * the committed file must be exactly that, so the reference cannot drift from the running API.
 * The examples in it must be valid params for their methods.
 */
import { readFileSync } from 'node:fs';
import { METHODS, type MethodName } from '../../api/schemas';
import { API_DOCS_PATH, EXAMPLE_PARAMS, exampleFromSchema, renderApiReference, typeName, type OpenRpcDocument } from '../../scripts/gen-api-docs';
import { startApiHarness, type ApiHarness } from '../support/apiHarness';

let api: ApiHarness;
beforeAll(async () => {
  api = await startApiHarness();
});
afterAll(async () => {
  await api?.close();
});

async function discover(): Promise<OpenRpcDocument> {
  const response = await api.post({ jsonrpc: '2.0', id: 1, method: 'rpc.discover' });
  expect(response.status).toBe(200);
  return response.body.result as OpenRpcDocument;
}

test('the committed API reference is what rpc.discover renders to (run `npm run docs:api` after changing api/schemas.ts)', async () => {
  const committed = readFileSync(API_DOCS_PATH, 'utf8');
  const rendered = renderApiReference(await discover());
  // A line-level comparison names the first stale line rather than dumping two 900-line strings.
  const committedLines = committed.split('\n');
  const renderedLines = rendered.split('\n');
  const firstDifference = renderedLines.findIndex((line, index) => line !== committedLines[index]);
  expect({ firstDifference, committed: committedLines[firstDifference], rendered: renderedLines[firstDifference] }).toEqual({
    firstDifference: -1,
    committed: undefined,
    rendered: undefined,
  });
  expect(committed).toBe(rendered);
});

test('the reference documents every method with its permission, params, result, errors and an example', async () => {
  const document = await discover();
  const reference = renderApiReference(document);
  for (const name of Object.keys(METHODS) as MethodName[]) {
    const section = reference.split(`\n## ${name}\n`)[1]?.split('\n## ')[0];
    expect([name, typeof section]).toEqual([name, 'string']);
    expect(section).toContain(`Permission: \`${METHODS[name].permission}\``);
    expect(section).toContain('### Params');
    expect(section).toContain('### Result');
    expect(section).toContain('| -32602 | `invalid_params` |');
    for (const error of METHODS[name].errors) expect(section).toContain(`\`${error.toLowerCase()}\``);
    expect(section).toContain(`"method": "${name}"`);
  }
  // A stale or hand-edited document is noticed: one more method changes the rendering.
  const changed = { ...document, methods: [...document.methods, { ...document.methods[0], name: 'training.imaginary' }] };
  expect(renderApiReference(changed)).not.toBe(reference);
});

test("every example's params are accepted by its method's schema", () => {
  for (const name of Object.keys(METHODS) as MethodName[]) {
    const example = EXAMPLE_PARAMS[name];
    expect([name, example !== undefined]).toEqual([name, true]);
    const parsed = (METHODS[name].params as { safeParse(value: unknown): { success: boolean; error?: unknown } }).safeParse(name === 'rpc.discover' ? undefined : example);
    expect([name, parsed.success, parsed.error]).toEqual([name, true, undefined]);
  }
});

test('type names and schema-built examples for methods added without a hand-written example', () => {
  expect(typeName({ type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'null' }] } })).toBe('(string | null)[]');
  expect(typeName({ type: 'object', additionalProperties: { type: 'number' } })).toBe('{ [key]: number }');
  expect(typeName({ enum: ['best', 'latest'] })).toBe('"best" | "latest"');
  expect(typeName({})).toBe('any');
  expect(
    exampleFromSchema({
      type: 'object',
      required: ['job_id', 'n', 'kind', 'on', 'tags', 'pick'],
      properties: {
        job_id: { type: 'string' },
        n: { type: 'integer', minimum: 2 },
        kind: { enum: ['a', 'b'] },
        on: { type: 'boolean' },
        tags: { type: 'array', minItems: 1, items: { type: 'string' } },
        pick: { anyOf: [{ type: 'null' }, { type: 'number', exclusiveMinimum: 0 }] },
        optional: { type: 'string' },
      },
    }),
  ).toEqual({ job_id: 'string', n: 2, kind: 'a', on: true, tags: ['string'], pick: 1 });
});
