import request from 'supertest';
import { unrecoverable } from '@plugboard/sdk';
import { parseSince } from '../src/server/deliveries';
import { RecordingNotifier, signed, startRelay, waitFor, type TestRelay } from './helpers/relay';

const API_TOKEN = 'api-token-0123456789abcdef';
const auth = { authorization: `Bearer ${API_TOKEN}` };

describe('JSON API: the delivery log', () => {
  let t: TestRelay;
  let recorder: RecordingNotifier;
  let failing = true;

  beforeEach(async () => {
    failing = true;
    recorder = new RecordingNotifier();
    recorder.behaviour = async () => {
      if (failing) throw unrecoverable('410 Gone from the target');
    };
    t = await startRelay(
      {
        api: { token: API_TOKEN },
        dispatch: { pollIntervalMs: 50 },
        routes: [{ name: 'all', instances: [{ plugin: 'recorder' }] }],
      },
      { plugins: [recorder] },
    );
  });
  afterEach(() => t.close());

  async function deadDelivery(): Promise<string> {
    const { body, headers } = signed('issue.created');
    expect((await request(t.relay.app).post('/hooks/sentry').set(headers).send(body)).status).toBe(
      202,
    );
    let id = '';
    await waitFor(async () => {
      const res = await request(t.relay.app).get('/api/deliveries?state=dead').set(auth);
      id = res.body.deliveries[0]?.id ?? '';
      return id !== '';
    }, 'a dead delivery');
    return id;
  }

  it('lists dead deliveries with their error, filtered by project and error code', async () => {
    const id = await deadDelivery();
    const res = await request(t.relay.app)
      .get('/api/deliveries?state=dead&project=front-end&code=PB_DELIVERY_UNRECOVERABLE&since=1h')
      .set(auth);
    expect(res.status).toBe(200);
    expect(res.body.deliveries).toEqual([
      expect.objectContaining({
        id,
        state: 'dead',
        instanceId: 'all/recorder',
        project: 'front-end',
        lastError: expect.objectContaining({ message: '410 Gone from the target' }),
      }),
    ]);
    const other = await request(t.relay.app).get('/api/deliveries?project=back-end').set(auth);
    expect(other.body.deliveries).toEqual([]);
  });

  it('shows one delivery with its webhook and every attempt', async () => {
    const id = await deadDelivery();
    const res = await request(t.relay.app).get(`/api/deliveries/${id}`).set(auth);
    expect(res.status).toBe(200);
    expect(res.body.webhook).toMatchObject({ resource: 'issue', action: 'created' });
    expect(res.body.attempts).toEqual([
      expect.objectContaining({ attempt: 1, chain: 0, outcome: 'failed' }),
    ]);
    expect((await request(t.relay.app).get('/api/deliveries/999999').set(auth)).status).toBe(404);
  });

  it('replays a dead delivery under the same idempotency key once the target is back', async () => {
    const id = await deadDelivery();
    failing = false;
    const res = await request(t.relay.app)
      .post('/api/deliveries/replay')
      .set(auth)
      .send({ filter: { instance: 'all/recorder' } });
    expect(res.body).toEqual({ replayed: [id] });
    await waitFor(() => recorder.received.length === 2, 'the replayed delivery');
    expect(recorder.received[1]!.ctx.idempotencyKey).toBe(recorder.received[0]!.ctx.idempotencyKey);
    const shown = await request(t.relay.app).get(`/api/deliveries/${id}`).set(auth);
    expect(shown.body.delivery).toMatchObject({ state: 'succeeded', replays: 1 });
  });

  it('names what is wrong with a bad filter or replay request', async () => {
    const bad = await request(t.relay.app).get('/api/deliveries?state=lost').set(auth);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^state: must be one of/);
    const since = await request(t.relay.app).get('/api/deliveries?since=yesterday-ish').set(auth);
    expect(since.body.error.message).toMatch(/^since:/);
    const replay = await request(t.relay.app).post('/api/deliveries/replay').set(auth).send({});
    expect(replay.status).toBe(400);
    expect(replay.body.error.message).toMatch(/ids.*filter/);
    expect((await request(t.relay.app).get('/api/deliveries')).status).toBe(401);
  });
});

describe('JSON API: instances and their pause state', () => {
  it('lists instances, shows a pause, and resumes it', async () => {
    const recorder = new RecordingNotifier();
    const t = await startRelay(
      {
        api: { token: API_TOKEN },
        routes: [{ name: 'all', instances: [{ plugin: 'recorder' }] }],
      },
      { plugins: [recorder] },
    );
    try {
      const list = await request(t.relay.app).get('/api/instances').set(auth);
      expect(list.body).toEqual({ instances: [{ id: 'all/recorder', paused: false }] });
      await t.relay.store.kvSet('instances', 'all/recorder', {
        paused: true,
        since: 1,
        reason: '503',
      });
      const paused = await request(t.relay.app).get('/api/instances').set(auth);
      expect(paused.body.instances[0]).toMatchObject({ paused: true, reason: '503' });
      const resumed = await request(t.relay.app)
        .post(`/api/instances/${encodeURIComponent('all/recorder')}/resume`)
        .set(auth);
      expect(resumed.body).toEqual({ id: 'all/recorder', resumed: true });
      expect(await t.relay.store.kvGet('instances', 'all/recorder')).toBeUndefined();
      const unknown = await request(t.relay.app)
        .post(`/api/instances/${encodeURIComponent('all/nope')}/resume`)
        .set(auth);
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.message).toMatch(/known: all\/recorder/);
    } finally {
      await t.close();
    }
  });
});

describe('parseSince', () => {
  it('reads durations ago and ISO dates', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    expect(parseSince('2h', now)).toBe(now - 7_200_000);
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('2026-01-01T00:00:00Z', now)).toBe(now - 86_400_000);
    expect(parseSince('soon', now)).toBeUndefined();
  });
});
