import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite';
import { describeStoreConformance } from './helpers/store-conformance';

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

  it('reports an unusable data directory with PB_STORE_UNAVAILABLE', () => {
    // A regular file where the data directory's parent should be.
    const file = join(dir, 'not-a-directory');
    writeFileSync(file, 'x');
    expect(() => new SqliteStore({ dataDir: join(file, 'data') })).toThrow(
      expect.objectContaining({ code: 'PB_STORE_UNAVAILABLE' }),
    );
  });
});
