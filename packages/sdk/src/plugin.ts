import type { Notification, NotificationEvent, NotificationGroup } from './model';
import { SDK_VERSION } from './version';

/**
 * Brand carried by every plugin class. `Symbol.for` keeps it recognisable when
 * a plugin package bundles its own copy of the SDK.
 */
export const PLUGIN_BRAND: unique symbol = Symbol.for('plugboard.plugin') as never;

export type PluginKind = 'notifier' | 'sso';

export interface PluginBrand {
  kind: PluginKind;
  /** Version of the SDK copy that defined the base class. */
  sdkVersion: string;
}

export type ConfigFieldType =
  'text' | 'textarea' | 'secret' | 'url' | 'number' | 'bool' | 'email' | 'select';

export interface ConfigFieldChoice {
  value: string;
  label: string;
}

/** One setting of a plugin, as Sentry's `get_config()` describes it. */
export interface ConfigField {
  name: string;
  label: string;
  type: ConfigFieldType;
  /** Defaults to true, as in Sentry. */
  required?: boolean;
  help?: string;
  placeholder?: string;
  default?: string | number | boolean;
  /** For `select`: allowed values (`[value, label]` pairs in Sentry). */
  choices?: ReadonlyArray<ConfigFieldChoice | string>;
}

/** Plain values of one plugin instance, keyed by field name. */
export type PluginConfig = Record<string, unknown>;

export interface PluginLogger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/**
 * Small key-value store a plugin can keep state in (issue mappings, per-user
 * settings). Keys are namespaced per plugin by the host. Values are JSON.
 */
export interface PluginStore {
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, options?: { ttlSeconds?: number }): Promise<void>;
  /** Sets only when absent; true when this call set it. */
  setIfAbsent(key: string, value: unknown, options?: { ttlSeconds?: number }): Promise<boolean>;
  delete(key: string): Promise<void>;
}

export interface RateLimiter {
  /**
   * Counts one hit for `key` and tells whether it is over `limit` hits in the
   * current `windowSeconds` window (Sentry's `ratelimits.is_limited`).
   */
  isLimited(key: string, limit: number, windowSeconds: number): Promise<boolean>;
}

export interface UserNotificationOptions {
  /** What to answer when neither the user's project nor global setting is set. Default: true (on). */
  defaultEnabled?: boolean;
}

/**
 * Per-user notification settings the host keeps (the seed's per-user
 * "IM on/off"): a user's setting for one project wins over their global one,
 * which wins over the default (on, unless the caller passes `defaultEnabled`).
 */
export interface UserSettings {
  isNotificationEnabled(
    email: string,
    project?: string,
    options?: UserNotificationOptions,
  ): Promise<boolean>;
}

/** Everything a plugin call gets besides the notification. Fresh per call. */
export interface NotifyContext<C extends PluginConfig = PluginConfig> {
  /** Validated instance configuration, secrets resolved. */
  config: Readonly<C>;
  /** `<route>/<instance>`: which configured instance this call serves. */
  instanceId: string;
  /** Stable across retries of one delivery; pass it on so targets can de-duplicate. */
  idempotencyKey: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborted when the delivery times out or the relay shuts down. */
  signal: AbortSignal;
  /** Milliseconds this attempt may take. */
  timeoutMs: number;
  logger: PluginLogger;
  store: PluginStore;
  rateLimiter: RateLimiter;
  /**
   * Per-user notification settings, when the host keeps them (the relay
   * does). Optional: treat absent as "everyone uses the default".
   */
  users?: UserSettings;
}

export type Awaitable<T> = T | Promise<T>;

/** A target's send limit: `limit` messages per `perMs` milliseconds. */
export interface TargetRateLimit {
  limit: number;
  perMs: number;
}

export interface TestConfigurationResult {
  ok: boolean;
  /** The error text to show the operator when `ok` is false. */
  error?: string;
  code?: string;
}

/** Metadata every plugin has. */
export abstract class Plugin<C extends PluginConfig = PluginConfig> {
  static readonly [PLUGIN_BRAND]: PluginBrand = { kind: 'notifier', sdkVersion: SDK_VERSION };

  /** Unique id, lowercase, e.g. `webhook`. */
  abstract readonly slug: string;
  /** Human name, e.g. `WebHooks`. */
  abstract readonly title: string;
  /** Version of the plugin (usually its package version). */
  abstract readonly version: string;
  readonly description: string = '';
  readonly author: string = '';
  /** Sentry's `conf_title`; defaults to the title. */
  readonly confTitle: string | undefined = undefined;
  /** Sentry's `conf_key`; see {@link Plugin.getConfKey}. */
  readonly confKey: string | undefined = undefined;

  /**
   * The option prefix, derived as Sentry derives it:
   * `conf_key` if set, else the conf title lower-cased with spaces as `_`.
   * Options are stored as `<confKey>:<field name>`.
   */
  getConfKey(): string {
    if (this.confKey) return this.confKey;
    return (this.confTitle ?? this.title).toLowerCase().replace(/ /g, '_');
  }

  /** Settings of one instance. Sentry's `get_config()`. */
  configFields(): ConfigField[] {
    return [];
  }

  /** Extra checks after field validation; throw a ConfigError or return messages. */
  validateConfig(_config: C): Awaitable<string[] | void> {
    return undefined;
  }
}

/** What a notifier does, Sentry's `NotificationPlugin`. */
export abstract class NotificationPlugin<C extends PluginConfig = PluginConfig> extends Plugin<C> {
  static override readonly [PLUGIN_BRAND]: PluginBrand = {
    kind: 'notifier',
    sdkVersion: SDK_VERSION,
  };

  /**
   * Sentry's default: at most 10 notifications per plugin per project per
   * 60 s; notifications over it are skipped (not sent). For a limit of the
   * target itself, declare `targetRateLimit` instead: the relay holds those
   * back and folds a backlog into a digest, so nothing is lost.
   */
  rateLimit: { limit: number; windowSeconds: number } | null = { limit: 10, windowSeconds: 60 };

  /**
   * What the target accepts per robot/endpoint: at most `limit` messages per
   * `perMs` (a sliding window). The relay keeps each instance under it,
   * across replicas, holding deliveries back instead of letting the target
   * refuse or block them. Operators override it per instance (`rateLimit`).
   * Default: none.
   */
  targetRateLimit(_config?: C): TargetRateLimit | undefined {
    return undefined;
  }

  /**
   * Sentry's `is_configured`: every required field has a value. Override for
   * finer checks (must be cheap: it runs before every notification).
   */
  async isConfigured(ctx: NotifyContext<C>): Promise<boolean> {
    for (const field of this.configFields()) {
      if (field.required === false) continue;
      const value = (ctx.config as PluginConfig)[field.name];
      if (value === undefined || value === null || value === '') return false;
    }
    return true;
  }

  /**
   * Sentry's `should_notify`: configured, and not over the rate limit for
   * this plugin and project.
   */
  async shouldNotify(notification: Notification, ctx: NotifyContext<C>): Promise<boolean> {
    if (!(await this.isConfigured(ctx))) return false;
    if (this.rateLimit) {
      const project = notification.project?.slug ?? '-';
      const key = `${this.getConfKey()}:${ctx.instanceId}:${project}`;
      if (
        await ctx.rateLimiter.isLimited(key, this.rateLimit.limit, this.rateLimit.windowSeconds)
      ) {
        ctx.logger.info({ project, plugin: this.slug }, 'notification.rate_limited');
        return false;
      }
    }
    return true;
  }

  /**
   * Sentry's `notify(notification)`: the default hands the group, event and
   * triggering rules to {@link NotificationPlugin.notifyUsers}. Override it
   * instead when the notifier wants the whole notification (webhooks).
   */
  async notify(notification: Notification, ctx: NotifyContext<C>): Promise<void> {
    await this.notifyUsers(
      notification.group,
      notification.event,
      notification.triggeringRules,
      ctx,
      notification,
    );
  }

  /**
   * Sentry's `notify_users(group, event, triggering_rules)`. Implement this
   * or override `notify`. Throw `unrecoverable()` / `retryAfter()` /
   * `retryable()` errors to steer retries.
   */
  async notifyUsers(
    _group: NotificationGroup | undefined,
    _event: NotificationEvent | undefined,
    _triggeringRules: string[],
    _ctx: NotifyContext<C>,
    _notification: Notification,
  ): Promise<void> {
    throw new Error(`${this.slug}: implement notify() or notifyUsers()`);
  }

  /**
   * Sentry's `test_configuration`: sends a real test notification and reports
   * the error text instead of throwing.
   */
  async testConfiguration(
    ctx: NotifyContext<C>,
    sample: Notification,
  ): Promise<TestConfigurationResult> {
    try {
      await this.notify(sample, ctx);
      return { ok: true };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return {
        ok: false,
        error: err instanceof Error ? err.message : String(err),
        ...(typeof code === 'string' ? { code } : {}),
      };
    }
  }
}

/** Anything carrying the brand: a plugin class (constructor) or an instance. */
export function readBrand(value: unknown): PluginBrand | undefined {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function'))
    return undefined;
  const holder =
    typeof value === 'function' ? value : (value as { constructor?: unknown }).constructor;
  const brand = (holder as Record<symbol, unknown> | undefined)?.[PLUGIN_BRAND];
  if (
    brand &&
    typeof brand === 'object' &&
    typeof (brand as PluginBrand).kind === 'string' &&
    typeof (brand as PluginBrand).sdkVersion === 'string'
  ) {
    return brand as PluginBrand;
  }
  return undefined;
}
