import { FeishuNotifier, MAX_BODY_BYTES } from '@plugboard/notifier-feishu';
import type { Notification } from '@plugboard/sdk';
import {
  hostileLeaks,
  hostileNotification,
  runNotifier,
  startTestReceiver,
  type TestReceiver,
} from '@plugboard/sdk/testing';

// Event text is data: whatever an issue title, message, culprit or tag says,
// the only links in what reaches Feishu are the ones the template makes, and
// the only mentions are the configured ones.

const HOOK = 'hook-id-hostile-0001';
const RUNBOOK = 'https://wiki.example/runbook';

let receiver: TestReceiver;
beforeEach(async () => {
  receiver = await startTestReceiver({ body: { code: 0, msg: 'success' } });
});
afterEach(() => receiver.close());

const cases: Array<[string, Notification]> = [
  ['event alert', hostileNotification('event_alert.triggered')],
  ['issue', hostileNotification('issue.created')],
  ['30,000-character issue', hostileNotification('issue.created', { length: 30_000 })],
  ['30,000-character event', hostileNotification('event_alert.triggered', { length: 30_000 })],
  ['metric alert', hostileNotification('metric_alert.critical')],
  ['comment', hostileNotification('comment.created')],
];

async function send(n: Notification, config: Record<string, unknown>): Promise<unknown> {
  const result = await runNotifier(new FeishuNotifier(), n, {
    config: { webhookUrl: `${receiver.url}/open-apis/bot/v2/hook/${HOOK}`, ...config },
  });
  expect(result.error).toBeUndefined();
  const request = receiver.requests.at(-1);
  expect(Buffer.byteLength(request?.rawBody ?? '')).toBeLessThanOrEqual(MAX_BODY_BYTES);
  return JSON.parse(request?.rawBody ?? '{}') as unknown;
}

type PostElement = { tag: string; href?: string; user_id?: string; text?: string };

describe('Feishu post: hostile event text', () => {
  it.each(cases)('%s: links only to Sentry, mentions only configured', async (_name, n) => {
    const body = (await send(n, { msgType: 'post', atUserIds: 'ou_configured' })) as {
      content: { post: { zh_cn: { title: string; content: PostElement[][] } } };
    };
    const elements = body.content.post.zh_cn.content.flat();
    const links = elements.filter((e) => e.tag === 'a');
    for (const link of links) expect(link.href).toBe(n.url);
    if (n.url) expect(links.length).toBeGreaterThan(0);
    expect(elements.filter((e) => e.tag === 'at').map((e) => e.user_id)).toEqual(['ou_configured']);
    expect(elements.every((e) => ['text', 'a', 'at'].includes(e.tag))).toBe(true);
    expect(hostileLeaks(body)).toEqual([]);
  });

  it('keeps the links a custom template writes, and only those', async () => {
    const n = hostileNotification('event_alert.triggered');
    const body = (await send(n, {
      msgType: 'post',
      template: `{{title}} [Runbook](${RUNBOOK})\n{{message}}\n[Open]({{url}})\n{{culprit}}`,
    })) as { content: { post: { zh_cn: { content: PostElement[][] } } } };
    const hrefs = body.content.post.zh_cn.content
      .flat()
      .filter((e) => e.tag === 'a')
      .map((e) => e.href);
    expect(hrefs).toEqual([RUNBOOK, n.url]);
    expect(body.content.post.zh_cn.content.flat().some((e) => e.tag === 'at')).toBe(false);
    expect(hostileLeaks(body)).toEqual([]);
  });
});

describe('Feishu card: hostile event text', () => {
  it.each(cases)('%s: lark_md holds no foreign link, tag or mention', async (_name, n) => {
    const body = (await send(n, { msgType: 'interactive' })) as {
      card: {
        elements: Array<{
          tag: string;
          text?: { content: string };
          actions?: Array<{ url: string }>;
        }>;
      };
    };
    const markdown = body.card.elements
      .filter((e) => e.tag === 'div')
      .map((e) => e.text?.content ?? '');
    expect(markdown).toHaveLength(1);
    const text = markdown[0] as string;
    // No raw tag (`<at …>`, `<a …>`, `<https://…>`): `<` only as an entity.
    expect(text).not.toContain('<');
    // Every unescaped `](` is a template link to the issue.
    for (const m of text.matchAll(/(?<!\\)\]\(([^)]*)\)/g)) expect(m[1]).toBe(n.url);
    const buttons = body.card.elements.flatMap((e) => e.actions ?? []);
    expect(buttons.map((b) => b.url)).toEqual(n.url ? [n.url] : []);
    expect(hostileLeaks(body)).toEqual([]);
  });

  it('mentions only the configured people, in their own element', async () => {
    const body = (await send(hostileNotification(), {
      msgType: 'interactive',
      atUserIds: 'ou_configured',
    })) as { card: { elements: Array<{ tag: string; text?: { content: string } }> } };
    const contents = body.card.elements.map((e) => e.text?.content ?? '');
    expect(contents.filter((c) => c.includes('<at '))).toEqual(['<at id=ou_configured></at>']);
  });
});
