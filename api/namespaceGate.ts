/**
 * Jobs set Flow's search attributes when they start; on a namespace without them Temporal refuses
 * the start. The API checks first (before any row is written) and answers NAMESPACE_NOT_READY
 * naming what is missing and the command that registers it. A namespace found ready is not asked
 * again for a minute; one found wanting is asked again on the next call.
 */
import type { Client } from '@temporalio/client';
import { checkFlowNamespace, NamespaceNotReadyError } from '../deploy/registerSearchAttributes';
import { FlowRpcError } from './errors';

const READY_FOR_MS = 60_000;
const verifiedAt = new WeakMap<Client, number>();

export async function requireFlowNamespace(client: Client): Promise<void> {
  const at = verifiedAt.get(client);
  if (at !== undefined && Date.now() - at < READY_FOR_MS) return;
  try {
    await checkFlowNamespace(client.connection, client.options.namespace);
  } catch (error) {
    if (error instanceof NamespaceNotReadyError) {
      throw new FlowRpcError('NAMESPACE_NOT_READY', error.message, { namespace: error.namespace, missing_search_attributes: error.missing, command: error.command });
    }
    throw error;
  }
  verifiedAt.set(client, Date.now());
}
