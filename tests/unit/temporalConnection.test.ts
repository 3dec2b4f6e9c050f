/**
 * Temporal connection settings from the SDK's standard environment configuration
 * (adapters/temporalConnection.ts): what every entry point connects with, Temporal Cloud included.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TemporalConfigError, temporalConnectionFromEnv } from '../../adapters/temporalConnection';

// No profile file of the machine running the tests may leak in: each case names its own (or none).
const noFile = { TEMPORAL_CONFIG_FILE: path.join(tmpdir(), 'flow-no-such-temporal.toml') };

describe('temporalConnectionFromEnv', () => {
  test('nothing set: the local dev server on the default namespace, no TLS, no key', () => {
    const settings = temporalConnectionFromEnv({ ...noFile });
    expect(settings.address).toBe('127.0.0.1:7233');
    expect(settings.namespace).toBe('default');
    expect(settings.tls).toBe(false);
    expect(settings.connectionOptions.address).toBe('127.0.0.1:7233');
    expect(settings.connectionOptions.apiKey).toBeUndefined();
  });

  test('TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE are read; an empty value counts as unset', () => {
    const settings = temporalConnectionFromEnv({ ...noFile, TEMPORAL_ADDRESS: 'temporal.internal:7233', TEMPORAL_NAMESPACE: 'flow-prod' });
    expect([settings.address, settings.namespace]).toEqual(['temporal.internal:7233', 'flow-prod']);
    expect(temporalConnectionFromEnv({ ...noFile, TEMPORAL_NAMESPACE: '' }).namespace).toBe('default');
  });

  test('Temporal Cloud with an API key: the key is sent and TLS is on without further settings', () => {
    const settings = temporalConnectionFromEnv({
      ...noFile,
      TEMPORAL_ADDRESS: 'flow.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'flow.a1b2c',
      TEMPORAL_API_KEY: 'secret-key',
      TEMPORAL_GRPC_META_X_TEAM: 'ml',
    });
    expect(settings.connectionOptions.apiKey).toBe('secret-key');
    expect(settings.tls).toBe(true);
    expect(settings.connectionOptions.metadata).toEqual({ 'x-team': 'ml' });
  });

  test('mTLS: the client certificate pair, CA and server name are loaded from files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flow-tls-'));
    const file = (name: string, text: string) => {
      writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const settings = temporalConnectionFromEnv({
      ...noFile,
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem', 'CERT'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key', 'KEY'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.pem', 'CA'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    // Bytes as Uint8Array: both the client's and the worker's connection take them through Buffer.from.
    const tls = settings.connectionOptions.tls as { clientCertPair: { crt: Uint8Array; key: Uint8Array }; serverRootCACertificate: Uint8Array; serverNameOverride: string };
    const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();
    expect(settings.tls).toBe(true);
    expect(text(tls.clientCertPair.crt)).toBe('CERT');
    expect(text(tls.clientCertPair.key)).toBe('KEY');
    expect(text(tls.serverRootCACertificate)).toBe('CA');
    expect(tls.serverNameOverride).toBe('temporal.internal');
  });

  test('a certificate without its key is refused, naming the missing variable', () => {
    expect(() => temporalConnectionFromEnv({ ...noFile, TEMPORAL_TLS_CLIENT_CERT_DATA: 'CERT' })).toThrow(
      new TemporalConfigError('mTLS needs both a client certificate and its key: TEMPORAL_TLS_CLIENT_KEY_PATH (or _DATA) is not set'),
    );
    expect(() => temporalConnectionFromEnv({ ...noFile, TEMPORAL_TLS_CLIENT_KEY_DATA: 'KEY' })).toThrow(/TEMPORAL_TLS_CLIENT_CERT_PATH \(or _DATA\) is not set/);
  });

  test('a TOML profile is read, and the variables override it; a profile that does not exist is a clear error', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flow-profile-'));
    const config = path.join(dir, 'temporal.toml');
    writeFileSync(config, ['[profile.default]', 'address = "from-file:7233"', 'namespace = "file-ns"', '', '[profile.cloud]', 'address = "cloud:7233"', 'api_key = "k"', ''].join('\n'));
    expect(temporalConnectionFromEnv({ TEMPORAL_CONFIG_FILE: config })).toMatchObject({ address: 'from-file:7233', namespace: 'file-ns', tls: false });
    expect(temporalConnectionFromEnv({ TEMPORAL_CONFIG_FILE: config, TEMPORAL_NAMESPACE: 'env-ns' }).namespace).toBe('env-ns');
    expect(temporalConnectionFromEnv({ TEMPORAL_CONFIG_FILE: config, TEMPORAL_PROFILE: 'cloud' })).toMatchObject({ address: 'cloud:7233', tls: true });
    expect(() => temporalConnectionFromEnv({ TEMPORAL_CONFIG_FILE: config, TEMPORAL_PROFILE: 'nope' })).toThrow(TemporalConfigError);
    expect(() => temporalConnectionFromEnv({ TEMPORAL_CONFIG_FILE: config, TEMPORAL_PROFILE: 'nope' })).toThrow(/^Temporal connection settings: .*nope/);
  });
});
