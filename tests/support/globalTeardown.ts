import { dropDatabase } from '../../workers/devStack';
import { reportWorkflowCoverage } from './workflowCoverage';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__flowTemporal?.stop();
  if (process.env.FLOW_TEST_ADMIN_URL && process.env.FLOW_TEST_DATABASE_NAME) {
    await dropDatabase(process.env.FLOW_TEST_ADMIN_URL, process.env.FLOW_TEST_DATABASE_NAME);
  }
  if (process.env.FLOW_WORKFLOW_COVERAGE_DIR) await reportWorkflowCoverage(process.env.FLOW_WORKFLOW_COVERAGE_DIR);
}
