import { DingTalkNotifier, MAX_BODY_BYTES } from '@plugboard/notifier-dingtalk';
import type { Notification } from '@plugboard/sdk';
import {
  hostileLeaks,
  hostileNotification,
  runNotifier,
  startTestReceiver,
  type TestReceiver,
} from '@plugboard/sdk/testing';

// Event text is data: in the Markdown a DingTalk robot posts, the only link
// is the template's, and only the configured people are mentioned.

let receiver: TestReceiver;
beforeEach(async () => {
  receiver = await startTestReceiver({ body: { errcode: 0, errmsg: 'ok' } });
});
afterEach(() => receiver.close());

interface Message {
  msgtype: string;
  markdown: { title: string; text: string };
  at: { atMobiles: string[]; atUserIds: string[]; isAtAll: boolean };
}

async function send(n: Notification, config: Record<string, unknown> = {}): Promise<Message> {
  const result = await runNotifier(new DingTalkNotifier(), n, {
    config: { webhookUrl: `${receiver.url}/robot/send?access_token=tok-hostile`, ...config },
  });
  expect(result.error).toBeUndefined();
  const raw = receiver.requests.at(-1)?.rawBody ?? '{}';
  expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(MAX_BODY_BYTES);
  return JSON.parse(raw) as Message;
}

describe.each([
  ['event alert', hostileNotification('event_alert.triggered')],
  ['issue', hostileNotification('issue.created')],
  ['30,000-character issue', hostileNotification('issue.created', { length: 30_000 })],
  ['30,000-character event', hostileNotification('event_alert.triggered', { length: 30_000 })],
  ['metric alert', hostileNotification('metric_alert.critical')],
  ['comment', hostileNotification('comment.created')],
  ['legacy webhook', hostileNotification('legacy_webhook')],
])('DingTalk markdown, hostile %s', (_name, n) => {
  it('links only to the issue and mentions only the configured phone', async () => {
    const message = await send(n, { atMobiles: '13900000000' });
    const text = message.markdown.text;
    const links = [...text.matchAll(/(?<!\\)\]\(([^)]*)\)/g)].map((m) => m[1]);
    expect(links).toEqual(n.url ? [n.url] : []);
    expect(text).not.toMatch(/<(?!\/?(br|p)\b)/i);
    expect(message.at).toEqual({ atMobiles: ['13900000000'], atUserIds: [], isAtAll: false });
    // The configured mention is the template's last line; nothing else mentions anyone.
    expect(text.endsWith('\n\n@13900000000')).toBe(true);
    expect(text.match(/(^|[^\w.@+-])@\w/g)).toHaveLength(1);
    expect(hostileLeaks(message)).toEqual([]);
  });
});
