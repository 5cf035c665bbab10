import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MemoryRateLimiter,
  buildNotification,
  createTestContext,
  runNotifier,
  startTestReceiver,
  type TestReceiver,
} from '@plugboard/sdk/testing';
import { MAX_TEXT_CHARS, MattermostNotifier, formatMessage, type MattermostConfig } from '../src';

// Every request goes to a real HTTP server on 127.0.0.1 (the SDK's test
// receiver), standing in for Mattermost's /hooks/<key> endpoint.

let receiver: TestReceiver;
beforeEach(async () => {
  receiver = await startTestReceiver({ status: 200, body: 'ok' });
});
afterEach(async () => {
  await receiver.close();
});

const config = (extra: Record<string, unknown> = {}) => ({
  webhookUrl: `${receiver.url}/hooks/xxxgeneratedkeyxxx`,
  ...extra,
});
const alert = buildNotification('event_alert.triggered');

it('declares itself in package.json the way the relay discovers it', () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
    version: string;
    plugboard: { entryPoints: Record<string, Record<string, string>> };
    peerDependencies: Record<string, string>;
  };
  const plugin = new MattermostNotifier();
  expect(pkg.plugboard.entryPoints['plugboard.notifiers']).toEqual({
    [plugin.slug]: './dist/index.js:MattermostNotifier',
  });
  expect(plugin.version).toBe(pkg.version);
  expect(pkg.peerDependencies['@plugboard/sdk']).toBeDefined();
});

it('posts a Mattermost incoming-webhook message', async () => {
  const result = await runNotifier(new MattermostNotifier(), alert, {
    config: config({ channel: 'ops-alerts', iconUrl: 'https://example.com/sentry.png' }),
  });
  expect(result.error).toBeUndefined();
  expect(result.notified).toBe(true);
  expect(receiver.requests).toHaveLength(1);
  const req = receiver.requests[0]!;
  expect(req).toMatchObject({
    method: 'POST',
    path: '/hooks/xxxgeneratedkeyxxx',
    headers: { 'content-type': 'application/json' },
    body: {
      channel: 'ops-alerts',
      username: 'Sentry',
      icon_url: 'https://example.com/sentry.png',
      props: { plugboard_delivery: result.context.idempotencyKey },
    },
  });
  const text = (req.body as { text: string }).text;
  expect(text).toContain(alert.title.replace(/([\\`*_[\]])/g, '\\$1'));
  expect(text).toContain(alert.url);
  expect(text).toContain('event_alert.triggered');
});

it('formats every kind of notification within one post', () => {
  for (const kind of ['issue.created', 'event_alert.triggered', 'metric_alert.critical']) {
    const text = formatMessage(buildNotification(kind));
    expect(text.length).toBeGreaterThan(0);
    expect(text.length).toBeLessThanOrEqual(MAX_TEXT_CHARS);
  }
  const long = { ...alert, message: 'x'.repeat(10_000) };
  expect(formatMessage(long)).toHaveLength(MAX_TEXT_CHARS);
});

it('leaves out levels below minLevel', async () => {
  const ctx = createTestContext<MattermostConfig>({
    webhookUrl: 'https://mattermost.example.com/hooks/abc',
    username: 'Sentry',
    minLevel: 'fatal',
  });
  expect(await new MattermostNotifier().shouldNotify({ ...alert, level: 'error' }, ctx)).toBe(
    false,
  );
  expect(await new MattermostNotifier().shouldNotify({ ...alert, level: 'fatal' }, ctx)).toBe(true);
});

it("waits as long as Mattermost's rate limiter says", async () => {
  receiver.reply({ status: 429, headers: { 'x-ratelimit-reset': '7' } });
  const { error } = await runNotifier(new MattermostNotifier(), alert, { config: config() });
  expect(error).toMatchObject({ code: 'PB_DELIVERY_RETRY_AFTER', retryAfterMs: 7_000 });
});

it('retries a server error', async () => {
  receiver.reply({ status: 502 });
  const { error } = await runNotifier(new MattermostNotifier(), alert, { config: config() });
  expect(error).toMatchObject({ code: 'PB_DELIVERY_FAILED', status: 502, retryable: true });
});

it("does not retry a disabled webhook, and reports Mattermost's reason without the URL", async () => {
  receiver.reply({
    status: 403,
    body: {
      id: 'web.incoming_webhook.disabled.app_error',
      message: 'Incoming webhooks have been disabled',
      status_code: 403,
    },
  });
  const { error } = await runNotifier(new MattermostNotifier(), alert, { config: config() });
  expect(error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE', status: 403, retryable: false });
  expect(error?.message).toContain('Incoming webhooks have been disabled');
  expect(JSON.stringify(error)).not.toContain('xxxgeneratedkeyxxx');
});

it('gives up when the attempt times out', async () => {
  receiver.reply({ delayMs: 2_000 });
  const { error } = await runNotifier(new MattermostNotifier(), alert, {
    config: config(),
    timeoutMs: 200,
  });
  expect(error?.code).toBe('PB_DELIVERY_TIMEOUT');
});

it("keeps Sentry's rate limit: 10 per project per minute", async () => {
  const rateLimiter = new MemoryRateLimiter();
  const runs = [];
  for (let i = 0; i < 11; i++) {
    runs.push(
      await runNotifier(new MattermostNotifier(), alert, { config: config(), rateLimiter }),
    );
  }
  expect(runs.map((r) => r.notified)).toEqual([...Array(10).fill(true), false]);
  expect(receiver.requests).toHaveLength(10);
});

it('rejects a webhook URL that is not a Mattermost hook, the way the relay does at start-up', async () => {
  await expect(
    runNotifier(new MattermostNotifier(), alert, {
      config: { webhookUrl: 'https://mattermost.example.com/api/v4/posts', minLevel: 'loud' },
    }),
  ).rejects.toMatchObject({ code: expect.stringMatching(/^PB_CONFIG/) });
});
