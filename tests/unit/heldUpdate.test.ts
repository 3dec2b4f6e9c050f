/**
 * training.update_budget past its deadline asks Temporal what became of the raise
 * (PollWorkflowExecutionUpdate): these are the answers it maps, from the response's shape. The
 * integration tests (apiEdgeCases) cover a held update and an unreachable Temporal end to end.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { heldUpdate } from '../../api/methods';

type PollResponse = temporal.api.workflowservice.v1.IPollWorkflowExecutionUpdateResponse;

function clientAnswering(answer: PollResponse | Error): Client {
  return {
    options: { namespace: 'default', identity: 'test' },
    withDeadline: (_deadline: number, fn: () => Promise<unknown>) => fn(),
    workflowService: {
      pollWorkflowExecutionUpdate: async () => {
        if (answer instanceof Error) throw answer;
        return answer;
      },
    },
  } as unknown as Client;
}

test('admitted and not finished: pending', async () => {
  expect(await heldUpdate(clientAnswering({ stage: 2 }), 'job', 'u')).toBe('pending');
});

test('finished with a result: applied', async () => {
  expect(await heldUpdate(clientAnswering({ outcome: { success: { payloads: [] } } }), 'job', 'u')).toBe('applied');
});

test("finished with the validator's refusal: its own sentence", async () => {
  const failure = { message: 'budget_usd: 5 is below what the job has spent ($7.00)', applicationFailureInfo: { type: 'InvalidBudget' } };
  expect(await heldUpdate(clientAnswering({ outcome: { failure } }), 'job', 'u')).toEqual({ message: failure.message, cancelled: false });
});

test('ended by a cancel that overtook it: cancelled', async () => {
  const failure = { message: 'Activity task failed', activityFailureInfo: {}, cause: { message: 'Activity cancelled', canceledFailureInfo: {} } };
  expect(await heldUpdate(clientAnswering({ outcome: { failure } }), 'job', 'u')).toEqual({ message: 'Activity cancelled', cancelled: true });
});

test("ended by its record's activity failing, not by a cancel: not recorded (and not applied)", async () => {
  const failure = { message: 'Activity task failed', activityFailureInfo: {}, cause: { message: 'activity ScheduleToClose timeout', timeoutFailureInfo: {} } };
  expect(await heldUpdate(clientAnswering({ outcome: { failure } }), 'job', 'u')).toBe('not_recorded');
});

test('ended by the job ending first: job_ended', async () => {
  const failure = { message: 'Workflow Update failed because the Workflow completed before the Update completed.', applicationFailureInfo: { type: 'AcceptedUpdateCompletedWorkflow' } };
  expect(await heldUpdate(clientAnswering({ outcome: { failure } }), 'job', 'u')).toBe('job_ended');
});

test('not known to Temporal, or no answer: unknown', async () => {
  expect(await heldUpdate(clientAnswering(new Error('5 NOT_FOUND: update not found')), 'job', 'u')).toBe('unknown');
});
