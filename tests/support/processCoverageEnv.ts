/**
 * Integration test files' setup: with coverage on, every process a test spawns (worker and API
 * processes, `npm start`, the `flow` CLI) inherits NODE_V8_COVERAGE and writes its V8 coverage
 * where tests/support/coverageReport.ts reads it. jest's own workers started before this and
 * stay unmeasured by V8 (jest instruments what they load).
 */
if (process.env.FLOW_PROCESS_COVERAGE_DIR) process.env.NODE_V8_COVERAGE = process.env.FLOW_PROCESS_COVERAGE_DIR;
