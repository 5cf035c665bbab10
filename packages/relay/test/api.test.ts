import request from 'supertest';
import {
  RecordingNotifier,
  memoryLogger,
  signed,
  startRelay,
  waitFor,
  type TestRelay,
} from './helpers/relay';

const API_TOKEN = 'api-token-0123456789abcdef';
const path = (email: string): string => `/api/users/${encodeURIComponent(email)}/notifications`;
const auth = { authorization: `Bearer ${API_TOKEN}` };

describe('JSON API: /api/users/:email/notifications', () => {
  let t: TestRelay;
  let recorder: RecordingNotifier;
  let logs: () => string[];

  beforeEach(async () => {
    recorder = new RecordingNotifier();
    const mem = memoryLogger();
    logs = mem.lines;
    t = await startRelay(
      { api: { token: API_TOKEN }, routes: [{ name: 'all', instances: [{ plugin: 'recorder' }] }] },
      { plugins: [recorder], logger: mem.logger },
    );
  });
  afterEach(() => t.close());

  it('refuses requests without the token (401) or with a wrong one (401)', async () => {
    const none = await request(t.relay.app).get(path('ann@example.com'));
    expect(none.status).toBe(401);
    expect(none.body.error.message).toMatch(/Authorization: Bearer/);
    const wrong = await request(t.relay.app)
      .get(path('ann@example.com'))
      .set('authorization', 'Bearer not-the-token-at-all');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('PB_SIGNATURE_INVALID');
    const put = await request(t.relay.app).put(path('ann@example.com')).send({ global: false });
    expect(put.status).toBe(401);
  });

  it('answers an unknown user with nothing set', async () => {
    const res = await request(t.relay.app).get(path('Ann@Example.com')).set(auth);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ email: 'ann@example.com', global: null, projects: {} });
  });

  it('round-trips global and per-project settings, null clearing them', async () => {
    const put1 = await request(t.relay.app)
      .put(path('ann@example.com'))
      .set(auth)
      .send({ global: false, projects: { 'front-end': true, api: false } });
    expect(put1.status).toBe(200);
    expect(put1.body).toEqual({
      email: 'ann@example.com',
      global: false,
      projects: { 'front-end': true, api: false },
    });
    const put2 = await request(t.relay.app)
      .put(path('ANN@example.com'))
      .set(auth)
      .send({ projects: { api: null } });
    expect(put2.body).toEqual({
      email: 'ann@example.com',
      global: false,
      projects: { 'front-end': true },
    });
    await request(t.relay.app).put(path('ann@example.com')).set(auth).send({ global: null });
    const get = await request(t.relay.app).get(path('ann@example.com')).set(auth);
    expect(get.body).toEqual({
      email: 'ann@example.com',
      global: null,
      projects: { 'front-end': true },
    });
    expect(logs().join('\n')).not.toContain(API_TOKEN);
  });

  it('answers 400 naming the field for bad input', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      [path('not-an-email'), { global: true }, /^email:/],
      [path('ann@example.com'), { global: 'yes' }, /^global:/],
      [path('ann@example.com'), { projects: [] }, /^projects:/],
      [path('ann@example.com'), { projects: { 'front-end': 'off' } }, /^projects\.front-end:/],
      [path('ann@example.com'), { projects: { 'bad slug!': true } }, /^projects\./],
      [path('ann@example.com'), { enabled: true }, /^enabled: unknown field/],
      [path('ann@example.com'), [true], /^body:/],
    ];
    for (const [url, body, message] of cases) {
      const res = await request(t.relay.app)
        .put(url)
        .set(auth)
        .send(body as object);
      expect({ url, status: res.status }).toEqual({ url, status: 400 });
      expect(res.body.error.code).toBe('PB_PAYLOAD_INVALID');
      expect(res.body.error.message).toMatch(message);
    }
    const notJson = await request(t.relay.app)
      .put(path('ann@example.com'))
      .set(auth)
      .set('content-type', 'application/json')
      .send('{"global": fal');
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.message).toMatch(/^body: not valid JSON/);
    const getBad = await request(t.relay.app).get(path('nobody')).set(auth);
    expect(getBad.status).toBe(400);
  });

  it('gives every delivery a ctx.users that reflects the settings', async () => {
    await request(t.relay.app)
      .put(path('ann@example.com'))
      .set(auth)
      .send({ global: false, projects: { 'front-end': true } })
      .expect(200);
    await request(t.relay.app)
      .put(path('bob@example.com'))
      .set(auth)
      .send({ global: false })
      .expect(200);
    const { body, headers } = signed('issue.created');
    await request(t.relay.app).post('/hooks/sentry').set(headers).send(body).expect(202);
    await waitFor(() => recorder.received.length === 1, 'delivery');
    const users = recorder.received[0]!.ctx.users!;
    expect(users).toBeDefined();
    expect(await users.isNotificationEnabled('ann@example.com', 'front-end')).toBe(true);
    expect(await users.isNotificationEnabled('Ann@Example.com', 'api')).toBe(false);
    expect(await users.isNotificationEnabled('bob@example.com', 'front-end')).toBe(false);
    expect(await users.isNotificationEnabled('carol@example.com', 'front-end')).toBe(true);
    expect(
      await users.isNotificationEnabled('carol@example.com', 'front-end', {
        defaultEnabled: false,
      }),
    ).toBe(false);
  });
});

describe('JSON API without api.token', () => {
  it('answers 503 saying how to turn it on', async () => {
    const t = await startRelay({});
    try {
      const res = await request(t.relay.app)
        .get(path('ann@example.com'))
        .set('authorization', 'Bearer whatever-token-123456');
      expect(res.status).toBe(503);
      expect(res.body.error.message).toMatch(/api\.token.*PLUGBOARD_API_TOKEN/);
    } finally {
      await t.close();
    }
  });
});
