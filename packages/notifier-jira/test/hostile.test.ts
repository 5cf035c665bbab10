import nock from 'nock';
import { clearMetadataCache, JiraNotifier } from '@plugboard/notifier-jira';
import type { Notification } from '@plugboard/sdk';
import {
  hostileLeaks,
  hostileNotification,
  MemoryStore,
  runNotifier,
} from '@plugboard/sdk/testing';
import { BASE, cloudConfig, nockMeta, serverConfig } from './helpers';

// Event text is data: in the issue JIRA gets (wiki text on API v2, ADF on
// v3) the only link is the notifier's own link to Sentry, and nothing of
// the event's opens markup, a mention or a line of its own.

beforeEach(() => clearMetadataCache());
afterEach(() => nock.cleanAll());

/** Every POST the notifier makes, by path. */
function recordPosts(): Array<{ path: string; body: Record<string, unknown> }> {
  const posts: Array<{ path: string; body: Record<string, unknown> }> = [];
  nock(BASE)
    .persist()
    .post(/\/rest\/api\/[23]\/issue(\/[^/]+\/(comment|remotelink))?$/)
    .reply((path, body) => {
      posts.push({ path, body: body as Record<string, unknown> });
      return path.endsWith('/issue') ? [201, { id: '10001', key: 'EX-1' }] : [201, { id: '1' }];
    });
  return posts;
}

/**
 * Send `n` twice, as one instance: the first creates the issue (with a
 * description template that holds event text), the second comments on it.
 * Returns the create's fields and the comment's body.
 */
async function createThenComment(
  apiVersion: 2 | 3,
  n: Notification,
): Promise<{ fields: Record<string, unknown>; comment: unknown; all: unknown[] }> {
  nockMeta(apiVersion);
  const posts = recordPosts();
  const store = new MemoryStore();
  const plugin = new JiraNotifier();
  const config = apiVersion === 2 ? serverConfig : cloudConfig;
  const first = await runNotifier(plugin, n, {
    config: config({ description: DESCRIPTION }),
    store,
  });
  expect(first.error).toBeUndefined();
  const again = await runNotifier(plugin, n, { config: config(), store, idempotencyKey: 'again' });
  expect(again.error).toBeUndefined();
  const body = (suffix: string): unknown => posts.find((p) => p.path.endsWith(suffix))?.body;
  return {
    fields: (body('/issue') as { fields: Record<string, unknown> }).fields,
    comment: (body('/comment') as { body: unknown }).body,
    all: posts.map((p) => p.body),
  };
}

const DESCRIPTION = '{{title}}\n{{message}}\n{{environment}} {{release}} {{tags}}';

const cases: Array<[string, Notification]> = [
  ['event alert', hostileNotification('event_alert.triggered')],
  ['30,000-character event', hostileNotification('event_alert.triggered', { length: 30_000 })],
  ['legacy webhook', hostileNotification('legacy_webhook')],
];

/** JIRA shows an HTML tag in wiki text or ADF as text: the other leaks count. */
const leaks = (value: unknown): string[] => hostileLeaks(value, { ignore: ['tag'] });

/** How many frames the description shows: the crashing exception's, at most 5. */
function frameCount(n: Notification): number {
  const raw = n.event?.raw as { exception?: { values?: Array<{ stacktrace?: { frames?: [] } }> } };
  return Math.min(5, raw.exception?.values?.at(-1)?.stacktrace?.frames?.length ?? 0);
}

/** Wiki markup outside backslash escapes: `[`, `{`, `|`, `!`, `[~`. */
const unescaped = (re: string): RegExp => new RegExp(`(?<!\\\\)${re}`, 'g');

describe.each(cases)('JIRA wiki text (API v2), hostile %s', (_name, n) => {
  it('escapes the event text; the Sentry link is the only link', async () => {
    const { fields, comment, all } = await createThenComment(2, n);
    const description = fields.description as string;
    expect(description.length).toBeLessThan(32_767);

    // Stack frames stand in one {noformat} block, one line each: markup means nothing there.
    const [markup = '', frames = '', after = ''] = description.split(/^\{noformat\}$/m);
    expect(frames.trim().split('\n')).toHaveLength(frameCount(n));
    expect(after).toBe('');
    expect(frames).not.toMatch(/\{(noformat|code)/i);

    const links = [...markup.matchAll(unescaped('\\[([^\\]]*)\\]'))].map((m) => m[1]);
    expect(links).toEqual([`Open in Sentry|${n.url}`]);
    expect(markup.match(unescaped('\\{'))).toBeNull();
    // Outside the link, no table cell, image or mention.
    const rest = markup.replace(`|${n.url}]`, ']');
    expect(rest.match(unescaped('[|!]'))).toBeNull();
    // Every line is the template's: no heading, list, quote or rule from the event.
    for (const line of markup.split('\n')) {
      expect(line).not.toMatch(/^\s*(h[1-6]\.|bq\.|#|-|>)/);
    }
    expect(leaks(fields)).toEqual([]);
    const summary = fields.summary as string;
    expect(summary).not.toContain('\n');
    expect(Array.from(summary).length).toBeLessThanOrEqual(255);

    const commentLinks = [...(comment as string).matchAll(unescaped('\\[([^\\]]*)\\]'))];
    expect(commentLinks.map((m) => m[1])).toEqual([`Open in Sentry|${n.url}`]);
    expect(leaks(all)).toEqual([]);
  });
});

/** Every `link` mark's href in an ADF document (or anything holding some). */
function linkHrefs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(linkHrefs);
  if (typeof value !== 'object' || value === null) return [];
  const node = value as { marks?: Array<{ type: string; attrs?: { href?: string } }> };
  const own = (node.marks ?? []).filter((m) => m.type === 'link').map((m) => m.attrs?.href ?? '');
  return [...own, ...Object.values(value).flatMap(linkHrefs)];
}

describe.each(cases)('JIRA ADF (API v3), hostile %s', (_name, n) => {
  it('has no link mark but the Sentry link, and inert text', async () => {
    const { fields, comment, all } = await createThenComment(3, n);
    const description = fields.description;
    expect(linkHrefs(description)).toEqual([n.url]);
    expect(linkHrefs(comment)).toEqual([n.url]);
    expect(JSON.stringify(description).length).toBeLessThan(64_000);
    expect(leaks(all)).toEqual([]);
  });
});

describe.each([2, 3] as const)('JIRA custom text field from a template (API v%s)', (apiVersion) => {
  it('carries the event text as data, never as markup or a link', async () => {
    const n = hostileNotification('event_alert.triggered');
    const textarea = {
      fieldId: 'customfield_10600',
      key: 'customfield_10600',
      name: 'Sentry title',
      required: false,
      hasDefaultValue: false,
      operations: ['set'],
      schema: {
        type: 'string',
        custom: 'com.atlassian.jira.plugin.system.customfieldtypes:textarea',
        customId: 10600,
      },
    };
    nockMeta(apiVersion, BASE, [textarea]);
    const posts = recordPosts();
    const config = apiVersion === 2 ? serverConfig : cloudConfig;
    const res = await runNotifier(new JiraNotifier(), n, {
      config: config({ fields: 'Sentry title: Title {{title}} / {{message}} / {{tags}}' }),
    });
    expect(res.error).toBeUndefined();
    const value = (posts[0]!.body as { fields: Record<string, unknown> }).fields.customfield_10600;
    expect(value).toBeDefined();
    expect(leaks(value)).toEqual([]);
    if (apiVersion === 2) {
      expect(value as string).not.toMatch(unescaped('[[{|!]'));
    } else {
      expect(linkHrefs(value)).toEqual([]);
    }
  });
});
