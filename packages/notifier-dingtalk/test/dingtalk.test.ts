import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { DingTalkNotifier, MAX_BODY_BYTES } from '@plugboard/notifier-dingtalk';
import type { DingTalkMessage } from '@plugboard/notifier-dingtalk';
import type { Notification } from '@plugboard/sdk';
import {
  buildNotification,
  MemoryRateLimiter,
  runNotifier,
  startTestReceiver,
} from '@plugboard/sdk/testing';
import type { RecordedRequest, TestReceiver } from '@plugboard/sdk/testing';

const SECRET = 'SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd';
const TOKEN = 'a1b2c3d4e5f6tokenvalue';
const NOW = 1_700_000_000_000;

/**
 * What DingTalk does with a signed request, written from its documentation:
 * the timestamp is within an hour, and `sign` (URL-decoded) equals
 * base64(HMAC-SHA256(key = secret, message = "<timestamp>\n<secret>")).
 */
function platformCheck(
  request: RecordedRequest,
  secret: string,
  now: number,
): { errcode: number; errmsg: string } {
  const url = new URL(request.url);
  if (url.searchParams.get('access_token') !== TOKEN) {
    return { errcode: 300001, errmsg: 'token is not exist' };
  }
  const timestamp = url.searchParams.get('timestamp');
  const sign = url.searchParams.get('sign');
  if (!timestamp || !sign || Math.abs(now - Number(timestamp)) > 60 * 60 * 1000) {
    return { errcode: 310000, errmsg: 'sign not match' };
  }
  const expected = createHmac('sha256', secret).update(`${timestamp}\n${secret}`).digest();
  const given = Buffer.from(sign, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { errcode: 310000, errmsg: 'sign not match, more: [https://ding-doc.dingtalk.com/…]' };
  }
  return { errcode: 0, errmsg: 'ok' };
}

let receiver: TestReceiver;
beforeEach(async () => {
  receiver = await startTestReceiver((request) => ({ body: platformCheck(request, SECRET, NOW) }));
});
afterEach(async () => {
  await receiver.close();
});

const webhookUrl = (): string => `${receiver.url}/robot/send?access_token=${TOKEN}`;
const notifier = (): DingTalkNotifier => new DingTalkNotifier({ now: () => NOW });

function sent(index = 0): DingTalkMessage {
  return (receiver.requests[index] as RecordedRequest).body as DingTalkMessage;
}

describe('signing', () => {
  it('signs as documented (vector computed here, independently)', async () => {
    const result = await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: SECRET },
    });
    expect(result.error).toBeUndefined();
    expect(result.notified).toBe(true);
    const url = new URL((receiver.requests[0] as RecordedRequest).url);
    expect(url.searchParams.get('timestamp')).toBe(String(NOW));
    const expected = createHmac('sha256', SECRET)
      .update(`${NOW}\n${SECRET}`, 'utf8')
      .digest('base64');
    expect(url.searchParams.get('sign')).toBe(expected);
    // On the wire the base64 is URL-encoded: no raw `+`, `/` or `=` in the query.
    const rawQuery = (receiver.requests[0] as RecordedRequest).path.split('?')[1] ?? '';
    expect(rawQuery).toContain(`sign=${encodeURIComponent(expected)}`);
  });

  it('a wrong secret is refused by the platform and not retried; nothing secret leaks', async () => {
    const result = await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: 'SECwrongwrongwrong' },
    });
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
    expect(result.error?.message).toContain('310000');
    expect(result.error?.message).toContain('sign not match');
    const everything = JSON.stringify([result.error, result.logs]);
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain('SECwrongwrongwrong');
    expect(everything).not.toContain('sign=');
  });

  it('an unsigned request to a signing robot is refused', async () => {
    const result = await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl() },
    });
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
  });
});

describe('the message', () => {
  it('is a markdown message with project, short id and keyword', async () => {
    await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: SECRET, keyword: 'Sentry' },
    });
    const body = sent();
    expect(body.msgtype).toBe('markdown');
    expect(body.markdown.title).toBe('Sentry New issue: ReferenceError: blooopy is not defined');
    expect(body.markdown.text.startsWith('Sentry\n\n### New issue: ')).toBe(true);
    expect(body.markdown.text).toContain('FRONT-END-9');
    expect(body.markdown.text).toContain('front-end');
    expect(body.at).toEqual({ atMobiles: [], atUserIds: [], isAtAll: false });
  });

  it('mentions people in `at` and in the text, as DingTalk requires', async () => {
    await runNotifier(notifier(), buildNotification('event_alert.triggered'), {
      config: {
        webhookUrl: webhookUrl(),
        secret: SECRET,
        atMobiles: '13800000000, 13900000000',
        atUserIds: 'manager01',
        atAll: 'true',
      },
    });
    const body = sent();
    expect(body.at).toEqual({
      atMobiles: ['13800000000', '13900000000'],
      atUserIds: ['manager01'],
      isAtAll: true,
    });
    expect(body.markdown.text.endsWith('@13800000000 @13900000000 @manager01')).toBe(true);
  });

  it('uses the instance template, escaped for markdown', async () => {
    const n = buildNotification('issue.created', { title: '[pwn](javascript:x) *b*' });
    await runNotifier(notifier(), n, {
      config: { webhookUrl: webhookUrl(), secret: SECRET, template: '{{project.name}}: {{title}}' },
    });
    expect(sent().markdown.text).toBe('front-end: \\[pwn\\](javascript:x) \\*b\\*');
  });

  it('never sends 20,000 bytes or more: a 20,001-byte message is cut and says so', async () => {
    const message = 'x'.repeat(20_001);
    const n: Notification = buildNotification('event_alert.triggered', { message });
    expect(Buffer.byteLength(message)).toBe(20_001);
    const result = await runNotifier(notifier(), n, {
      config: { webhookUrl: webhookUrl(), secret: SECRET, atMobiles: '13800000000' },
    });
    expect(result.error).toBeUndefined();
    const raw = (receiver.requests[0] as RecordedRequest).rawBody;
    expect(Buffer.byteLength(raw)).toBeLessThan(20_000);
    expect(Buffer.byteLength(raw)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    const body = sent();
    expect(body.markdown.text).toMatch(/truncated/i);
    expect(body.markdown.text).toContain('heck is not defined');
    expect(body.markdown.text).toContain(n.url);
    expect(body.markdown.text).toContain('@13800000000');
  });

  it('counts multi-byte characters and JSON escapes', async () => {
    const n = buildNotification('issue.created', { message: '错误"\\'.repeat(5000) });
    await runNotifier(notifier(), n, { config: { webhookUrl: webhookUrl(), secret: SECRET } });
    expect(Buffer.byteLength((receiver.requests[0] as RecordedRequest).rawBody)).toBeLessThan(
      20_000,
    );
  });

  it('render() returns what notify() sends', async () => {
    const n = buildNotification('issue.created');
    const config = { webhookUrl: webhookUrl(), secret: SECRET, atAll: false };
    await runNotifier(notifier(), n, { config });
    const rendered = notifier().render(n, config);
    expect(rendered.contentType).toBe('application/json');
    expect(rendered.body).toBe((receiver.requests[0] as RecordedRequest).rawBody);
  });
});

describe('answers', () => {
  const run = (): ReturnType<typeof runNotifier> =>
    runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: SECRET },
    });

  it('errcode 130101 (send too fast) retries after a minute', async () => {
    receiver.reply({
      body: { errcode: 130101, errmsg: 'send too fast, exceed 20 times per minute' },
    });
    const result = await run();
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_RETRY_AFTER', retryAfterMs: 60_000 });
    expect(result.error?.message).toContain('send too fast');
  });

  it('errcode 300001 (bad token) is unrecoverable with the platform message', async () => {
    receiver.reply({ body: { errcode: 300001, errmsg: 'token is not exist' } });
    const result = await run();
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
    expect(result.error?.message).toContain('token is not exist');
  });

  it('errcode 310000 keyword and ip checks are unrecoverable', async () => {
    receiver.reply({ body: { errcode: 310000, errmsg: 'keywords not in content' } });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
    receiver.reply({ body: { errcode: 310000, errmsg: 'ip 1.2.3.4 not in whitelist' } });
    const result = await run();
    expect(result.error?.message).toContain('not in whitelist');
  });

  it('errcode -1 (busy), HTTP 5xx and 429 are retried', async () => {
    receiver.reply({ body: { errcode: -1, errmsg: 'system busy' } });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_FAILED' });
    receiver.reply({ status: 502, body: 'bad gateway' });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_FAILED', status: 502 });
    receiver.reply({ status: 429, headers: { 'retry-after': '30' }, body: '' });
    expect((await run()).error).toMatchObject({
      code: 'PB_DELIVERY_RETRY_AFTER',
      retryAfterMs: 30_000,
    });
  });

  it('HTTP 200 without an errcode is retried', async () => {
    receiver.reply({ body: '<html>proxy</html>' });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_FAILED' });
  });

  it('a connection failure names the host, never the token or secret', async () => {
    const url = webhookUrl();
    await receiver.close();
    const result = await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: url, secret: SECRET },
    });
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_FAILED' });
    const everything = JSON.stringify([result.error, result.logs]);
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain(SECRET);
    receiver = await startTestReceiver();
  });
});

describe('configuration and limits', () => {
  it('declares the robot limit (20 a minute) for the relay to hold back, and never drops a notification itself', async () => {
    const plugin = notifier();
    expect(plugin.targetRateLimit()).toEqual({ limit: 20, perMs: 60_000 });
    expect(plugin.rateLimit).toBeNull();
    const rateLimiter = new MemoryRateLimiter(() => NOW);
    const outcomes: boolean[] = [];
    for (let i = 0; i < 21; i++) {
      const project = { slug: `project-${i}`, name: `Project ${i}` };
      const r = await runNotifier(plugin, buildNotification('issue.created', { project }), {
        config: { webhookUrl: webhookUrl(), secret: SECRET },
        rateLimiter,
      });
      outcomes.push(r.notified);
    }
    // Pacing is the relay's job (dispatcher tests): the plugin sends what it is given.
    expect(outcomes.every(Boolean)).toBe(true);
    expect(receiver.requests).toHaveLength(21);
  });

  it('rejects a URL without a token, bad phone numbers and broken templates, hiding the URL', () => {
    const problems = notifier().validateConfig({
      webhookUrl: 'https://oapi.dingtalk.com/robot/send?foo=bar',
      atMobiles: '138000, not-a-phone',
      template: '{{#if}}',
      atAll: false,
    });
    expect(problems.join('\n')).toMatch(/no access_token/);
    expect(problems.join('\n')).toMatch(/not-a-phone/);
    expect(problems.join('\n')).toMatch(/template/);
    expect(problems.join('\n')).not.toContain('foo=bar');
    expect(
      notifier().validateConfig({
        webhookUrl: `https://x/robot/send?access_token=${TOKEN}`,
        atAll: false,
      }),
    ).toEqual([]);
  });

  it('keeps the webhook URL write-only (a secret field)', () => {
    const field = notifier()
      .configFields()
      .find((f) => f.name === 'webhookUrl');
    expect(field?.type).toBe('secret');
  });
});

describe('docs', () => {
  it('docs/notifiers/dingtalk.md shows what the default template renders for issue.created', () => {
    const doc = readFileSync(
      join(__dirname, '..', '..', '..', 'docs', 'notifiers', 'dingtalk.md'),
      'utf8',
    );
    const message = notifier().buildMessage(buildNotification('issue.created'), {
      webhookUrl: 'https://oapi.dingtalk.com/robot/send?access_token=x',
      atMobiles: '13800000000',
      atAll: false,
    });
    expect(doc).toContain(`\`\`\`text\n${message.markdown.text}\n\`\`\``);
    expect(doc).toContain(message.markdown.title);
  });
});
