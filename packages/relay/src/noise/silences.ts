import { randomUUID } from 'node:crypto';
import { WebhookError } from '@plugboard/sdk';
import { DURATION, durationMs } from '../durations';
import type { Store } from '../store/types';
import type { LabelSet } from './labels';
import { MatcherSyntaxError, matchesEmpty, parseMatcher, type Matcher } from './matchers';

/**
 * Silences: "do not send what matches these matchers between these times",
 * recorded with who and why. Kept in the store (kv namespace `silences`), so
 * every replica sees them; each process reads them at most once per
 * `cacheMs` (default 1 s), so a new or expired silence takes effect within a
 * second everywhere.
 */

export const SILENCES_NAMESPACE = 'silences';

/** How long an ended silence stays listed (`silences list --all`) before the store drops it. */
export const SILENCE_RETENTION_MS = 24 * 3_600_000;

export type SilenceState = 'active' | 'pending' | 'expired';

/** What the store holds; times in ms since the epoch. */
export interface SilenceRecord {
  id: string;
  /** Normalised matcher strings (`project="web"`). */
  matchers: string[];
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
  createdAt: number;
  updatedAt: number;
}

/** What the API and CLI show: ISO times and the state now. */
export interface SilenceView {
  id: string;
  matchers: string[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  createdAt: string;
  updatedAt: string;
  state: SilenceState;
}

export interface ActiveSilence {
  record: SilenceRecord;
  matchers: readonly Matcher[];
}

export interface SilencesOptions {
  store: Store;
  now?: () => number;
  /** How long the list of silences read from the store is reused (default 1000 ms). */
  cacheMs?: number;
}

const LIMITS = { matchers: 32, createdBy: 200, comment: 2000 };

function invalid(message: string): never {
  throw new WebhookError('PB_PAYLOAD_INVALID', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The state of a silence at `now`. */
export function silenceState(s: SilenceRecord, now: number): SilenceState {
  if (now >= s.endsAt) return 'expired';
  return now < s.startsAt ? 'pending' : 'active';
}

export function silenceView(s: SilenceRecord, now: number): SilenceView {
  return {
    id: s.id,
    matchers: [...s.matchers],
    startsAt: new Date(s.startsAt).toISOString(),
    endsAt: new Date(s.endsAt).toISOString(),
    createdBy: s.createdBy,
    comment: s.comment,
    createdAt: new Date(s.createdAt).toISOString(),
    updatedAt: new Date(s.updatedAt).toISOString(),
    state: silenceState(s, now),
  };
}

function readRecord(value: unknown): SilenceRecord | undefined {
  if (!isRecord(value)) return undefined;
  const v = value as Partial<SilenceRecord>;
  if (
    typeof v.id !== 'string' ||
    !Array.isArray(v.matchers) ||
    typeof v.startsAt !== 'number' ||
    typeof v.endsAt !== 'number'
  ) {
    return undefined;
  }
  return v as SilenceRecord;
}

function readTime(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) invalid(`${key}: an ISO date such as 2025-01-31T18:00:00Z`);
  return t;
}

function readText(body: Record<string, unknown>, key: 'createdBy' | 'comment'): string {
  const v = body[key];
  if (typeof v !== 'string' || v.trim() === '') {
    invalid(
      `${key}: required, ${key === 'createdBy' ? 'who creates the silence' : 'why the silence exists'}`,
    );
  }
  if (v.length > LIMITS[key]) invalid(`${key}: at most ${LIMITS[key]} characters`);
  return v.trim();
}

const FIELDS = ['matchers', 'startsAt', 'endsAt', 'duration', 'createdBy', 'comment'];

/**
 * A new silence from an API body. Throws `PB_PAYLOAD_INVALID` naming the
 * field: `matchers[1]: missing closing quote …`.
 */
export function parseSilenceInput(body: unknown, now: number): SilenceRecord {
  if (!isRecord(body)) {
    invalid(
      'body: must be a JSON object like {"matchers": ["project=\\"web\\""], "duration": "2h", "createdBy": "…", "comment": "…"}',
    );
  }
  for (const key of Object.keys(body)) {
    if (!FIELDS.includes(key)) invalid(`${key}: unknown field; allowed: ${FIELDS.join(', ')}`);
  }
  const list = body.matchers;
  if (!Array.isArray(list) || list.length === 0) {
    invalid('matchers: required, a list of matchers such as project="web"');
  }
  if (list.length > LIMITS.matchers) invalid(`matchers: at most ${LIMITS.matchers}`);
  const matchers = list.map((text: unknown, i) => {
    if (typeof text !== 'string') invalid(`matchers[${i}]: must be a string such as project="web"`);
    try {
      return parseMatcher(text);
    } catch (err) {
      if (err instanceof MatcherSyntaxError) invalid(`matchers[${i}]: ${err.message}`);
      throw err;
    }
  });
  if (matchers.every(matchesEmpty)) {
    // Alertmanager's rule: such a silence would hold every notification
    // lacking those labels, which is never what a person typing it means.
    invalid(
      'matchers: at least one matcher must not match an empty value (project="web" does; environment!="prod" alone does not)',
    );
  }
  const createdBy = readText(body, 'createdBy');
  const comment = readText(body, 'comment');
  // A start in the past is now: a silence does not reach back.
  const startsAt = Math.max(readTime(body, 'startsAt') ?? now, now);
  let endsAt = readTime(body, 'endsAt');
  const duration = body.duration;
  if (duration !== undefined && duration !== null) {
    if (endsAt !== undefined) invalid('duration: give endsAt or duration, not both');
    if (typeof duration !== 'string' || !DURATION.test(duration.trim())) {
      invalid('duration: a duration such as 30m, 2h, 1d');
    }
    const ms = durationMs(duration);
    if (ms <= 0) invalid('duration: must be longer than 0');
    endsAt = startsAt + ms;
  }
  if (endsAt === undefined) invalid('endsAt: required, or give duration (such as 2h)');
  if (endsAt <= startsAt) invalid('endsAt: must be after startsAt (and after now)');
  return {
    id: randomUUID(),
    matchers: matchers.map((m) => m.text),
    startsAt,
    endsAt,
    createdBy,
    comment,
    createdAt: now,
    updatedAt: now,
  };
}

/** The silences of one store, with the read cache a delivery gate needs. */
export class Silences {
  private readonly store: Store;
  private readonly now: () => number;
  private readonly cacheMs: number;
  private cache: { at: number; silences: ActiveSilence[] } | undefined;
  private loading: Promise<ActiveSilence[]> | undefined;
  /** Bumped by every local write: a read that started before it is not cached. */
  private generation = 0;

  constructor(options: SilencesOptions) {
    this.store = options.store;
    this.now = options.now ?? Date.now;
    this.cacheMs = options.cacheMs ?? 1000;
  }

  private async records(): Promise<SilenceRecord[]> {
    const entries = await this.store.kvList(SILENCES_NAMESPACE);
    const out: SilenceRecord[] = [];
    for (const e of entries) {
      const r = readRecord(e.value);
      if (r) out.push(r);
    }
    return out;
  }

  private async save(record: SilenceRecord): Promise<void> {
    const keepMs = record.endsAt + SILENCE_RETENTION_MS - this.now();
    await this.store.kvSet(
      SILENCES_NAMESPACE,
      record.id,
      record,
      Math.max(1, Math.ceil(keepMs / 1000)),
    );
    this.generation++;
    this.cache = undefined;
    this.loading = undefined;
  }

  /** Newest first; without `all`, only active and pending ones. */
  async list(options: { all?: boolean } = {}): Promise<SilenceView[]> {
    const now = this.now();
    return (await this.records())
      .filter((r) => options.all === true || silenceState(r, now) !== 'expired')
      .sort((a, b) => b.createdAt - a.createdAt || a.id.localeCompare(b.id))
      .map((r) => silenceView(r, now));
  }

  async get(id: string): Promise<SilenceView | undefined> {
    const r = readRecord(await this.store.kvGet(SILENCES_NAMESPACE, id));
    return r ? silenceView(r, this.now()) : undefined;
  }

  /** Validate and store a new silence (see `parseSilenceInput`). */
  async create(body: unknown): Promise<SilenceView> {
    const record = parseSilenceInput(body, this.now());
    await this.save(record);
    return silenceView(record, this.now());
  }

  /**
   * End a silence now (kept for the record until `SILENCE_RETENTION_MS`
   * later). Undefined when there is no such silence; an expired one is
   * returned unchanged.
   */
  async expire(id: string): Promise<SilenceView | undefined> {
    const record = readRecord(await this.store.kvGet(SILENCES_NAMESPACE, id));
    if (!record) return undefined;
    const now = this.now();
    if (silenceState(record, now) === 'expired') return silenceView(record, now);
    const ended: SilenceRecord = {
      ...record,
      startsAt: Math.min(record.startsAt, now),
      endsAt: now,
      updatedAt: now,
    };
    await this.save(ended);
    return silenceView(ended, now);
  }

  /** Silences not yet ended, from a read at most `cacheMs` old. */
  async current(): Promise<readonly ActiveSilence[]> {
    const now = this.now();
    const c = this.cache;
    if (c && now >= c.at && now - c.at < this.cacheMs) return c.silences;
    const generation = this.generation;
    this.loading ??= this.records()
      .then((records) => {
        const silences: ActiveSilence[] = [];
        for (const record of records) {
          if (silenceState(record, now) === 'expired') continue;
          try {
            silences.push({ record, matchers: record.matchers.map((m) => parseMatcher(m)) });
          } catch {
            // Written by another version with a syntax this one cannot read:
            // holding everything back on a guess would be worse.
          }
        }
        if (generation === this.generation) this.cache = { at: now, silences };
        return silences;
      })
      .catch((err: unknown) => {
        // A store hiccup: the last list read is better than none.
        if (c) return c.silences;
        throw err;
      })
      .finally(() => {
        if (generation === this.generation) this.loading = undefined;
      });
    return this.loading;
  }

  /** The first silence active now whose matchers all match the label set. */
  async find(set: LabelSet): Promise<SilenceRecord | undefined> {
    const now = this.now();
    for (const s of await this.current()) {
      if (silenceState(s.record, now) !== 'active') continue;
      if (s.matchers.every((m) => m.matches(set))) return s.record;
    }
    return undefined;
  }
}
