import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes every training job carries, so operators can list and filter jobs in the
 * Temporal Web UI and with `temporal workflow list --query "FlowAgentId='...'"`.
 * Registered on the dev server by workers/dev/devStack.ts.
 */
export const FLOW_AGENT_ID = defineSearchAttributeKey('FlowAgentId', 'KEYWORD');
export const FLOW_JOB_STATUS = defineSearchAttributeKey('FlowJobStatus', 'KEYWORD');
export const FLOW_PRIORITY = defineSearchAttributeKey('FlowPriority', 'KEYWORD');

export const FLOW_SEARCH_ATTRIBUTES = [FLOW_AGENT_ID, FLOW_JOB_STATUS, FLOW_PRIORITY] as const;
