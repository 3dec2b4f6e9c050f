/**
 * In-process sampling CPU profile (V8's profiler through node:inspector), summarised into
 * where a Prisma write's Node CPU goes: Prisma's WASM query compiler, the rest of Prisma's
 * client runtime and driver adapter, node-postgres and socket I/O, garbage collection.
 */
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export type CpuCategory = 'query_compiler' | 'prisma_runtime' | 'pg_driver_io' | 'gc' | 'other';

export const CPU_CATEGORY_LABELS: Record<CpuCategory, string> = {
  query_compiler: "Prisma's query compiler (WASM compile of each query)",
  prisma_runtime: "Prisma's client runtime and pg adapter (request building, plan interpretation, transaction, result mapping)",
  pg_driver_io: 'node-postgres and socket I/O',
  gc: 'garbage collection',
  other: 'other (bench harness, Node internals)',
};

export interface CpuBreakdown {
  busyMs: number;
  /** Share of busy (non-idle) CPU samples per category, 0..1. */
  shares: Record<CpuCategory, number>;
}

export async function profiled<T>(fn: () => Promise<T>): Promise<{ result: T; breakdown: CpuBreakdown }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 1000 });
    await session.post('Profiler.start');
    const result = await fn();
    const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
    return { result, breakdown: summarise(profile) };
  } finally {
    session.disconnect();
  }
}

function summarise(profile: Profile): CpuBreakdown {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfTime = new Map<number, number>();
  profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const totals: Record<CpuCategory, number> = { query_compiler: 0, prisma_runtime: 0, pg_driver_io: 0, gc: 0, other: 0 };
  let busy = 0;
  for (const [id, micros] of selfTime) {
    const leaf = byId.get(id)!;
    if (leaf.callFrame.functionName === '(idle)') continue;
    busy += micros;
    totals[categorise(leaf, byId, parent)] += micros;
  }
  const shares = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, busy > 0 ? v / busy : 0])) as Record<CpuCategory, number>;
  return { busyMs: busy / 1000, shares };
}

function categorise(leaf: ProfileNode, byId: Map<number, ProfileNode>, parent: Map<number, number>): CpuCategory {
  if (leaf.callFrame.functionName === '(garbage collector)') return 'gc';
  const stack: ProfileNode[] = [];
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) stack.push(byId.get(id)!);
  const url = (node: ProfileNode) => node.callFrame.url;
  if (stack.some((node) => url(node).includes('query_compiler') || url(node).startsWith('wasm://'))) return 'query_compiler';
  if (['writev', 'writeBuffer', 'writeUtf8String', 'onStreamRead'].includes(leaf.callFrame.functionName)) return 'pg_driver_io';
  if (stack.some((node) => /node_modules\/(pg|pg-protocol|pg-pool|pg-types)\//.test(url(node)))) return 'pg_driver_io';
  if (stack.some((node) => url(node).includes('/runtime/client.js') || url(node).includes('@prisma/adapter-pg') || url(node).includes('/generated/prisma/'))) {
    return 'prisma_runtime';
  }
  return 'other';
}
