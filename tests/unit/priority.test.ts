import { fairnessKey, FAIRNESS_KEY_MAX_BYTES, PRIORITY_KEYS, taskPriority } from '../../training/priority';

describe('task priority (FLOW-016)', () => {
  it('maps P0/P1/P2 to Temporal priority keys 1/3/5 (lower is sooner; 3 is the server default)', () => {
    expect(PRIORITY_KEYS).toEqual({ P0: 1, P1: 3, P2: 5 });
    expect(taskPriority('P0', 'acme')).toEqual({ priorityKey: 1, fairnessKey: 'acme' });
    expect(taskPriority('P2', 'acme').priorityKey).toBeGreaterThan(taskPriority('P1', 'acme').priorityKey);
  });

  it.each([
    ['ASCII (1 byte each)', 'a', 64],
    ['2-byte characters', 'é', 32],
    ['3-byte characters', '€', 21],
    ['4-byte characters', '😀', 16],
  ])('cuts the tenant id to %s at a character boundary within 64 UTF-8 bytes', (_name, char, fits) => {
    const key = fairnessKey(char.repeat(100));
    expect(key).toBe(char.repeat(fits));
    expect(Buffer.byteLength(key)).toBeLessThanOrEqual(FAIRNESS_KEY_MAX_BYTES);
  });

  it('keeps short tenant ids whole', () => {
    expect(fairnessKey('tenant-é')).toBe('tenant-é');
  });
});
