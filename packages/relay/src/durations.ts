const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `250ms`, `5s`, `30m`, `2h`, `7d`. */
export const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** A duration setting in milliseconds; numbers are milliseconds already. */
export function durationMs(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = DURATION.exec(value.trim());
  if (!m) throw new Error(`not a duration: ${JSON.stringify(value)} (use e.g. 30s, 5m, 2h, 1d)`);
  return Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
}
