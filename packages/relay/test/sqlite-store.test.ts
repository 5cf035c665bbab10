import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite';
import type { LeasedJob } from '../src/store/types';
import { describeStoreConformance, request } from './helpers/store-conformance';

describeStoreConformance('SqliteStore', async (now) => {
  const dir = mkdtempSync(join(tmpdir(), 'pb-store-'));
  return {
    store: new SqliteStore({ dataDir: dir, now }),
    reopen: async () => new SqliteStore({ dataDir: dir, now }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe('SqliteStore', () => {
  let dir: string;
  let now: number;
  let store: SqliteStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pb-store-'));
    now = 1_700_000_000_000;
    store = new SqliteStore({ dataDir: dir, now: () => now });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a data directory another live relay holds, and takes over a dead one's", async () => {
    await store.close();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
    try {
      writeFileSync(join(dir, 'relay.lock'), String(other.pid));
      expect(() => new SqliteStore({ dataDir: dir })).toThrow(
        /in use by another relay \(pid \d+\)/,
      );
    } finally {
      other.kill('SIGKILL');
    }
    await new Promise((r) => other.once('exit', r));
    const taken = new SqliteStore({ dataDir: dir });
    expect(readFileSync(join(dir, 'relay.lock'), 'utf8')).toBe(String(process.pid));
    await taken.close();
    expect(existsSync(join(dir, 'relay.lock'))).toBe(false);
    store = new SqliteStore({ dataDir: dir });
  });

  it('leases through the partial index, whatever the backlog', async () => {
    await store.close();
    const db = new Database(join(dir, 'plugboard.db'));
    const plan = db
      .prepare(
        'EXPLAIN QUERY PLAN SELECT j.*, w.resource, w.action, w.source, w.body FROM jobs j JOIN webhooks w ON w.id = j.webhook_id ' +
          "WHERE j.instance_id = ? AND j.state = 'pending' AND j.run_at <= ? ORDER BY j.run_at, j.id LIMIT ?",
      )
      .all('r/a', now, 10) as Array<{ detail: string }>;
    db.close();
    const text = plan.map((p) => p.detail).join('\n');
    expect(text).toContain('USING INDEX jobs_pending');
    expect(text).toContain('SEARCH w USING INTEGER PRIMARY KEY');
    expect(text).not.toMatch(/SCAN (jobs|j)\b/);
    expect(text).not.toContain('TEMP B-TREE');
  });

  /**
   * A leased job, and another connection (a backup, the sqlite3 shell)
   * holding the write lock far longer than the store waits for it: each try
   * to settle fails with SQLITE_BUSY until `release()`.
   */
  async function leasedUnderLock(leaseMs: number): Promise<{ job: LeasedJob; release(): void }> {
    await store.close();
    store = new SqliteStore({ dataDir: dir, now: () => now, busyTimeoutMs: 20 });
    await store.ingest(request());
    const [job] = await store.lease('r/a', 1, 'w1', leaseMs);
    const other = new Database(join(dir, 'plugboard.db'));
    other.prepare('BEGIN IMMEDIATE').run();
    return {
      job: job!,
      release: () => {
        other.prepare('ROLLBACK').run();
        other.close();
      },
    };
  }

  const succeeded = (job: LeasedJob): Parameters<SqliteStore['settle']> => [
    job,
    { attempt: 1, startedAt: now, finishedAt: now, outcome: 'succeeded' },
    { state: 'succeeded' },
  ];

  it('records an outcome once the file is writable again, instead of leaving the job to its lease', async () => {
    const { job, release } = await leasedUnderLock(30_000);
    const settling = store.settle(...succeeded(job));
    await new Promise((r) => setTimeout(r, 300));
    release();
    await settling;
    expect(await store.countJobsByState()).toMatchObject({ running: 0, succeeded: 1 });
    expect(await store.listAttempts(job.id)).toHaveLength(1);
  });

  it('gives up on a locked file when the lease is over, with PB_STORE_UNAVAILABLE', async () => {
    const { job, release } = await leasedUnderLock(200);
    try {
      await expect(store.settle(...succeeded(job))).rejects.toMatchObject({
        code: 'PB_STORE_UNAVAILABLE',
        cause: { code: 'SQLITE_BUSY' },
      });
    } finally {
      release();
    }
    expect(await store.countJobsByState()).toMatchObject({ running: 1 });
  });

  it('reports an unusable data directory with PB_STORE_UNAVAILABLE', () => {
    // A regular file where the data directory's parent should be.
    const file = join(dir, 'not-a-directory');
    writeFileSync(file, 'x');
    expect(() => new SqliteStore({ dataDir: join(file, 'data') })).toThrow(
      expect.objectContaining({ code: 'PB_STORE_UNAVAILABLE' }),
    );
  });
});
