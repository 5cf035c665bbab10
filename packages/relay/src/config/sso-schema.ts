import { z } from 'zod';
import { DURATION, durationMs } from '../durations';

/**
 * `sso`: who may sign in to the relay's pages, and how. Without
 * `sso.providers` the pages are off and the relay behaves as it always did,
 * so every other key has a default (docs/configuration.md lists them; a
 * test checks the two agree).
 */

const duration = z.union([
  z.number().int().min(1000),
  z.string().regex(DURATION, 'a duration such as 30s, 5m, 2h, 1d'),
]);

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The external base URL. An origin only (no path): the session cookie is
 * scoped to `/` and every page links from the root. Plain http only on a
 * loopback host, where a session cookie cannot travel over the network.
 */
const publicUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'an absolute URL such as https://relay.example.com' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: 'an http(s) URL' });
  } else if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    ctx.addIssue({
      code: 'custom',
      message:
        'must be https: session cookies would travel unencrypted (http only for localhost or 127.0.0.1)',
    });
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    ctx.addIssue({
      code: 'custom',
      message: 'the origin only (https://relay.example.com): serve the relay at the root of a host',
    });
  }
  if (url.username || url.password) {
    ctx.addIssue({ code: 'custom', message: 'no user name or password in the URL' });
  }
});

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$/i;

export const ssoProviderSchema = z
  .object({
    /** In URLs (`/auth/login/<id>`) and in the audit log; stable once people signed in. */
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, "-" or "_" (max 63)'),
    /** Slug of the SSO provider plugin: `oidc`, `oauth2`, `dummy` or an installed one. */
    type: z.string().min(1),
    /** Button text on the sign-in page; defaults to the provider's title. */
    label: z.string().min(1).max(80).optional(),
    /** The provider's own settings, checked by the provider at start-up. */
    config: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

/**
 * How many unauthenticated sign-in requests (`/auth/login/…`, `/auth/callback`)
 * one client address may make. A sign-in takes two or three; the default
 * leaves room for a busy office behind one NAT address, not for a script.
 */
const rateLimitSchema = z
  .object({
    perMinute: z
      .number()
      .int('a whole number of requests')
      .min(1, 'at least 1 (raise it rather than turning the limit off)')
      .max(100_000, 'at most 100000')
      .default(60),
    /**
     * IPv6 clients count per network of this prefix length: one host (or
     * one customer of a provider) usually holds a whole /64 or /56.
     */
    ipv6Prefix: z
      .number()
      .int('a prefix length such as 56 or 64')
      .min(32, 'at least 32')
      .max(128, 'at most 128')
      .default(56),
  })
  .strict();

const RATE_LIMIT_DEFAULTS = { perMinute: 60, ipv6Prefix: 56 };

const auditSchema = z
  .object({
    /**
     * Identical refusals (event, code, reason, provider, e-mail, address)
     * within it are one entry with a count. At most a day: the store keeps
     * its counters for a day.
     */
    collapseWindow: duration
      .refine((v) => durationMs(v) >= 1000 && durationMs(v) <= 86_400_000, {
        message: 'between 1s and 1d',
      })
      .default('1h'),
  })
  .strict();

const AUDIT_DEFAULTS = { collapseWindow: '1h' };

export const ssoSchema = z
  .object({
    publicUrl: publicUrl.optional(),
    /** HMAC key of the session tokens; ≥ 32 characters; `PLUGBOARD_SESSION_SECRET`. */
    sessionSecret: z.string().min(32, 'at least 32 characters').optional(),
    sessionTtl: duration.default('12h'),
    /** How long a sign-in may take, from the click to the callback. */
    flowTtl: duration.default('10m'),
    /** Let the `dummy` provider (anyone signs in as anyone) be configured. */
    allowDummy: z.boolean().default(false),
    /** E-mail domains that may sign in (`example.com`, exact match); empty: any. */
    allowedDomains: z.array(z.string().regex(DOMAIN, 'a domain such as example.com')).default([]),
    admins: z
      .object({
        /** E-mail addresses that are admins. */
        emails: z.array(z.string().min(3)).default([]),
        /** Values of the `roleClaim` claim (groups, roles) that make an admin. */
        groups: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .default({ emails: [], groups: [] }),
    /** Claim of the identity holding the person's groups or roles (a string or a list). */
    roleClaim: z.string().min(1).default('groups'),
    providers: z.array(ssoProviderSchema).default([]),
    rateLimit: rateLimitSchema.default(RATE_LIMIT_DEFAULTS),
    audit: auditSchema.default(AUDIT_DEFAULTS),
  })
  .strict()
  .superRefine((sso, ctx) => {
    if (sso.providers.length === 0) return;
    // Only with providers: a relay without pages needs neither.
    if (sso.publicUrl === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['publicUrl'],
        message:
          'required with sso.providers: the URL people and identity providers reach the relay at',
      });
    }
    if (sso.sessionSecret === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['sessionSecret'],
        message:
          'required with sso.providers (or PLUGBOARD_SESSION_SECRET): at least 32 random characters, e.g. `openssl rand -base64 48`',
      });
    }
    const seen = new Set<string>();
    for (const [i, p] of sso.providers.entries()) {
      if (seen.has(p.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['providers', i, 'id'],
          message: `duplicate provider id "${p.id}"`,
        });
      }
      seen.add(p.id);
    }
  });

/** The value `sso` takes when the file says nothing: pages off. */
export const SSO_DEFAULTS: z.output<typeof ssoSchema> = {
  sessionTtl: '12h',
  flowTtl: '10m',
  allowDummy: false,
  allowedDomains: [],
  admins: { emails: [], groups: [] },
  roleClaim: 'groups',
  providers: [],
  rateLimit: RATE_LIMIT_DEFAULTS,
  audit: AUDIT_DEFAULTS,
};

export type SsoConfig = z.output<typeof ssoSchema>;
export type SsoProviderConfig = z.output<typeof ssoProviderSchema>;
