import type { Prisma, PrismaClient } from '../../generated/prisma/client';

/** The global kill switch: while on, running jobs pause at their next batch boundary and new jobs start paused. */
export interface KillSwitchSetting {
  on: boolean;
  reason: string | null;
  /** When it was last set (ISO 8601); null when it never was. */
  at: string | null;
  /** Who set it last (the token's subject); null when it never was. */
  by: string | null;
}

export const KILL_SWITCH_KEY = 'kill_switch';

/** What the kill switch is when nobody ever set it. */
export const KILL_SWITCH_OFF: KillSwitchSetting = { on: false, reason: null, at: null, by: null };

/** Global settings (`flow_settings`): one JSON value per key. */
export class SettingsRepository {
  constructor(private readonly prisma: PrismaClient) {}

  async get(key: string): Promise<Prisma.JsonValue | null> {
    const row = await this.prisma.flowSetting.findUnique({ where: { key } });
    return row?.value ?? null;
  }

  async set(key: string, value: Prisma.InputJsonValue): Promise<void> {
    await this.prisma.flowSetting.upsert({ where: { key }, create: { key, value }, update: { value } });
  }

  async getKillSwitch(): Promise<KillSwitchSetting> {
    return parseKillSwitch(await this.get(KILL_SWITCH_KEY));
  }

  /** Stores the switch and returns what was stored. */
  async setKillSwitch(change: { on: boolean; reason?: string | null; by: string }): Promise<KillSwitchSetting> {
    const setting: KillSwitchSetting = { on: change.on, reason: change.reason ?? null, at: new Date().toISOString(), by: change.by };
    await this.set(KILL_SWITCH_KEY, { ...setting });
    return setting;
  }
}

/** A stored value read defensively: anything but `on: true` is off. */
function parseKillSwitch(value: Prisma.JsonValue | null): KillSwitchSetting {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ...KILL_SWITCH_OFF };
  const text = (field: unknown) => (typeof field === 'string' ? field : null);
  return { on: value.on === true, reason: text(value.reason), at: text(value.at), by: text(value.by) };
}
