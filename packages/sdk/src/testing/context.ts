import type {
  NotifyContext,
  PluginConfig,
  PluginLogger,
  PluginStore,
  RateLimiter,
  UserSettings,
} from '../plugin';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One call of the recording logger: pino-style `(fields, msg)` or `(msg)`. */
export interface LogEntry {
  level: LogLevel;
  msg: string | undefined;
  fields: Record<string, unknown>;
}

/** A clock in milliseconds; injectable so TTL and window tests need no fake timers. */
export type Clock = () => number;

interface StoredValue {
  json: string;
  expiresAt: number | undefined;
}

/**
 * In-memory {@link PluginStore}. Values go through JSON like in a real store,
 * so a plugin that stores a Date or a Map sees the same surprise in tests as
 * in production.
 */
export class MemoryStore implements PluginStore {
  private readonly values = new Map<string, StoredValue>();

  constructor(private readonly now: Clock = Date.now) {}

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const stored = this.live(key);
    return stored === undefined ? undefined : (JSON.parse(stored.json) as T);
  }

  async set(key: string, value: unknown, options?: { ttlSeconds?: number }): Promise<void> {
    this.values.set(key, this.encode(key, value, options?.ttlSeconds));
  }

  async setIfAbsent(
    key: string,
    value: unknown,
    options?: { ttlSeconds?: number },
  ): Promise<boolean> {
    if (this.live(key) !== undefined) return false;
    this.values.set(key, this.encode(key, value, options?.ttlSeconds));
    return true;
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }

  /** Live keys and their values, for assertions. */
  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key of [...this.values.keys()].sort()) {
      const stored = this.live(key);
      if (stored !== undefined) out[key] = JSON.parse(stored.json);
    }
    return out;
  }

  private live(key: string): StoredValue | undefined {
    const stored = this.values.get(key);
    if (stored?.expiresAt !== undefined && stored.expiresAt <= this.now()) {
      this.values.delete(key);
      return undefined;
    }
    return stored;
  }

  private encode(key: string, value: unknown, ttlSeconds: number | undefined): StoredValue {
    const json = JSON.stringify(value);
    if (json === undefined) {
      throw new TypeError(`MemoryStore: value for "${key}" is not JSON-serialisable`);
    }
    const expiresAt =
      ttlSeconds !== undefined && ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : undefined;
    return { json, expiresAt };
  }
}

/**
 * In-memory {@link RateLimiter} with fixed windows aligned on the clock, the
 * way Sentry's `ratelimits.is_limited` buckets time: hit N+1 inside one
 * window is limited, the first hit of the next window is not.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { bucket: number; count: number }>();

  constructor(private readonly now: Clock = Date.now) {}

  async isLimited(key: string, limit: number, windowSeconds: number): Promise<boolean> {
    const bucket = Math.floor(this.now() / (windowSeconds * 1000));
    const id = `${windowSeconds}:${key}`;
    const current = this.windows.get(id);
    const count = current && current.bucket === bucket ? current.count + 1 : 1;
    this.windows.set(id, { bucket, count });
    return count > limit;
  }
}

/** A {@link PluginLogger} that keeps every call in `entries`. */
export class RecordingLogger implements PluginLogger {
  readonly entries: LogEntry[] = [];

  debug(obj: object | string, msg?: string): void {
    this.record('debug', obj, msg);
  }
  info(obj: object | string, msg?: string): void {
    this.record('info', obj, msg);
  }
  warn(obj: object | string, msg?: string): void {
    this.record('warn', obj, msg);
  }
  error(obj: object | string, msg?: string): void {
    this.record('error', obj, msg);
  }

  private record(level: LogLevel, obj: object | string, msg: string | undefined): void {
    if (typeof obj === 'string') {
      this.entries.push({ level, msg: obj, fields: {} });
      return;
    }
    // Spreading an Error keeps nothing useful; keep what pino's serializer would.
    const fields =
      obj instanceof Error
        ? { err: { name: obj.name, message: obj.message } }
        : { ...(obj as Record<string, unknown>) };
    this.entries.push({ level, msg, fields });
  }
}

export interface TestContextOptions {
  /** Defaults to 1. */
  attempt?: number;
  /** Defaults to `test-delivery-1`. Reuse it across attempts to simulate a retry. */
  idempotencyKey?: string;
  /** Defaults to `test/instance`. */
  instanceId?: string;
  /** Defaults to 10 000 ms. */
  timeoutMs?: number;
  /** Share one store (or limiter) between contexts to simulate several calls. */
  store?: PluginStore;
  rateLimiter?: RateLimiter;
  /** Per-user settings service (`ctx.users`); absent by default, as with hosts that keep none. */
  users?: UserSettings;
  /** Clock of the default store and limiter; defaults to `Date.now`. */
  now?: Clock;
}

/** A full {@link NotifyContext} plus what a test wants to look at. */
export interface TestContext<C extends PluginConfig = PluginConfig> extends NotifyContext<C> {
  /** Everything the plugin logged, in order. */
  logs: LogEntry[];
  /** The controller behind `signal`: abort it to simulate a timeout or shutdown. */
  abortController: AbortController;
}

export const DEFAULT_TEST_TIMEOUT_MS = 10_000;

/** Build a context as the relay would hand it to `shouldNotify` / `notify`. */
export function createTestContext<C extends PluginConfig = PluginConfig>(
  config: C,
  options: TestContextOptions = {},
): TestContext<C> {
  const logger = new RecordingLogger();
  const abortController = new AbortController();
  return {
    config: Object.freeze({ ...config }),
    instanceId: options.instanceId ?? 'test/instance',
    idempotencyKey: options.idempotencyKey ?? 'test-delivery-1',
    attempt: options.attempt ?? 1,
    signal: abortController.signal,
    timeoutMs: options.timeoutMs ?? DEFAULT_TEST_TIMEOUT_MS,
    logger,
    store: options.store ?? new MemoryStore(options.now),
    rateLimiter: options.rateLimiter ?? new MemoryRateLimiter(options.now),
    ...(options.users ? { users: options.users } : {}),
    logs: logger.entries,
    abortController,
  };
}
