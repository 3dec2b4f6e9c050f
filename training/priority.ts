/**
 * FLOW-016: a job's priority (P0/P1/P2 in its config) as Temporal task priority. Temporal
 * dispatches a backlogged task queue by `priorityKey` (1..5, lower is sooner; unset = 3), then
 * shares each priority level between `fairnessKey`s (here the tenant), so one tenant's backlog
 * cannot starve another's. Set on the workflow start; the workflow's activities inherit it.
 */
import { z } from 'zod';

/** A job's priority, in its config: P0 is served first, P1 is the default. */
export const PRIORITIES = ['P0', 'P1', 'P2'] as const;
export const PrioritySchema = z.enum(PRIORITIES);
export type Priority = z.infer<typeof PrioritySchema>;

/** The same shape as @temporalio/common's Priority (training/ imports no Temporal package). */
export interface TaskPriority {
  priorityKey: number;
  fairnessKey: string;
}

/** P0 first; P1 is the server's default level (3), so unprioritised work sits with it. */
export const PRIORITY_KEYS: Readonly<Record<Priority, number>> = { P0: 1, P1: 3, P2: 5 };

/** Temporal refuses fairness keys longer than this many bytes (UTF-8). */
export const FAIRNESS_KEY_MAX_BYTES = 64;

export function taskPriority(priority: Priority, tenantId: string): TaskPriority {
  return { priorityKey: PRIORITY_KEYS[priority], fairnessKey: fairnessKey(tenantId) };
}

/**
 * The tenant id cut to 64 UTF-8 bytes at a character boundary. Two tenants whose ids share
 * their first 64 bytes share a fairness bucket; they are still both served.
 */
export function fairnessKey(tenantId: string): string {
  let bytes = 0;
  let key = '';
  for (const char of tenantId) {
    const code = char.codePointAt(0)!;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > FAIRNESS_KEY_MAX_BYTES) break;
    bytes += size;
    key += char;
  }
  return key;
}
