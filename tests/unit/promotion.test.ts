import { promotionRefusal, type PromotionCase } from '../../training/promotion';
import { initialPolicy } from '../../training/policy';
import { startingPolicy } from '../../training/startingPolicy';
import { etagMatches, holdsNoTestSplit, policyContentHash, policyEtag, PolicyRegistry } from '../../api/policyRegistry';
import type { Repositories } from '../../adapters/db';
import type { EvaluationSummary } from '../../training/evaluation';

const metrics = { value: 0.5, ci_low: 0.4, ci_high: 0.6, n: 8 };
const summary = (significant: boolean, meanDifference = 0.25): EvaluationSummary => ({
  job_id: 'job-1',
  run: 1,
  iteration: 10,
  kind: 'test',
  held_out_queries: 8,
  samples_per_query: 8,
  current: { success_rate: metrics, avg_reward: metrics, avg_steps: metrics, tool_accuracy: null, episodes: 64, failed_episodes: 0 },
  baseline: { success_rate: metrics, avg_reward: metrics, avg_steps: metrics, tool_accuracy: null, episodes: 64, failed_episodes: 0 },
  welch: { t: 1, df: 10, p: 0.3, mean_difference: 0.1 },
  alpha: 0.05,
  significant_improvement: significant,
  cost_usd: 0,
  split: 'test',
  success_test: { metric: 'success', queries: 8, mean_difference: meanDifference, t: 1.2, df: 7, p: significant ? 0.01 : 0.26, bootstrap: { ci_low: -0.05, ci_high: 0.4, resamples: 1000, seed: 1 } },
});
const base: PromotionCase = { job_id: 'job-1', checkpoint: { run: 1, iteration: 10 }, evaluation: summary(true), active: null, job_base: null };
const hashA = 'a'.repeat(64);
const hashB = 'b'.repeat(64);

describe('promotionRefusal', () => {
  test('v1: a significant test-split improvement over the untrained start is enough', () => {
    expect(promotionRefusal(base)).toBeNull();
  });

  test('no test-split evaluation: refused, saying how to get one', () => {
    expect(promotionRefusal({ ...base, evaluation: null })).toMatch(/has no test-split evaluation; run training\.evaluate \{job_id: "job-1", checkpoint: \{run: 1, iteration: 10\}\}/);
    // The job ran its test evaluation (so training.evaluate uses the test split), just not of this checkpoint.
    expect(promotionRefusal({ ...base, evaluation: null, test_split: { state: 'evaluated', job_status: 'completed' } })).toMatch(/has no test-split evaluation; run training\.evaluate/);
  });

  test('no test-split evaluation that training.evaluate could produce: the refusal says why, not "run training.evaluate"', () => {
    const refusal = (state: 'pending' | 'missed' | 'none', job_status: string) => promotionRefusal({ ...base, evaluation: null, test_split: { state, job_status } });
    expect(refusal('pending', 'running')).toBe(
      'job "job-1" run 1, iteration 10 has no test-split evaluation yet: job "job-1" is running, and its test evaluation runs after its last iteration; promote once it has completed',
    );
    for (const status of ['cancelled', 'budget_exceeded', 'failed']) {
      const missed = refusal('missed', status);
      expect(missed).toContain(`job "job-1" ended ${status} before its test evaluation (after the last iteration) ran, and training.evaluate evaluates such a job on its validation split`);
      expect(missed).toContain('resume it to the end (training.resume), or an admin may force the promotion with a reason');
      expect(missed).not.toContain('run training.evaluate');
    }
    expect(refusal('none', 'completed')).toContain('the job held out no test split (test_fraction 0)');
    // Evidence, when there is some, decides whatever the split's state.
    expect(promotionRefusal({ ...base, test_split: { state: 'missed', job_status: 'cancelled' } })).toBeNull();
  });

  test('not significant: refused with the numbers', () => {
    const refusal = promotionRefusal({ ...base, evaluation: summary(false, 0.031) });
    expect(refusal).toContain("no significant improvement over the job's untrained base prompt at alpha 0.05");
    expect(refusal).toContain('success per query +0.031 over 8 queries, paired p=0.260, bootstrap 95% [-0.050, +0.400]');
  });

  test('with an active version, only an evaluation against that version counts', () => {
    const active = { version: 3, content_hash: hashA };
    expect(promotionRefusal({ ...base, active })).toMatch(/compares against the job's untrained base prompt, not against the active v3; start a job with base: "active"/);
    expect(promotionRefusal({ ...base, active, job_base: { version: 2, content_hash: hashB } })).toMatch(/compares against v2 \(the job started from it\), not against the active v3/);
    expect(promotionRefusal({ ...base, active, job_base: { version: 3, content_hash: hashA } })).toBeNull();
    // A rollback's version has an older version's content: a job started from that content speaks for it.
    expect(promotionRefusal({ ...base, active, job_base: { version: 1, content_hash: hashA } })).toBeNull();
    expect(promotionRefusal({ ...base, active, job_base: { version: 3, content_hash: hashA }, evaluation: summary(false) })).toContain('no significant improvement over v3');
  });

  test('an evaluation without a per-query success test (older summaries) or without its p and interval: refused with what it has', () => {
    const { success_test: _omitted, ...older } = summary(false);
    expect(promotionRefusal({ ...base, evaluation: older as EvaluationSummary })).toContain('reward +0.100, Welch p=0.300');
    const bare = summary(false, -0.125);
    bare.success_test = { ...bare.success_test!, p: null, bootstrap: null } as never;
    const refusal = promotionRefusal({ ...base, evaluation: bare });
    expect(refusal).toContain('success per query -0.125 over 8 queries, paired p=n/a');
    expect(refusal).not.toContain('bootstrap');
  });
});

describe('startingPolicy', () => {
  test('the base prompt with no lessons, or the active version the API resolved into the input', () => {
    expect(startingPolicy({ base_prompt: 'Be helpful.' })).toEqual(initialPolicy('Be helpful.'));
    const active = { ...initialPolicy('Tuned.'), lessons: [{ id: 'L1', text: 'For billing tasks, call query_database first.', weight: 0.6 }] };
    expect(startingPolicy({ base_prompt: 'Be helpful.', initial_policy: { version: 2, content_hash: 'c'.repeat(64), policy: active } })).toBe(active);
  });
});

describe('policy content hash and ETag', () => {
  const policy = { base_prompt: 'Be careful.', lessons: [{ id: 'l1', text: 'Use the calculator.', weight: 0.5 }] };
  test('equal content, equal hash; any change, another', () => {
    expect(policyContentHash(policy)).toMatch(/^[0-9a-f]{64}$/);
    expect(policyContentHash({ ...policy })).toBe(policyContentHash(policy));
    expect(policyContentHash({ ...policy, lessons: [{ ...policy.lessons[0], weight: 0.6 }] })).not.toBe(policyContentHash(policy));
  });
  test('If-None-Match: exact, weak, in a list, or *', () => {
    const etag = policyEtag(2, hashA);
    expect(etag).toBe(`"v2-${'a'.repeat(16)}"`);
    expect(etagMatches(etag, etag)).toBe(true);
    expect(etagMatches(`W/${etag}`, etag)).toBe(true);
    expect(etagMatches(`"x", ${etag}`, etag)).toBe(true);
    expect(etagMatches('*', etag)).toBe(true);
    expect(etagMatches(undefined, etag)).toBe(false);
    expect(etagMatches(policyEtag(3, hashA), etag)).toBe(false);
  });
});

describe('PolicyRegistry read cache', () => {
  const row = (version: number) => ({
    id: `id-${version}`,
    tenantId: 't',
    agentId: 'a',
    version,
    kind: 'promote',
    policy: { version: 3, base_prompt: `Base v${version}.`, lessons: [] },
    contentHash: String(version).repeat(64).slice(0, 64),
    sourceJobId: 'job-1',
    sourceRun: 1,
    sourceIteration: 2,
    evaluation: null,
    rollbackOf: null,
    reason: null,
    refusal: null,
    createdBy: 'alice',
    createdAt: new Date('2026-12-06T00:00:00Z'),
  });
  /** An in-memory stand-in for the policy_versions repository that counts its queries. */
  function fakeRepos() {
    const state = { version: 1, rowReads: 0, versionReads: 0, hold: null as Promise<void> | null };
    const policyVersions = {
      async active() {
        state.rowReads++;
        const read = state.version;
        if (state.hold) await state.hold;
        return read ? row(read) : null;
      },
      async activeVersion() {
        state.versionReads++;
        return state.version;
      },
    };
    return { state, repos: { policyVersions } as unknown as Repositories };
  }

  test('within the TTL from memory; after it one version-number query; the row only when the version changed', async () => {
    const { state, repos } = fakeRepos();
    const registry = new PolicyRegistry(repos, { cacheTtlMs: 50 });
    const first = await registry.active('t', 'a');
    expect(first).toMatchObject({ version: 1, etag: policyEtag(1, row(1).contentHash) });
    expect(JSON.parse(first!.json)).toEqual(first!.body);
    await Promise.all([registry.active('t', 'a'), registry.active('t', 'a')]);
    expect(state).toMatchObject({ rowReads: 1, versionReads: 0 });
    await new Promise((resolve) => setTimeout(resolve, 60));
    await Promise.all([registry.active('t', 'a'), registry.active('t', 'a')]);
    expect(state).toMatchObject({ rowReads: 1, versionReads: 1 });
    state.version = 2; // another replica promoted
    expect((await registry.active('t', 'a'))?.version).toBe(1); // still within the TTL
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect((await registry.active('t', 'a'))?.version).toBe(2);
    expect(state).toMatchObject({ rowReads: 2, versionReads: 2 });
  });

  test('a promotion here is seen at once, even by a read that started before it', async () => {
    const { state, repos } = fakeRepos();
    const registry = new PolicyRegistry(repos, { cacheTtlMs: 60_000 });
    let release!: () => void;
    state.hold = new Promise((resolve) => (release = resolve));
    const slow = registry.active('t', 'a'); // reads v1, then waits
    state.version = 2;
    registry.invalidate('t', 'a'); // this process promoted v2 meanwhile
    state.hold = null;
    release();
    expect((await slow)?.version).toBe(1);
    expect((await registry.active('t', 'a'))?.version).toBe(2);
  });

  test('an agent without versions is remembered as such, too', async () => {
    const { state, repos } = fakeRepos();
    state.version = 0;
    const registry = new PolicyRegistry(repos, { cacheTtlMs: 60_000 });
    expect(await registry.active('t', 'a')).toBeNull();
    expect(await registry.active('t', 'a')).toBeNull();
    expect(state.rowReads).toBe(1);
  });
});

describe('holdsNoTestSplit: when training.evaluate can never produce a test-split evaluation', () => {
  const queries = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `q${i}`, prompt: `question ${i}` }));
  const job = (training: number, config: Record<string, unknown> = {}, evaluation = 0) => ({
    training_queries: queries(training),
    evaluation_queries: queries(evaluation),
    config: { eval_fraction: 0.2, test_fraction: 0.2, seed: 1, ...config },
  });
  test('evaluation off, test_fraction 0, or too few queries for a test query: no test split', () => {
    expect(holdsNoTestSplit(job(20, { evaluate: false }))).toBe(true);
    expect(holdsNoTestSplit(job(20, { test_fraction: 0 }))).toBe(true);
    expect(holdsNoTestSplit(job(2))).toBe(true);
    expect(holdsNoTestSplit(job(4, {}, 1))).toBe(true);
  });
  test('a job that held test queries out, or input it cannot read: not this case', () => {
    expect(holdsNoTestSplit(job(20))).toBe(false);
    expect(holdsNoTestSplit(job(4, {}, 10))).toBe(false);
    expect(holdsNoTestSplit(null)).toBe(false);
    expect(holdsNoTestSplit({ config: {} })).toBe(false);
  });
});
