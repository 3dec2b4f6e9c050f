/** Loading a group's trajectory rows, for the activities that work on a whole group (reward, GRPO, policy update). */
import { ApplicationFailure } from '@temporalio/common';
import type { TrajectoryRepository, TrajectoryRow } from '../adapters/db';

/** Rows in the order of `ids`; a missing row is a bug upstream, so it fails loudly. */
export async function loadInOrder(trajectories: TrajectoryRepository, ids: string[]): Promise<TrajectoryRow[]> {
  const rows = await trajectories.findByIds(ids);
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => {
    const row = byId.get(id);
    if (!row) throw ApplicationFailure.nonRetryable(`trajectory ${id} is not in the database`, 'MissingTrajectory');
    return row;
  });
}
