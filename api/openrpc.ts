/**
 * The OpenRPC 1.x document of the facade, generated from the zod schemas in schemas.ts (zod's
 * JSON Schema output, draft-07 as OpenRPC uses), so the published docs cannot drift from the code.
 */
import { z } from 'zod';
import { RPC_ERRORS, type RpcErrorName } from './errors';
import { METHODS, type MethodName } from './schemas';
import { MAX_PARAMS_DEPTH, NO_NUL_PATTERN } from './paramsGuard';

/**
 * The server's URL as the document publishes it (OpenRPC requires a URI, not a bare path):
 * FLOW_API_PUBLIC_URL, default the address `npm run api` listens on.
 */
export const DEFAULT_PUBLIC_URL = 'http://127.0.0.1:8080';

const AUTH_ERRORS: RpcErrorName[] = [
  'TOKEN_MISSING',
  'TOKEN_MALFORMED',
  'TOKEN_EXPIRED',
  'TOKEN_BAD_SIGNATURE',
  'TOKEN_ALGORITHM_REJECTED',
  'TOKEN_CLAIMS_INVALID',
  'PERMISSION_DENIED',
  'RATE_LIMITED',
];

/**
 * Methods that reach neither PostgreSQL nor Temporal. Every other method answers UNAVAILABLE when
 * one of them is down, whatever its own error list says: server.ts (toRpcError) maps an outage
 * in any method to it.
 */
const NEEDS_NEITHER_DATABASE_NOR_TEMPORAL = new Set<string>(['rpc.discover', 'training.get_server_info']);

type JsonSchema = Record<string, unknown> & { properties?: Record<string, unknown>; required?: string[] };

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io, unrepresentable: 'any' }) as JsonSchema;
  if (io === 'input') noNulStrings(rest);
  return rest;
}

/**
 * Every free-text string a method takes says it holds no NUL (PostgreSQL text cannot store one;
 * api/paramsGuard.ts refuses it): a pattern on each string schema without a pattern, format or
 * fixed values of its own.
 */
function noNulStrings(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(noNulStrings);
  if (node === null || typeof node !== 'object') return;
  const schema = node as Record<string, unknown>;
  const isString = schema.type === 'string' || (Array.isArray(schema.type) && schema.type.includes('string'));
  if (isString && schema.pattern === undefined && schema.format === undefined && schema.enum === undefined && schema.const === undefined) {
    schema.pattern = NO_NUL_PATTERN;
  }
  Object.values(schema).forEach(noNulStrings);
}

function errorObject(name: RpcErrorName) {
  const { code, message, description } = RPC_ERRORS[name];
  return { code, message, data: { reason: name.toLowerCase(), description } };
}

let cached: Record<string, unknown> | undefined;

export function buildOpenRpcDocument(): Record<string, unknown> {
  cached ??= {
    openrpc: '1.3.2',
    info: {
      title: 'Flow training API',
      version: '0.1.0',
      description:
        'JSON-RPC 2.0 over HTTP (POST /rpc) to start, watch, steer and export GRPO training jobs. ' +
        'Every call needs `Authorization: Bearer <jwt>`; each method names the permission it needs. ' +
        `Every string in params must be well-formed Unicode without NUL (\\u0000), and params nest at most ${MAX_PARAMS_DEPTH} levels; ` +
        'otherwise the call is refused with -32602 naming the field.',
    },
    servers: [{ name: 'flow', url: `${(process.env.FLOW_API_PUBLIC_URL || DEFAULT_PUBLIC_URL).replace(/\/+$/, '')}/rpc` }],
    methods: (Object.keys(METHODS) as MethodName[]).map((name) => {
      const spec = METHODS[name];
      const params = name === 'rpc.discover' ? { properties: {}, required: [] } : jsonSchema(spec.params, 'input');
      const required = new Set(params.required ?? []);
      return {
        name,
        summary: spec.summary,
        description: `Permission: \`${spec.permission}\`${spec.adminOnly ? ', admin tokens only' : ''}.`,
        paramStructure: 'by-name',
        params: Object.entries(params.properties ?? {}).map(([param, schema]) => ({
          name: param,
          required: required.has(param),
          schema,
        })),
        result: { name: `${name.split('.')[1]}_result`, schema: jsonSchema(spec.result, 'output') },
        errors: [
          ...new Set<RpcErrorName>([
            ...(spec.errors as RpcErrorName[]),
            ...(NEEDS_NEITHER_DATABASE_NOR_TEMPORAL.has(name) ? [] : ['UNAVAILABLE' as const]),
            'INVALID_PARAMS',
            ...AUTH_ERRORS,
          ]),
        ].map(errorObject),
        'x-permission': spec.permission,
        ...(spec.adminOnly ? { 'x-admin-only': true } : {}),
      };
    }),
    components: {
      errors: Object.fromEntries((Object.keys(RPC_ERRORS) as RpcErrorName[]).map((name) => [name, errorObject(name)])),
    },
  };
  return cached;
}
