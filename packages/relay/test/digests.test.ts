import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { DeliveryError, describeDigest, type Notification } from '@plugboard/sdk';
import { PostgresStore } from '../src/store/postgres';
import { SqliteStore } from '../src/store/sqlite';
import { PG_URL, probePostgres, psql } from './helpers/faults-process';
import { Relay } from '../src/relay';
import {
  RecordingNotifier,
  memoryLogger,
  signed,
  startRelay,
  waitFor,
  type TestRelay,
} from './helpers/relay';

/**
 * Grouped routes through the real relay (HTTP in, store, flusher, dispatcher,
 * notifier) on a fake clock: the flusher is ticked by hand, so every timer is
 * checked without waiting for it.
 */

const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const API_TOKEN = 'digest-test-api-token-0123456789';
const S = 1000;
const M = 60 * S;
const H = 60 * M;

let clock = T0;
let t: TestRelay | undefined;
let recorder: RecordingNotifier;

async function start(route: Record<string, unknown>): Promise<TestRelay> {
  clock = T0;
  recorder = new RecordingNotifier();
  t = await startRelay(
    {
      api: { token: API_TOKEN },
      routes: [{ name: 'ops', instances: [{ plugin: 'recorder' }], ...route }],
    },
    {
      plugins: [recorder],
      store: (dataDir) => new SqliteStore({ dataDir, now: () => clock }),
      now: () => clock,
    },
  );
  return t;
}

afterEach(async () => {
  await t?.close();
  t = undefined;
});

let eventSeq = 0;
/** One `error.created` webhook for issue FRONT-END-9 (a new event id each time). */
async function sendError(relay: TestRelay): Promise<request.Response> {
  const id = (++eventSeq).toString(16).padStart(32, '0');
  const { body, headers } = signed('error.created', (b) => {
    ((b.data as Record<string, unknown>).error as Record<string, unknown>).event_id = id;
  });
  return request(relay.relay.app).post('/hooks/sentry').set(headers).send(body);
}

async function send(relay: TestRelay, kind: string): Promise<request.Response> {
  const { body, headers } = signed(kind);
  return request(relay.relay.app).post('/hooks/sentry').set(headers).send(body);
}

async function tick(relay: TestRelay, expectMessages: number): Promise<void> {
  await relay.relay.flusher.tick();
  await waitFor(() => recorder.received.length >= expectMessages, `${expectMessages} message(s)`);
  // Nothing more than expected arrives.
  await new Promise((r) => setTimeout(r, 50));
  expect(recorder.received).toHaveLength(expectMessages);
}

describe('grouped routes (Alertmanager timers on a fake clock)', () => {
  it('turns a burst of events for one issue into one message, then one update per interval, then a reminder', async () => {
    const relay = await start({ group: {} });
    for (let i = 0; i < 25; i++) {
      const res = await sendError(relay);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ status: 'accepted', deliveries: 0, grouped: 1 });
    }
    await tick(relay, 0); // group_wait has not passed
    clock = T0 + 29 * S;
    await tick(relay, 0);
    clock = T0 + 30 * S;
    await tick(relay, 1);
    const first = recorder.received[0]!.n;
    expect(first.kind).toBe('error.created');
    expect(first.digest).toMatchObject({ reason: 'first', count: 25, total: 25, status: 'open' });
    expect(describeDigest(first)).toMatch(/^.+: 25 new events in the last 30 seconds, last seen /);

    // Seven more a minute later: held until one interval after the first message.
    clock += M;
    for (let i = 0; i < 7; i++) await sendError(relay);
    await tick(relay, 1);
    clock = T0 + 30 * S + 5 * M - 1;
    await tick(relay, 1);
    clock = T0 + 30 * S + 5 * M;
    await tick(relay, 2);
    expect(recorder.received[1]!.n.digest).toMatchObject({ reason: 'update', count: 7, total: 32 });

    // Nothing new: quiet until repeat_interval (4 h), then a reminder.
    clock += H;
    await tick(relay, 2);
    clock = T0 + 30 * S + 5 * M + 4 * H;
    await tick(relay, 3);
    expect(recorder.received[2]!.n.digest).toMatchObject({ reason: 'repeat', total: 32 });

    const api = await request(relay.relay.app)
      .get('/api/groups?route=ops')
      .set('authorization', `Bearer ${API_TOKEN}`)
      .expect(200);
    expect(api.body.groups).toEqual([
      {
        route: 'ops',
        key: 'issue=1170820242',
        status: 'open',
        pending: 0,
        total: 32,
        sent: 3,
        suppressed: 0,
        firstAt: '2026-11-25T10:00:00.000Z',
        lastAt: '2026-11-25T10:01:30.000Z',
        lastMessageAt: '2026-11-25T14:05:30.000Z',
        nextFlushAt: '2026-11-25T18:05:30.000Z', // the next reminder
        project: 'front-end',
      },
    ]);
    await request(relay.relay.app)
      .get('/api/groups?limit=0')
      .set('authorization', `Bearer ${API_TOKEN}`)
      .expect(400);
  });

  it('sends a single notification as itself, and the resolution closes the group', async () => {
    const relay = await start({ group: { wait: '10s' } });
    await send(relay, 'issue.created');
    clock += 10 * S;
    await tick(relay, 1);
    expect(recorder.received[0]!.n.kind).toBe('issue.created');
    expect(recorder.received[0]!.n.digest).toBeUndefined();

    clock += M;
    await send(relay, 'issue.resolved');
    // Due one interval after the last message, not at once.
    await tick(relay, 1);
    clock = T0 + 10 * S + 5 * M;
    await tick(relay, 2);
    expect(recorder.received[1]!.n.kind).toBe('issue.resolved');
    expect(recorder.received[1]!.n.digest).toMatchObject({ reason: 'state', status: 'resolved' });
    expect(await relay.relay.store.listGroups()).toEqual([]);
  });

  it('stops after maxNotifications, and never sends resolved ones with sendResolved: false', async () => {
    const relay = await start({
      group: { wait: '0s', interval: '1m', maxNotifications: 1 },
      sendResolved: false,
    });
    await sendError(relay);
    await tick(relay, 1);
    for (let round = 1; round <= 3; round++) {
      clock += M;
      await sendError(relay);
      clock += M;
      await tick(relay, 1);
    }
    const [g] = await relay.relay.store.listGroups();
    expect(g).toMatchObject({ sent: 1, total: 4, suppressed: 3 });
    clock += M;
    await send(relay, 'issue.resolved');
    clock += 2 * M;
    await tick(relay, 1);
    expect(await relay.relay.store.listGroups()).toEqual([]);
  });

  it('holds a group through a mute interval and covers the muted time in one message after it', async () => {
    clock = T0;
    recorder = new RecordingNotifier();
    t = await startRelay(
      {
        timeIntervals: [
          {
            name: 'maintenance',
            timeIntervals: [{ times: [{ startTime: '10:00', endTime: '11:00' }] }],
          },
        ],
        routes: [
          {
            name: 'ops',
            instances: [{ plugin: 'recorder' }],
            group: {},
            muteTimeIntervals: ['maintenance'],
          },
        ],
      },
      {
        plugins: [recorder],
        store: (dataDir) => new SqliteStore({ dataDir, now: () => clock }),
        now: () => clock,
      },
    );
    const relay = t;
    for (let i = 0; i < 5; i++) await sendError(relay);
    clock = T0 + 30 * S;
    await tick(relay, 0);
    clock = T0 + 40 * M;
    for (let i = 0; i < 3; i++) await sendError(relay);
    await tick(relay, 0);
    clock = T0 + H + 30 * S; // the mute ended at 11:00
    await tick(relay, 1);
    expect(recorder.received[0]!.n.digest).toMatchObject({ reason: 'first', count: 8 });
    expect(describeDigest(recorder.received[0]!.n)).toMatch(/8 new events in the last 61 minutes/);
  });

  it('keeps its groups across a restart', async () => {
    const relay = await start({ group: {} });
    for (let i = 0; i < 4; i++) await sendError(relay);
    const dataDir = relay.loaded.config.dataDir;
    await relay.relay.close();
    // A new relay process on the same data directory, later.
    clock = T0 + 40 * S;
    const again = await Relay.start({
      loaded: relay.loaded,
      listen: false,
      plugins: [recorder],
      store: new SqliteStore({ dataDir, now: () => clock }),
      now: () => clock,
      logger: memoryLogger().logger,
    });
    try {
      await again.flusher.tick();
      await waitFor(() => recorder.received.length === 1, 'the digest after the restart');
      expect(recorder.received[0]!.n.digest).toMatchObject({ reason: 'first', count: 4 });
    } finally {
      await again.close();
    }
  });

  it('answers a redelivered webhook as a duplicate and does not count it twice', async () => {
    const relay = await start({ group: {} });
    const { body, headers } = signed('error.created');
    await request(relay.relay.app).post('/hooks/sentry').set(headers).send(body).expect(202);
    const again = await request(relay.relay.app)
      .post('/hooks/sentry')
      .set({ ...headers, 'request-id': 'f'.repeat(32) })
      .send(body);
    expect(again.body.status).toBe('duplicate');
    expect(await relay.relay.store.listGroups()).toMatchObject([{ pending: 1, total: 1 }]);
  });
});

describe('per-target rate limits', () => {
  it('holds deliveries back at the limit and folds the backlog into one digest, losing none', async () => {
    recorder = new RecordingNotifier();
    t = await startRelay(
      {
        routes: [
          {
            name: 'robots',
            instances: [{ plugin: 'recorder', rateLimit: { limit: 2, per: 4000 } }],
          },
        ],
      },
      { plugins: [recorder] },
    );
    const relay = t;
    // All ten arrive at once (well inside the 4 s window, even on a loaded
    // machine): two go out, eight wait for the next slot.
    const answers = await Promise.all(Array.from({ length: 10 }, () => sendError(relay)));
    for (const res of answers)
      expect(res.body).toMatchObject({ status: 'accepted', deliveries: 1 });
    await waitFor(
      () => recorder.received.length >= 3,
      'two single messages and one digest',
      15_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(recorder.received).toHaveLength(3);
    const [a, b, c] = recorder.received.map((r) => r.n);
    expect(a!.digest).toBeUndefined();
    expect(b!.digest).toBeUndefined();
    expect(c!.digest).toMatchObject({ reason: 'folded', count: 8 });
    expect(c!.digest?.items).toHaveLength(8);
    const events = new Set(recorder.received.flatMap((r) => (r.n.digest ? [] : [r.n.dedupKey])));
    expect(events.size).toBe(2);

    // Each delivery is settled as delivered, the folded ones once the target took their digest.
    const succeeded = await relay.relay.store.listJobs({ state: 'succeeded' });
    expect(succeeded).toHaveLength(10);
    const folded = succeeded.filter((j) => j.lastError?.code === 'PB_DELIVERY_FOLDED');
    expect(folded).toHaveLength(8);
    expect(folded[0]!.lastError?.message).toMatch(/^delivered in one digest of 8 deliveries/);
    expect(await relay.relay.store.listJobs({ state: 'skipped' })).toEqual([]);
  });

  /** `error.created` for one of two issues, told apart by id and title. */
  async function sendIssue(relay: TestRelay, issue: 'B' | 'C'): Promise<request.Response> {
    const id = (++eventSeq).toString(16).padStart(32, '0');
    const { body, headers } = signed('error.created', (b) => {
      const e = (b.data as Record<string, unknown>).error as Record<string, unknown>;
      e.event_id = id;
      e.issue_id = issue === 'B' ? '700000001' : '700000002';
      e.title = `Issue ${issue} event ${id.slice(-4)}`;
    });
    return request(relay.relay.app).post('/hooks/sentry').set(headers).send(body);
  }

  async function limitedRelay(limit: number, perMs: number): Promise<TestRelay> {
    recorder = new RecordingNotifier();
    t = await startRelay(
      {
        routes: [
          { name: 'robots', instances: [{ plugin: 'recorder', rateLimit: { limit, per: perMs } }] },
        ],
      },
      { plugins: [recorder] },
    );
    return t;
  }

  it('asks the silences about every delivery before it folds it or takes a slot: none lost, none leaked', async () => {
    const relay = await limitedRelay(2, 5000);
    await relay.relay.noise.silences.create({
      matchers: ['issue="700000001"'],
      duration: '1h',
      createdBy: 'ops@example.com',
      comment: 'B is known',
    });
    // B, C, B, C … faster than the limit allows (all well inside one 5 s window).
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => sendIssue(relay, i % 2 === 0 ? 'B' : 'C')),
    );
    for (const res of answers) expect(res.status).toBe(202);
    const delivered = (): number =>
      recorder.received.reduce((sum, r) => sum + (r.n.digest?.count ?? 1), 0);
    await waitFor(() => delivered() >= 10, 'every C delivered', 20_000);
    await new Promise((r) => setTimeout(r, 300));
    // Two slots for single messages, one for the digest of the rest; B never took one.
    expect(recorder.received).toHaveLength(3);
    expect(delivered()).toBe(10);
    const titles = recorder.received.flatMap((r) =>
      r.n.digest ? (r.n.digest.items ?? []).map((i) => i.title) : [r.n.title],
    );
    expect(titles).toHaveLength(10);
    expect(titles.every((title) => title.startsWith('Issue C '))).toBe(true);
    expect(recorder.received.every((r) => r.n.title.startsWith('Issue C '))).toBe(true);

    const skipped = await relay.relay.store.listJobs({ state: 'skipped' });
    expect(skipped).toHaveLength(10);
    expect(skipped.every((j) => j.lastError?.code === 'PB_DELIVERY_SILENCED')).toBe(true);
    const succeeded = await relay.relay.store.listJobs({ state: 'succeeded' });
    expect(succeeded).toHaveLength(10);
    expect(succeeded.filter((j) => j.lastError?.code === 'PB_DELIVERY_FOLDED')).toHaveLength(8);
  });

  it('keeps every folded delivery owed when the target refuses the digest, and settles them with it', async () => {
    const relay = await limitedRelay(1, 1500);
    let refuse = 1;
    recorder.behaviour = async (n) => {
      if (n.digest && refuse-- > 0) {
        throw new DeliveryError('PB_DELIVERY_RETRY_AFTER', 'target busy', { retryAfterMs: 200 });
      }
    };
    await Promise.all(Array.from({ length: 6 }, () => sendIssue(relay, 'C')));
    // One alone, then a digest of five refused once, then taken at the next slot.
    await waitFor(
      () => recorder.received.filter((r) => r.n.digest).length >= 2,
      'the digest sent again',
      20_000,
    );
    await waitFor(
      async () => (await relay.relay.store.listJobs({ state: 'succeeded' })).length === 6,
      'all six settled',
    );
    const [single, refused, taken] = recorder.received.map((r) => r.n);
    expect(single!.digest).toBeUndefined();
    expect(refused!.digest).toMatchObject({ reason: 'folded', count: 5 });
    expect(taken!.digest).toMatchObject({ reason: 'folded', count: 5 });
    expect(recorder.received).toHaveLength(3);
    for (const job of await relay.relay.store.listJobs({ state: 'succeeded' })) {
      const attempts = await relay.relay.store.listAttempts(job.id);
      if (job.lastError?.code !== 'PB_DELIVERY_FOLDED') continue;
      // Each folded delivery shows the refused digest attempt, then the one the target took.
      expect(attempts.map((a) => [a.outcome, a.error?.code])).toEqual([
        ['failed', 'PB_DELIVERY_RETRY_AFTER'],
        ['succeeded', 'PB_DELIVERY_FOLDED'],
      ]);
    }
  });

  it('dead-letters every folded delivery with a digest the target refuses for good', async () => {
    const relay = await limitedRelay(1, 1500);
    recorder.behaviour = async (n) => {
      if (n.digest) throw new DeliveryError('PB_DELIVERY_UNRECOVERABLE', 'HTTP 400: bad request');
    };
    await Promise.all(Array.from({ length: 4 }, () => sendIssue(relay, 'C')));
    await waitFor(
      async () => (await relay.relay.store.listJobs({ state: 'dead' })).length === 3,
      'the three folded deliveries dead with their digest',
      20_000,
    );
    const dead = await relay.relay.store.listJobs({ state: 'dead' });
    expect(dead.every((j) => j.lastError?.code === 'PB_DELIVERY_UNRECOVERABLE')).toBe(true);
    expect(await relay.relay.store.listJobs({ state: 'succeeded' })).toHaveLength(1);
    expect(await relay.relay.store.listJobs({ state: 'skipped' })).toEqual([]);
  });

  it("applies the notifier's declared limit unless the instance overrides or disables it", async () => {
    recorder = new RecordingNotifier();
    recorder.targetRateLimit = () => ({ limit: 1, perMs: 60_000 });
    t = await startRelay(
      {
        routes: [
          {
            name: 'r',
            continue: true,
            instances: [
              { name: 'declared', plugin: 'recorder' },
              { name: 'unlimited', plugin: 'recorder', rateLimit: false },
            ],
          },
        ],
      },
      { plugins: [recorder] },
    );
    const relay = t;
    for (let i = 0; i < 3; i++) await sendError(relay);
    await waitFor(
      () => recorder.received.filter((r) => r.ctx.instanceId === 'r/unlimited').length === 3,
      'the unlimited instance to get all three',
    );
    await new Promise((r) => setTimeout(r, 200));
    // One slot a minute: the first went out, the other two wait (folded when the slot frees).
    expect(recorder.received.filter((r) => r.ctx.instanceId === 'r/declared')).toHaveLength(1);
    expect(
      (await relay.relay.store.listJobs({ instanceId: 'r/declared', state: 'pending' })).length,
    ).toBe(2);
  });
});

const pg = probePostgres('digest replica tests');
(pg.skip ? describe.skip : describe)('grouped routes on PostgreSQL with two relays', () => {
  const schema = `pb_digest_${process.pid}_${randomBytes(3).toString('hex')}`;
  const relays: TestRelay[] = [];

  afterAll(async () => {
    await Promise.all(relays.map((r) => r.close()));
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  it('sends one message per group interval however many replicas flush at the same moment', async () => {
    if (pg.unavailable) throw new Error(`PostgreSQL is not reachable: ${pg.unavailable}`);
    clock = T0;
    const recorders = [new RecordingNotifier(), new RecordingNotifier()];
    for (const rec of recorders) {
      relays.push(
        await startRelay(
          { routes: [{ name: 'ops', instances: [{ plugin: 'recorder' }], group: {} }] },
          {
            plugins: [rec],
            store: () => new PostgresStore({ connectionString: PG_URL, schema, now: () => clock }),
            now: () => clock,
          },
        ),
      );
    }
    const [a, b] = relays as [TestRelay, TestRelay];
    await a.relay.store.checkWritable(); // migrated before both start ingesting
    // Either replica's dispatcher may deliver either message (b the first, a
    // the update, say), so the messages are listed as they arrive, not as
    // a's list then b's: that order put b's "first" after a's "update".
    const arrived: Notification[] = [];
    for (const rec of recorders) rec.behaviour = async (n) => void arrived.push(n);
    const received = (): Notification[] => arrived;
    const flushBoth = async (): Promise<void> => {
      for (let i = 0; i < 3; i++)
        await Promise.all([a.relay.flusher.tick(), b.relay.flusher.tick()]);
    };

    await Promise.all(Array.from({ length: 30 }, (_, i) => sendError(i % 2 === 0 ? a : b)));
    clock += 30 * S;
    await flushBoth();
    await waitFor(() => received().length >= 1, 'the first message');
    await new Promise((r) => setTimeout(r, 300));
    expect(received()).toHaveLength(1);
    expect(received()[0]!.digest).toMatchObject({ reason: 'first', count: 30, total: 30 });

    await Promise.all(Array.from({ length: 10 }, (_, i) => sendError(i % 2 === 0 ? a : b)));
    clock += 4 * M;
    await flushBoth();
    await new Promise((r) => setTimeout(r, 200));
    expect(received()).toHaveLength(1); // within the interval: nothing
    clock += M;
    await flushBoth();
    await waitFor(() => received().length >= 2, 'the update');
    await new Promise((r) => setTimeout(r, 300));
    expect(received()).toHaveLength(2);
    expect(received()[1]!.digest).toMatchObject({ reason: 'update', count: 10, total: 40 });
    expect(await a.relay.store.listGroups()).toMatchObject([{ sent: 2, total: 40, pending: 0 }]);
  });
});
