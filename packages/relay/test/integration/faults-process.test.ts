import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { compactSentryJson, signSentryBody } from '@plugboard/sdk';
import {
  CLIENT_SECRET,
  cleanup,
  groupIdOf,
  issueCreated,
  killAll,
  postSentry,
  relayConfig,
  requireBuiltRelay,
  startRelay,
  startSink,
  tempDir,
  waitFor,
  writeConfig,
  type LogLine,
  type Posted,
  type RelayProcess,
  type Sink,
} from './helpers';
import {
  PG_URL,
  pgUrl,
  prlimitWorks,
  probePostgres,
  psql,
  setFileSizeLimit,
  uniqueName,
} from '../helpers/faults-process';

// Faults a running relay process must survive, on real files and a real
// PostgreSQL: nothing here is mocked.

beforeAll(requireBuiltRelay);
afterAll(async () => {
  await killAll();
  await cleanup({ removeTemp: true });
});

async function readyz(relay: RelayProcess): Promise<{
  status: number;
  body: { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> };
}> {
  const res = await fetch(`${relay.url}/readyz`);
  return { status: res.status, body: (await res.json()) as never };
}

/** A distinct issue whose body carries `padBytes` of filler, to grow the store fast. */
function bigIssue(id: string, padBytes: number): { resource: string; body: unknown } {
  const { resource, body } = issueCreated(id);
  (body as { data: { issue: { title: string } } }).data.issue.title =
    `filler ${id} ${'x'.repeat(padBytes)}`;
  return { resource, body };
}

/** Every acknowledged issue reached the sink; none that was refused did; one webhook-id each. */
function expectDeliveredExactly(sink: Sink, acknowledged: string[], refused: string[]): void {
  const byIssue = new Map<string, Set<string>>();
  for (const r of sink.requests) {
    const issue = groupIdOf(r)!;
    byIssue.set(issue, (byIssue.get(issue) ?? new Set()).add(r.webhookId));
  }
  expect([...byIssue.keys()].sort()).toEqual([...acknowledged].sort());
  for (const id of refused) expect(byIssue.has(id)).toBe(false);
  // A redelivery after a fault keeps the delivery's webhook-id.
  for (const ids of byIssue.values()) expect(ids.size).toBe(1);
  expect(sink.requests.every((r) => r.verified)).toBe(true);
}

// ------------------------------------------------------------ SQLite: file-size limit

const noPrlimit = prlimitWorks();
if (noPrlimit) console.warn(`SQLite file-size limit test SKIPPED: prlimit unusable: ${noPrlimit}`);
const describeFsize = noPrlimit ? describe.skip : describe;

describeFsize('SQLite when the data file cannot grow (RLIMIT_FSIZE: EFBIG, also as root)', () => {
  afterEach(async () => {
    await killAll();
    await cleanup();
  });

  it('answers 503 with Retry-After while writes fail, acknowledges nothing it could not store, and recovers', async () => {
    const sink = await startSink({ kind: 'ok' });
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    const config = writeConfig(dir, relayConfig({ dataDir, sinkUrl: sink.url }));
    // SIGXFSZ would kill the process at the limit: ignored (inherited across
    // exec), a write past the limit fails with EFBIG instead, as on a full disk.
    const relay = await startRelay({ config, cwd: dir, prelude: "trap '' XFSZ" });
    const pid = relay.child.pid!;

    const acknowledged: string[] = [];
    const refused: string[] = [];
    const post = async (id: string): Promise<Posted> => {
      const { resource, body } = bigIssue(id, 16 * 1024);
      const res = await postSentry(relay.url, resource, body);
      if (res.status === 202) acknowledged.push(id);
      else refused.push(id);
      return res;
    };
    expect((await post('510000')).status).toBe(202);
    await waitFor(() => sink.requests.length >= 1, 'the first delivery');

    // Cap every file at (a little over) the largest one in the data dir now.
    const largest = Math.max(...readdirSync(dataDir).map((f) => statSync(join(dataDir, f)).size));
    expect(setFileSizeLimit(pid, largest + 48 * 1024)).toBeUndefined();

    let first503: Response | undefined;
    let answer: Posted | undefined;
    for (let i = 1; i <= 200 && !first503; i++) {
      const id = `51${String(i).padStart(4, '0')}`;
      const { resource, body } = bigIssue(id, 16 * 1024);
      // Raw fetch for this one: the headers matter.
      const res = await fetch(`${relay.url}/hooks/sentry`, {
        method: 'POST',
        headers: sentryHeaders(resource, body),
        body: compactSentryJson(body),
      });
      const text = await res.text();
      answer = { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
      if (res.status === 202) acknowledged.push(id);
      else {
        refused.push(id);
        first503 = res;
      }
    }
    expect(first503).toBeDefined();
    expect(first503!.status).toBe(503);
    expect(first503!.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(answer!.json).toMatchObject({ error: { code: 'PB_STORE_UNAVAILABLE' } });

    // While the limit holds: more big webhooks are refused too.
    for (let i = 0; i < 3; i++) {
      expect((await post(`52000${i}`)).status).toBe(503);
    }
    // /readyz probes with a one-row write, which may still fit under the
    // limit while 16 KiB bodies do not; with no room at all (every write
    // past the first byte of a file fails) it must report the store.
    expect(setFileSizeLimit(pid, 1)).toBeUndefined();
    const notReady = await waitFor(
      async () => {
        const r = await readyz(relay);
        return r.status === 503 ? r : undefined;
      },
      '/readyz to report the store with no room at all',
      5000,
    );
    expect(notReady.body.ready).toBe(false);
    expect(notReady.body.checks.store!.ok).toBe(false);
    expect(notReady.body.checks.store!.detail).toMatch(/full|EFBIG|too large|disk|I\/O/i);
    for (let i = 0; i < 3; i++) {
      expect((await post(`52100${i}`)).status).toBe(503);
    }
    const errorLine = relay.logs.find(
      (l: LogLine) => l.level === 'error' && l.msg === 'cannot store webhook; answering 503',
    );
    expect(errorLine).toBeDefined();
    expect(JSON.stringify(errorLine)).toMatch(/full|EFBIG|disk|I\/O/i);
    expect(relay.done).toBe(false);

    // The fault clears: no restart, no manual step.
    expect(setFileSizeLimit(pid, 'unlimited')).toBeUndefined();
    await waitFor(async () => (await readyz(relay)).status === 200, '/readyz to recover', 10_000);
    for (let i = 0; i < 3; i++) expect((await post(`53000${i}`)).status).toBe(202);

    await waitFor(
      () => {
        const seen = new Set(sink.requests.map(groupIdOf));
        return acknowledged.every((id) => seen.has(id));
      },
      () => `all ${acknowledged.length} acknowledged webhooks at the sink`,
      20_000,
    );
    // Nothing more arrives later (a refused webhook must never be delivered).
    await new Promise((r) => setTimeout(r, 500));
    expectDeliveredExactly(sink, acknowledged, refused);
    expect(relay.done).toBe(false);
  });
});

/** The headers Sentry sends with `value`, signed. */
function sentryHeaders(resource: string, value: unknown): Record<string, string> {
  const body = compactSentryJson(value);
  return {
    'content-type': 'application/json',
    'sentry-hook-resource': resource,
    'sentry-hook-timestamp': String(Math.floor(Date.now() / 1000)),
    'request-id': randomBytes(16).toString('hex'),
    'sentry-hook-signature': signSentryBody(body, CLIENT_SECRET),
  };
}

// ------------------------------------------------------------ PostgreSQL: kill -9

const pg = probePostgres('PostgreSQL kill -9 test');
const describePg = pg.skip ? describe.skip : describe;

describePg('kill -9 of a relay on PostgreSQL during a delivery', () => {
  const schema = uniqueName('pb_fault');
  afterEach(async () => {
    await killAll();
    await cleanup();
  });
  afterAll(() => {
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  it('delivers every acknowledged webhook after a restart, duplicates only under the same webhook-id', async () => {
    if (pg.unavailable) throw new Error(`PostgreSQL is not reachable: ${pg.unavailable}`);
    const sink = await startSink({ kind: 'hold' });
    const dir = tempDir();
    const config = writeConfig(dir, {
      ...relayConfig({
        dataDir: join(dir, 'data'),
        sinkUrl: sink.url,
        // A short attempt timeout keeps the lease short: the restarted relay
        // (on a shared database it only takes back expired leases) takes the
        // killed one's deliveries over within seconds.
        instance: { concurrency: 4, timeoutMs: 400, maxAttempts: 100 },
        webhook: { timeoutMs: 400 },
      }),
      databaseUrl: pgUrl({ applicationName: schema }),
      store: { postgres: { schema } },
    });
    const first = await startRelay({ config, cwd: dir });
    const issueIds = Array.from({ length: 12 }, (_, i) => `6100${String(i).padStart(2, '0')}`);
    const answers = await Promise.all(
      issueIds.map((id) => {
        const { resource, body } = issueCreated(id);
        return postSentry(first.url, resource, body);
      }),
    );
    for (const a of answers) {
      expect(a).toMatchObject({ status: 202, json: { status: 'accepted', deliveries: 1 } });
    }
    await waitFor(() => sink.requests.length >= 4, 'four deliveries in flight');
    const inFlight = new Set(sink.requests.map((r) => r.webhookId));

    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    sink.setMode({ kind: 'ok' });

    const second = await startRelay({ config, cwd: dir });
    await waitFor(
      () => {
        const seen = new Set(sink.requests.map(groupIdOf));
        return issueIds.every((id) => seen.has(id));
      },
      () => `all ${issueIds.length} webhooks at the sink (got ${sink.ids().size} webhook-ids)`,
      20_000,
    );
    expectDeliveredExactly(sink, issueIds, []);
    // The interrupted deliveries are sent again, under their webhook-id, once
    // the dead relay's leases expire (they may arrive after the others).
    await waitFor(
      () =>
        [...inFlight].every((id) => sink.requests.filter((r) => r.webhookId === id).length >= 2),
      'every interrupted delivery sent again',
      20_000,
    );
    // De-duplication survives the crash.
    const { resource, body } = issueCreated(issueIds[0]!);
    expect(await postSentry(second.url, resource, body)).toMatchObject({
      status: 202,
      json: { status: 'duplicate' },
    });
    expect(second.done).toBe(false);
  });
});

// ------------------------------------------------------------ PostgreSQL: terminated connections

describePg("pg_terminate_backend on two relays' connections under load", () => {
  const schema = uniqueName('pb_term');
  const app = uniqueName('pb_term_app');
  afterEach(async () => {
    await killAll();
    await cleanup();
  });
  afterAll(() => {
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  it('delivers every webhook exactly once: an outcome is recorded on a fresh connection, not sent again after the lease', async () => {
    if (pg.unavailable) throw new Error(`PostgreSQL is not reachable: ${pg.unavailable}`);
    const sink = await startSink({ kind: 'ok' });
    const dir = tempDir();
    const config = (name: string): string =>
      writeConfig(
        dir,
        {
          ...relayConfig({
            dataDir: join(dir, name),
            sinkUrl: sink.url,
            // The lease (6 × timeout + 5 s) is what a failed settle used to
            // wait out before the delivery went out a second time.
            instance: { concurrency: 4, timeoutMs: 500, maxAttempts: 100 },
          }),
          databaseUrl: pgUrl({ applicationName: app }),
          store: { postgres: { schema, maxConnections: 4 } },
        },
        `${name}.yaml`,
      );
    const relays = await Promise.all([
      startRelay({ config: config('a'), cwd: dir }),
      startRelay({ config: config('b'), cwd: dir }),
    ]);

    const admin = new Client({ connectionString: PG_URL });
    await admin.connect();
    let killing = true;
    let terminated = 0;
    const killer = (async () => {
      while (killing) {
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE application_name = $1 AND pid <> pg_backend_pid()`,
          [app],
        );
        terminated += rows[0]!.n;
        await new Promise((r) => setTimeout(r, 150));
      }
    })();

    const issueIds = Array.from({ length: 240 }, (_, i) => `8${String(i).padStart(5, '0')}`);
    let refusals = 0;
    try {
      // Sentry's part: post each webhook, and post again what was refused.
      let todo = issueIds;
      for (let round = 0; round < 10 && todo.length > 0; round++) {
        const refused: string[] = [];
        for (let i = 0; i < todo.length; i += 8) {
          const batch = todo.slice(i, i + 8);
          const answers = await Promise.all(
            batch.map((id, j) => {
              const { resource, body } = issueCreated(id);
              return postSentry(relays[(i + j) % 2]!.url, resource, body);
            }),
          );
          answers.forEach((a, j) => {
            expect([202, 503]).toContain(a.status);
            if (a.status === 503) refused.push(batch[j]!);
          });
        }
        refusals += refused.length;
        todo = refused;
      }
      expect(todo).toEqual([]);
      await waitFor(
        () => new Set(sink.requests.map(groupIdOf)).size === issueIds.length,
        () => `all ${issueIds.length} webhooks at the sink (got ${sink.ids().size} webhook-ids)`,
        25_000,
      );
    } finally {
      killing = false;
      await killer;
    }
    // Until every job is settled, a delivery whose outcome was lost may
    // still go out again once its lease expires; after, none can.
    await waitFor(
      async () => {
        const { rows } = await admin.query<{ open: number; total: number }>(
          `SELECT count(*) FILTER (WHERE state <> 'succeeded')::int AS open, count(*)::int AS total FROM ${schema}.jobs`,
        );
        return rows[0]!.total === issueIds.length && rows[0]!.open === 0;
      },
      'every job settled as succeeded',
      25_000,
    );
    await admin.end();

    const perId = new Map<string, number>();
    for (const r of sink.requests) perId.set(r.webhookId, (perId.get(r.webhookId) ?? 0) + 1);
    const repeated = [...perId.values()].filter((n) => n > 1).length;
    console.log(
      `terminated ${terminated} connections: ${refusals} webhook(s) answered 503, ${repeated} delivered more than once`,
    );
    expect(terminated).toBeGreaterThan(0);
    expectDeliveredExactly(sink, issueIds, []);
    expect(repeated).toBe(0);
    expect(sink.requests).toHaveLength(issueIds.length);
    for (const relay of relays) expect(relay.done).toBe(false);
  }, 90_000);
});
