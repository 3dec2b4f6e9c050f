/**
 * Registers the search attributes Flow's workflows set (workflows/searchAttributes.ts: agent,
 * status, priority) on a Temporal namespace, leaving those that already exist alone, so it can
 * run on every `docker compose up` and every `helm upgrade`. It runs from the Flow image itself
 * (the compose `temporal-setup` service, the chart's hook Job), so it needs no admin-tools image
 * and always registers exactly what this version's workflows use.
 *
 *   TEMPORAL_ADDRESS=host:7233 TEMPORAL_NAMESPACE=default node --import tsx deploy/registerSearchAttributes.ts
 *
 * Exits 0 when every attribute exists with its type, 1 otherwise (a clash of types included).
 */
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { integerFromEnv } from '../adapters/envIntegers';
import { temporalConnectionFromEnv } from '../adapters/temporalConnection';
import { FLOW_SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';

const { IndexedValueType } = temporal.api.enums.v1;

/** The proto enum value for each SDK search-attribute type Flow uses. */
const INDEXED_TYPE = {
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  TEXT: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  DOUBLE: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
} as const;

export interface RegistrationResult {
  added: string[];
  existing: string[];
}

/** What `missingSearchAttributes` finds wrong with a namespace, worded for an operator. */
export class NamespaceNotReadyError extends Error {
  constructor(
    readonly namespace: string,
    /** Flow's attributes the namespace lacks (empty when the namespace itself is missing). */
    readonly missing: string[],
    readonly namespaceExists: boolean,
    readonly command: string,
  ) {
    super(
      namespaceExists
        ? `Temporal namespace ${namespace} has no search attribute ${missing.join(', ')}, which Flow's jobs set; register them with: ${command}`
        : `Temporal namespace ${namespace} does not exist; create it (temporal operator namespace create --namespace ${namespace}) and register Flow's search attributes with: ${command}`,
    );
    this.name = 'NamespaceNotReadyError';
  }
}

/**
 * The Temporal CLI commands that register `names` (Flow's are all Keyword) on `namespace`, one
 * per attribute: the CLI takes one --type for all its --name flags and registered only the first.
 */
export function registerCommand(namespace: string, address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233', names: string[] = FLOW_SEARCH_ATTRIBUTES.map((key) => key.name)): string {
  return names.map((name) => `temporal operator search-attribute create --address ${address} --namespace ${namespace} --name ${name} --type Keyword`).join(' && ');
}

/** The part of a connection the check reads (a client Connection and a worker NativeConnection both have it). */
export interface OperatorServiceHolder {
  operatorService: Pick<Connection['operatorService'], 'listSearchAttributes'>;
}

/**
 * Flow's search attributes `namespace` lacks (or has with another type); throws
 * NamespaceNotReadyError when any is missing or the namespace does not exist. Other errors
 * (Temporal unreachable) are thrown as they come.
 */
export async function checkFlowNamespace(connection: OperatorServiceHolder, namespace: string, address?: string): Promise<void> {
  let customAttributes: Record<string, unknown>;
  try {
    ({ customAttributes = {} } = await connection.operatorService.listSearchAttributes({ namespace }));
  } catch (error) {
    // NOT_FOUND: the namespace is not there (or not yet in the frontend's cache).
    if ((error as { code?: number }).code === 5) throw new NamespaceNotReadyError(namespace, FLOW_SEARCH_ATTRIBUTES.map((k) => k.name), false, registerCommand(namespace, address));
    throw error;
  }
  const missing = FLOW_SEARCH_ATTRIBUTES.filter((key) => customAttributes[key.name] !== INDEXED_TYPE[key.type]).map((key) => key.name);
  if (missing.length > 0) throw new NamespaceNotReadyError(namespace, missing, true, registerCommand(namespace, address, missing));
}

/** Adds the missing attributes; throws when one exists with another type. */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<RegistrationResult> {
  const { customAttributes = {} } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
  const existing: string[] = [];
  for (const key of FLOW_SEARCH_ATTRIBUTES) {
    const wanted = INDEXED_TYPE[key.type];
    const present = customAttributes[key.name];
    if (present === undefined || present === null) missing[key.name] = wanted;
    else if (present !== wanted) {
      throw new Error(
        `search attribute ${key.name} exists on namespace ${namespace} as ${IndexedValueType[present]}, but Flow needs ${IndexedValueType[wanted]}; remove it or use another namespace`,
      );
    } else existing.push(key.name);
  }
  if (Object.keys(missing).length > 0) await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  return { added: Object.keys(missing), existing };
}

/** Connects (retrying while the server starts) and registers; resolves to the process's exit code. */
export async function main(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = console.log): Promise<number> {
  const address = env.TEMPORAL_ADDRESS;
  if (!address) {
    log('register-search-attributes: TEMPORAL_ADDRESS is not set (host:port of the Temporal frontend)');
    return 1;
  }
  // The API key or mTLS settings of Temporal Cloud come with the rest (adapters/temporalConnection.ts).
  let settings: ReturnType<typeof temporalConnectionFromEnv>;
  try {
    settings = temporalConnectionFromEnv(env);
  } catch (error) {
    log(`register-search-attributes: ${(error as Error).message}`);
    return 1;
  }
  const { namespace, connectionOptions } = settings;
  let timeoutMs: number;
  try {
    // Number() of a typo was NaN, and a NaN deadline is never passed: the Job retried for ever.
    timeoutMs = integerFromEnv(env, 'FLOW_SETUP_TIMEOUT_MS', 120_000, { min: 0, max: 86_400_000, unit: 'ms' });
  } catch (error) {
    log(`register-search-attributes: ${(error as Error).message}`);
    return 1;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ ...connectionOptions, connectTimeout: 2_000 });
      const { added, existing } = await registerSearchAttributes(connection, namespace);
      log(`register-search-attributes: namespace ${namespace}: added [${added.join(', ')}], already there [${existing.join(', ')}]`);
      return 0;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // A type clash will not heal by waiting; an unreachable server or a namespace not yet created may.
      if (message.includes('but Flow needs') || Date.now() > deadline) {
        log(`register-search-attributes: Temporal at ${address}, namespace ${namespace}: ${message}`);
        return 1;
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
