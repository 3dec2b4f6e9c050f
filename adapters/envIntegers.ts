/**
 * Whole numbers from the environment (ports, pool sizes, counts), checked where a process starts,
 * before anything is opened. `Number()` alone let "abc" through as NaN and "-3" as a pool of -3
 * connections: the first failed far away without naming the variable ("Invalid URL"), the second
 * left every query waiting. Here a wrong value is one line naming the variable and the value.
 */

/** A setting refused where a process starts: the process entries answer it as a usage error. */
export class SettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingError';
  }
}

/** An integer from min to max, or `fallback` when the variable is unset or empty; anything else throws naming it. */
export function integerFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, { min, max, unit }: { min: number; max: number; unit?: string }): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  // Digits only: Number() also reads "1e3", "0x10" and " ", which nobody means as a pool size.
  if (!/^[+-]?\d+$/.test(raw.trim()) || value < min || value > max) {
    throw new SettingError(`${name} must be an integer from ${min} to ${max}${unit ? ` (${unit})` : ''}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** A TCP port (a server listens on it, or is reached on it), or `fallback` when unset or empty; 0 is refused. */
export function tcpPortFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  try {
    return integerFromEnv(env, name, fallback, { min: 1, max: 65535 });
  } catch {
    throw new SettingError(`${name} must be an integer port 1-65535, got ${JSON.stringify(env[name])}`);
  }
}
