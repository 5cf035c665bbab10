/**
 * Alertmanager's time intervals, camelCased: named lists of
 * `{times, weekdays, daysOfMonth, months, years, location}`. A named interval
 * is active when any of its entries is; an entry is active when every field
 * it sets holds at that instant in its `location` (default UTC). Each field is
 * read on its own, at the current instant: `weekdays: [friday]` with
 * `times: [{startTime: '22:00', endTime: '06:00'}]` covers Friday 22:00 to
 * midnight and Friday 00:00 to 06:00, not Saturday morning.
 *
 * Pure functions of the settings and a time in ms, so the gate, the `routes
 * test` command and the digest flusher agree, and tests need no clock.
 */

export interface TimeRangeConfig {
  /** `HH:MM`, inclusive. */
  startTime: string;
  /** `HH:MM` (up to `24:00`), exclusive. Earlier than `startTime`: wraps past midnight. */
  endTime: string;
}

export interface TimeIntervalEntryConfig {
  times?: TimeRangeConfig[] | undefined;
  /** `monday`, `monday:friday`, `saturday:sunday`. */
  weekdays?: string[] | undefined;
  /** `1`, `1:5`, `-1` (the last day), `-3:-1`. */
  daysOfMonth?: string[] | undefined;
  /** `january`, `1`, `january:march`, `11:12`. */
  months?: string[] | undefined;
  /** `2025`, `2025:2027`. */
  years?: string[] | undefined;
  /** IANA time zone, `UTC` by default; `Local` is the relay's own zone. */
  location?: string | undefined;
}

export interface TimeIntervalConfig {
  name: string;
  timeIntervals: TimeIntervalEntryConfig[];
}

export type SettingPath = ReadonlyArray<string | number>;

/** `['times', 0, 'startTime']` → `times[0].startTime`. */
export function formatSettingPath(path: SettingPath): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${p}`))
    .join('');
}

/** A setting that does not describe a time; `path` is relative to what was compiled. */
export class TimeIntervalError extends Error {
  override readonly name = 'TimeIntervalError';
  constructor(
    readonly path: SettingPath,
    message: string,
  ) {
    super(message);
  }
}

type Range = readonly [number, number];

interface CompiledEntry {
  /** Minutes of the day, `[start, end)`; wrapping ranges are split in two. */
  times?: Range[];
  /** ISO weekdays 1 (Monday) to 7 (Sunday). */
  weekdays?: Set<number>;
  /** Signed days of month as written; resolved against the month's length. */
  daysOfMonth?: Range[];
  months?: Set<number>;
  years?: Range[];
  zone: string;
}

export interface CompiledTimeInterval {
  name: string;
  entries: readonly CompiledEntry[];
}

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];

function parseClock(value: string, path: SettingPath, allow24: boolean): number {
  const m = /^(\d{2}):(\d{2})$/.exec(value);
  const minutes = m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
  if (!m || Number(m[2]) > 59 || minutes > (allow24 ? 1440 : 1439)) {
    throw new TimeIntervalError(
      path,
      `${JSON.stringify(value)} is not a time of day: use HH:MM, 00:00 to ${allow24 ? '24:00' : '23:59'}`,
    );
  }
  return minutes;
}

function split(item: string): [string, string] {
  const parts = item.split(':');
  if (parts.length === 1) return [parts[0]!, parts[0]!];
  if (parts.length === 2) return [parts[0]!, parts[1]!];
  return ['', ''];
}

function named(names: string[], value: string, numeric: boolean): number | undefined {
  const i = names.indexOf(value.trim().toLowerCase());
  if (i !== -1) return i + 1;
  return numeric && /^\d+$/.test(value.trim()) ? Number(value) : undefined;
}

/** Inclusive `a:b` items over a cyclic set (weekdays, months): a range may wrap. */
function cyclicSet(
  items: string[],
  path: string,
  names: string[],
  what: 'weekday' | 'month',
): Set<number> {
  const n = names.length;
  // Months may be numbers (Alertmanager allows 1 to 12); weekdays only names,
  // since whether 0 or 7 is Sunday differs between systems.
  const numeric = what === 'month';
  const out = new Set<number>();
  for (const [i, item] of items.entries()) {
    const [a, b] = split(item);
    const start = named(names, a, numeric);
    const end = named(names, b, numeric);
    if (start === undefined || end === undefined || start < 1 || end < 1 || start > n || end > n) {
      throw new TimeIntervalError(
        [path, i],
        `${JSON.stringify(item)} is not a ${what} or a range of them (${names[0]}, ${names[0]}:${names[n - 1]}${what === 'month' ? ', 1:12' : ''})`,
      );
    }
    for (let d = start; ; d = (d % n) + 1) {
      out.add(d);
      if (d === end) break;
    }
  }
  return out;
}

function numberRanges(
  items: string[],
  path: string,
  check: (v: number) => boolean,
  what: string,
): Range[] {
  return items.map((item, i) => {
    const m = /^(-?\d+)(?::(-?\d+))?$/.exec(item.trim());
    const a = m ? Number(m[1]) : NaN;
    const b = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || !check(a) || !check(b)) {
      throw new TimeIntervalError([path, i], `${JSON.stringify(item)} is not ${what}`);
    }
    return [a, b] as const;
  });
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'long',
    });
    formatters.set(zone, f);
  }
  return f;
}

function checkZone(location: string): string {
  const zone = location === 'Local' ? Intl.DateTimeFormat().resolvedOptions().timeZone : location;
  try {
    formatter(zone);
  } catch {
    throw new TimeIntervalError(
      ['location'],
      `${JSON.stringify(location)} is not a time zone: use an IANA name such as Europe/Berlin, UTC or Local`,
    );
  }
  return zone;
}

/** Compile one entry; throws `TimeIntervalError` naming the field. */
export function compileEntry(entry: TimeIntervalEntryConfig): CompiledEntry {
  const out: CompiledEntry = { zone: checkZone(entry.location ?? 'UTC') };
  if (entry.times && entry.times.length > 0) {
    out.times = entry.times.flatMap((t, i) => {
      const start = parseClock(t.startTime, ['times', i, 'startTime'], false);
      const end = parseClock(t.endTime, ['times', i, 'endTime'], true);
      if (start === end) {
        throw new TimeIntervalError(
          ['times', i],
          'startTime and endTime are equal: the range would be empty (use 00:00 to 24:00 for a whole day)',
        );
      }
      return start < end
        ? [[start, end] as const]
        : [[start, 1440] as const, [0, end] as const].filter(([a, b]) => a < b);
    });
  }
  if (entry.weekdays && entry.weekdays.length > 0) {
    out.weekdays = cyclicSet(entry.weekdays, 'weekdays', WEEKDAYS, 'weekday');
  }
  if (entry.daysOfMonth && entry.daysOfMonth.length > 0) {
    out.daysOfMonth = numberRanges(
      entry.daysOfMonth,
      'daysOfMonth',
      (v) => v !== 0 && v >= -31 && v <= 31,
      'a day of the month (1 to 31, -1 the last day, -31 to -1) or a range of them',
    );
    for (const [i, [a, b]] of out.daysOfMonth.entries()) {
      if (Math.sign(a) === Math.sign(b) && a > b) {
        throw new TimeIntervalError(['daysOfMonth', i], 'the range ends before it starts');
      }
    }
  }
  if (entry.months && entry.months.length > 0) {
    out.months = cyclicSet(entry.months, 'months', MONTHS, 'month');
  }
  if (entry.years && entry.years.length > 0) {
    out.years = numberRanges(
      entry.years,
      'years',
      (v) => v >= 1970 && v <= 9999,
      'a year (2025) or a range of years (2025:2027)',
    );
    for (const [i, [a, b]] of out.years.entries()) {
      if (a > b) throw new TimeIntervalError(['years', i], 'the range ends before it starts');
    }
  }
  return out;
}

/** Compile named intervals; throws `TimeIntervalError` with a path from the list. */
export function compileTimeIntervals(
  list: readonly TimeIntervalConfig[],
): Map<string, CompiledTimeInterval> {
  const out = new Map<string, CompiledTimeInterval>();
  for (const [i, interval] of list.entries()) {
    if (out.has(interval.name)) {
      throw new TimeIntervalError([i, 'name'], `duplicate time interval "${interval.name}"`);
    }
    out.set(interval.name, {
      name: interval.name,
      entries: interval.timeIntervals.map((entry, j) => {
        try {
          return compileEntry(entry);
        } catch (err) {
          if (err instanceof TimeIntervalError) {
            throw new TimeIntervalError([i, 'timeIntervals', j, ...err.path], err.message);
          }
          throw err;
        }
      }),
    });
  }
  return out;
}

interface LocalTime {
  year: number;
  month: number;
  day: number;
  /** ISO weekday, 1 Monday to 7 Sunday. */
  weekday: number;
  minutes: number;
}

function localTime(zone: string, nowMs: number): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(zone).formatToParts(nowMs)) parts[p.type] = p.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    weekday: WEEKDAYS.indexOf((parts.weekday ?? '').toLowerCase()) + 1,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

function entryActive(e: CompiledEntry, nowMs: number): boolean {
  const t = localTime(e.zone, nowMs);
  if (e.times && !e.times.some(([a, b]) => t.minutes >= a && t.minutes < b)) return false;
  if (e.weekdays && !e.weekdays.has(t.weekday)) return false;
  if (e.months && !e.months.has(t.month)) return false;
  if (e.years && !e.years.some(([a, b]) => t.year >= a && t.year <= b)) return false;
  if (e.daysOfMonth) {
    const length = new Date(Date.UTC(t.year, t.month, 0)).getUTCDate();
    // Negative days count from the end: -1 is the last day of this month.
    const resolve = (d: number): number => (d < 0 ? length + 1 + d : d);
    if (!e.daysOfMonth.some(([a, b]) => t.day >= resolve(a) && t.day <= resolve(b))) {
      return false;
    }
  }
  return true;
}

/** Whether a compiled interval holds at `nowMs`. */
export function intervalActive(interval: CompiledTimeInterval, nowMs: number): boolean {
  return interval.entries.some((e) => entryActive(e, nowMs));
}

/** The first of `intervals` active at `nowMs`, by name; undefined when none is. */
export function isMuted(
  intervals: Iterable<CompiledTimeInterval>,
  nowMs: number,
): string | undefined {
  for (const interval of intervals) if (intervalActive(interval, nowMs)) return interval.name;
  return undefined;
}
