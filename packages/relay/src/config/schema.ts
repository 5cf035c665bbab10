import { isIP } from 'node:net';
import { z } from 'zod';
import { DURATION } from '../durations';
import { MatcherSyntaxError, parseMatcher } from '../noise/matchers';
import { compileEntry, TimeIntervalError } from '../noise/time-intervals';
import { SSO_DEFAULTS, ssoSchema } from './sso-schema';

/**
 * The relay's settings. Every key has a documented default
 * (docs/configuration.md); a test checks the two agree.
 */

const matchList = z.array(z.string().min(1)).default([]);

/** An Alertmanager matcher (`level=~"error|fatal"`), checked (regex compiled) at load. */
const matcherString = z.string().superRefine((text, ctx) => {
  try {
    parseMatcher(text);
  } catch (err) {
    if (!(err instanceof MatcherSyntaxError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message });
  }
});

const labelName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.:-]*$/, 'a label name such as project or tags.browser');

const duration = z.union([
  z.number().int().min(0),
  z.string().regex(DURATION, 'a duration such as 30s, 5m, 2h, 1d'),
]);

/**
 * The retry ladder. The default is the one delivery services settled on
 * (Svix): seconds, then minutes, then hours; and a day-old alert is noise,
 * so a delivery still failing after `expireAfter` stops.
 */
export const retrySchema = z
  .object({
    /** Wait before attempt n+1 is `schedule[n-1]` (the last one repeats). `[]`: use `backoff`. */
    schedule: z.array(duration).max(50).default(['5s', '5m', '30m', '2h', '5h', '10h', '10h']),
    /** Each wait is spread by ±jitter/2 of itself. */
    jitter: z.number().min(0).max(1).default(0.2),
    expireAfter: duration.default('24h'),
  })
  .strict();

/** Send slots of a target: at most `limit` messages per `per` (sliding window). */
export const rateLimitSchema = z
  .object({
    limit: z.number().int().min(1).max(100_000),
    per: duration.default('1m'),
  })
  .strict();

export const groupSchema = z
  .object({
    /** Labels (see docs/noise-control.md) whose values make the group key. */
    by: z.array(z.string().min(1)).min(1).default(['issue']),
    /** How long a new group collects before its first message (group_wait). */
    wait: duration.default('30s'),
    /** At most one message per group per interval (group_interval). */
    interval: duration.default('5m'),
    /** Re-notify an open group with nothing new after this long (repeat_interval); 0: never. */
    repeat: duration.default('4h'),
    /** Messages per group before only state changes (resolved, reopened) are sent; 0: no cap. */
    maxNotifications: z.number().int().min(0).default(0),
    /** A group with no notification for this long is closed without a message. */
    closeAfter: duration.default('24h'),
  })
  .strict();

export const instanceSchema = z
  .object({
    /** Unique within its route; defaults to the plugin slug. */
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'letters, digits, ".", "_" or "-"')
      .optional(),
    plugin: z.string().min(1),
    config: z.record(z.string(), z.unknown()).default({}),
    concurrency: z.number().int().min(1).max(256).optional(),
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
    maxAttempts: z.number().int().min(1).max(100).optional(),
    /** Overrides of `dispatch.retry` for this instance. */
    retry: retrySchema.partial().optional(),
    pauseAfterFailures: z.number().int().min(0).max(10_000).optional(),
    /**
     * The target's rate limit; default: what the notifier declares for its
     * target (DingTalk 20/min), none for the others. `false`: no limit.
     */
    rateLimit: z.union([rateLimitSchema, z.literal(false)]).optional(),
  })
  .strict();

export const routeSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'letters, digits, ".", "_" or "-"'),
    match: z
      .object({
        /** Project slugs; empty = any. */
        projects: matchList,
        environments: matchList,
        levels: matchList,
        /** `issue` (any action) or `issue.created`; empty = any. */
        resources: matchList,
        releases: matchList,
        /** Sentry alert rule names (issue, metric and legacy alert rules). */
        rules: matchList,
        /** Event tags that must have these values. */
        tags: z.record(z.string().min(1), z.string()).default({}),
      })
      .strict()
      .default({
        projects: [],
        environments: [],
        levels: [],
        resources: [],
        releases: [],
        rules: [],
        tags: {},
      }),
    /** Alertmanager matchers on the notification's labels; all must match. */
    matchers: z.array(matcherString).default([]),
    /** Keep evaluating later routes after this one matched (Alertmanager's `continue`). */
    continue: z.boolean().default(false),
    /** Names from `timeIntervals` during which this route's deliveries are not sent. */
    muteTimeIntervals: z.array(z.string().min(1)).default([]),
    instances: z.array(instanceSchema).min(1),
    /**
     * Group this route's notifications (absent: each one is delivered on its
     * own). Alertmanager's timers and defaults.
     */
    group: groupSchema.optional(),
    /** Deliver resolved notifications (`issue.resolved`, `metric_alert.resolved`). */
    sendResolved: z.boolean().default(true),
  })
  .strict();

// Alertmanager's time_intervals, camelCased (see src/noise/time-intervals.ts).
// YAML reads `-1` and `2025` as numbers; they mean the same as the strings.
const timeItem = z.union([z.string().min(1), z.number().int()]).transform(String);

export const timeIntervalEntrySchema = z
  .object({
    times: z.array(z.object({ startTime: z.string(), endTime: z.string() }).strict()).optional(),
    weekdays: z.array(timeItem).optional(),
    daysOfMonth: z.array(timeItem).optional(),
    months: z.array(timeItem).optional(),
    years: z.array(timeItem).optional(),
    location: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((entry, ctx) => {
    try {
      compileEntry(entry);
    } catch (err) {
      if (!(err instanceof TimeIntervalError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message, path: [...err.path] });
    }
  });

export const timeIntervalSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'letters, digits, ".", "_" or "-"'),
    timeIntervals: z.array(timeIntervalEntrySchema).min(1),
  })
  .strict();

/** Alertmanager's inhibit_rules, camelCased (see src/noise/inhibition.ts). */
export const inhibitRuleSchema = z
  .object({
    sourceMatchers: z.array(matcherString).min(1),
    targetMatchers: z.array(matcherString).min(1),
    /** Labels whose values must be the same in the source and the target. */
    equal: z.array(labelName).default([]),
    /** How long a source inhibits when nothing resolves it. */
    duration: duration.default('24h'),
  })
  .strict();

/** Names that must refer to something defined elsewhere in the settings. */
function checkNoiseReferences(
  config: {
    timeIntervals: ReadonlyArray<{ name: string }>;
    routes: ReadonlyArray<{ muteTimeIntervals: readonly string[] }>;
  },
  ctx: z.RefinementCtx,
): void {
  const names = new Set<string>();
  for (const [i, interval] of config.timeIntervals.entries()) {
    if (names.has(interval.name)) {
      ctx.addIssue({
        code: 'custom',
        message: `duplicate time interval name "${interval.name}"`,
        path: ['timeIntervals', i, 'name'],
      });
    }
    names.add(interval.name);
  }
  for (const [i, route] of config.routes.entries()) {
    for (const [j, name] of route.muteTimeIntervals.entries()) {
      if (names.has(name)) continue;
      ctx.addIssue({
        code: 'custom',
        message: `unknown time interval "${name}"; ${names.size > 0 ? `timeIntervals defines ${[...names].join(', ')}` : 'timeIntervals defines none'}`,
        path: ['routes', i, 'muteTimeIntervals', j],
      });
    }
  }
}

export const backoffSchema = z
  .object({
    initialMs: z.number().int().min(0).default(5000),
    factor: z.number().min(1).default(3),
    maxMs: z.number().int().min(0).default(3_600_000),
  })
  .strict();

/**
 * Which proxies in front of the relay may say who the client is
 * (`X-Forwarded-For`), as express's `trust proxy`: none, the nearest n hops,
 * or the proxies' addresses. Never `true`: every client could then claim any
 * address and slip past the per-address sign-in limit.
 */
const trustProxySchema = z.union(
  [
    z.literal(false),
    z.number().int().min(1, 'at least 1 hop').max(10, 'at most 10 hops'),
    z
      .array(
        z.string().refine(isProxyAddress, {
          message: 'an IP address, a CIDR range (10.0.0.0/8), loopback, linklocal or uniquelocal',
        }),
      )
      .min(1, 'at least one address (or false)'),
  ],
  {
    error:
      'false, a number of proxy hops (1 to 10) or a list of proxy addresses; never true, which ' +
      'would believe any X-Forwarded-For a client sends',
  },
);

function isProxyAddress(value: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(value)) return true;
  const [address = '', bits, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

export const configSchema = z
  .object({
    listen: z.string().default('127.0.0.1:8080'),
    trustProxy: trustProxySchema.default(false),
    dataDir: z.string().min(1).default('./.plugboard-data'),
    sentry: z
      .object({
        /** One secret, or several while rotating. */
        clientSecret: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
        dedupWindowSeconds: z.number().int().min(0).default(3600),
      })
      .strict()
      .default({ dedupWindowSeconds: 3600 }),
    legacy: z
      .object({ token: z.string().min(16, 'at least 16 characters').optional() })
      .strict()
      .default({}),
    api: z
      .object({
        /** Bearer token of the JSON API (`/api/...`); without it the API answers 503. */
        token: z.string().min(16, 'at least 16 characters').optional(),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        bodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(50 * 1024 * 1024)
          .default(1024 * 1024),
      })
      .strict()
      .default({ bodyBytes: 1024 * 1024 }),
    plugins: z
      .object({
        packages: z.array(z.string()).default([]),
        include: z.array(z.string()).optional(),
        exclude: z.array(z.string()).default([]),
        strict: z.boolean().default(false),
      })
      .strict()
      .default({ packages: [], exclude: [], strict: false }),
    dispatch: z
      .object({
        concurrency: z.number().int().min(1).max(256).default(4),
        timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
        // The first attempt and one per step of the retry schedule.
        maxAttempts: z.number().int().min(1).max(100).default(8),
        retry: retrySchema.default({
          schedule: ['5s', '5m', '30m', '2h', '5h', '10h', '10h'],
          jitter: 0.2,
          expireAfter: '24h',
        }),
        /** Used instead of the schedule when `retry.schedule` is `[]`. */
        backoff: backoffSchema.default({ initialMs: 5000, factor: 3, maxMs: 3_600_000 }),
        /** Consecutive failed attempts that pause an instance (0: never). */
        pauseAfterFailures: z.number().int().min(0).max(10_000).default(20),
        breaker: z
          .object({
            enabled: z.boolean().default(true),
            errorThresholdPercentage: z.number().min(1).max(100).default(50),
            volumeThreshold: z.number().int().min(1).max(10_000).default(10),
            resetAfter: duration.default('30s'),
          })
          .strict()
          .default({
            enabled: true,
            errorThresholdPercentage: 50,
            volumeThreshold: 10,
            resetAfter: '30s',
          }),
        pollIntervalMs: z.number().int().min(10).max(60_000).default(1000),
        shutdownGraceMs: z.number().int().min(0).max(600_000).default(10_000),
      })
      .strict()
      .default({
        concurrency: 4,
        timeoutMs: 10_000,
        maxAttempts: 8,
        retry: {
          schedule: ['5s', '5m', '30m', '2h', '5h', '10h', '10h'],
          jitter: 0.2,
          expireAfter: '24h',
        },
        backoff: { initialMs: 5000, factor: 3, maxMs: 3_600_000 },
        pauseAfterFailures: 20,
        breaker: {
          enabled: true,
          errorThresholdPercentage: 50,
          volumeThreshold: 10,
          resetAfter: '30s',
        },
        pollIntervalMs: 1000,
        shutdownGraceMs: 10_000,
      }),
    /**
     * PostgreSQL instead of the embedded SQLite store, for several replicas:
     * `postgres://user:password@host:5432/database`.
     */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL')
      .optional(),
    store: z
      .object({
        synchronous: z.enum(['normal', 'full']).default('normal'),
        postgres: z
          .object({
            schema: z
              .string()
              .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lowercase letters, digits and _')
              .default('plugboard'),
            maxConnections: z.number().int().min(1).max(100).default(10),
          })
          .strict()
          .default({ schema: 'plugboard', maxConnections: 10 }),
      })
      .strict()
      .default({ synchronous: 'normal', postgres: { schema: 'plugboard', maxConnections: 10 } }),
    log: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
      })
      .strict()
      .default({ level: 'info' }),
    sentryDsn: z.string().url().optional(),
    /** Sign-in to the relay's pages; off until `sso.providers` is set. */
    sso: ssoSchema.default(SSO_DEFAULTS),
    routes: z.array(routeSchema).default([]),
    /** Named schedules routes refer to in `muteTimeIntervals`. */
    timeIntervals: z.array(timeIntervalSchema).default([]),
    /** Alertmanager-style inhibition: a source notification holds back related targets. */
    inhibitRules: z.array(inhibitRuleSchema).default([]),
  })
  .strict()
  .superRefine(checkNoiseReferences);

export type RawConfig = z.input<typeof configSchema>;
export type RelayConfig = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type InstanceConfig = z.output<typeof instanceSchema>;
export type TimeIntervalSettings = z.output<typeof timeIntervalSchema>;
export type InhibitRuleConfig = z.output<typeof inhibitRuleSchema>;
