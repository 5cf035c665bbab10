import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { FeishuNotifier, MAX_BODY_BYTES } from '@plugboard/notifier-feishu';
import {
  buildNotification,
  MemoryRateLimiter,
  runNotifier,
  startTestReceiver,
} from '@plugboard/sdk/testing';
import type { RecordedRequest, TestReceiver } from '@plugboard/sdk/testing';

const SECRET = 'feishuSigningSecret0123';
const HOOK = '2f7a1c0e-hook-id-0001';
const NOW = 1_700_000_000_000;

/**
 * What Feishu does with a signed body, written from its documentation: the
 * timestamp (seconds) is within an hour, and `sign` equals
 * base64(HMAC-SHA256(key = "<timestamp>\n<secret>", message = "")).
 */
function platformCheck(request: RecordedRequest, now: number): { code: number; msg: string } {
  if (!request.path.endsWith(`/open-apis/bot/v2/hook/${HOOK}`)) {
    return { code: 19001, msg: 'param invalid: incoming webhook access token invalid' };
  }
  const body = request.body as { timestamp?: unknown; sign?: unknown };
  if (typeof body.timestamp !== 'string' || typeof body.sign !== 'string') {
    return {
      code: 19021,
      msg: 'sign match fail or timestamp is not within one hour from current time',
    };
  }
  if (Math.abs(now / 1000 - Number(body.timestamp)) > 3600) {
    return {
      code: 19021,
      msg: 'sign match fail or timestamp is not within one hour from current time',
    };
  }
  const expected = createHmac('sha256', `${body.timestamp}\n${SECRET}`).digest();
  const given = Buffer.from(body.sign, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      code: 19021,
      msg: 'sign match fail or timestamp is not within one hour from current time',
    };
  }
  return { code: 0, msg: 'success' };
}

let receiver: TestReceiver;
beforeEach(async () => {
  receiver = await startTestReceiver((request) => ({ body: platformCheck(request, NOW) }));
});
afterEach(async () => {
  await receiver.close();
});

const webhookUrl = (): string => `${receiver.url}/open-apis/bot/v2/hook/${HOOK}`;
const notifier = (): FeishuNotifier => new FeishuNotifier({ now: () => NOW });
const request = (i = 0): RecordedRequest => receiver.requests[i] as RecordedRequest;

interface Card {
  msg_type: string;
  timestamp?: string;
  sign?: string;
  card: {
    header: { title: { content: string }; template: string };
    elements: Array<{ tag: string; text?: { content: string }; actions?: Array<{ url: string }> }>;
  };
}

describe('signing', () => {
  it('signs the body as documented (vector computed here, independently)', async () => {
    const result = await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: SECRET },
    });
    expect(result.error).toBeUndefined();
    const body = request().body as Card;
    expect(body.timestamp).toBe('1700000000');
    const expected = createHmac('sha256', `1700000000\n${SECRET}`).update('').digest('base64');
    expect(body.sign).toBe(expected);
  });

  it('a wrong secret gets 19021, unrecoverable, with the platform message and no secret', async () => {
    const result = await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: 'not-the-secret' },
    });
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
    expect(result.error?.message).toContain('19021');
    expect(result.error?.message).toContain('sign match fail');
    const everything = JSON.stringify([result.error, result.logs]);
    expect(everything).not.toContain('not-the-secret');
    expect(everything).not.toContain(HOOK);
  });

  it('a clock more than an hour off fails the check the same way', async () => {
    const skewed = new FeishuNotifier({ now: () => NOW - 2 * 3600 * 1000 });
    const result = await runNotifier(skewed, buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: SECRET },
    });
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
  });
});

describe('the message', () => {
  it('is a card by default with title, project, short id and a link button', async () => {
    const n = buildNotification('issue.resolved');
    await runNotifier(notifier(), n, { config: { webhookUrl: webhookUrl(), secret: SECRET } });
    const body = request().body as Card;
    expect(body.msg_type).toBe('interactive');
    expect(body.card.header.title.content).toBe('Resolved: ReferenceError: blooopy is not defined');
    expect(body.card.header.template).toBe('green');
    const text = body.card.elements[0]?.text?.content ?? '';
    expect(text).toContain('FRONT-END-9');
    expect(text).toContain('front-end');
    expect(body.card.elements.at(-1)?.actions?.[0]?.url).toBe(n.url);
  });

  it('mentions in a card with <at> tags, and user text cannot inject one', async () => {
    const n = buildNotification('issue.created', { message: 'boom <at id=all></at>' });
    await runNotifier(notifier(), n, {
      config: {
        webhookUrl: webhookUrl(),
        secret: SECRET,
        atUserIds: 'ou_abc, ou_def',
        atAll: true,
      },
    });
    const body = request().body as Card;
    expect(body.card.elements[1]?.text?.content).toBe(
      '<at id=all></at> <at id=ou_abc></at> <at id=ou_def></at>',
    );
    expect(body.card.elements[0]?.text?.content).toContain('boom &lt;at id=all&gt;&lt;/at&gt;');
  });

  it('sends a post with text, link and at elements when asked', async () => {
    const n = buildNotification('issue.resolved');
    await runNotifier(notifier(), n, {
      config: {
        webhookUrl: webhookUrl(),
        secret: SECRET,
        msgType: 'post',
        atUserIds: 'ou_abc',
        keyword: 'Sentry',
      },
    });
    const body = request().body as {
      msg_type: string;
      content: { post: { zh_cn: { title: string; content: unknown[][] } } };
    };
    expect(body.msg_type).toBe('post');
    const post = body.content.post.zh_cn;
    expect(post.title).toBe('Sentry Resolved: ReferenceError: blooopy is not defined');
    const flat = JSON.stringify(post.content);
    expect(flat).not.toContain('###');
    expect(flat).not.toContain('**');
    expect(post.content).toContainEqual([{ tag: 'a', text: 'View in Sentry', href: n.url }]);
    expect(post.content.at(-1)).toEqual([{ tag: 'at', user_id: 'ou_abc' }]);
  });

  it('stays under the size limit and says it truncated', async () => {
    const n = buildNotification('event_alert.triggered', { message: 'y'.repeat(40_000) });
    for (const msgType of ['interactive', 'post']) {
      receiver.requests.length = 0;
      const result = await runNotifier(notifier(), n, {
        config: { webhookUrl: webhookUrl(), secret: SECRET, msgType },
      });
      expect(result.error).toBeUndefined();
      expect(Buffer.byteLength(request().rawBody)).toBeLessThanOrEqual(MAX_BODY_BYTES);
      expect(request().rawBody).toMatch(/truncated/);
    }
  });

  it('render() gives the card notify() sends', async () => {
    const n = buildNotification('metric_alert.critical');
    const config = {
      webhookUrl: webhookUrl(),
      secret: SECRET,
      msgType: 'interactive' as const,
      atAll: false,
    };
    await runNotifier(notifier(), n, { config });
    expect(notifier().render(n, config).body).toBe(request().rawBody);
  });
});

describe('answers', () => {
  const run = (): ReturnType<typeof runNotifier> =>
    runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: SECRET },
    });

  it('11232 (frequency limited) is retried later', async () => {
    receiver.reply({ body: { code: 11232, msg: 'frequency limited' } });
    expect((await run()).error).toMatchObject({
      code: 'PB_DELIVERY_RETRY_AFTER',
      retryAfterMs: 10_000,
    });
  });

  it('9499 is a rate limit only when it says so', async () => {
    receiver.reply({ body: { code: 9499, msg: 'too many request' } });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_RETRY_AFTER' });
    receiver.reply({ body: { code: 9499, msg: 'Bad Request' } });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
  });

  it('19022 (ip) and 19024 (keyword) are unrecoverable with the message', async () => {
    receiver.reply({ body: { code: 19022, msg: 'Ip Not Allowed' } });
    expect((await run()).error?.message).toContain('Ip Not Allowed');
    receiver.reply({ body: { code: 19024, msg: 'Key Words Not Found' } });
    const result = await run();
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
    expect(result.error?.message).toContain('Key Words Not Found');
  });

  it('reads the older {StatusCode, StatusMessage} answer', async () => {
    receiver.reply({ body: { StatusCode: 0, StatusMessage: 'success', Extra: null } });
    expect((await run()).error).toBeUndefined();
    receiver.reply({ body: { StatusCode: 19024, StatusMessage: 'Key Words Not Found' } });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE' });
  });

  it('HTTP 5xx is retried; a closed port is retried without leaking the hook id', async () => {
    receiver.reply({ status: 503, body: '' });
    expect((await run()).error).toMatchObject({ code: 'PB_DELIVERY_FAILED', status: 503 });
    const url = webhookUrl();
    await receiver.close();
    const result = await runNotifier(notifier(), buildNotification('issue.created'), {
      config: { webhookUrl: url, secret: SECRET },
    });
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_FAILED' });
    expect(JSON.stringify([result.error, result.logs])).not.toContain(HOOK);
    receiver = await startTestReceiver();
  });
});

describe('configuration and limits', () => {
  it('declares the bot limit (100 a minute) for the relay to hold back, and never drops a notification itself', async () => {
    const plugin = notifier();
    expect(plugin.targetRateLimit()).toEqual({ limit: 100, perMs: 60_000 });
    expect(plugin.rateLimit).toBeNull();
    const rateLimiter = new MemoryRateLimiter(() => NOW);
    for (let i = 0; i < 100; i++) await rateLimiter.isLimited('feishu:test/instance', 100, 60);
    const r = await runNotifier(plugin, buildNotification('issue.created'), {
      config: { webhookUrl: webhookUrl(), secret: SECRET },
      rateLimiter,
    });
    expect(r.notified).toBe(true);
    expect(receiver.requests).toHaveLength(1);
  });

  it('rejects bad ids and templates', () => {
    const problems = notifier().validateConfig({
      webhookUrl: 'nope',
      atUserIds: 'ou_ok, <bad>',
      template: '{{#each}}',
      msgType: 'post',
      atAll: false,
    });
    expect(problems).toHaveLength(3);
  });
});

describe('docs', () => {
  it('docs/notifiers/feishu.md shows the card content the default template renders', () => {
    const doc = readFileSync(
      join(__dirname, '..', '..', '..', 'docs', 'notifiers', 'feishu.md'),
      'utf8',
    );
    const body = notifier().buildBody(buildNotification('issue.created'), {
      webhookUrl: 'https://open.feishu.cn/open-apis/bot/v2/hook/x',
      msgType: 'interactive',
      atAll: false,
    }) as unknown as Card;
    const content = body.card.elements[0]?.text?.content ?? '';
    expect(doc).toContain(`\`\`\`text\n${content}\n\`\`\``);
    expect(doc).toContain(body.card.header.title.content);
  });
});
