/**
 * Export a job's trajectories: the successful ones as chat fine-tuning lines (JSONL), page by
 * page, and a reward summary of all of them.
 *
 *   npx tsx examples/export-data.ts "$JOB" /tmp/flow-export.jsonl
 */
import { writeFileSync } from 'node:fs';
import { flowClientFromEnv, run } from './flowEnv';

const PAGE = 1000;

run(async () => {
  const [jobId, out = 'trajectories.jsonl'] = process.argv.slice(2);
  if (!jobId) {
    console.error('usage: export-data.ts <job id> [out.jsonl]');
    return 2;
  }
  const flow = flowClientFromEnv();
  const lines: string[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await flow.exportTrajectories({ job_id: jobId, format: 'jsonl_chat', limit: PAGE, offset });
    lines.push(...(page.lines ?? []));
    if (offset + page.count >= page.total) break;
  }
  writeFileSync(out, lines.map((line) => `${line}\n`).join(''));

  const all = await flow.exportTrajectories({ job_id: jobId, format: 'json', limit: PAGE });
  const rewards = (all.trajectories ?? []).map((t) => t.reward ?? 0);
  const mean = rewards.reduce((sum, r) => sum + r, 0) / Math.max(1, rewards.length);
  console.log(`${lines.length} successful trajectories written to ${out}; ${all.total} in all, mean reward ${mean.toFixed(3)}`);
});
