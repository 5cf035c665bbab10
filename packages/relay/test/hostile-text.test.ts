import { Writable } from 'node:stream';
import request from 'supertest';
import type { Notification } from '@plugboard/sdk';
import {
  FORGED_LOG_LINE,
  HOSTILE_TEXT,
  hostileLeaks,
  hostileNotification,
  hostileWebhook,
  runNotifier,
  startTestReceiver,
  type RecordedRequest,
  type TestReceiver,
} from '@plugboard/sdk/testing';
import { LogNotifier } from '../src/builtin/log-notifier';
import { createLogger } from '../src/logger';
import { memoryLogger, signed, startRelay, waitFor, type TestRelay } from './helpers/relay';

// Event text is data: through the relay's own outputs (the `log` notifier,
// the JSON log) and through delivery to every bundled chat notifier, a
// hostile issue title stays one record per line and never becomes a link,
// a mention or markup.

/** What the process writes to stdout from now on, until `restore()`. */
function captureStdout(): { text: () => string; restore: () => void } {
  const chunks: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  });
  return { text: () => chunks.join(''), restore: () => spy.mockRestore() };
}

/** What the process wrote to stdout while `fn` ran. */
async function stdoutOf(fn: (text: () => string) => Promise<unknown>): Promise<string> {
  const capture = captureStdout();
  try {
    await fn(capture.text);
  } finally {
    capture.restore();
  }
  return capture.text();
}

/** A line that is a JSON record the event forged. */
const forged = (line: string): boolean => line.trim() === FORGED_LOG_LINE;

describe('log notifier, stream: stdout', () => {
  it.each([
    ['event alert', hostileNotification('event_alert.triggered')],
    ['30,000-character issue', hostileNotification('issue.created', { length: 30_000 })],
  ])('writes one line per notification for a hostile %s', async (_name, n: Notification) => {
    const out = await stdoutOf(() =>
      runNotifier(new LogNotifier(), n, { config: { prefix: 'ALERT', stream: 'stdout' } }),
    );
    const lines = out.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    expect(lines[0]?.startsWith('ALERT [')).toBe(true);
    expect(lines.some(forged)).toBe(false);
    expect(hostileLeaks(out.slice(0, -1), { ignore: ['url', 'tag', 'mention'] })).toEqual([]);
    // The text is still there to read, its line breaks escaped.
    expect(out).toContain(`\\n${FORGED_LOG_LINE}\\n`);
  });
});

describe('relay logger', () => {
  it('keeps one JSON record per line whatever a message or field holds', () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    });
    const logger = createLogger({ level: 'info', destination });
    logger.info({ title: HOSTILE_TEXT, tags: { [HOSTILE_TEXT]: HOSTILE_TEXT } }, HOSTILE_TEXT);
    logger.warn(HOSTILE_TEXT);
    const log = new LogNotifier();
    return runNotifier(log, hostileNotification(), {
      config: { prefix: 'ALERT', stream: 'log' },
    }).then(() => {
      const lines = chunks.join('').split('\n').filter(Boolean);
      expect(lines).toHaveLength(2);
      for (const line of lines) {
        const record = JSON.parse(line) as { msg: string };
        expect(record.msg).toBe(HOSTILE_TEXT);
      }
      expect(lines.some(forged)).toBe(false);
    });
  });
});

describe('delivery through the relay', () => {
  let receiver: TestReceiver;
  let t: TestRelay;
  const logs = memoryLogger();

  beforeAll(async () => {
    receiver = await startTestReceiver((r) =>
      r.path.startsWith('/robot/')
        ? { body: { errcode: 0, errmsg: 'ok' } }
        : r.path.startsWith('/open-apis/')
          ? { body: { code: 0, msg: 'success' } }
          : { body: { ok: true } },
    );
    const url = receiver.url;
    t = await startRelay(
      {
        dispatch: { pollIntervalMs: 20 },
        routes: [
          {
            name: 'all',
            instances: [
              {
                name: 'post',
                plugin: 'feishu',
                config: { webhookUrl: `${url}/open-apis/bot/v2/hook/post`, msgType: 'post' },
              },
              {
                name: 'card',
                plugin: 'feishu',
                config: { webhookUrl: `${url}/open-apis/bot/v2/hook/card` },
              },
              {
                plugin: 'dingtalk',
                config: {
                  webhookUrl: `${url}/robot/send?access_token=tok`,
                  atMobiles: '13900000000',
                },
              },
              {
                plugin: 'im',
                config: {
                  apiUrl: `${url}/im`,
                  clientId: 'relay',
                  clientSecret: 'im-secret-0123456789',
                  sender: 'bot',
                  recipients: 'ann@example.com',
                },
              },
              { plugin: 'webhook', config: { urls: `${url}/webhook` } },
              { plugin: 'log', config: { stream: 'stdout' } },
            ],
          },
        ],
      },
      { logger: logs.logger },
    );
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('reaches every target inert, with only the template links', async () => {
    const hostile = hostileWebhook('event_alert.triggered');
    const { body, headers } = signed('event_alert.triggered', (b) => {
      b.data = (hostile.body as { data: unknown }).data;
    });
    const expected = hostileNotification('event_alert.triggered');
    const out = await stdoutOf(async (printed) => {
      const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
      expect(res.status).toBe(202);
      await waitFor(() => receiver.requests.length >= 5, 'five deliveries', 15_000);
      await waitFor(() => printed().includes('[event_alert.triggered]'), 'the log line');
    });

    const by = (prefix: string): RecordedRequest => {
      const found = receiver.requests.find((r) => r.path.startsWith(prefix));
      if (!found) throw new Error(`nothing reached ${prefix}`);
      return found;
    };
    const post = by('/open-apis/bot/v2/hook/post').body as {
      content: { post: { zh_cn: { content: Array<Array<{ tag: string; href?: string }>> } } };
    };
    const elements = post.content.post.zh_cn.content.flat();
    expect(elements.filter((e) => e.tag === 'a').map((e) => e.href)).toEqual([expected.url]);
    expect(elements.some((e) => e.tag === 'at')).toBe(false);

    const card = by('/open-apis/bot/v2/hook/card').body;
    const ding = by('/robot/send').body as { markdown: { text: string }; at: unknown };
    expect([...ding.markdown.text.matchAll(/(?<!\\)\]\(([^)]*)\)/g)].map((m) => m[1])).toEqual([
      expected.url,
    ]);
    expect(ding.at).toEqual({ atMobiles: ['13900000000'], atUserIds: [], isAtAll: false });
    const im = by('/im/messages').body as { text: string };
    expect(im.text.endsWith(`\n${expected.url}`)).toBe(true);
    expect(hostileLeaks([post, card, ding.markdown, im])).toEqual([]);

    // The webhook body is JSON: the text arrives as data, exactly as Sentry sent it.
    const hook = by('/webhook').body as { data: { title: string; url: string } };
    expect(hook.data.title).toBe(HOSTILE_TEXT);
    expect(hook.data.url).toBe(expected.url);

    const printed = out.split('\n').filter((l) => l.includes(' [event_alert.triggered] '));
    expect(printed).toHaveLength(1);
    expect(out.split('\n').some(forged)).toBe(false);
    for (const line of logs.lines()) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(logs.lines().some(forged)).toBe(false);
  });
});
