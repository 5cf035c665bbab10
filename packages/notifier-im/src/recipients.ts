import { createHash } from 'node:crypto';
import axios from 'axios';
import { retryable, unrecoverable } from '@plugboard/sdk';
import type { NotifyContext } from '@plugboard/sdk';
import type { ImConfig } from './config';

/** How long a fetched member list is used before asking Sentry again. */
export const MEMBERS_TTL_SECONDS = 10 * 60;
/** The "last good" copy, used while Sentry's API is down. */
export const MEMBERS_LAST_GOOD_TTL_SECONDS = 30 * 24 * 60 * 60;
/** Bounds the paging loop (100 members a page). */
const MAX_PAGES = 50;

interface CachedMembers {
  emails: string[];
  fetchedAt: number;
}

function cacheKey(config: ImConfig, org: string, project: string): string {
  const id = createHash('sha256')
    .update(`${config.sentryUrl}\n${org}\n${project}`)
    .digest('hex')
    .slice(0, 16);
  return `members:${id}`;
}

/** The `rel="next"` link of a Sentry `Link` header, when it says there are results. */
export function nextPage(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,\s*(?=<)/)) {
    const url = /^<([^>]+)>/.exec(part.trim())?.[1];
    if (url && /rel="next"/.test(part) && /results="true"/.test(part)) return url;
  }
  return undefined;
}

/**
 * The e-mails of a Sentry project's members, from the store when fresh,
 * else from Sentry's API (`/api/0/projects/{org}/{project}/members/`, every
 * page). While Sentry cannot answer, the last list that was fetched is used.
 */
export async function sentryMembers(
  config: ImConfig,
  org: string,
  project: string,
  ctx: NotifyContext<ImConfig>,
): Promise<string[]> {
  const key = cacheKey(config, org, project);
  const fresh = await safeGet<CachedMembers>(ctx, key);
  if (fresh) return fresh.emails;
  try {
    const emails = await fetchMembers(config, org, project, ctx);
    const value: CachedMembers = { emails, fetchedAt: Date.now() };
    await safeSet(ctx, key, value, MEMBERS_TTL_SECONDS);
    await safeSet(ctx, `${key}:last-good`, value, MEMBERS_LAST_GOOD_TTL_SECONDS);
    return emails;
  } catch (err) {
    const lastGood = await safeGet<CachedMembers>(ctx, `${key}:last-good`);
    if (lastGood) {
      ctx.logger.warn(
        {
          code: (err as { code?: unknown }).code,
          error: (err as Error).message,
          fetchedAt: new Date(lastGood.fetchedAt).toISOString(),
        },
        'im.sentry_members_unavailable_using_cache',
      );
      return lastGood.emails;
    }
    throw err;
  }
}

async function safeGet<T>(ctx: NotifyContext<ImConfig>, key: string): Promise<T | undefined> {
  try {
    return await ctx.store.get<T>(key);
  } catch (err) {
    ctx.logger.warn({ code: (err as { code?: unknown }).code }, 'im.store_unavailable');
    return undefined;
  }
}

async function safeSet(
  ctx: NotifyContext<ImConfig>,
  key: string,
  value: unknown,
  ttlSeconds: number,
): Promise<void> {
  try {
    await ctx.store.set(key, value, { ttlSeconds });
  } catch (err) {
    ctx.logger.warn({ code: (err as { code?: unknown }).code }, 'im.store_unavailable');
  }
}

async function fetchMembers(
  config: ImConfig,
  org: string,
  project: string,
  ctx: NotifyContext<ImConfig>,
): Promise<string[]> {
  const base = config.sentryUrl.replace(/\/+$/, '');
  let url: string | undefined =
    `${base}/api/0/projects/${encodeURIComponent(org)}/${encodeURIComponent(project)}/members/`;
  const where = `Sentry ${base}: members of ${org}/${project}`;
  const emails: string[] = [];
  for (let page = 0; url && page < MAX_PAGES; page++) {
    let res;
    try {
      res = await axios.get<unknown>(url, {
        headers: {
          Authorization: `Bearer ${config.sentryToken ?? ''}`,
          Accept: 'application/json',
        },
        timeout: Math.max(1, Math.min(config.timeoutMs, ctx.timeoutMs)),
        signal: ctx.signal,
        maxRedirects: 0,
        validateStatus: () => true,
      });
    } catch (err) {
      // Not attached as cause: axios errors carry the request config (the token).
      const code = (err as { code?: unknown }).code;
      throw retryable(`${where}: request failed${typeof code === 'string' ? ` (${code})` : ''}`);
    }
    const status = res.status;
    if (status === 401 || status === 403) {
      throw unrecoverable(
        `${where}: Sentry answered HTTP ${status}; check sentryToken (needs project:read and member:read)`,
        { status },
      );
    }
    if (status === 404) {
      throw unrecoverable(`${where}: Sentry answered 404; check sentryOrg and the project`, {
        status,
      });
    }
    if (status < 200 || status >= 300) {
      throw retryable(`${where}: Sentry answered HTTP ${status}`, { status });
    }
    if (!Array.isArray(res.data)) {
      throw retryable(`${where}: Sentry's answer is not a list of members`);
    }
    for (const m of res.data as Array<Record<string, unknown>>) {
      const user = m.user as Record<string, unknown> | undefined;
      const email = typeof m.email === 'string' ? m.email : user?.email;
      if (typeof email === 'string' && email.includes('@')) {
        const e = email.trim().toLowerCase();
        if (!emails.includes(e)) emails.push(e);
      }
    }
    const link = res.headers.link as unknown;
    url = nextPage(typeof link === 'string' ? link : undefined);
    // Never send the token to another host than the configured one.
    if (url && new URL(url).origin !== new URL(base).origin) url = undefined;
  }
  return emails;
}
