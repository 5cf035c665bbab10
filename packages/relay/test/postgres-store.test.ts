import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { PostgresStore } from '../src/store/postgres';
import type { LeasedJob } from '../src/store/types';
import { describeStoreConformance, request } from './helpers/store-conformance';
import {
  PG_URL,
  pgUrl,
  probePostgres,
  terminateBackends,
  uniqueName,
} from './helpers/faults-process';

/**
 * Runs against the PostgreSQL at PLUGBOARD_TEST_DATABASE_URL (default: the
 * local server with trust auth, database `test`), each test in a schema of
 * its own that is dropped afterwards.
 */
const URL = PG_URL;
const { unavailable, skip } = probePostgres('PostgreSQL store tests');
// In CI PostgreSQL is always there, so a failure to reach it fails the run;
// elsewhere the suites are skipped, loudly.
const describePg = skip ? describe.skip : describe;

async function dropSchema(schema: string): Promise<void> {
  const c = new Client({ connectionString: URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

function uniqueSchema(): string {
  return `pb_test_${process.pid}_${randomBytes(4).toString('hex')}`;
}

describeStoreConformance(
  'PostgresStore',
  async (now) => {
    if (unavailable) throw new Error(`PostgreSQL is not reachable at ${URL}: ${unavailable}`);
    const schema = uniqueSchema();
    const opened: PostgresStore[] = [];
    const make = (): PostgresStore => {
      const s = new PostgresStore({ connectionString: URL, schema, now, maxConnections: 4 });
      opened.push(s);
      return s;
    };
    return {
      store: make(),
      reopen: async () => make(),
      cleanup: async () => {
        await Promise.all(opened.map((s) => s.close()));
        await dropSchema(schema);
      },
    };
  },
  { skip: describePg === describe.skip },
);

describePg('PostgresStore with several replicas', () => {
  let schema: string;
  let a: PostgresStore;
  let b: PostgresStore;

  beforeEach(() => {
    if (unavailable) throw new Error(`PostgreSQL is not reachable at ${URL}: ${unavailable}`);
    schema = uniqueSchema();
    a = new PostgresStore({ connectionString: URL, schema });
    b = new PostgresStore({ connectionString: URL, schema });
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await dropSchema(schema);
  });

  it('migrates once when replicas start together', async () => {
    await Promise.all([a.migrate(), b.migrate(), a.migrate()]);
    expect(await a.countJobsByState()).toMatchObject({ pending: 0 });
  });

  it('never leases one job to two replicas', async () => {
    for (let i = 0; i < 40; i++) await a.ingest(request({ dedupKey: `k${i}` }));
    const leased = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).lease('r/a', 10, `w${i}`, 60_000)),
    );
    const ids = leased.flat().map((j) => j.id);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
  });

  it('accepts one of two simultaneous redeliveries of the same content', async () => {
    const results = await Promise.all([a.ingest(request()), b.ingest(request())]);
    expect(results.map((r) => r.status).sort()).toEqual(['accepted', 'duplicate']);
    expect((await a.countJobsByState()).pending).toBe(1);
  });

  it('answers PB_STORE_UNAVAILABLE, not a crash, when the database cannot be reached', async () => {
    const broken = new PostgresStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      schema,
    });
    await expect(broken.ingest(request())).rejects.toMatchObject({
      code: 'PB_STORE_UNAVAILABLE',
    });
    await broken.close();
  });
});

describePg('PostgresStore when its connections are terminated (pg_terminate_backend)', () => {
  let schema: string;
  let app: string;
  let store: PostgresStore;
  let now: number;

  beforeEach(() => {
    if (unavailable) throw new Error(`PostgreSQL is not reachable at ${URL}: ${unavailable}`);
    schema = uniqueSchema();
    app = uniqueName('pb_term');
    now = 1_700_000_000_000;
    store = new PostgresStore({
      connectionString: pgUrl({ applicationName: app }),
      schema,
      now: () => now,
      maxConnections: 4,
    });
  });
  afterEach(async () => {
    await store.close();
    await dropSchema(schema);
  });

  async function leaseOne(): Promise<LeasedJob> {
    await store.ingest(request());
    const [job] = await store.lease('r/a', 1, 'w1', 30_000);
    return job!;
  }

  const succeeded = (job: LeasedJob): Parameters<PostgresStore['settle']> => [
    job,
    { attempt: job.attempts, startedAt: now, finishedAt: now + 5, outcome: 'succeeded' },
    { state: 'succeeded' },
  ];

  /** Settled once, for good: one attempt row, and nothing to lease now or after the lease. */
  async function expectSettledOnce(job: LeasedJob): Promise<void> {
    expect(await store.countJobsByState()).toMatchObject({ running: 0, succeeded: 1 });
    expect(await store.listAttempts(job.id)).toEqual([
      expect.objectContaining({ attempt: 1, outcome: 'succeeded' }),
    ]);
    expect(await store.lease('r/a', 10, 'w2', 30_000)).toEqual([]);
    now += 30_001;
    expect(await store.releaseLeases({ expiredOnly: true })).toBe(0);
    expect(await store.lease('r/a', 10, 'w2', 30_000)).toEqual([]);
  }

  it('records the outcome when the pool hands out a connection that was terminated', async () => {
    const job = await leaseOne();
    expect(terminateBackends(app)).toBeGreaterThan(0);
    // The pooled client has not noticed yet: the first try fails on it.
    await store.settle(...succeeded(job));
    await expectSettledOnce(job);
  });

  it('records the outcome when the connection is terminated in the middle of the settle', async () => {
    const job = await leaseOne();
    const admin = new Client({ connectionString: URL });
    await admin.connect();
    try {
      // Hold the job's row so the settle's UPDATE waits, then kill it there.
      await admin.query('BEGIN');
      await admin.query(`SELECT id FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [Number(job.id)]);
      const settling = store.settle(...succeeded(job));
      let pid: number | undefined;
      for (let i = 0; i < 500 && pid === undefined; i++) {
        const { rows } = await admin.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [app],
        );
        pid = rows[0]?.pid;
        if (pid === undefined) await new Promise((r) => setTimeout(r, 10));
      }
      expect(pid).toBeDefined();
      await admin.query('SELECT pg_terminate_backend($1, 5000)', [pid]);
      await admin.query('ROLLBACK');
      await settling;
    } finally {
      await admin.end();
    }
    await expectSettledOnce(job);
  });

  it('changes nothing when a settle whose COMMIT landed is tried again', async () => {
    const job = await leaseOne();
    // What a retry after a lost answer to COMMIT does: the same write again.
    await store.settle(...succeeded(job));
    await store.settle(...succeeded(job));
    await expectSettledOnce(job);
  });

  it('takes a webhook on a fresh connection when the pooled ones were terminated', async () => {
    // Several idle connections in the pool, all killed under it.
    await Promise.all(Array.from({ length: 4 }, () => store.countJobsByState()));
    expect(terminateBackends(app)).toBeGreaterThan(0);
    const result = await store.ingest(request());
    expect(result.status).toBe('accepted');
    expect(await store.countJobsByState()).toMatchObject({ pending: 1 });
    // And the pool is healthy afterwards.
    expect((await store.ingest(request({ dedupKey: 'another' }))).status).toBe('accepted');
  });

  it('stops retrying a settle once the lease is over, with PB_STORE_UNAVAILABLE', async () => {
    const job = await leaseOne();
    const gone = new PostgresStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/none',
      schema,
      now: () => now,
    });
    try {
      // 300 ms of lease left: a few tries against a refused port, then the error.
      await expect(
        gone.settle(...succeeded({ ...job, leaseUntil: now + 300 })),
      ).rejects.toMatchObject({ code: 'PB_STORE_UNAVAILABLE' });
    } finally {
      await gone.close();
    }
  });
});
