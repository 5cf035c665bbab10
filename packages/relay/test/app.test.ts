import { createServer } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import request from 'supertest';
import { Relay } from '../src/relay';
import {
  RecordingNotifier,
  memoryLogger,
  writeConfig,
  LEGACY_TOKEN,
  SECRET,
  signed,
  startRelay,
  waitFor,
  type TestRelay,
} from './helpers/relay';

const everything = {
  routes: [{ name: 'all', instances: [{ plugin: 'recorder' }] }],
};

describe('POST /hooks/sentry', () => {
  let t: TestRelay;
  let recorder: RecordingNotifier;

  beforeEach(async () => {
    recorder = new RecordingNotifier();
    t = await startRelay(everything, { plugins: [recorder] });
  });
  afterEach(() => t.close());

  it('accepts a signed webhook with 202 and delivers it once', async () => {
    const { body, headers } = signed('issue.created');
    const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'accepted', deliveries: 1 });
    await waitFor(() => recorder.received.length === 1, 'delivery');
    expect(recorder.received[0]!.n.group?.shortId).toBe('FRONT-END-9');
    expect(recorder.received[0]!.ctx.instanceId).toBe('all/recorder');
  });

  it('refuses a missing signature with 401 and says so', async () => {
    const { body, headers } = signed('issue.created');
    delete headers['sentry-hook-signature'];
    const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('PB_SIGNATURE_MISSING');
    expect(res.body.error.message).toMatch(/Sentry-Hook-Signature/i);
  });

  it('refuses a signature made with another secret, and a body changed after signing', async () => {
    const other = signed('issue.created', undefined, 'another-secret');
    const res1 = await request(t.relay.app)
      .post('/hooks/sentry')
      .set(other.headers)
      .send(other.body);
    expect(res1.status).toBe(401);
    expect(res1.body.error.code).toBe('PB_SIGNATURE_INVALID');
    expect(JSON.stringify(res1.body)).not.toContain(SECRET);

    const good = signed('issue.created');
    const tampered = good.body.replace('FRONT-END-9', 'FRONT-END-8');
    const res2 = await request(t.relay.app).post('/hooks/sentry').set(good.headers).send(tampered);
    expect(res2.status).toBe(401);
    expect(recorder.received).toHaveLength(0);
  });

  it('refuses a body over limits.bodyBytes with 413', async () => {
    const big = signed('issue.created', (b) => {
      (b.data as { issue: { title: string } }).issue.title = 'x'.repeat(1024 * 1024 + 10);
    });
    const res = await request(t.relay.app).post('/hooks/sentry').set(big.headers).send(big.body);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PB_PAYLOAD_TOO_LARGE');
  });

  it('refuses malformed JSON with 400 even when correctly signed', async () => {
    const body = '{"action":"created",';
    const { headers } = signed('issue.created');
    headers['sentry-hook-signature'] = require('@plugboard/sdk').signSentryBody(body, SECRET);
    const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('PB_PAYLOAD_INVALID');
    expect(res.body.error.message).toMatch(/not valid JSON/);
  });

  it('refuses a payload missing what its resource needs with 400 naming it', async () => {
    const bad = signed('issue.created', (b) => {
      delete (b.data as { issue: { id?: string } }).issue.id;
    });
    const res = await request(t.relay.app).post('/hooks/sentry').set(bad.headers).send(bad.body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/issue\.id/);
  });

  it('refuses a request without Sentry-Hook-Resource with 400', async () => {
    const { body, headers } = signed('issue.created');
    delete headers['sentry-hook-resource'];
    const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/Sentry-Hook-Resource/);
  });

  it("acknowledges Sentry's redelivery (new Request-ID, same content) without dispatching it twice", async () => {
    const first = signed('issue.created');
    const second = signed('issue.created');
    expect(second.headers['request-id']).not.toBe(first.headers['request-id']);
    const r1 = await request(t.relay.app).post('/hooks/sentry').set(first.headers).send(first.body);
    const r2 = await request(t.relay.app)
      .post('/hooks/sentry')
      .set(second.headers)
      .send(second.body);
    expect(r1.body.status).toBe('accepted');
    expect(r2.status).toBe(202);
    expect(r2.body).toMatchObject({ status: 'duplicate', duplicateOf: r1.body.id });
    await waitFor(() => recorder.received.length >= 1, 'delivery');
    await new Promise((r) => setTimeout(r, 200));
    expect(recorder.received).toHaveLength(1);
  });

  it('records an unsupported resource and answers 202 so Sentry does not retry it', async () => {
    const { body, headers } = signed('issue.created');
    headers['sentry-hook-resource'] = 'seer';
    headers['sentry-hook-signature'] = require('@plugboard/sdk').signSentryBody(body, SECRET);
    const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
    expect(res.status).toBe(202);
    expect(res.body.status).toBe('unsupported');
    expect((await t.relay.store.getWebhook(res.body.id))?.status).toBe('unsupported');
  });

  it('answers 503 and does not acknowledge when the store cannot take the webhook', async () => {
    await t.relay.store.close();
    const { body, headers } = signed('issue.created');
    const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.body.error.code).toBe('PB_STORE_UNAVAILABLE');
    const ready = await request(t.relay.app).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.store.ok).toBe(false);
  });

  it('does not store the one-time grant code of installation webhooks', async () => {
    const { body, headers } = signed('installation.created');
    expect(body).toContain('"code"');
    const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
    expect(res.status).toBe(202);
    const stored = await t.relay.store.getWebhook(res.body.id);
    expect(stored?.body.toString()).not.toContain('"code"');
    expect(stored?.body.toString()).toContain('a8e5d37a-696c-4c54-adb5-b3f28d64c7de');
  });
});

describe('routing', () => {
  it('records a webhook no route wants as ignored, with the reason', async () => {
    const recorder = new RecordingNotifier();
    const t = await startRelay(
      {
        routes: [
          {
            name: 'prod-issues',
            match: { resources: ['issue.created'], environments: ['production'] },
            instances: [{ plugin: 'recorder' }],
          },
        ],
      },
      { plugins: [recorder] },
    );
    try {
      const { body, headers } = signed('error.created');
      const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
      expect(res.status).toBe(202);
      expect(res.body.status).toBe('ignored');
      expect(res.body.reason).toMatch(/prod-issues/);
      expect((await t.relay.store.getWebhook(res.body.id))?.status).toBe('ignored');
      const metrics = await request(t.relay.app).get('/metrics');
      expect(metrics.text).toMatch(
        /plugboard_webhooks_received_total\{resource="error",outcome="ignored"\} 1/,
      );
      expect(recorder.received).toHaveLength(0);
    } finally {
      await t.close();
    }
  });

  it('creates one job per instance of each matching route, stopping at one without continue', async () => {
    const a = new RecordingNotifier('rec-a');
    const b = new RecordingNotifier('rec-b');
    const t = await startRelay(
      {
        routes: [
          { name: 'one', continue: true, instances: [{ plugin: 'rec-a' }, { plugin: 'rec-b' }] },
          { name: 'two', match: { projects: ['front-end'] }, instances: [{ plugin: 'rec-a' }] },
          // Matches too, but `two` has no `continue: true`: evaluation stopped there.
          { name: 'three', instances: [{ plugin: 'rec-b' }] },
        ],
      },
      { plugins: [a, b] },
    );
    try {
      const { body, headers } = signed('issue.created');
      const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
      expect(res.body.deliveries).toBe(3);
      await waitFor(() => a.received.length === 2 && b.received.length === 1, 'deliveries');
      expect(a.received.map((r) => r.ctx.instanceId).sort()).toEqual(['one/rec-a', 'two/rec-a']);
      expect(b.received.map((r) => r.ctx.instanceId)).toEqual(['one/rec-b']);
    } finally {
      await t.close();
    }
  });
});

describe('POST /hooks/sentry/legacy', () => {
  let t: TestRelay;
  let recorder: RecordingNotifier;
  const body = JSON.stringify(require('@plugboard/sdk').loadSample('legacy_webhook').body);

  beforeEach(async () => {
    recorder = new RecordingNotifier();
    t = await startRelay(everything, { plugins: [recorder] });
  });
  afterEach(() => t.close());

  it('takes the legacy plugin body with the token as a bearer header or query', async () => {
    const r1 = await request(t.relay.app)
      .post('/hooks/sentry/legacy')
      .set('content-type', 'application/json')
      .set('authorization', `Bearer ${LEGACY_TOKEN}`)
      .send(body);
    expect(r1.status).toBe(202);
    await waitFor(() => recorder.received.length === 1, 'delivery');
    expect(recorder.received[0]!.n.kind).toBe('legacy_webhook.triggered');
    const r2 = await request(t.relay.app)
      .post(`/hooks/sentry/legacy?token=${LEGACY_TOKEN}`)
      .set('content-type', 'application/json')
      .send(body);
    expect(r2.status).toBe(202);
    expect(r2.body.status).toBe('duplicate');
  });

  it('refuses a missing or wrong token with 401', async () => {
    const r1 = await request(t.relay.app).post('/hooks/sentry/legacy').send(body);
    expect(r1.status).toBe(401);
    expect(r1.body.error.code).toBe('PB_SIGNATURE_MISSING');
    const r2 = await request(t.relay.app)
      .post('/hooks/sentry/legacy')
      .set('x-plugboard-token', 'wrong-token-wrong-token')
      .send(body);
    expect(r2.status).toBe(401);
    expect(r2.body.error.code).toBe('PB_SIGNATURE_INVALID');
  });
});

describe('health and configuration gaps', () => {
  it('serves /healthz, /readyz and /metrics', async () => {
    const t = await startRelay(everything, { plugins: [new RecordingNotifier()] });
    try {
      expect((await request(t.relay.app).get('/healthz')).body).toEqual({ status: 'ok' });
      const ready = await request(t.relay.app).get('/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body.ready).toBe(true);
      const metrics = await request(t.relay.app).get('/metrics');
      expect(metrics.text).toContain('plugboard_jobs{state="pending"}');
      expect(metrics.text).toContain('plugboard_delivery_duration_seconds');
      expect((await request(t.relay.app).get('/nope')).status).toBe(404);
    } finally {
      await t.close();
    }
  });

  it('answers 503 on /hooks/sentry when no client secret is configured', async () => {
    const t = await startRelay(
      { ...everything, sentry: { dedupWindowSeconds: 10 } },
      { plugins: [new RecordingNotifier()] },
    );
    try {
      const { body, headers } = signed('issue.created');
      const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
      expect(res.status).toBe(503);
      expect(res.body.error.message).toMatch(/PLUGBOARD_SENTRY_CLIENT_SECRET/);
    } finally {
      await t.close();
    }
  });
});

describe('start-up', () => {
  it('says the listen address is in use, and leaves the data directory free', async () => {
    const blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const { loaded } = writeConfig({ listen: `127.0.0.1:${port}` });
    try {
      await expect(
        Relay.start({ loaded, logger: memoryLogger().logger, appRoot: loaded.config.dataDir }),
      ).rejects.toMatchObject({
        code: 'PB_CONFIG_INVALID',
        message: expect.stringMatching(
          new RegExp(`127\\.0\\.0\\.1:${port}: the address is in use`),
        ),
      });
      // The failed start released its lock: a relay on another port starts.
      const retry = await Relay.start({
        loaded: { ...loaded, listen: { host: '127.0.0.1', port: 0 } },
        logger: memoryLogger().logger,
        appRoot: loaded.config.dataDir,
      });
      await retry.close();
    } finally {
      blocker.close();
    }
  });
});

describe('clients that misbehave', () => {
  it('shrugs off a client that disconnects mid-body, and keeps serving', async () => {
    const recorder = new RecordingNotifier();
    const logs = memoryLogger();
    const t = await startRelay(everything, { plugins: [recorder], logger: logs.logger });
    const server = createServer(t.relay.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      await new Promise<void>((resolve) => {
        const sock = connect(port, '127.0.0.1', () => {
          sock.write(
            'POST /hooks/sentry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
              'Content-Length: 5000\r\nSentry-Hook-Resource: issue\r\n\r\n{"action":',
          );
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, 50);
        });
      });
      const { body, headers } = signed('issue.created');
      const res = await request(server).post('/hooks/sentry').set(headers).send(body);
      expect(res.status).toBe(202);
      expect(logs.lines().filter((l) => l.includes('unexpected error'))).toEqual([]);
    } finally {
      server.close();
      await t.close();
    }
  });

  it('answers 405 to other methods on the webhook paths', async () => {
    const t = await startRelay(everything, { plugins: [new RecordingNotifier()] });
    try {
      const res = await request(t.relay.app).get('/hooks/sentry');
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('POST');
    } finally {
      await t.close();
    }
  });
});
