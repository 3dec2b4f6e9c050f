import type { PrismaClient } from './prismaClient';

/** One model call as billed: its tokens and cost, under the activity attempt that made it. */
export interface LedgerEntry {
  /** Chosen before the call, so a retried write of the same call is a no-op. */
  callKey: string;
  jobId: string;
  /** `<workflow run id>/<activity id>`: one activity, whatever its attempt. */
  activity: string;
  attempt: number;
  model: string;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

/** Why a call was not admitted: the job's budget cannot hold its worst case. */
export interface BudgetRefusal {
  /** What the job's calls have cost or may still cost (in flight at their worst case). */
  committedUsd: number;
  /** The worst cases of the job's calls still in flight: room that frees up as they return. */
  inFlightUsd: number;
  budgetUsd: number;
}

/**
 * The spend ledger (`llm_calls`): every model call, opened before it is made and settled as it
 * returns. `training_jobs.committed_usd` is kept equal to the job's ledger total in the same
 * transactions, so admitting a call against the budget is one conditional update.
 */
export class SpendLedgerRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /**
   * Before the call: the row at the call's worst case (no tokens yet). `budgeted`: only if the
   * job's committed spend plus this worst case stays within its budget; otherwise nothing is
   * written and the refusal says why. A job with no row (a bare activity in a test) holds nothing.
   */
  async open(entry: Omit<LedgerEntry, 'promptTokens' | 'completionTokens'>, { budgeted = false } = {}): Promise<BudgetRefusal | null> {
    const { callKey, jobId, activity, attempt, model, costUsd } = entry;
    // One statement: the job's committed spend grows by the worst case only if it still fits (a
    // row lock serialises the job's concurrent calls), and the call's row exists only if it did.
    const opened = await this.prisma.$queryRaw<{ call_key: string }[]>`
      WITH admitted AS (
        UPDATE training_jobs SET committed_usd = committed_usd + ${costUsd}
        WHERE id = ${jobId} AND (NOT ${budgeted} OR round((committed_usd + ${costUsd}) * 1e6) <= round(budget_usd * 1e6))
        RETURNING id
      )
      INSERT INTO llm_calls (call_key, job_id, activity, attempt, model, prompt_tokens, completion_tokens, cost_usd)
      SELECT ${callKey}, ${jobId}, ${activity}, ${attempt}, ${model}, 0, 0, ${costUsd}
      WHERE EXISTS (SELECT 1 FROM admitted) OR NOT EXISTS (SELECT 1 FROM training_jobs WHERE id = ${jobId})
      ON CONFLICT (call_key) DO NOTHING
      RETURNING call_key`;
    if (opened.length > 0) return null;
    const [job, inFlight] = await Promise.all([
      this.prisma.trainingJob.findUnique({ where: { id: jobId }, select: { committedUsd: true, budgetUsd: true } }),
      this.prisma.llmCall.aggregate({ where: { jobId, settled: false }, _sum: { costUsd: true } }),
    ]);
    return { committedUsd: job?.committedUsd ?? 0, inFlightUsd: inFlight._sum.costUsd ?? 0, budgetUsd: job?.budgetUsd ?? 0 };
  }

  /** As the call returns: what it really used and cost (a failed call: nothing, $0). Once per call. */
  async settle(callKey: string, used: Pick<LedgerEntry, 'promptTokens' | 'completionTokens' | 'costUsd'>): Promise<void> {
    // One statement: the row takes its real cost and the job's committed spend moves by the difference.
    await this.prisma.$executeRaw`
      WITH opened AS (
        SELECT call_key, job_id, cost_usd AS worst_case FROM llm_calls WHERE call_key = ${callKey} AND NOT settled FOR UPDATE
      ), settled AS (
        UPDATE llm_calls l SET prompt_tokens = ${used.promptTokens}, completion_tokens = ${used.completionTokens}, cost_usd = ${used.costUsd}, settled = true
        FROM opened o WHERE l.call_key = o.call_key
        RETURNING o.job_id, o.worst_case
      )
      UPDATE training_jobs j SET committed_usd = j.committed_usd - s.worst_case + ${used.costUsd} FROM settled s WHERE j.id = s.job_id`;
  }

  /**
   * The calls an activity's earlier attempts opened and never settled (a kill caught them in
   * flight), with how long ago each was opened by the database's clock (workers' clocks may differ).
   */
  async unsettledBefore(activity: string, attempt: number): Promise<{ callKey: string; model: string; ageMs: number }[]> {
    const rows = await this.prisma.$queryRaw<{ call_key: string; model: string; age_ms: number }[]>`
      SELECT call_key, model, (EXTRACT(EPOCH FROM clock_timestamp() - created_at) * 1000)::float8 AS age_ms
      FROM llm_calls WHERE activity = ${activity} AND attempt < ${attempt} AND NOT settled ORDER BY created_at`;
    return rows.map((row) => ({ callKey: row.call_key, model: row.model, ageMs: Number(row.age_ms) }));
  }

  /** What the activity's earlier attempts (those before `attempt`) were billed. */
  async spentBefore(activity: string, attempt: number): Promise<number> {
    const { _sum } = await this.prisma.llmCall.aggregate({ where: { activity, attempt: { lt: attempt } }, _sum: { costUsd: true } });
    return _sum.costUsd ?? 0;
  }

  /** Everything the job's model calls were billed (unsettled ones at their worst case), and how many calls. */
  async totalForJob(jobId: string): Promise<{ calls: number; unsettled: number; costUsd: number; promptTokens: number; completionTokens: number }> {
    const where = { jobId };
    const [{ _sum, _count }, unsettled] = await Promise.all([
      this.prisma.llmCall.aggregate({ where, _sum: { costUsd: true, promptTokens: true, completionTokens: true }, _count: true }),
      this.prisma.llmCall.count({ where: { jobId, settled: false } }),
    ]);
    return { calls: _count, unsettled, costUsd: _sum.costUsd ?? 0, promptTokens: _sum.promptTokens ?? 0, completionTokens: _sum.completionTokens ?? 0 };
  }
}
