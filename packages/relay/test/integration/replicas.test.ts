import { randomBytes } from 'node:crypto';
import {
  cleanup,
  issueCreated,
  postSentry,
  relayConfig,
  requireBuiltRelay,
  startRelay,
  startSink,
  tempDir,
  waitFor,
  writeConfig,
  type Sink,
} from './helpers';
import { PG_URL, probePostgres, psql } from '../helpers/faults-process';

// Two relay processes on one PostgreSQL schema, as two replicas behind a
// load balancer would run: each webhook is delivered once, and a replica
// killed mid-delivery has its deliveries finished by the other.

const URL = PG_URL;
const { skip } = probePostgres('replica tests');
const describePg = skip ? describe.skip : describe;

describePg('several relays on one PostgreSQL', () => {
  const schema = `pb_it_${process.pid}_${randomBytes(3).toString('hex')}`;
  let sink: Sink;

  beforeAll(requireBuiltRelay);
  afterEach(() => cleanup());
  afterAll(async () => {
    await cleanup({ removeTemp: true });
    psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  function config(dir: string, name: string): string {
    return writeConfig(
      dir,
      {
        ...relayConfig({
          dataDir: `${dir}/${name}`,
          sinkUrl: sink.url,
          // A short attempt timeout keeps the lease short, so a dead
          // replica's deliveries are taken over within seconds.
          instance: { timeoutMs: 500, concurrency: 2 },
        }),
        databaseUrl: URL,
        store: { postgres: { schema } },
      },
      `${name}.yaml`,
    );
  }

  it('delivers each webhook once across two replicas, and de-duplicates across them', async () => {
    sink = await startSink({ kind: 'ok' });
    const dir = tempDir();
    const [a, b] = await Promise.all([
      startRelay({ config: config(dir, 'a'), cwd: dir }),
      startRelay({ config: config(dir, 'b'), cwd: dir }),
    ]);
    const ids = Array.from({ length: 30 }, (_, i) => `7100${i}`);
    const answers = await Promise.all(
      ids.map((id, i) => {
        const { resource, body } = issueCreated(id);
        return postSentry((i % 2 ? a : b).url, resource, body);
      }),
    );
    expect(answers.every((r) => r.status === 202 && r.json.status === 'accepted')).toBe(true);
    // Sentry's redelivery of one of them reaches the other replica.
    const again = issueCreated(ids[0]!);
    const dup = await postSentry(a.url, again.resource, again.body);
    expect(dup.json.status).toBe('duplicate');

    await waitFor(() => sink.ids().size === 30, 'all 30 deliveries', 15_000);
    await new Promise((r) => setTimeout(r, 500));
    // Normal operation: no delivery ran twice.
    expect(sink.requests).toHaveLength(30);
  });

  it("finishes a killed replica's deliveries on the other one once its leases expire", async () => {
    sink = await startSink({ kind: 'hold' });
    const dir = tempDir();
    const a = await startRelay({ config: config(dir, 'a'), cwd: dir });
    const ids = Array.from({ length: 6 }, (_, i) => `7200${i}`);
    for (const id of ids) {
      const { resource, body } = issueCreated(id);
      expect((await postSentry(a.url, resource, body)).status).toBe(202);
    }
    await waitFor(() => sink.requests.length >= 2, 'deliveries in flight on replica a');
    const heldIds = sink.requests.map((r) => r.webhookId);
    a.child.kill('SIGKILL');
    await a.exited;
    sink.setMode({ kind: 'ok' });
    const answeredFrom = sink.requests.length;
    const b = await startRelay({ config: config(dir, 'b'), cwd: dir });
    const started = b.logs.find((l) => l.msg === 'plugboard relay started')!;
    expect(String(started.store)).toMatch(/^postgres:/);
    // Delivered means answered: every id must arrive again after the switch,
    // the two held by the dead replica included (once their lease expired).
    const answered = (): Set<string> =>
      new Set(sink.requests.slice(answeredFrom).map((r) => r.webhookId));
    await waitFor(() => answered().size === 6, 'every delivery answered, via replica b', 25_000);
    for (const id of heldIds) expect(answered().has(id)).toBe(true);
  }, 40_000);
});
