import { EventEmitter } from 'node:events';
import { request } from 'node:http';
import { NotificationPlugin, unrecoverable } from '@plugboard/sdk';
import type { ConfigField, Notification, NotifyContext } from '@plugboard/sdk';
import {
  buildNotification,
  createTestContext,
  MemoryRateLimiter,
  MemoryStore,
  recordRequests,
  runNotifier,
  startTestReceiver,
} from '@plugboard/sdk/testing';
import type { NockLike, TestReceiver } from '@plugboard/sdk/testing';

// Everything here stays in process or on 127.0.0.1.

type EchoConfig = { channel: string; retries: number };

/** The smallest useful notifier: behaviour is steered by the test. */
class EchoNotifier extends NotificationPlugin<EchoConfig> {
  readonly slug = 'echo';
  readonly title = 'Echo';
  readonly version = '1.0.0';
  override rateLimit = { limit: 2, windowSeconds: 60 };
  seen: Notification[] = [];
  behaviour: (ctx: NotifyContext<EchoConfig>) => Promise<void> = async () => undefined;

  override configFields(): ConfigField[] {
    return [
      { name: 'channel', label: 'Channel', type: 'text' },
      { name: 'retries', label: 'Retries', type: 'number', required: false, default: 3 },
    ];
  }

  override validateConfig(config: EchoConfig): string[] {
    return config.channel.startsWith('#') ? [] : ['channel: must start with #'];
  }

  override async notify(notification: Notification, ctx: NotifyContext<EchoConfig>) {
    this.seen.push(notification);
    ctx.logger.info({ channel: ctx.config.channel, attempt: ctx.attempt }, 'echo.sent');
    await this.behaviour(ctx);
  }
}

describe('buildNotification', () => {
  it('builds from a sample kind through the real parser', () => {
    const n = buildNotification('issue.created');
    expect(n.kind).toBe('issue.created');
    expect(n.resource).toBe('issue');
    expect(n.group?.id).toBeTruthy();
    expect(n.project?.slug).toBeTruthy();
  });

  it('uses the legacy parser for the legacy plugin body', () => {
    const n = buildNotification('legacy_webhook');
    expect(n.resource).toBe('legacy_webhook');
    expect(n.event?.eventId).toBeTruthy();
    expect(n.triggeringRules.length).toBeGreaterThan(0);
  });

  it('builds from a payload of your own and applies shallow overrides', () => {
    const n = buildNotification(
      {
        resource: 'legacy_webhook',
        body: {
          id: '42',
          project_slug: 'web',
          project_name: 'Web',
          message: 'boom',
          triggering_rules: ['r1'],
          event: { event_id: 'abc123', title: 'Boom', tags: [['level', 'error']] },
        },
      },
      { environment: 'staging', triggeringRules: ['overridden'] },
    );
    expect(n.group?.id).toBe('42');
    expect(n.project?.slug).toBe('web');
    expect(n.environment).toBe('staging');
    expect(n.triggeringRules).toEqual(['overridden']);
  });

  it('throws a coded, explicit error when the payload does not parse', () => {
    let caught: unknown;
    try {
      buildNotification({ resource: 'issue', body: 'not an object' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'PB_PAYLOAD_INVALID' });
    expect((caught as Error).message).toMatch(/^buildNotification: cannot build .* "issue"/);
  });

  it('names the known kinds for an unknown sample', () => {
    expect(() => buildNotification('issue.exploded')).toThrow(/issue\.created/);
  });
});

describe('createTestContext', () => {
  it('fills every NotifyContext member with documented defaults', () => {
    const ctx = createTestContext({ channel: '#ops' });
    expect(ctx.config).toEqual({ channel: '#ops' });
    expect(Object.isFrozen(ctx.config)).toBe(true);
    expect(ctx.idempotencyKey).toBe('test-delivery-1');
    expect(ctx.instanceId).toBe('test/instance');
    expect(ctx.attempt).toBe(1);
    expect(ctx.timeoutMs).toBe(10_000);
    expect(ctx.signal.aborted).toBe(false);
    ctx.abortController.abort();
    expect(ctx.signal.aborted).toBe(true);
  });

  it('takes overrides and gives every context a fresh signal', () => {
    const a = createTestContext({}, { attempt: 3, idempotencyKey: 'k', instanceId: 'r/i' });
    const b = createTestContext({}, { timeoutMs: 250 });
    expect([a.attempt, a.idempotencyKey, a.instanceId, b.timeoutMs]).toEqual([3, 'k', 'r/i', 250]);
    a.abortController.abort();
    expect(b.signal.aborted).toBe(false);
  });

  it('records log calls in both pino styles', () => {
    const ctx = createTestContext({});
    ctx.logger.info({ a: 1 }, 'with.fields');
    ctx.logger.warn('just a message');
    ctx.logger.error(new Error('bad'), 'failed');
    expect(ctx.logs).toEqual([
      { level: 'info', msg: 'with.fields', fields: { a: 1 } },
      { level: 'warn', msg: 'just a message', fields: {} },
      { level: 'error', msg: 'failed', fields: { err: { name: 'Error', message: 'bad' } } },
    ]);
  });

  it('has a store that honours TTLs and stores JSON copies', async () => {
    let now = 1_000_000;
    const ctx = createTestContext({}, { now: () => now });
    const value = { n: 1 };
    await ctx.store.set('k', value, { ttlSeconds: 10 });
    value.n = 2;
    expect(await ctx.store.get('k')).toEqual({ n: 1 });
    expect(await ctx.store.setIfAbsent('k', 'other')).toBe(false);
    now += 9_999;
    expect(await ctx.store.get('k')).toEqual({ n: 1 });
    now += 1;
    expect(await ctx.store.get('k')).toBeUndefined();
    expect(await ctx.store.setIfAbsent('k', 'fresh')).toBe(true);
    expect((ctx.store as MemoryStore).snapshot()).toEqual({ k: 'fresh' });
    await ctx.store.delete('k');
    expect(await ctx.store.get('k')).toBeUndefined();
    await expect(ctx.store.set('f', () => 1)).rejects.toThrow(/not JSON-serialisable/);
  });

  it('has a fixed-window rate limiter', async () => {
    let now = 60_000 * 100;
    const limiter = new MemoryRateLimiter(() => now);
    const hits = async (n: number) => {
      const out: boolean[] = [];
      for (let i = 0; i < n; i++) out.push(await limiter.isLimited('key', 2, 60));
      return out;
    };
    expect(await hits(3)).toEqual([false, false, true]);
    expect(await limiter.isLimited('other', 2, 60)).toBe(false);
    now += 59_999;
    expect(await hits(1)).toEqual([true]);
    now += 1; // next window
    expect(await hits(3)).toEqual([false, false, true]);
  });
});

describe('runNotifier', () => {
  const notification = buildNotification('issue.created');

  it('validates, runs shouldNotify then notify, and returns the logs', async () => {
    const plugin = new EchoNotifier();
    const result = await runNotifier(plugin, notification, { config: { channel: '#ops' } });
    expect(result.notified).toBe(true);
    expect(result.error).toBeUndefined();
    expect(plugin.seen).toEqual([notification]);
    // Defaults applied and strings coerced, as the relay does.
    expect(result.context.config).toEqual({ channel: '#ops', retries: 3 });
    expect(result.logs).toEqual([
      { level: 'info', msg: 'echo.sent', fields: { channel: '#ops', attempt: 1 } },
    ]);
  });

  it('throws a ConfigError listing every field problem', async () => {
    const run = runNotifier(new EchoNotifier(), notification, {
      config: { retries: 'many', colour: 'red' },
    });
    await expect(run).rejects.toMatchObject({ code: 'PB_CONFIG_INVALID' });
    await expect(run).rejects.toThrow(/notifier "echo"/);
    await expect(run).rejects.toThrow(/colour: unknown setting/);
    await expect(run).rejects.toThrow(/channel: is required/);
    await expect(run).rejects.toThrow(/retries: must be a number/);
  });

  it("includes the plugin's own validateConfig messages", async () => {
    await expect(
      runNotifier(new EchoNotifier(), notification, { config: { channel: 'ops' } }),
    ).rejects.toThrow(/channel: must start with #/);
  });

  it('reports delivery errors as serializeError does instead of throwing', async () => {
    const plugin = new EchoNotifier();
    plugin.behaviour = async () => {
      throw unrecoverable('channel archived', { status: 410 });
    };
    const result = await runNotifier(plugin, notification, { config: { channel: '#ops' } });
    expect(result.notified).toBe(false);
    expect(result.error).toMatchObject({
      code: 'PB_DELIVERY_UNRECOVERABLE',
      message: 'channel archived',
      retryable: false,
      status: 410,
    });

    plugin.behaviour = async () => {
      throw new TypeError('oops');
    };
    const plain = await runNotifier(plugin, notification, { config: { channel: '#ops' } });
    expect(plain.error).toMatchObject({ code: 'PB_DELIVERY_FAILED', retryable: true });
  });

  it('reports a declined notification (rate limit shared across runs)', async () => {
    const plugin = new EchoNotifier();
    const rateLimiter = new MemoryRateLimiter();
    const outcomes = [];
    for (let i = 0; i < 3; i++) {
      const r = await runNotifier(plugin, notification, { config: { channel: '#a' }, rateLimiter });
      outcomes.push([r.notified, r.error]);
    }
    expect(outcomes).toEqual([
      [true, undefined],
      [true, undefined],
      [false, undefined],
    ]);
    expect(plugin.seen).toHaveLength(2);
  });

  it('aborts the signal after timeoutMs', async () => {
    const plugin = new EchoNotifier();
    plugin.behaviour = (ctx) =>
      new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
      });
    const result = await runNotifier(plugin, notification, {
      config: { channel: '#ops' },
      timeoutMs: 20,
    });
    expect(result.error).toMatchObject({ code: 'PB_DELIVERY_TIMEOUT', retryable: true });
    expect(result.context.signal.aborted).toBe(true);
  });

  it('gives up on a notify that ignores the signal', async () => {
    const plugin = new EchoNotifier();
    plugin.behaviour = () => new Promise(() => undefined);
    const result = await runNotifier(plugin, notification, {
      config: { channel: '#ops' },
      timeoutMs: 10,
    });
    expect(result.error?.code).toBe('PB_DELIVERY_TIMEOUT');
    expect(result.error?.message).toMatch(/does it pass ctx\.signal on/);
  });

  it('passes context options through (a second attempt of one delivery)', async () => {
    const plugin = new EchoNotifier();
    const store = new MemoryStore();
    plugin.behaviour = async (ctx) => {
      await ctx.store.set(`seen:${ctx.idempotencyKey}`, ctx.attempt);
    };
    const result = await runNotifier(plugin, notification, {
      config: { channel: '#ops' },
      attempt: 2,
      idempotencyKey: 'd-9',
      store,
    });
    expect(result.context.attempt).toBe(2);
    expect(store.snapshot()).toEqual({ 'seen:d-9': 2 });
  });
});

/** What nock 15 emits on `request`: a WHATWG Request, the interceptor, the body text. */
function nock15Request(url: string, body: string, headers: Record<string, string>) {
  return new Request(url, { method: 'POST', body, headers });
}

describe('recordRequests', () => {
  it('records the requests a nock scope intercepts (nock 15 event shape)', () => {
    const scope = new EventEmitter();
    const recorder = recordRequests(scope);
    const body = JSON.stringify({ hello: 'world' });
    scope.emit(
      'request',
      nock15Request('https://hooks.example.com/in?token=t', body, {
        'Content-Type': 'application/json',
        'X-Trace': 'abc',
      }),
      {},
      body,
    );
    scope.emit(
      'request',
      nock15Request('https://hooks.example.com/form', 'a=1', {
        'content-type': 'application/x-www-form-urlencoded',
      }),
      {},
      'a=1',
    );
    expect(recorder.requests).toEqual([
      {
        method: 'POST',
        url: 'https://hooks.example.com/in?token=t',
        path: '/in?token=t',
        headers: expect.objectContaining({ 'content-type': 'application/json', 'x-trace': 'abc' }),
        body: { hello: 'world' },
        rawBody: body,
      },
      expect.objectContaining({ path: '/form', body: 'a=1', rawBody: 'a=1' }),
    ]);
    recorder.stop();
    scope.emit('request', nock15Request('https://hooks.example.com/late', '', {}), {}, '');
    expect(recorder.requests).toHaveLength(2);
  });

  it('understands the ClientRequest shape older nock versions emit', () => {
    const scope = new EventEmitter();
    const recorder = recordRequests(scope);
    scope.emit(
      'request',
      {
        method: 'put',
        path: '/v1/items?x=1',
        headers: { 'Content-Type': 'application/json', 'X-Multi': ['a', 'b'] },
        options: { proto: 'https', host: 'api.example.com', port: 8443 },
      },
      {},
      '[1,2]',
    );
    expect(recorder.requests[0]).toEqual({
      method: 'PUT',
      url: 'https://api.example.com:8443/v1/items?x=1',
      path: '/v1/items?x=1',
      headers: { 'content-type': 'application/json', 'x-multi': 'a, b' },
      body: [1, 2],
      rawBody: '[1,2]',
    });
  });

  it('for a base URL, intercepts every method on that origin and cleans up on stop', () => {
    const calls: string[] = [];
    const scope = Object.assign(new EventEmitter(), {
      persist: () => scope,
      intercept: (match: (path: string) => boolean, method: string) => {
        calls.push(`${method} ${match('/anything')}`);
        return {
          reply: (status: number, body: unknown) => {
            calls.push(`reply ${status} ${JSON.stringify(body)}`);
            return scope;
          },
        };
      },
    });
    const removed: unknown[] = [];
    const fakeNock = Object.assign(
      (base: string) => {
        calls.push(`nock ${base}`);
        return scope;
      },
      { removeInterceptor: (i: unknown) => removed.push(i) },
    ) as unknown as NockLike;

    const recorder = recordRequests('https://hooks.example.com/some/path', {
      nock: fakeNock,
      reply: { status: 202, body: { ok: true } },
    });
    expect(calls[0]).toBe('nock https://hooks.example.com');
    expect(calls).toContain('POST true');
    expect(calls).toContain('reply 202 {"ok":true}');
    scope.emit('request', nock15Request('https://hooks.example.com/x', '{}', {}), {}, '{}');
    expect(recorder.requests).toHaveLength(1);
    expect(recorder.scope).toBe(scope);
    recorder.stop();
    expect(removed.length).toBeGreaterThanOrEqual(5);
    expect(scope.listenerCount('request')).toBe(0);
  });

  it('explains when nock is not installed', () => {
    jest.isolateModules(() => {
      jest.doMock(
        'nock',
        () => {
          throw Object.assign(new Error("Cannot find module 'nock'"), {
            code: 'MODULE_NOT_FOUND',
          });
        },
        { virtual: true },
      );
      const kit = require('@plugboard/sdk/testing') as typeof import('@plugboard/sdk/testing');
      expect(() => kit.recordRequests('https://hooks.example.com')).toThrow(
        /nock is not installed.*npm install --save-dev nock/s,
      );
    });
  });

  it('explains when nock cannot be loaded and how to pass it in', () => {
    jest.isolateModules(() => {
      jest.doMock(
        'nock',
        () => {
          throw new SyntaxError('Cannot use import statement outside a module');
        },
        { virtual: true },
      );
      const kit = require('@plugboard/sdk/testing') as typeof import('@plugboard/sdk/testing');
      expect(() => kit.recordRequests('https://hooks.example.com')).toThrow(
        /nock could not be loaded.*recordRequests\(url, \{ nock \}\)/s,
      );
    });
  });
});

function send(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: res.headers,
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('startTestReceiver', () => {
  let receiver: TestReceiver | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  it('records requests on 127.0.0.1 and answers in sequence', async () => {
    receiver = await startTestReceiver([
      { status: 503, headers: { 'retry-after': '3' } },
      { status: 200, body: { ok: true } },
    ]);
    expect(receiver.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const first = await send(`${receiver.url}/hook?x=1`, '{"a":1}', {
      'content-type': 'application/json',
    });
    const second = await send(`${receiver.url}/hook`, 'plain', { 'content-type': 'text/plain' });
    const third = await send(`${receiver.url}/hook`, '');
    expect([first.status, first.headers['retry-after']]).toEqual([503, '3']);
    expect([second.status, second.body]).toEqual([200, '{"ok":true}']);
    expect(third.status).toBe(200); // the last answer repeats
    expect(receiver.requests[0]).toMatchObject({
      method: 'POST',
      path: '/hook?x=1',
      url: `${receiver.url}/hook?x=1`,
      body: { a: 1 },
      rawBody: '{"a":1}',
    });
    expect(receiver.requests[1]?.body).toBe('plain');
  });

  it('answers from a function and can change its answer', async () => {
    receiver = await startTestReceiver((req, index) => ({
      status: 201,
      body: `${index}:${req.path}`,
    }));
    expect((await send(`${receiver.url}/a`, '')).body).toBe('0:/a');
    receiver.reply({ status: 418 });
    expect((await send(`${receiver.url}/b`, '')).status).toBe(418);
  });

  it('delays answers, and close() drops a connection still waiting', async () => {
    receiver = await startTestReceiver({ delayMs: 60_000 });
    const pending = send(`${receiver.url}/slow`, 'x');
    await new Promise((r) => setTimeout(r, 50));
    expect(receiver.requests).toHaveLength(1);
    await receiver.close();
    receiver = undefined;
    await expect(pending).rejects.toThrow();
  });
});
