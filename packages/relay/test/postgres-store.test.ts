import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { PostgresStore } from '../src/store/postgres';
import { describeStoreConformance, request } from './helpers/store-conformance';
import { PG_URL, probePostgres } from './helpers/faults-process';

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
