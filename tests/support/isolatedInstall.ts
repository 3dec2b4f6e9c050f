/**
 * Set to "1" in the environment of an integration file that has a Flow install of its own
 * (`@suiteLock isolated`): set by tests/support/suiteEnvironment.ts, read by the helpers that
 * change install-wide state (withOwnKillSwitch in tests/support/apiHarness.ts). Its own module so
 * that neither side loads the other.
 */
export const ISOLATED_INSTALL_ENV = 'FLOW_TEST_ISOLATED_INSTALL';
