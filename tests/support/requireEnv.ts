/**
 * A variable tests/support/globalSetup.ts sets for the integration files (the suite's database,
 * Temporal server, workflow bundle), or a clear error when a file runs without it. Its own module:
 * the jest environment (suiteEnvironment.ts) needs it and must not load the harness.
 */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: integration tests run under tests/support/globalSetup.ts`);
  return value;
}
