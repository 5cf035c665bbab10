import { createHash, createHmac } from 'node:crypto';
import type { Notification } from '@plugboard/sdk';
import {
  hostileLeaks,
  hostileNotification,
  runNotifier,
  startTestReceiver,
  type RecordedRequest,
  type TestReceiver,
} from '@plugboard/sdk/testing';
import { ImNotifier } from '../src';

// Event text is data: an IM message carries the issue link (and short id)
// whatever the event says, and nothing of the event's becomes a link, a
// mention or markup.

const CLIENT_ID = 'sentry-im-client';
const CLIENT_SECRET = 'im-client-secret-0123456789';
const FIXED = new Date('2026-11-25T09:00:00Z');

let receiver: TestReceiver;
beforeEach(async () => {
  receiver = await startTestReceiver({ body: { ok: true } });
});
afterEach(() => receiver.close());

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiUrl: `${receiver.url}/open/api`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    sender: 'sentry-bot',
    recipients: 'ann@example.com',
    ...extra,
  };
}

async function textFor(n: Notification, extra: Record<string, unknown> = {}): Promise<string> {
  const result = await runNotifier(new ImNotifier({ now: () => FIXED }), n, {
    config: config(extra),
  });
  expect(result.error).toBeUndefined();
  const body = receiver.requests.at(-1)?.body as { text: string };
  return body.text;
}

/** The issue sample carries no browser link; give it the one Sentry would. */
const ISSUE_URL = 'https://example.sentry.io/issues/1170820242/';
const issue = (length?: number): Notification => ({
  ...hostileNotification('issue.created', length === undefined ? {} : { length }),
  url: ISSUE_URL,
});

describe.each([
  ['event alert', hostileNotification('event_alert.triggered')],
  ['issue', issue()],
  ['30,000-character issue', issue(30_000)],
  ['30,000-character event', hostileNotification('event_alert.triggered', { length: 30_000 })],
  ['metric alert', hostileNotification('metric_alert.critical')],
])('IM text, hostile %s', (_name, n) => {
  it('keeps the link and short id, links nothing else, fits 4,000 characters', async () => {
    const text = await textFor(n);
    expect(Array.from(text).length).toBeLessThanOrEqual(4000);
    expect(n.url).toBeDefined();
    expect(text.split('\n').at(-1)).toBe(`${n.group?.shortId ?? ''} ${n.url}`.trim());
    expect(text.match(/[a-z]+:\/\//gi)).toHaveLength(1);
    expect(hostileLeaks(text)).toEqual([]);
  });
});

it('keeps the link of huge messages, whichever part is huge', async () => {
  const base = issue();
  const huge = 'x'.repeat(30_000);
  const texts = [
    await textFor({ ...base, title: huge }),
    await textFor({ ...base, message: huge }),
  ];
  for (const text of texts) {
    expect(Array.from(text).length).toBeLessThanOrEqual(4000);
    expect(text.endsWith(`\nFRONT-END-9 ${base.url}`)).toBe(true);
    expect(text.startsWith('[front-end] ')).toBe(true);
  }
});

it('keeps the link of a custom template with a huge value', async () => {
  const n = { ...issue(), title: 'y'.repeat(30_000) };
  const text = await textFor(n, { template: '{{url}} {{shortId}}: {{title}}' });
  expect(text.startsWith(`${n.url} FRONT-END-9: yyy`)).toBe(true);
  expect(Array.from(text)).toHaveLength(4000);
});

describe('hmac-sha256 signing', () => {
  /** The IM server's check, written from the scheme: the signed date is the one sent. */
  function valid(r: RecordedRequest, stringToSign: (date: string) => string): boolean {
    const date = r.headers.date ?? '';
    const signature = createHmac('sha256', CLIENT_SECRET).update(stringToSign(date)).digest('hex');
    return date !== '' && r.headers['x-signature'] === signature;
  }

  it('sends the Date header when {date} is signed', async () => {
    await textFor(issue(), {
      signatureScheme: 'hmac-sha256',
      hmacStringToSign: '{method}\\n{path}\\n{date}\\n{bodySha256}',
    });
    const r = receiver.requests.at(-1) as RecordedRequest;
    expect(r.headers.date).toBe(FIXED.toUTCString());
    const bodySha = createHash('sha256').update(r.rawBody).digest('hex');
    expect(valid(r, (date) => `POST\n/open/api/messages\n${date}\n${bodySha}`)).toBe(true);
  });
});
