import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { buildNotification } from '@plugboard/sdk/testing';
import type { Notification } from '@plugboard/sdk';
import { configSchema } from '../src/config/schema';
import type { LeasedJob, Store } from '../src/store/types';
import { SqliteStore } from '../src/store/sqlite';
import { createNoiseControl, type NoiseControl } from '../src/noise/gate';
import { SILENCES_NAMESPACE } from '../src/noise/silences';
import { createSilencesRouter } from '../src/server/silences';
import { RecordingNotifier, startRelay, type TestRelay } from './helpers/relay';
import {
  cleanup,
  requireBuiltRelay,
  runCli,
  tempDir,
  writeConfig as writeCliConfig,
} from './integration/helpers';

const T0 = Date.parse('2025-01-15T12:00:00.000Z');
const HOUR = 3_600_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A fake clock: tests move it, nothing waits. */
function clock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function appOver(store: SqliteStore, now: () => number): express.Express {
  const app = express();
  app.use('/api/silences', express.json(), createSilencesRouter({ store, now }));
  return app;
}

const valid = {
  matchers: ['project="front-end"', 'level=~"error|fatal"'],
  duration: '2h',
  createdBy: 'ann@example.com',
  comment: 'deploying the fix',
};

const config = configSchema.parse({
  routes: [{ name: 'ops', instances: [{ plugin: 'webhook', name: 'hook' }, { plugin: 'log' }] }],
});

function gateInput(n: Notification, instanceId = 'ops/hook') {
  return { instanceId, routeName: 'ops', notification: n, job: {} as LeasedJob };
}

describe('silences API', () => {
  let store: SqliteStore;
  let c: ReturnType<typeof clock>;
  let app: express.Express;

  beforeEach(() => {
    c = clock();
    store = new SqliteStore({ dataDir: ':memory:', now: c.now });
    app = appOver(store, c.now);
  });
  afterEach(() => store.close());

  it('creates a silence with an id, its times and who and why, and lists it', async () => {
    const res = await request(app).post('/api/silences').send(valid);
    expect(res.status).toBe(201);
    expect(res.body.silence).toEqual({
      id: expect.stringMatching(UUID),
      matchers: ['project="front-end"', 'level=~"error|fatal"'],
      startsAt: '2025-01-15T12:00:00.000Z',
      endsAt: '2025-01-15T14:00:00.000Z',
      createdBy: 'ann@example.com',
      comment: 'deploying the fix',
      createdAt: '2025-01-15T12:00:00.000Z',
      updatedAt: '2025-01-15T12:00:00.000Z',
      state: 'active',
    });
    const list = await request(app).get('/api/silences');
    expect(list.body.silences).toEqual([res.body.silence]);
    const one = await request(app).get(`/api/silences/${res.body.silence.id}`);
    expect(one.body.silence.id).toBe(res.body.silence.id);
  });

  it('takes endsAt instead of duration, and a later start as pending', async () => {
    const res = await request(app)
      .post('/api/silences')
      .send({
        ...valid,
        duration: undefined,
        startsAt: '2025-01-15T13:00:00Z',
        endsAt: '2025-01-15T15:00:00Z',
      });
    expect(res.status).toBe(201);
    expect(res.body.silence).toMatchObject({
      startsAt: '2025-01-15T13:00:00.000Z',
      endsAt: '2025-01-15T15:00:00.000Z',
      state: 'pending',
    });
  });

  it('expires a silence now, keeps it for the record, and hides it from the default list', async () => {
    const { body } = await request(app).post('/api/silences').send(valid);
    c.advance(10 * 60_000);
    const res = await request(app).delete(`/api/silences/${body.silence.id}`);
    expect(res.status).toBe(200);
    expect(res.body.silence).toMatchObject({
      state: 'expired',
      endsAt: '2025-01-15T12:10:00.000Z',
    });
    expect((await request(app).get('/api/silences')).body.silences).toEqual([]);
    const all = await request(app).get('/api/silences?all=true');
    expect(all.body.silences.map((s: { id: string }) => s.id)).toEqual([body.silence.id]);
    // Expiring again changes nothing.
    const again = await request(app).delete(`/api/silences/${body.silence.id}`);
    expect(again.body.silence.endsAt).toBe('2025-01-15T12:10:00.000Z');
  });

  it('lets a silence end by the clock', async () => {
    await request(app).post('/api/silences').send(valid);
    c.advance(2 * HOUR - 1);
    expect((await request(app).get('/api/silences')).body.silences[0].state).toBe('active');
    c.advance(1);
    expect((await request(app).get('/api/silences')).body.silences).toEqual([]);
    expect((await request(app).get('/api/silences?all=1')).body.silences[0].state).toBe('expired');
  });

  it('keeps an ended silence in the store for 24 hours after it ends', async () => {
    const { body } = await request(app).post('/api/silences').send(valid);
    c.advance(2 * HOUR + 24 * HOUR - 1000);
    expect(await store.kvGet(SILENCES_NAMESPACE, body.silence.id)).toBeDefined();
    c.advance(1000);
    expect(await store.kvGet(SILENCES_NAMESPACE, body.silence.id)).toBeUndefined();
  });

  it('answers 404 for an unknown silence', async () => {
    const missing = '3f2a4b1c-0000-4000-8000-000000000000';
    const res = await request(app).delete(`/api/silences/${missing}`);
    expect(res.status).toBe(404);
    expect(res.body.error).toEqual({ code: 'PB_NOT_FOUND', message: `no silence ${missing}` });
    expect((await request(app).get('/api/silences/not-an-id')).status).toBe(404);
  });

  it.each([
    [{ ...valid, createdBy: undefined }, 'createdBy: required, who creates the silence'],
    [{ ...valid, comment: '  ' }, 'comment: required, why the silence exists'],
    [{ ...valid, matchers: [] }, 'matchers: required, a list of matchers such as project="web"'],
    [
      { ...valid, matchers: ['project="web"', 'level=~"error|("'] },
      /^matchers\[1\]: invalid regular expression "error\|\(": /,
    ],
    [{ ...valid, matchers: ['project="web"', 42] }, /^matchers\[1\]: must be a string/],
    [
      { ...valid, matchers: ['environment!="prod"', 'project=""'] },
      /^matchers: at least one matcher must not match an empty value/,
    ],
    [{ ...valid, duration: 'soon' }, 'duration: a duration such as 30m, 2h, 1d'],
    [{ ...valid, endsAt: '2025-01-15T18:00:00Z' }, 'duration: give endsAt or duration, not both'],
    [{ ...valid, duration: undefined }, 'endsAt: required, or give duration (such as 2h)'],
    [
      { ...valid, duration: undefined, endsAt: '2025-01-15T11:00:00Z' },
      'endsAt: must be after startsAt (and after now)',
    ],
    [
      { ...valid, duration: undefined, endsAt: 'tomorrow' },
      'endsAt: an ISO date such as 2025-01-31T18:00:00Z',
    ],
    [{ ...valid, id: 'mine' }, /^id: unknown field; allowed: matchers, /],
    [[valid], /^body: must be a JSON object/],
  ] as Array<[unknown, string | RegExp]>)(
    'refuses an invalid silence with 400 naming the field (%#)',
    async (body, message) => {
      const res = await request(app)
        .post('/api/silences')
        .send(body as object);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('PB_PAYLOAD_INVALID');
      expect(res.body.error.message).toMatch(message);
      expect((await request(app).get('/api/silences?all=true')).body.silences).toEqual([]);
    },
  );
});

describe('silences at the delivery gate', () => {
  let store: SqliteStore;
  let c: ReturnType<typeof clock>;
  let noise: NoiseControl;
  const issue = buildNotification('issue.created'); // project front-end, level error

  beforeEach(() => {
    c = clock();
    store = new SqliteStore({ dataDir: ':memory:', now: c.now });
    noise = createNoiseControl({ store, config, now: c.now });
  });
  afterEach(() => store.close());

  it('holds a matching delivery with PB_DELIVERY_SILENCED, naming the silence', async () => {
    const s = await noise.silences.create(valid);
    expect(await noise.gate(gateInput(issue))).toEqual({
      name: 'DeliveryError',
      code: 'PB_DELIVERY_SILENCED',
      message: `silenced by ${s.id} (deploying the fix) until 2025-01-15T14:00:00.000Z`,
      retryable: false,
    });
    const warning = buildNotification('issue.created', { level: 'warning' });
    expect(await noise.gate(gateInput(warning))).toBeUndefined();
  });

  it('matches the route and instance labels, so one target can be silenced', async () => {
    await noise.silences.create({ ...valid, matchers: ['instance="ops/hook"'] });
    expect((await noise.gate(gateInput(issue, 'ops/hook')))?.code).toBe('PB_DELIVERY_SILENCED');
    expect(await noise.gate(gateInput(issue, 'ops/log'))).toBeUndefined();
    await noise.silences.create({ ...valid, matchers: ['route="ops"'] });
    expect((await noise.gate(gateInput(issue, 'ops/log')))?.code).toBe('PB_DELIVERY_SILENCED');
  });

  it('holds only between startsAt and endsAt, by the clock', async () => {
    await noise.silences.create({
      ...valid,
      duration: undefined,
      startsAt: '2025-01-15T13:00:00Z',
      endsAt: '2025-01-15T14:00:00Z',
    });
    expect(await noise.gate(gateInput(issue))).toBeUndefined();
    c.advance(HOUR);
    expect((await noise.gate(gateInput(issue)))?.code).toBe('PB_DELIVERY_SILENCED');
    c.advance(HOUR);
    expect(await noise.gate(gateInput(issue))).toBeUndefined();
  });

  it('is seen by every replica within a second, through the shared store', async () => {
    const replicaA = noise;
    const replicaB = createNoiseControl({ store, config, now: c.now });
    // B has just read the (empty) list; it reuses that read for up to 1 s.
    expect(await replicaB.gate(gateInput(issue))).toBeUndefined();
    const s = await replicaA.silences.create(valid);
    expect((await replicaA.gate(gateInput(issue)))?.code).toBe('PB_DELIVERY_SILENCED');
    c.advance(999);
    expect(await replicaB.gate(gateInput(issue))).toBeUndefined();
    c.advance(1);
    expect((await replicaB.gate(gateInput(issue)))?.code).toBe('PB_DELIVERY_SILENCED');
    // Expired on B, seen by A after its cache runs out.
    await replicaB.silences.expire(s.id);
    c.advance(1000);
    expect(await replicaA.gate(gateInput(issue))).toBeUndefined();
  });

  it('asks for a retry, not a guess, when the store cannot be read', async () => {
    const broken = createNoiseControl({
      store: { kvList: () => Promise.reject(new Error('disk I/O error')) } as unknown as Store,
      config,
      now: c.now,
    });
    await expect(broken.gate(gateInput(issue))).rejects.toMatchObject({
      code: 'PB_DELIVERY_FAILED',
      message: expect.stringContaining('disk I/O error'),
    });
  });
});

describe('silences on the relay API and the CLI', () => {
  const API_TOKEN = 'api-token-0123456789abcdef';
  let t: TestRelay;
  let server: Server;
  let url: string;

  beforeAll(requireBuiltRelay);
  beforeEach(async () => {
    t = await startRelay(
      { api: { token: API_TOKEN }, routes: [{ name: 'all', instances: [{ plugin: 'recorder' }] }] },
      { plugins: [new RecordingNotifier()] },
    );
    server = createServer(t.relay.app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await t.close();
    cleanup();
  });
  afterAll(() => cleanup({ removeTemp: true }));

  it('is behind the API bearer token', async () => {
    const res = await request(t.relay.app).get('/api/silences');
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('PB_SIGNATURE_MISSING');
    const ok = await request(t.relay.app)
      .post('/api/silences')
      .set('authorization', `Bearer ${API_TOKEN}`)
      .send(valid);
    expect(ok.status).toBe(201);
    const bad = await request(t.relay.app)
      .post('/api/silences')
      .set('authorization', `Bearer ${API_TOKEN}`)
      .set('content-type', 'application/json')
      .send('{"matchers": [');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({ code: 'PB_PAYLOAD_INVALID', message: 'body: not valid JSON' });
  });

  it('adds, lists and expires silences with `plugboard silences`', async () => {
    const cwd = tempDir('pb-silences-');
    const file = writeCliConfig(cwd, { api: { token: API_TOKEN } });
    const cli = (args: string[]) => runCli([...args, '--config', file, '--url', url], { cwd });

    const added = await cli([
      'silences',
      'add',
      '--matcher',
      'project="front-end"',
      '--matcher',
      'level=~"error|fatal"',
      '--duration',
      '2h',
      '--created-by',
      'ann@example.com',
      '--comment',
      'deploying the fix',
    ]);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const id = /^silence (\S+) active until \S+: project="front-end" level=~"error\|fatal"\n$/.exec(
      added.stdout,
    )?.[1];
    expect(id).toMatch(UUID);

    const listed = await cli(['silences', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(`${id}  active  `);
    expect(listed.stdout).toContain('by ann@example.com: deploying the fix');

    const expired = await cli(['silences', 'expire', id!]);
    expect(expired.code).toBe(0);
    expect(expired.stdout).toMatch(new RegExp(`^silence ${id} expired at `));
    expect((await cli(['silences', 'list'])).stdout).toBe('no silences\n');
    const all = await cli(['silences', 'list', '--all', '--json']);
    expect(JSON.parse(all.stdout)).toEqual([expect.objectContaining({ id, state: 'expired' })]);
  });

  it('prints the field the relay refused and exits 1', async () => {
    const cwd = tempDir('pb-silences-');
    const file = writeCliConfig(cwd, { api: { token: API_TOKEN } });
    const res2 = await runCli(
      [
        'silences',
        'add',
        '--matcher',
        'project="web',
        '--duration',
        '2h',
        '--created-by',
        'ann',
        '--comment',
        'x',
        '--config',
        file,
        '--url',
        url,
      ],
      { cwd },
    );
    expect(res2.code).toBe(1);
    expect(res2.stderr).toBe(
      'plugboard: [PB_PAYLOAD_INVALID] matchers[0]: missing closing quote in "project=\\"web"\n',
    );
  });
});
