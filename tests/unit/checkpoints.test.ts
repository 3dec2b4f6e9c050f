import {
  DEFAULT_KEEP_BEST,
  bestCheckpoint,
  CheckpointSelectorSchema,
  checkpointScore,
  checkpointsToDelete,
  compareBestFirst,
  comparePositions,
  describeCheckpointSelector,
  latestCheckpoint,
  selectCheckpoint,
  type ScoredCheckpoint,
} from '../../training/checkpoints';

const at = (run: number, iteration: number, score?: number | null, eval_score?: number | null): ScoredCheckpoint => ({ run, iteration, score, eval_score });
const positions = (list: readonly ScoredCheckpoint[]) => list.map((c) => `${c.run}-${c.iteration}`);

describe('checkpointScore', () => {
  it('is the held-out evaluation score when there is one', () => {
    expect(checkpointScore({ score: 0.9, eval_score: 0.4 })).toBe(0.4);
    expect(checkpointScore({ score: null, eval_score: 0 })).toBe(0);
  });

  it('else the mean training reward', () => {
    expect(checkpointScore({ score: 0.7 })).toBe(0.7);
    expect(checkpointScore({ score: 0.7, eval_score: null })).toBe(0.7);
    expect(checkpointScore({ score: 0.7, eval_score: Number.NaN })).toBe(0.7);
  });

  it('is null with neither, and non-finite numbers do not count', () => {
    expect(checkpointScore({})).toBeNull();
    expect(checkpointScore({ score: null, eval_score: null })).toBeNull();
    expect(checkpointScore({ score: Number.NaN })).toBeNull();
    expect(checkpointScore({ score: Number.POSITIVE_INFINITY })).toBeNull();
  });
});

describe('ordering', () => {
  it('comparePositions orders by run, then iteration', () => {
    expect([at(2, 1), at(1, 3), at(1, 1), at(2, 0)].sort(comparePositions).map((c) => `${c.run}-${c.iteration}`)).toEqual(['1-1', '1-3', '2-0', '2-1']);
    expect(comparePositions(at(1, 2), at(1, 2))).toBe(0);
  });

  it('compareBestFirst: higher score first, unscored last, ties to the later (run, iteration)', () => {
    const list = [at(1, 1, 0.5), at(1, 2, null), at(1, 3, 0.9), at(2, 1, 0.5), at(1, 4, 0.2, 0.95), at(2, 2), at(1, 5, 0.5)];
    expect(positions([...list].sort(compareBestFirst))).toEqual(['1-4', '1-3', '2-1', '1-5', '1-1', '2-2', '1-2']);
  });

  it('compareBestFirst puts a scored checkpoint before an unscored one in either argument order', () => {
    expect(compareBestFirst(at(1, 1, 0), at(1, 2, null))).toBeLessThan(0);
    expect(compareBestFirst(at(1, 2, null), at(1, 1, 0))).toBeGreaterThan(0);
  });
});

describe('bestCheckpoint and latestCheckpoint', () => {
  it('pick the highest score and the latest position, without reordering the input', () => {
    const list = [at(1, 2, 0.3), at(1, 10, 0.8), at(2, 1, 0.1), at(1, 5, 0.8)];
    expect(bestCheckpoint(list)).toBe(list[1]);
    expect(latestCheckpoint(list)).toBe(list[2]);
    expect(positions(list)).toEqual(['1-2', '1-10', '2-1', '1-5']);
  });

  it('prefer the evaluation score over the training reward', () => {
    const list = [at(1, 1, 0.9, 0.2), at(1, 2, 0.1, 0.6)];
    expect(bestCheckpoint(list)).toBe(list[1]);
  });

  it('a tie goes to the latest (run, iteration), across runs too', () => {
    expect(bestCheckpoint([at(2, 1, 0.5), at(1, 9, 0.5), at(2, 3, 0.5), at(2, 2, 0.5)])).toEqual(at(2, 3, 0.5));
  });

  it('unscored checkpoints lose to scored ones; if none is scored, the latest is best', () => {
    expect(bestCheckpoint([at(1, 3, null), at(1, 1, 0)])).toEqual(at(1, 1, 0));
    expect(bestCheckpoint([at(1, 1), at(1, 2)])).toEqual(at(1, 2));
  });

  it('are undefined for no checkpoints', () => {
    expect(bestCheckpoint([])).toBeUndefined();
    expect(latestCheckpoint([])).toBeUndefined();
  });
});

describe('checkpointsToDelete', () => {
  it('keeps the best 5 and the latest by default and returns the rest in (run, iteration) order', () => {
    expect(DEFAULT_KEEP_BEST).toBe(5);
    const scores = [0.9, 0.1, 0.8, 0.2, 0.7, 0.6, 0.3, 0.5]; // iteration 8 (0.5) is the latest
    const list = scores.map((score, i) => at(1, i + 1, score));
    // Best five: 1 (0.9), 3 (0.8), 5 (0.7), 6 (0.6), 8 (0.5); the latest, 8, is among them.
    expect(positions(checkpointsToDelete(list))).toEqual(['1-2', '1-4', '1-7']);
  });

  it('keeps the latest as well when it is not among the best', () => {
    const list = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.05].map((score, i) => at(1, i + 1, score));
    expect(positions(checkpointsToDelete(list))).toEqual(['1-6', '1-7']);
  });

  it('ranks by the evaluation score when there is one, and breaks ties towards the latest', () => {
    const list = [at(1, 1, 0.9, 0.1), at(1, 2, 0.5), at(1, 3, 0.5), at(1, 4, 0.2, 0.7), at(1, 5, 0.3)];
    expect(positions(checkpointsToDelete(list, 2))).toEqual(['1-1', '1-2']);
  });

  it('deletes nothing while there are at most keepBest + 1 checkpoints', () => {
    expect(checkpointsToDelete([])).toEqual([]);
    expect(checkpointsToDelete([at(1, 1, 0.9), at(1, 2, 0.2)], 1)).toEqual([]);
    expect(checkpointsToDelete([0.6, 0.5, 0.4, 0.3, 0.2, 0.1].map((s, i) => at(1, i + 1, s)))).toEqual([]);
  });

  it('keepBest = 0 keeps only the latest, across runs', () => {
    const list = [at(2, 1, 0.1), at(1, 5, 0.9), at(1, 6, 0.95)];
    expect(positions(checkpointsToDelete(list, 0))).toEqual(['1-5', '1-6']);
  });

  it('returns the caller’s objects, so they can carry more (e.g. the blob key)', () => {
    const list = [0.3, 0.1, 0.2].map((score, i) => ({ ...at(1, i + 1, score), blobKey: `k${i + 1}` }));
    expect(checkpointsToDelete(list, 1).map((c) => c.blobKey)).toEqual(['k2']);
  });

  it.each([-1, 1.5, Number.NaN])('rejects keepBest = %p', (keepBest) => {
    expect(() => checkpointsToDelete([at(1, 1, 0.1)], keepBest)).toThrow(`keepBest must be a non-negative integer, got ${keepBest}`);
  });
});

describe('selectCheckpoint: the one selection the API and the checkpoint store use', () => {
  const kept = [at(1, 2, 0.9), at(1, 4, 0.3), at(2, 5, 0.5)];

  it('best, latest, or one by position; undefined when the job has none such', () => {
    expect(selectCheckpoint(kept, 'best')).toBe(kept[0]);
    expect(selectCheckpoint(kept, 'latest')).toBe(kept[2]);
    expect(selectCheckpoint(kept, { run: 1, iteration: 4 })).toBe(kept[1]);
    expect(selectCheckpoint(kept, { run: 2, iteration: 4 })).toBeUndefined();
    expect(selectCheckpoint([], 'best')).toBeUndefined();
    expect(selectCheckpoint([], 'latest')).toBeUndefined();
  });

  it('describes a selector for messages', () => {
    expect(describeCheckpointSelector('best')).toBe('best checkpoint');
    expect(describeCheckpointSelector({ run: 2, iteration: 3 })).toBe('checkpoint at run 2, iteration 3');
  });

  it('CheckpointSelectorSchema takes "best", "latest" or a position of non-negative integers', () => {
    for (const which of ['best', 'latest', { run: 0, iteration: 0 }, { run: 3, iteration: 7 }]) expect(CheckpointSelectorSchema.safeParse(which).success).toBe(true);
    for (const which of ['first', { run: -1, iteration: 0 }, { run: 1.5, iteration: 0 }, { run: 1 }, null]) expect(CheckpointSelectorSchema.safeParse(which).success).toBe(false);
  });
});
