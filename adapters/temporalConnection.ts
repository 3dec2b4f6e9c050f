/**
 * Where Temporal is and how to reach it, for every entry point (API, worker, demo, CLI, the
 * search-attribute setup): the Temporal SDK's standard environment configuration
 * (`@temporalio/envconfig`), so a self-hosted cluster and Temporal Cloud are configured the way
 * Temporal documents it and the `temporal` CLI reads it:
 *  - TEMPORAL_ADDRESS (default 127.0.0.1:7233) and TEMPORAL_NAMESPACE (default `default`);
 *  - Temporal Cloud with an API key: TEMPORAL_API_KEY (TLS is then on by default);
 *  - mTLS: TEMPORAL_TLS=true, TEMPORAL_TLS_CLIENT_CERT_PATH / _DATA, TEMPORAL_TLS_CLIENT_KEY_PATH /
 *    _DATA, TEMPORAL_TLS_SERVER_CA_CERT_PATH / _DATA, TEMPORAL_TLS_SERVER_NAME;
 *  - TEMPORAL_GRPC_META_<NAME> headers, and a TOML profile (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE,
 *    default ~/.config/temporalio/temporal.toml) that the variables override.
 * Written once here, instead of `{ address: env.TEMPORAL_ADDRESS }` in each entry point.
 */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';

export interface TemporalConnectionSettings {
  /** host:port of the frontend, for messages and the CLI commands Flow suggests. */
  address: string;
  namespace: string;
  /** For `Connection.connect` (client) and `NativeConnection.connect` (worker) alike. */
  connectionOptions: NativeConnectionOptions & { address: string };
  /** Whether the connection uses TLS (an API key or TEMPORAL_TLS turns it on). */
  tls: boolean;
}

/** A configuration Temporal's loader refused (a bad TLS file, a bad profile), named as such. */
export class TemporalConfigError extends Error {
  constructor(message: string) {
    super(`Temporal connection settings: ${message}`);
    this.name = 'TemporalConfigError';
  }
}

/** Reads the settings from `env` (and the profile file it points at, if any). */
export function temporalConnectionFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalConnectionSettings {
  const variables = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars: variables });
  } catch (error) {
    throw new TemporalConfigError(error instanceof Error ? error.message.split('\n')[0] : String(error));
  }
  const hasCert = Boolean(variables.TEMPORAL_TLS_CLIENT_CERT_PATH || variables.TEMPORAL_TLS_CLIENT_CERT_DATA);
  const hasKey = Boolean(variables.TEMPORAL_TLS_CLIENT_KEY_PATH || variables.TEMPORAL_TLS_CLIENT_KEY_DATA);
  // The SDK drops a certificate without its key (or the reverse) silently; mTLS would then fail at the server.
  if (hasCert !== hasKey) {
    throw new TemporalConfigError(`mTLS needs both a client certificate and its key: TEMPORAL_TLS_CLIENT_${hasCert ? 'KEY' : 'CERT'}_PATH (or _DATA) is not set`);
  }
  const address = loaded.connectionOptions.address ?? DEFAULT_TEMPORAL_ADDRESS;
  return {
    address,
    namespace: loaded.namespace ?? DEFAULT_TEMPORAL_NAMESPACE,
    connectionOptions: { ...loaded.connectionOptions, address },
    tls: Boolean(loaded.connectionOptions.tls),
  };
}
