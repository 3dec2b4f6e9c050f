/**
 * The local model server's sizes from the environment: the worker checks them at start
 * (workers/main.ts), the server is started with them (workers/localModelServer.ts) and the chat
 * client queues calls to its slots (adapters/llm/chatClient.ts), so all three read one definition.
 */
import { integerFromEnv } from '../envIntegers';

/** FLOW_LOCAL_MODEL_PARALLEL: requests the local server decodes at once (its slots); default 1. */
export function localModelParallelFromEnv(env: NodeJS.ProcessEnv): number {
  return integerFromEnv(env, 'FLOW_LOCAL_MODEL_PARALLEL', 1, { min: 1, max: 64, unit: 'slots' });
}

/** FLOW_LOCAL_MODEL_THREADS: CPU threads of the local server; default 2. */
export function localModelThreadsFromEnv(env: NodeJS.ProcessEnv): number {
  return integerFromEnv(env, 'FLOW_LOCAL_MODEL_THREADS', 2, { min: 1, max: 256, unit: 'threads' });
}
