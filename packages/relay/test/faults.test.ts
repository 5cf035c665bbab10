import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { Relay } from '../src/relay';
import { SqliteStore } from '../src/store/sqlite';
import { faultyStore, sqliteFull, sqliteReadonly } from './helpers/faults-store';
import {
  PG_URL,
  TcpProxy,
  pgTarget,
  pgUrl,
  probePostgres,
  psql,
  uniqueName,
} from './helpers/faults-process';
import { RecordingNotifier, memoryLogger, signed, waitFor, writeConfig } from './helpers/relay';

// Faults the relay must survive, in process: the store refusing writes (a
// full or read-only disk), PostgreSQL connections killed under load, and
// PostgreSQL going away and coming back. The contract each time: refuse with
// 503 (Sentry retries), never acknowledge what could not be stored, recover
// without manual steps, deliver everything acknowledged.

interface Answer {
  status: number;
  retryAfter: string | null;
  json: Record<string, unknown>;
}

/** A real HTTP server on 127.0.0.1 around an in-process relay. */
async function serve(relay: Relay): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(relay.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function post(url: string, issueId: string): Promise<Answer> {
  const { body, headers } = signed('issue.created', (b) => {
    const issue = (b as { data: { issue: { id: string; shortId: string } } }).data.issue;
    issue.id = issueId;
    issue.shortId = `FAULT-${issueId}`;
  });
  const res = await fetch(`${url}/hooks/sentry`, { method: 'POST', headers, body });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    json: (await res.json()) as Record<string, unknown>,
  };
}

async function readyz(
  url: string,
): Promise<{ status: number; checks: Record<string, { ok: boolean; detail?: string }> }> {
  const res = await fetch(`${url}/readyz`);
  const body = (await res.json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
  return { status: res.status, checks: body.checks };
}

/** Issue ids the recorder delivered, and the idempotency keys each was delivered under. */
function deliveries(recorder: RecordingNotifier): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const { n, ctx } of recorder.received) {
    const id = String(n.group?.id ?? '');
    out.set(id, (out.get(id) ?? new Set()).add(ctx.idempotencyKey));
  }
  return out;
}

/** Every acknowledged issue delivered (repeats only under one key), no refused one. */
async function expectExactlyDelivered(
  recorder: RecordingNotifier,
  acknowledged: string[],
  refused: string[],
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(
    () => acknowledged.every((id) => deliveries(recorder).has(id)),
    `all ${acknowledged.length} acknowledged webhooks delivered`,
    timeoutMs,
  );
  await new Promise((r) => setTimeout(r, 300));
  const got = deliveries(recorder);
  expect([...got.keys()].sort()).toEqual([...acknowledged].sort());
  for (const id of refused) expect(got.has(id)).toBe(false);
  for (const keys of got.values()) expect(keys.size).toBe(1);
}

// ------------------------------------------------------------ SQLite: writes refused

describe('the store refusing writes (SQLite full disk or read-only data dir)', () => {
  let relay: Relay;
  let http: Awaited<ReturnType<typeof serve>>;
  let dir: string;
  let fault: ReturnType<typeof faultyStore>;
  let recorder: RecordingNotifier;
  let log: ReturnType<typeof memoryLogger>;

  beforeEach(async () => {
    recorder = new RecordingNotifier();
    log = memoryLogger();
    const written = writeConfig({
      sentry: { clientSecret: 'test-client-secret-0123456789' },
      dispatch: { pollIntervalMs: 50, backoff: { initialMs: 50, factor: 2, maxMs: 200 } },
      routes: [
        {
          name: 'all',
          instances: [{ plugin: 'recorder', concurrency: 1, timeoutMs: 200, maxAttempts: 100 }],
        },
      ],
    });
    dir = written.dir;
    fault = faultyStore(new SqliteStore({ dataDir: join(dir, 'data') }));
    relay = await Relay.start({
      loaded: written.loaded,
      listen: false,
      appRoot: dir,
      plugins: [recorder],
      store: fault.store,
      logger: log.logger,
    });
    http = await serve(relay);
  });

  afterEach(async () => {
    fault.setFault(undefined);
    await http.close();
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['full', sqliteFull, /database or disk is full/],
    ['read-only', sqliteReadonly, /readonly database/],
  ])(
    'disk %s: 503 with Retry-After and PB_STORE_UNAVAILABLE, /readyz fails on the store, logs an error; afterwards every 202 is delivered and no 503',
    async (_what, makeError, message) => {
      // Hold the first delivery in flight so the fault also hits a settle.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      recorder.behaviour = () => gate;

      const acknowledged: string[] = [];
      const refused: string[] = [];
      for (let i = 0; i < 5; i++) {
        const a = await post(http.url, `40000${i}`);
        expect(a).toMatchObject({ status: 202, json: { status: 'accepted' } });
        acknowledged.push(`40000${i}`);
      }
      await waitFor(() => recorder.received.length >= 1, 'a delivery in flight');

      fault.setFault(makeError);
      for (let i = 0; i < 5; i++) {
        const a = await post(http.url, `41000${i}`);
        expect(a).toEqual({
          status: 503,
          retryAfter: expect.stringMatching(/^[1-9]\d*$/),
          json: { error: { code: 'PB_STORE_UNAVAILABLE', message: expect.any(String) } },
        });
        refused.push(`41000${i}`);
      }
      // The legacy endpoint refuses the same way.
      const legacy = await fetch(`${http.url}/hooks/sentry/legacy`, {
        method: 'POST',
        headers: { authorization: 'Bearer legacy-token-0123456789abcdef' },
        body: '{}',
      });
      expect(legacy.status).toBeGreaterThanOrEqual(400);
      expect(legacy.status).not.toBe(202);

      const notReady = await readyz(http.url);
      expect(notReady.status).toBe(503);
      expect(notReady.checks.store!.ok).toBe(false);
      expect(notReady.checks.store!.detail).toMatch(message);

      const errors = log
        .lines()
        .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message?: string } })
        .filter((l) => l.level >= 50 && l.msg === 'cannot store webhook; answering 503');
      expect(errors).toHaveLength(5);
      expect(errors[0]!.err?.message).toMatch(message);

      // The in-flight attempt finishes while the store refuses its result.
      release();
      recorder.behaviour = async () => undefined;
      await waitFor(() => (fault.refused.get('settle') ?? 0) >= 1, 'a refused settle');

      fault.setFault(undefined);
      await waitFor(async () => (await readyz(http.url)).status === 200, '/readyz to recover');
      for (let i = 0; i < 3; i++) {
        expect((await post(http.url, `42000${i}`)).status).toBe(202);
        acknowledged.push(`42000${i}`);
      }
      await expectExactlyDelivered(recorder, acknowledged, refused);
      // The delivery whose result was refused runs again once its lease
      // expires (same idempotency key, checked above), then all succeed.
      await waitFor(
        async () => {
          const jobs = await relay.store.listJobs({ limit: 100 });
          return jobs.length === acknowledged.length && jobs.every((j) => j.state === 'succeeded');
        },
        'every job to succeed',
        15_000,
      );
      await expectExactlyDelivered(recorder, acknowledged, refused);
    },
  );
});

// ------------------------------------------------------------ PostgreSQL

const pg = probePostgres('PostgreSQL fault tests');
const describePg = pg.skip ? describe.skip : describe;

describePg('PostgreSQL faults', () => {
  const schemas: string[] = [];
  let relay: Relay | undefined;
  let http: Awaited<ReturnType<typeof serve>> | undefined;
  let dir: string | undefined;

  afterEach(async () => {
    await http?.close();
    await relay?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    relay = undefined;
    http = undefined;
    dir = undefined;
  });
  afterAll(() => {
    for (const s of schemas) psql(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  });

  async function start(databaseUrl: string, recorder: RecordingNotifier): Promise<string> {
    if (pg.unavailable) throw new Error(`PostgreSQL is not reachable at ${PG_URL}`);
    const schema = uniqueName('pb_fault');
    schemas.push(schema);
    const written = writeConfig({
      sentry: { clientSecret: 'test-client-secret-0123456789' },
      databaseUrl,
      store: { postgres: { schema, maxConnections: 4 } },
      dispatch: { pollIntervalMs: 50, backoff: { initialMs: 50, factor: 2, maxMs: 200 } },
      routes: [
        {
          name: 'all',
          instances: [{ plugin: 'recorder', concurrency: 2, timeoutMs: 300, maxAttempts: 100 }],
        },
      ],
    });
    dir = written.dir;
    relay = await Relay.start({
      loaded: written.loaded,
      listen: false,
      appRoot: dir,
      plugins: [recorder],
      logger: memoryLogger().logger,
    });
    http = await serve(relay);
    return http.url;
  }

  it('survives its connections being terminated under load: 503 or 202, never 202 then lost', async () => {
    const appName = uniqueName('pb_fault_app');
    const recorder = new RecordingNotifier();
    const url = await start(pgUrl({ applicationName: appName }), recorder);
    const admin = new Client({ connectionString: PG_URL });
    await admin.connect();
    const acknowledged: string[] = [];
    const refused: string[] = [];
    let killed = 0;
    try {
      let posting = true;
      const killer = (async () => {
        while (posting) {
          const { rowCount } = await admin.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`,
            [appName],
          );
          killed += rowCount ?? 0;
          await new Promise((r) => setTimeout(r, 40));
        }
      })();
      for (let round = 0; round < 20; round++) {
        const ids = Array.from({ length: 5 }, (_, i) => `3${String(round).padStart(3, '0')}${i}`);
        const answers = await Promise.all(ids.map((id) => post(url, id)));
        answers.forEach((a, i) => {
          expect([202, 503]).toContain(a.status);
          if (a.status === 202) acknowledged.push(ids[i]!);
          else {
            expect(a.json).toMatchObject({ error: { code: 'PB_STORE_UNAVAILABLE' } });
            expect(a.retryAfter).toMatch(/^\d+$/);
            refused.push(ids[i]!);
          }
        });
      }
      posting = false;
      await killer;
    } finally {
      await admin.end();
    }
    expect(killed).toBeGreaterThan(0);
    // Recovers by itself: ready again, takes webhooks again.
    await waitFor(async () => (await readyz(url)).status === 200, '/readyz after the kills');
    for (let i = 0; i < 3; i++) {
      expect((await post(url, `3999${i}`)).status).toBe(202);
      acknowledged.push(`3999${i}`);
    }
    await expectExactlyDelivered(recorder, acknowledged, refused);
  });

  it('refuses with 503 while PostgreSQL is gone, and recovers by itself when it is back', async () => {
    const proxy = new TcpProxy(pgTarget());
    await proxy.start();
    try {
      const recorder = new RecordingNotifier();
      const url = await start(pgUrl({ port: proxy.port }), recorder);
      const acknowledged: string[] = [];
      const refused: string[] = [];
      for (let i = 0; i < 5; i++) {
        expect((await post(url, `20000${i}`)).status).toBe(202);
        acknowledged.push(`20000${i}`);
      }
      await expectExactlyDelivered(recorder, acknowledged, []);

      // Deliveries queued when the database goes: their target is slow.
      recorder.behaviour = () => new Promise((r) => setTimeout(r, 100));
      for (let i = 0; i < 4; i++) {
        expect((await post(url, `21000${i}`)).status).toBe(202);
        acknowledged.push(`21000${i}`);
      }
      await proxy.stop();

      await waitFor(
        async () => (await readyz(url)).status === 503,
        '/readyz to fail with the database gone',
        15_000,
      );
      expect((await readyz(url)).checks.store!.ok).toBe(false);
      for (let i = 0; i < 5; i++) {
        const a = await post(url, `22000${i}`);
        expect(a).toMatchObject({
          status: 503,
          json: { error: { code: 'PB_STORE_UNAVAILABLE' } },
        });
        expect(a.retryAfter).toMatch(/^\d+$/);
        refused.push(`22000${i}`);
      }

      await proxy.start();
      recorder.behaviour = async () => undefined;
      await waitFor(async () => (await readyz(url)).status === 200, '/readyz to recover', 15_000);
      for (let i = 0; i < 3; i++) {
        expect((await post(url, `23000${i}`)).status).toBe(202);
        acknowledged.push(`23000${i}`);
      }
      await expectExactlyDelivered(recorder, acknowledged, refused, 25_000);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});
