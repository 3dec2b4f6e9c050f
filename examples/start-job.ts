/**
 * Start a training job on the built-in simulated environment and print its id.
 *
 *   JOB=$(npx tsx examples/start-job.ts)            # agent "example-agent"
 *   npx tsx examples/start-job.ts my-agent 6        # agent id, iterations
 */
import { flowClientFromEnv, run } from './flowEnv';

run(async () => {
  const [agentId = 'example-agent', iterations = '4'] = process.argv.slice(2);
  const flow = flowClientFromEnv();
  const { job_id } = await flow.startGrpo({
    agent_id: agentId,
    task_set: 'simulated-small', // or training_queries: [{ id, prompt, expected_answer }, ...]
    config: {
      iterations: Number(iterations),
      group_size: 8, // trajectories per query: GRPO compares each with its group
      batch_size: 2, // queries per iteration
      learning_rate: 0.5, // how far one update moves a lesson's weight
      budget_usd: 2, // the job stops (budget_exceeded) before it could spend more
      checkpoint_interval: 1,
      eval_interval: 2,
    },
  });
  console.log(job_id);
});
