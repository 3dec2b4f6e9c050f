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

/** The spend ledger (`llm_calls`): every model call, opened before it is made and settled as it returns. */
export class SpendLedgerRepository {
  constructor(private readonly prisma: PrismaClient) {}

  /** Before the call: the row at the call's worst case (no tokens yet). */
  async open(entry: Omit<LedgerEntry, 'promptTokens' | 'completionTokens'>): Promise<void> {
    await this.prisma.llmCall.createMany({ data: [{ ...entry, promptTokens: 0, completionTokens: 0 }], skipDuplicates: true });
  }

  /** As the call returns: what it really used and cost (a failed call: nothing, $0). */
  async settle(callKey: string, used: Pick<LedgerEntry, 'promptTokens' | 'completionTokens' | 'costUsd'>): Promise<void> {
    await this.prisma.llmCall.update({ where: { callKey }, data: { ...used, settled: true } });
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
