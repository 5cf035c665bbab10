import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebhookNotifier } from '@plugboard/notifier-webhook';
import {
  MemoryStore,
  buildNotification,
  runNotifier,
  startTestReceiver,
} from '@plugboard/sdk/testing';
import type { RecordedRequest, RunNotifierOptions, TestReceiver } from '@plugboard/sdk/testing';
import type { Notification } from '@plugboard/sdk';

// Every request goes to a real server on 127.0.0.1: nothing leaves the machine.

const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
  version: string;
  plugboard: unknown;
};

/** A Standard Webhooks key as their libraries generate it: `whsec_` + base64 of random bytes. */
const KEY_BYTES = Buffer.from('0123456789abcdef0123456789abcdef');
const WHSEC = `whsec_${KEY_BYTES.toString('base64')}`;

let receiver: TestReceiver;
beforeEach(async () => {
  receiver = await startTestReceiver({ status: 200 });
});
afterEach(async () => {
  await receiver.close();
});

function run(
  notification: Notification,
  config: Record<string, unknown>,
  options: Omit<RunNotifierOptions, 'config'> = {},
) {
  return runNotifier(new WebhookNotifier(), notification, {
    config: { urls: `${receiver.url}/hook`, ...config },
    ...options,
  });
}

/**
 * The receiving side, written from the Standard Webhooks spec rather than
 * from the notifier's code: HMAC-SHA256 over `id.timestamp.body`, keyed with
 * the base64-decoded part after `whsec_`, sent as `v1,<base64>`.
 */
function expectedSignature(secret: string, req: RecordedRequest): string {
  const key = secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret, 'utf8');
  const signed = `${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.${req.rawBody}`;
  return `v1,${createHmac('sha256', key).update(signed).digest('base64')}`;
}

function only(requests: RecordedRequest[]): RecordedRequest {
  expect(requests).toHaveLength(1);
  return requests[0] as RecordedRequest;
}

describe('WebhookNotifier metadata', () => {
  it("keeps Sentry's legacy plugin identity", () => {
    const plugin = new WebhookNotifier();
    expect(plugin.slug).toBe('webhook');
    expect(plugin.title).toBe('WebHooks');
    expect(plugin.getConfKey()).toBe('webhooks');
    expect(plugin.version).toBe(pkg.version);
    expect(plugin.rateLimit).toBeNull();
    expect(plugin.configFields().map((f) => f.name)).toEqual([
      'urls',
      'secret',
      'format',
      'timeoutMs',
      'headers',
    ]);
  });

  it('declares its entry point in package.json', () => {
    expect(pkg.plugboard).toEqual({
      sdk: '^0.1.0',
      entryPoints: { 'plugboard.notifiers': { webhook: './dist/index.js:WebhookNotifier' } },
    });
  });

  it('is not rate limited: a receiver answers 429 itself', async () => {
    const n = buildNotification('issue.created');
    const results = [];
    for (let i = 0; i < 12; i++) results.push((await run(n, {})).notified);
    expect(results.every(Boolean)).toBe(true);
    expect(receiver.requests).toHaveLength(12);
  });
});

describe('plugboard body', () => {
  it('has the documented shape for an issue notification', async () => {
    const n = buildNotification('issue.created');
    const result = await run(n, {}, { idempotencyKey: 'dlv-1' });
    expect(result.error).toBeUndefined();
    const req = only(receiver.requests);
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/hook');
    const body = req.body as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['data', 'id', 'timestamp', 'type']);
    expect(body.id).toBe('dlv-1');
    expect(body.type).toBe('issue.created');
    expect(new Date(body.timestamp as string).toISOString()).toBe(body.timestamp);
    const data = body.data as Record<string, unknown>;
    expect(Object.keys(data).sort()).toEqual(
      [
        'comment',
        'environment',
        'event',
        'group',
        'level',
        'links',
        'message',
        'metricAlert',
        'project',
        'release',
        'tags',
        'title',
        'triggeringRules',
        'url',
      ].sort(),
    );
    expect(data).toMatchObject({
      project: n.project,
      group: n.group,
      event: null,
      metricAlert: null,
      comment: null,
      title: n.title,
      message: n.message,
      triggeringRules: [],
    });
  });

  it('carries the event without the raw Sentry event, dated by the event', async () => {
    const n = buildNotification('event_alert.triggered');
    await run(n, {});
    const body = only(receiver.requests).body as {
      timestamp: string;
      data: { event: Record<string, unknown>; triggeringRules: string[]; tags: object };
    };
    expect(n.event?.datetime).toBeDefined();
    expect(body.timestamp).toBe(n.event?.datetime);
    expect(body.data.event.eventId).toBe(n.event?.eventId);
    expect(body.data.event).not.toHaveProperty('raw');
    expect(body.data.triggeringRules).toEqual(n.triggeringRules);
    expect(body.data.tags).toEqual(n.tags);
  });

  it('carries metric alerts', async () => {
    const n = buildNotification('metric_alert.critical');
    await run(n, {});
    const body = only(receiver.requests).body as { type: string; data: Record<string, unknown> };
    expect(body.type).toBe('metric_alert.critical');
    expect(body.data.metricAlert).toEqual(n.metricAlert);
    expect(body.data.group).toBeNull();
  });
});

describe('sentry-legacy body', () => {
  it('passes a legacy plugin body on exactly as Sentry sent it', async () => {
    const n = buildNotification('legacy_webhook');
    await run(n, { format: 'sentry-legacy' });
    const body = only(receiver.requests).body;
    expect(body).toEqual(n.raw);
    expect(body).toMatchObject({ project_slug: 'backend', triggering_rules: n.triggeringRules });
  });

  it("rebuilds the legacy plugin's body from an Integration Platform event alert", async () => {
    const n = buildNotification('event_alert.triggered');
    await run(n, { format: 'sentry-legacy' });
    const body = only(receiver.requests).body as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      [
        'culprit',
        'event',
        'id',
        'level',
        'logger',
        'message',
        'project',
        'project_name',
        'project_slug',
        'triggering_rules',
        'url',
      ].sort(),
    );
    expect(body).toMatchObject({
      id: n.group?.id,
      project: n.project?.slug,
      project_name: n.project?.name,
      project_slug: n.project?.slug,
      level: 'error',
      culprit: n.group?.culprit,
      triggering_rules: n.triggeringRules,
    });
    expect(new URL(body.url as string).searchParams.get('referrer')).toBe('webhooks_plugin');
    const event = body.event as Record<string, unknown>;
    expect(event.event_id).toBe(n.event?.eventId);
    expect(event).not.toHaveProperty('id');
    expect(event.tags).toEqual(Object.entries(n.event?.tags ?? {}));
  });
});

describe('headers and signature', () => {
  it('sends JSON with a versioned User-Agent, Standard Webhooks ids and extra headers', async () => {
    const before = Math.floor(Date.now() / 1000);
    await run(buildNotification('issue.created'), {
      headers: 'X-Team: payments\n\nAuthorization: Bearer tok-123',
    });
    const req = only(receiver.requests);
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['user-agent']).toBe(`plugboard-webhook/${pkg.version}`);
    expect(req.headers['webhook-id']).toBe('test-delivery-1');
    const ts = Number(req.headers['webhook-timestamp']);
    expect(ts).toBeGreaterThanOrEqual(before);
    expect(ts).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(req.headers['webhook-signature']).toBeUndefined();
    expect(req.headers['x-team']).toBe('payments');
    expect(req.headers.authorization).toBe('Bearer tok-123');
  });

  it("lets an operator's User-Agent line replace the default", async () => {
    await run(buildNotification('issue.created'), { headers: 'user-agent: acme-relay/2' });
    expect(only(receiver.requests).headers['user-agent']).toBe('acme-relay/2');
  });

  it('signs with a whsec_ key, verifiable from the spec alone', async () => {
    await run(buildNotification('issue.created'), { secret: WHSEC });
    const req = only(receiver.requests);
    expect(req.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(req.headers['webhook-signature']).toBe(expectedSignature(WHSEC, req));
    // Signed over the exact bytes on the wire.
    expect(req.rawBody).toBe(JSON.stringify(req.body));
  });

  it('signs with the UTF-8 bytes of a secret without the whsec_ prefix', async () => {
    const secret = 'plain shared secret ✓';
    await run(buildNotification('issue.created'), { secret });
    const req = only(receiver.requests);
    expect(req.headers['webhook-signature']).toBe(expectedSignature(secret, req));
    expect(req.headers['webhook-signature']).not.toBe(expectedSignature(WHSEC, req));
  });

  it('keeps webhook-id stable across attempts of one delivery', async () => {
    receiver.reply([{ status: 503 }, { status: 200 }]);
    const n = buildNotification('issue.created');
    const first = await run(n, { secret: WHSEC }, { idempotencyKey: 'dlv-7', attempt: 1 });
    const second = await run(n, { secret: WHSEC }, { idempotencyKey: 'dlv-7', attempt: 2 });
    expect(first.error?.retryable).toBe(true);
    expect(second.error).toBeUndefined();
    const [a, b] = receiver.requests as [RecordedRequest, RecordedRequest];
    expect(a.headers['webhook-id']).toBe('dlv-7');
    expect(b.headers['webhook-id']).toBe('dlv-7');
    expect(b.headers['webhook-signature']).toBe(expectedSignature(WHSEC, b));
  });
});

describe('outcomes', () => {
  const n = buildNotification('issue.created');

  it.each([200, 201, 202, 204])('%i is delivered', async (status) => {
    receiver.reply({ status });
    const result = await run(n, {});
    expect(result).toMatchObject({ notified: true });
    expect(result.logs).toContainEqual(
      expect.objectContaining({ level: 'debug', msg: 'webhook.delivered' }),
    );
  });

  it('410 Gone is unrecoverable', async () => {
    receiver.reply({ status: 410 });
    const { error } = await run(n, {});
    expect(error).toMatchObject({
      code: 'PB_DELIVERY_UNRECOVERABLE',
      status: 410,
      retryable: false,
    });
    expect(error?.message).toMatch(/endpoint gone/);
  });

  it('429 with Retry-After seconds waits that long', async () => {
    receiver.reply({ status: 429, headers: { 'Retry-After': '7' } });
    const { error } = await run(n, {});
    expect(error).toMatchObject({
      code: 'PB_DELIVERY_RETRY_AFTER',
      retryAfterMs: 7000,
      status: 429,
      retryable: true,
    });
  });

  it('503 with Retry-After as an HTTP date waits until then', async () => {
    const at = new Date(Date.now() + 120_000).toUTCString();
    receiver.reply({ status: 503, headers: { 'Retry-After': at } });
    const { error } = await run(n, {});
    expect(error?.code).toBe('PB_DELIVERY_RETRY_AFTER');
    expect(error?.retryAfterMs).toBeGreaterThan(115_000);
    expect(error?.retryAfterMs).toBeLessThanOrEqual(120_000);
  });

  it.each([503, 500, 408, 429])('%i without Retry-After is retryable', async (status) => {
    receiver.reply({ status });
    const { error } = await run(n, {});
    expect(error).toMatchObject({ code: 'PB_DELIVERY_FAILED', status, retryable: true });
  });

  it.each([400, 401, 404, 422])('%i is unrecoverable and named', async (status) => {
    receiver.reply({ status });
    const { error } = await run(n, {});
    expect(error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE', status, retryable: false });
    expect(error?.message).toContain(`HTTP ${status}`);
  });

  it('does not follow redirects', async () => {
    receiver.reply({ status: 301, headers: { Location: `${receiver.url}/elsewhere` } });
    const { error } = await run(n, {});
    expect(error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE', status: 301 });
    expect(receiver.requests).toHaveLength(1);
  });

  it('a timeout is retryable and names the URL without query or userinfo', async () => {
    receiver.reply({ delayMs: 5_000 });
    const url = receiver.url.replace('http://', 'http://alice:pa55word@') + '/hook?token=tok-999';
    const started = Date.now();
    const { error, logs } = await run(n, { urls: url, timeoutMs: 100 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error).toMatchObject({ code: 'PB_DELIVERY_TIMEOUT', retryable: true });
    expect(error?.message).toContain(`${receiver.url}/hook`);
    const everything = JSON.stringify({ error, logs });
    expect(everything).not.toMatch(/tok-999|token=|alice|pa55word/);
  });

  it('the attempt timeout bounds the configured one', async () => {
    receiver.reply({ delayMs: 5_000 });
    const started = Date.now();
    const { error } = await run(n, { timeoutMs: 60_000 }, { timeoutMs: 150 });
    expect(error?.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a refused connection is retryable', async () => {
    const port = await freePort();
    const { error } = await run(n, { urls: `http://127.0.0.1:${port}/hook?token=tok-1` });
    expect(error).toMatchObject({ code: 'PB_DELIVERY_FAILED', retryable: true });
    expect(error?.message).toContain(`http://127.0.0.1:${port}/hook`);
    expect(error?.message).toContain('ECONNREFUSED');
    expect(error?.message).not.toContain('tok-1');
  });
});

describe('several URLs', () => {
  let second: TestReceiver;
  beforeEach(async () => {
    second = await startTestReceiver({ status: 200 });
  });
  afterEach(async () => {
    await second.close();
  });

  const urls = () => `${receiver.url}/a\n${second.url}/b?token=tok-2`;

  it('posts the same body to each, with a webhook-id per URL', async () => {
    const result = await run(buildNotification('issue.created'), { urls: urls(), secret: WHSEC });
    expect(result.notified).toBe(true);
    const a = only(receiver.requests);
    const b = only(second.requests);
    expect(a.headers['webhook-id']).toBe('test-delivery-1-0');
    expect(b.headers['webhook-id']).toBe('test-delivery-1-1');
    expect(a.rawBody).toBe(b.rawBody);
    expect(a.headers['webhook-signature']).toBe(expectedSignature(WHSEC, a));
    expect(b.headers['webhook-signature']).toBe(expectedSignature(WHSEC, b));
  });

  it('fails retryably when any URL fails retryably, and a retry skips URLs already reached', async () => {
    second.reply([{ status: 503 }, { status: 200 }]);
    const store = new MemoryStore();
    const n = buildNotification('issue.created');
    const first = await run(n, { urls: urls() }, { store, idempotencyKey: 'd', attempt: 1 });
    expect(first.error).toMatchObject({ code: 'PB_DELIVERY_FAILED', retryable: true, status: 503 });
    expect(first.error?.message).toMatch(/1 of 2 URLs failed: \[2\] http:\/\/127\.0\.0\.1:\d+\/b /);
    expect(first.error?.message).not.toContain('tok-2');

    const retry = await run(n, { urls: urls() }, { store, idempotencyKey: 'd', attempt: 2 });
    expect(retry.error).toBeUndefined();
    expect(receiver.requests).toHaveLength(1);
    expect(second.requests.map((r) => r.headers['webhook-id'])).toEqual(['d-1', 'd-1']);
    expect(retry.logs).toContainEqual(
      expect.objectContaining({ msg: 'webhook.skipped_already_delivered' }),
    );
  });

  it('is unrecoverable only when every failure is, and waits for the longest Retry-After', async () => {
    receiver.reply({ status: 404 });
    second.reply({ status: 410 });
    const gone = await run(buildNotification('issue.created'), { urls: urls() });
    expect(gone.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE', retryable: false });
    expect(gone.error?.message).toMatch(/2 of 2 URLs failed/);

    receiver.reply({ status: 429, headers: { 'Retry-After': '30' } });
    second.reply({ status: 400 });
    const mixed = await run(buildNotification('issue.created'), { urls: urls() });
    expect(mixed.error).toMatchObject({ code: 'PB_DELIVERY_RETRY_AFTER', retryAfterMs: 30_000 });
    expect(mixed.error?.message).toMatch(/\[2\] .*HTTP 400.*\(not retried\)/);
  });
});

describe('secrets', () => {
  it('never appear in an error or a log entry', async () => {
    const secrets = [WHSEC, KEY_BYTES.toString('base64'), 'raw-secret-value-xyz'];
    const header = 'Authorization: Bearer header-token-abc';
    const outputs: unknown[] = [];
    const port = await freePort();
    for (const secret of [WHSEC, 'raw-secret-value-xyz']) {
      for (const reply of [{ status: 200 }, { status: 401 }, { status: 503 }, { delayMs: 5_000 }]) {
        receiver.reply(reply);
        const r = await run(
          buildNotification('issue.created'),
          { secret, headers: header, timeoutMs: 100 },
          {},
        );
        outputs.push(r.error, r.logs);
      }
      const refused = await run(buildNotification('issue.created'), {
        urls: `http://127.0.0.1:${port}/x`,
        secret,
        headers: header,
      });
      outputs.push(refused.error, refused.logs);
    }
    const text = JSON.stringify(outputs);
    expect(text).toContain('webhook.delivered');
    for (const s of [...secrets, 'header-token-abc']) expect(text).not.toContain(s);
  });
});

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
