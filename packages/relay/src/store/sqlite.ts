import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { StoreError, type SerializedError } from '@plugboard/sdk';
import {
  JOB_STATES,
  type AttemptInput,
  type AttemptRecord,
  type GroupFlush,
  type GroupRecord,
  type IngestRequest,
  type IngestResult,
  type JobFilter,
  type JobRecord,
  type JobState,
  type LeasedJob,
  type SettleItem,
  type Store,
  type WebhookRecord,
  type WebhookSource,
  type WebhookStatus,
} from './types';
import {
  CRASH_ERROR,
  RATE_NAMESPACE,
  attemptValues,
  slidingWindow,
  toGroup,
  toJob,
  type GroupRow,
  type JobRow,
  type SettleNext,
} from './rows';
import { errorCodes, leaseDeadline, retryTransient } from './retry';

export interface SqliteStoreOptions {
  /** Directory holding `plugboard.db` (created if missing). `:memory:` for tests. */
  dataDir: string;
  /**
   * `normal` (default): WAL with synchronous=NORMAL, durable across a killed
   * process (what the relay promises); the last commits can be lost only if
   * the machine itself loses power. `full`: fsync on every commit.
   */
  synchronous?: 'normal' | 'full';
  /** How long a write waits for another connection's lock (ms). Default 5000. */
  busyTimeoutMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/**
 * Failures of a write that leave nothing written and may clear by
 * themselves: the file locked by another connection (a backup, the `sqlite3`
 * shell, the checkpointer), the disk or the file-size limit full, an I/O error.
 */
const TRANSIENT = /^SQLITE_(BUSY|LOCKED|FULL|IOERR)/;

function isTransient(err: unknown): boolean {
  return errorCodes(err).some((c) => TRANSIENT.test(c));
}

const SCHEMA_VERSION = 3;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One relay process per SQLite data directory: at start-up the relay hands
 * every running lease back to the queue, which is only right when no other
 * process is delivering from the same file. A lock left by a dead process
 * (kill -9, or a container restarted with the same pid) is taken over.
 */
function acquireLock(dataDir: string): string {
  const lock = join(dataDir, 'relay.lock');
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return lock;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError(
          'PB_STORE_UNAVAILABLE',
          `cannot write to data directory ${dataDir}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const pid = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new StoreError(
          'PB_STORE_UNAVAILABLE',
          `data directory ${dataDir} is in use by another relay (pid ${pid}); ` +
            'several replicas need PostgreSQL, not a shared SQLite file',
        );
      }
      rmSync(lock, { force: true });
    }
  }
  throw new StoreError('PB_STORE_UNAVAILABLE', `cannot lock data directory ${dataDir}`);
}

// Version 1 of the schema. Later versions are appended as new steps, never
// edited, so an existing data directory upgrades in place.
const MIGRATIONS: string[] = [
  `
  -- Integer keys keep the b-trees append-only (random keys scatter writes).
  CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT,
    dedup_key TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    detail TEXT,
    duplicate_of INTEGER,
    body BLOB NOT NULL
  );
  CREATE TABLE dedup (
    key TEXT PRIMARY KEY,
    webhook_id INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL,
    route_name TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    plugin_slug TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    idempotency_key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_error TEXT
  );
  -- Partial indexes keep leasing O(log n) whatever the size of the backlog
  -- or of the finished history (the seed's ZRANGE-everything lesson).
  CREATE INDEX jobs_pending ON jobs(instance_id, run_at, id) WHERE state = 'pending';
  CREATE INDEX jobs_running ON jobs(lease_until) WHERE state = 'running';
  CREATE INDEX jobs_webhook ON jobs(webhook_id);
  CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
  );
  CREATE INDEX attempts_job ON attempts(job_id);
  CREATE TABLE kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (ns, key)
  ) WITHOUT ROWID;
  CREATE TABLE rate (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
  ) WITHOUT ROWID;
  `,
  // 2: the delivery log can be filtered by project, and replayed.
  `
  ALTER TABLE jobs ADD COLUMN project TEXT;
  ALTER TABLE jobs ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE attempts ADD COLUMN chain INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX jobs_dead ON jobs(instance_id, id) WHERE state = 'dead';
  `,
  // 3: notification groups (digests).
  `
  CREATE TABLE groups (
    route TEXT NOT NULL,
    group_key TEXT NOT NULL,
    pending INTEGER NOT NULL,
    total INTEGER NOT NULL,
    window_start INTEGER,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    last_webhook_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_changed INTEGER NOT NULL DEFAULT 0,
    next_flush_at INTEGER NOT NULL,
    last_flush_at INTEGER,
    sent INTEGER NOT NULL DEFAULT 0,
    suppressed INTEGER NOT NULL DEFAULT 0,
    project TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (route, group_key)
  ) WITHOUT ROWID;
  CREATE INDEX groups_due ON groups(next_flush_at);
  `,
];

interface LeaseRow extends JobRow {
  resource: string;
  action: string;
  source: WebhookSource;
  body: Buffer;
}

interface Pending<I, O> {
  input: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Collects the calls made in one event-loop turn and runs them in a single
 * transaction (group commit): a commit costs the same for one row as for a
 * hundred, and every caller still hears back only after its rows are
 * committed.
 */
class Batcher<I, O> {
  private queue: Pending<I, O>[] = [];
  private scheduled = false;
  constructor(private readonly run: (inputs: I[]) => O[]) {}

  push(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let results: O[];
    try {
      results = this.run(batch.map((p) => p.input));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
  }
}

/** The embedded store: one SQLite file in WAL mode. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private closed: Promise<void> | undefined;
  private readonly stmts;
  private readonly lockFile: string | undefined;
  /** Exact job counts by state, kept beside the data (one process owns the file). */
  private readonly counts: Record<JobState, number>;
  private readonly ingests: Batcher<IngestRequest, IngestResult>;
  private readonly settles: Batcher<
    { job: LeasedJob; attempt: AttemptInput; next: SettleNext },
    void
  >;
  private checkpointer: Worker | undefined;

  constructor(options: SqliteStoreOptions) {
    this.now = options.now ?? Date.now;
    let file = ':memory:';
    if (options.dataDir !== ':memory:') {
      try {
        mkdirSync(options.dataDir, { recursive: true });
      } catch (err) {
        throw new StoreError(
          'PB_STORE_UNAVAILABLE',
          `cannot create data directory ${options.dataDir}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      file = join(options.dataDir, 'plugboard.db');
      this.lockFile = acquireLock(options.dataDir);
    }
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      this.db.pragma('foreign_keys = OFF');
      if (file !== ':memory:') {
        // Checkpoints (copying the WAL into the database, with an fsync) run
        // on a worker thread so no request waits for one; the automatic
        // checkpoint stays as a backstop should the worker fall behind.
        this.db.pragma('wal_autocheckpoint = 20000');
      }
      this.migrate();
    } catch (err) {
      if (this.lockFile) rmSync(this.lockFile, { force: true });
      throw new StoreError(
        'PB_STORE_UNAVAILABLE',
        `cannot open the SQLite store at ${file}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const db = this.db;
    this.stmts = {
      dedupGet: db.prepare<[string, number], { webhook_id: number }>(
        'SELECT webhook_id FROM dedup WHERE key = ? AND expires_at > ?',
      ),
      dedupPut: db.prepare(
        'INSERT INTO dedup (key, webhook_id, expires_at) VALUES (?, ?, ?) ' +
          'ON CONFLICT(key) DO UPDATE SET webhook_id = excluded.webhook_id, expires_at = excluded.expires_at',
      ),
      dedupPurge: db.prepare('DELETE FROM dedup WHERE expires_at <= ?'),
      webhookInsert: db.prepare(
        'INSERT INTO webhooks (source, resource, action, request_id, dedup_key, status, received_at, detail, duplicate_of, body) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      jobInsert: db.prepare(
        'INSERT INTO jobs (webhook_id, route_name, instance_id, plugin_slug, state, max_attempts, run_at, idempotency_key, created_at, updated_at, project) ' +
          "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
      ),
      leaseSelect: db.prepare<[string, number, number], LeaseRow>(
        'SELECT j.*, w.resource, w.action, w.source, w.body FROM jobs j JOIN webhooks w ON w.id = j.webhook_id ' +
          "WHERE j.instance_id = ? AND j.state = 'pending' AND j.run_at <= ? ORDER BY j.run_at, j.id LIMIT ?",
      ),
      leaseUpdate: db.prepare(
        "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'pending'",
      ),
      settle: db.prepare(
        'UPDATE jobs SET state = ?, run_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?, last_error = ? ' +
          // lease_until: an attempt that outlived its lease must not settle
          // the job's next lease, even one this process took.
          "WHERE id = ? AND state = 'running' AND lease_owner = ? AND lease_until = ?",
      ),
      attemptInsert: db.prepare(
        'INSERT INTO attempts (job_id, attempt, started_at, finished_at, outcome, error, chain) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      // A job whose last allowed attempt was cut short by a crash is dead:
      // otherwise a delivery that kills the relay would run forever.
      exhaustAll: db.prepare(
        "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, updated_at = ?, last_error = ? " +
          "WHERE state = 'running' AND attempts >= max_attempts",
      ),
      exhaustExpired: db.prepare(
        "UPDATE jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, updated_at = ?, last_error = ? " +
          "WHERE state = 'running' AND attempts >= max_attempts AND lease_until <= ?",
      ),
      releaseAll: db.prepare(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE state = 'running'",
      ),
      releaseOwner: db.prepare(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ?, " +
          "attempts = CASE WHEN ? AND attempts > 0 THEN attempts - 1 ELSE attempts END WHERE state = 'running' AND lease_owner = ?",
      ),
      // Leased but never tried (the target's rate limit was taken meanwhile):
      // back to the queue without spending an attempt.
      handBack: db.prepare(
        "UPDATE jobs SET state = 'pending', run_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?, " +
          "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE attempts END WHERE id = ? AND state = 'running' AND lease_owner = ? AND lease_until = ?",
      ),
      releaseExpired: db.prepare(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE state = 'running' AND lease_until <= ?",
      ),
      nextRunAt: db.prepare<[string], { run_at: number }>(
        "SELECT run_at FROM jobs WHERE instance_id = ? AND state = 'pending' ORDER BY run_at, id LIMIT 1",
      ),
      getWebhook: db.prepare<[number], Record<string, unknown>>(
        'SELECT * FROM webhooks WHERE id = ?',
      ),
      attempts: db.prepare<[number], Record<string, unknown>>(
        'SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt, id',
      ),
      countAll: db.prepare<[], { state: JobState; n: number }>(
        'SELECT state, count(*) AS n FROM jobs GROUP BY state',
      ),
      kvGet: db.prepare<[string, string, number], { value: string }>(
        'SELECT value FROM kv WHERE ns = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)',
      ),
      kvSet: db.prepare(
        'INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at',
      ),
      kvDeleteExpired: db.prepare(
        'DELETE FROM kv WHERE ns = ? AND key = ? AND expires_at IS NOT NULL AND expires_at <= ?',
      ),
      kvPurge: db.prepare('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?'),
      kvInsertIgnore: db.prepare(
        'INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(ns, key) DO NOTHING',
      ),
      kvDelete: db.prepare('DELETE FROM kv WHERE ns = ? AND key = ?'),
      kvList: db.prepare<[string, string, string, number, number], { key: string; value: string }>(
        'SELECT key, value FROM kv WHERE ns = ? AND key >= ? AND key < ? ' +
          'AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?',
      ),
      // A notification counted into its group. A group that already flushed
      // gets its next flush no later than one group interval after the last
      // (Alertmanager); a new one waits group_wait.
      groupHit: db.prepare(
        'INSERT INTO groups (route, group_key, pending, total, window_start, first_at, last_at, last_webhook_id, status, status_changed, next_flush_at, project) ' +
          "VALUES (@route, @key, 1, 1, @now, @now, @now, @webhook, COALESCE(@status, 'open'), 0, @now + @wait, @project) " +
          'ON CONFLICT(route, group_key) DO UPDATE SET pending = pending + 1, total = total + 1, ' +
          'window_start = COALESCE(window_start, @now), last_at = @now, last_webhook_id = @webhook, ' +
          'status_changed = CASE WHEN @status IS NOT NULL AND @status <> status THEN 1 ELSE status_changed END, ' +
          'status = COALESCE(@status, status), ' +
          'next_flush_at = MIN(next_flush_at, MAX(@now, COALESCE(last_flush_at + @interval, @now + @wait)))',
      ),
      dueGroups: db.prepare<[number, number], GroupRow>(
        'SELECT * FROM groups WHERE next_flush_at <= ? ORDER BY next_flush_at LIMIT ?',
      ),
      getGroup: db.prepare<[string, string], GroupRow>(
        'SELECT * FROM groups WHERE route = ? AND group_key = ?',
      ),
      listGroups: db.prepare<[string | null, string | null, number], GroupRow>(
        'SELECT * FROM groups WHERE (? IS NULL OR route = ?) ORDER BY last_at DESC LIMIT ?',
      ),
      groupFlush: db.prepare(
        'UPDATE groups SET version = version + 1, pending = pending - @flushed, ' +
          // A flush that accounts for nothing (muted, waiting) leaves the
          // window and a pending state change as they are.
          'window_start = CASE WHEN @flushed = 0 THEN window_start WHEN pending - @flushed > 0 THEN @now ELSE NULL END, ' +
          'status_changed = CASE WHEN status <> @seenStatus THEN 1 WHEN @sent OR @suppressed THEN 0 ELSE status_changed END, ' +
          'next_flush_at = @next, last_flush_at = CASE WHEN @sent THEN @now ELSE last_flush_at END, ' +
          'sent = sent + @sent, suppressed = suppressed + CASE WHEN @suppressed THEN @flushed ELSE 0 END ' +
          'WHERE route = @route AND group_key = @key AND version = @version',
      ),
      // Closed only if nothing arrived since the decision; else kept open.
      groupClose: db.prepare(
        'DELETE FROM groups WHERE route = @route AND group_key = @key AND version = @version ' +
          'AND pending = @flushed AND status = @seenStatus',
      ),
      rateHit: db.prepare<[string, number], { n: number }>(
        'INSERT INTO rate (key, window_start, n) VALUES (?, ?, 1) ' +
          'ON CONFLICT(key, window_start) DO UPDATE SET n = n + 1 RETURNING n',
      ),
      ratePurge: db.prepare('DELETE FROM rate WHERE window_start < ?'),
      writable: db.prepare(
        "INSERT INTO kv (ns, key, value, expires_at) VALUES ('_relay', 'writable', ?, NULL) " +
          'ON CONFLICT(ns, key) DO UPDATE SET value = excluded.value',
      ),
    };
    // One full count when the file is opened; exact in-memory counts after.
    this.counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const row of this.stmts.countAll.all()) this.counts[row.state] = row.n;

    const ingestTx = db.transaction((batch: IngestRequest[]) => {
      const now = this.now();
      return batch.map((req) => this.ingestOne(req, now));
    });
    this.ingests = new Batcher((batch) => {
      const results = ingestTx(batch);
      // Only after the commit: a failed transaction changes no count.
      for (const r of results) this.counts.pending += r.jobIds.length;
      return results;
    });
    const settleTx = db.transaction(
      (batch: Array<{ job: LeasedJob; attempt: AttemptInput; next: SettleNext }>) => {
        const now = this.now();
        return batch.map(({ job, attempt, next }) => this.settleOne(job, attempt, next, now));
      },
    );
    this.settles = new Batcher<{ job: LeasedJob; attempt: AttemptInput; next: SettleNext }, void>(
      (batch) => {
        const moved = settleTx(batch);
        batch.forEach(({ next }, i) => {
          if (moved[i]) {
            this.counts.running--;
            this.counts[next.state]++;
          }
        });
        return batch.map(() => undefined);
      },
    );
    if (file !== ':memory:') this.startCheckpointer(file);
  }

  private startCheckpointer(file: string): void {
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const Database = require(workerData.module);
      const db = new Database(workerData.file);
      db.pragma('busy_timeout = 1000');
      const timer = setInterval(() => {
        try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (err) { /* retried next tick */ }
      }, workerData.intervalMs);
      parentPort.on('message', () => { clearInterval(timer); db.close(); process.exit(0); });
    `;
    try {
      this.checkpointer = new Worker(source, {
        eval: true,
        workerData: { file, module: require.resolve('better-sqlite3'), intervalMs: 1000 },
      });
      this.checkpointer.unref();
      this.checkpointer.on('error', () => {
        // The automatic checkpoint takes over.
        this.checkpointer = undefined;
      });
    } catch {
      this.checkpointer = undefined;
    }
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `the data directory was written by a newer Plugboard (schema ${current}, this build knows ${SCHEMA_VERSION})`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      const step = MIGRATIONS[v]!;
      this.db.transaction(() => {
        this.db.exec(step);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private guard<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
    if (this.closed) {
      return Promise.reject(new StoreError('PB_STORE_CLOSED', `store is closed (${what})`));
    }
    const wrap = (err: unknown): StoreError =>
      err instanceof StoreError
        ? err
        : new StoreError(
            'PB_STORE_UNAVAILABLE',
            `store ${what} failed: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
    try {
      return Promise.resolve(fn()).catch((err: unknown) => {
        throw wrap(err);
      });
    } catch (err) {
      return Promise.reject(wrap(err));
    }
  }

  private ingestOne(req: IngestRequest, now: number): IngestResult {
    const w = req.webhook;
    const groups = req.groups ?? [];
    let status: WebhookStatus = req.unsupported
      ? 'unsupported'
      : req.jobs.length === 0 && groups.length === 0
        ? 'ignored'
        : 'accepted';
    let duplicateOf: number | undefined;
    // A window of 0 is de-duplication off: no claim is read or written.
    const dedup = w.dedupKey !== '' && req.dedupWindowMs > 0;
    if (status === 'accepted' && dedup) {
      const prior = this.stmts.dedupGet.get(w.dedupKey, now);
      if (prior) {
        status = 'duplicate';
        duplicateOf = prior.webhook_id;
      }
    }
    const id = Number(
      this.stmts.webhookInsert.run(
        w.source,
        w.resource,
        w.action,
        w.requestId ?? null,
        w.dedupKey,
        status,
        w.receivedAt,
        w.detail ?? null,
        duplicateOf ?? null,
        w.body,
      ).lastInsertRowid,
    );
    const jobIds: string[] = [];
    if (status === 'accepted') {
      if (dedup) this.stmts.dedupPut.run(w.dedupKey, id, now + req.dedupWindowMs);
      for (const job of req.jobs) {
        const key = `pbd_${randomUUID().replace(/-/g, '')}`;
        const info = this.stmts.jobInsert.run(
          id,
          job.routeName,
          job.instanceId,
          job.pluginSlug,
          job.maxAttempts,
          job.runAt ?? now,
          key,
          now,
          now,
          job.project ?? null,
        );
        jobIds.push(String(info.lastInsertRowid));
      }
      for (const g of groups) {
        this.stmts.groupHit.run({
          route: g.routeName,
          key: g.groupKey,
          now,
          webhook: id,
          status: g.status ?? null,
          wait: g.waitMs,
          interval: g.intervalMs,
          project: g.project ?? null,
        });
      }
    }
    const result: IngestResult = { webhookId: String(id), status, jobIds };
    if (groups.length > 0 && status === 'accepted') result.grouped = groups.length;
    if (duplicateOf !== undefined) result.duplicateOf = String(duplicateOf);
    return result;
  }

  ingest(request: IngestRequest): Promise<IngestResult> {
    return this.guard('ingest', () => this.ingests.push(request));
  }

  lease(instanceId: string, limit: number, owner: string, leaseMs: number): Promise<LeasedJob[]> {
    return this.guard('lease', () =>
      this.db.transaction(() => {
        const now = this.now();
        const rows = this.stmts.leaseSelect.all(instanceId, now, limit);
        const leaseUntil = now + leaseMs;
        const out: LeasedJob[] = rows.map((row) => {
          this.stmts.leaseUpdate.run(owner, leaseUntil, now, row.id);
          return {
            ...toJob({ ...row, attempts: row.attempts + 1, state: 'running' }),
            resource: row.resource,
            action: row.action,
            source: row.source,
            body: row.body,
            leaseOwner: owner,
            leaseUntil,
          };
        });
        this.counts.pending -= out.length;
        this.counts.running += out.length;
        return out;
      })(),
    );
  }

  private settleOne(job: LeasedJob, attempt: AttemptInput, next: SettleNext, now: number): boolean {
    const error = attempt.error ? JSON.stringify(attempt.error) : null;
    const info = this.stmts.settle.run(
      next.state,
      next.state === 'pending' ? next.runAt : job.runAt,
      now,
      error,
      Number(job.id),
      job.leaseOwner,
      job.leaseUntil,
    );
    // A lease lost to another worker (expired and re-leased) is not ours to
    // settle; the attempt is still recorded for the delivery log.
    this.stmts.attemptInsert.run(...attemptValues(job, attempt, error));
    return info.changes > 0;
  }

  settle(job: LeasedJob, attempt: AttemptInput, next: SettleNext): Promise<void> {
    return this.guard('settle', () =>
      this.retryGuarded(job.leaseUntil, () => this.settles.push({ job, attempt, next })),
    );
  }

  /**
   * Run a lease-guarded write again while it fails transiently, until it
   * succeeds or the lease runs out: otherwise the job stays `running` until
   * its lease expires and is then delivered a second time. A failed SQLite
   * transaction wrote nothing, so every try is a first try.
   */
  private retryGuarded<T>(leaseUntil: number, fn: () => Promise<T>): Promise<T> {
    return retryTransient(fn, {
      transient: isTransient,
      until: leaseDeadline(leaseUntil, this.now()),
      stopped: () => this.closed !== undefined,
    });
  }

  releaseLeases(options: {
    owner?: string;
    expiredOnly?: boolean;
    uncount?: boolean;
  }): Promise<number> {
    return this.guard('releaseLeases', () =>
      this.db.transaction(() => {
        const now = this.now();
        let dead = 0;
        if (!options.owner) {
          const crash = JSON.stringify(CRASH_ERROR);
          dead = (
            options.expiredOnly
              ? this.stmts.exhaustExpired.run(now, crash, now)
              : this.stmts.exhaustAll.run(now, crash)
          ).changes;
        }
        const info = options.expiredOnly
          ? this.stmts.releaseExpired.run(now, now)
          : options.owner
            ? this.stmts.releaseOwner.run(now, options.uncount ? 1 : 0, options.owner)
            : this.stmts.releaseAll.run(now);
        this.counts.running -= info.changes + dead;
        this.counts.pending += info.changes;
        this.counts.dead += dead;
        return info.changes;
      })(),
    );
  }

  nextRunAt(instanceId: string): Promise<number | undefined> {
    return this.guard('nextRunAt', () => this.stmts.nextRunAt.get(instanceId)?.run_at);
  }

  getWebhook(id: string): Promise<(WebhookRecord & { body: Buffer }) | undefined> {
    return this.guard('getWebhook', () => {
      const r = this.stmts.getWebhook.get(Number(id));
      if (!r) return undefined;
      const rec: WebhookRecord & { body: Buffer } = {
        id: String(r.id),
        source: r.source as WebhookSource,
        resource: r.resource as string,
        action: r.action as string,
        dedupKey: r.dedup_key as string,
        status: r.status as WebhookStatus,
        receivedAt: r.received_at as number,
        body: r.body as Buffer,
      };
      if (r.request_id) rec.requestId = r.request_id as string;
      if (r.detail) rec.detail = r.detail as string;
      if (r.duplicate_of !== null && r.duplicate_of !== undefined) {
        rec.duplicateOf = String(r.duplicate_of);
      }
      return rec;
    });
  }

  private where(filter: JobFilter): { sql: string; args: unknown[] } {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (cond: string, value: unknown): void => {
      where.push(cond);
      args.push(value);
    };
    if (filter.state) add('state = ?', filter.state);
    if (filter.instanceId) add('instance_id = ?', filter.instanceId);
    if (filter.project) add('project = ?', filter.project);
    if (filter.errorCode) add("json_extract(last_error, '$.code') = ?", filter.errorCode);
    if (filter.since !== undefined) add('created_at >= ?', filter.since);
    if (filter.until !== undefined) add('created_at < ?', filter.until);
    return { sql: where.length ? 'WHERE ' + where.join(' AND ') : '', args };
  }

  listJobs(filter: JobFilter = {}): Promise<JobRecord[]> {
    return this.guard('listJobs', () => {
      const { sql, args } = this.where(filter);
      args.push(Math.min(Math.max(filter.limit ?? 100, 1), 1000));
      return (
        this.db
          .prepare(`SELECT * FROM jobs ${sql} ORDER BY id DESC LIMIT ?`)
          .all(...args) as JobRow[]
      ).map(toJob);
    });
  }

  getJob(id: string): Promise<JobRecord | undefined> {
    return this.guard('getJob', () => {
      const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(Number(id)) as
        JobRow | undefined;
      return row ? toJob(row) : undefined;
    });
  }

  replay(selection: { ids?: string[]; filter?: JobFilter }): Promise<string[]> {
    return this.guard('replay', () =>
      this.db.transaction(() => {
        const now = this.now();
        let rows: Array<{ id: number; state: JobState }>;
        if (selection.ids) {
          const get = this.db.prepare<[number], { id: number; state: JobState }>(
            'SELECT id, state FROM jobs WHERE id = ?',
          );
          rows = selection.ids.flatMap((id) => get.all(Number(id)));
        } else {
          const filter = { state: 'dead' as JobState, ...selection.filter };
          const { sql, args } = this.where(filter);
          rows = this.db
            .prepare(`SELECT id, state FROM jobs ${sql} ORDER BY id LIMIT 10000`)
            .all(...args) as Array<{ id: number; state: JobState }>;
        }
        const update = this.db.prepare(
          "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?, updated_at = ?, last_error = NULL, " +
            'replays = replays + 1, lease_owner = NULL, lease_until = NULL WHERE id = ?',
        );
        const done: string[] = [];
        for (const row of rows) {
          // Pending and running deliveries are already on their way.
          if (row.state === 'pending' || row.state === 'running') continue;
          update.run(now, now, row.id);
          this.counts[row.state]--;
          this.counts.pending++;
          done.push(String(row.id));
        }
        return done;
      })(),
    );
  }

  listAttempts(jobId: string): Promise<AttemptRecord[]> {
    return this.guard('listAttempts', () =>
      this.stmts.attempts.all(Number(jobId)).map((r) => {
        const rec: AttemptRecord = {
          id: r.id as number,
          jobId: String(r.job_id),
          attempt: r.attempt as number,
          startedAt: r.started_at as number,
          finishedAt: r.finished_at as number,
          durationMs: (r.finished_at as number) - (r.started_at as number),
          outcome: r.outcome as AttemptRecord['outcome'],
          chain: r.chain as number,
        };
        if (r.error) rec.error = JSON.parse(r.error as string) as SerializedError;
        return rec;
      }),
    );
  }

  countJobsByState(): Promise<Record<JobState, number>> {
    return this.guard('countJobsByState', () => ({ ...this.counts }));
  }

  kvGet(namespace: string, key: string): Promise<unknown> {
    return this.guard('kvGet', () => {
      const row = this.stmts.kvGet.get(namespace, key, this.now());
      return row ? (JSON.parse(row.value) as unknown) : undefined;
    });
  }

  kvSet(namespace: string, key: string, value: unknown, ttlSeconds?: number): Promise<void> {
    return this.guard('kvSet', () => {
      const expires = ttlSeconds ? this.now() + ttlSeconds * 1000 : null;
      this.stmts.kvSet.run(namespace, key, JSON.stringify(value ?? null), expires);
    });
  }

  kvSetIfAbsent(
    namespace: string,
    key: string,
    value: unknown,
    ttlSeconds?: number,
  ): Promise<boolean> {
    return this.guard('kvSetIfAbsent', () =>
      this.db.transaction(() => {
        const now = this.now();
        this.stmts.kvDeleteExpired.run(namespace, key, now);
        const expires = ttlSeconds ? now + ttlSeconds * 1000 : null;
        return (
          this.stmts.kvInsertIgnore.run(namespace, key, JSON.stringify(value ?? null), expires)
            .changes > 0
        );
      })(),
    );
  }

  kvDelete(namespace: string, key: string): Promise<void> {
    return this.guard('kvDelete', () => {
      this.stmts.kvDelete.run(namespace, key);
    });
  }

  settleMany(items: readonly SettleItem[]): Promise<number> {
    if (items.length === 0) return this.settleManyOnce(items);
    return this.retryGuarded(Math.min(...items.map((item) => item.job.leaseUntil)), () =>
      this.settleManyOnce(items),
    );
  }

  private settleManyOnce(items: readonly SettleItem[]): Promise<number> {
    return this.guard('settleMany', () => {
      const moved = this.db.transaction(() => {
        const now = this.now();
        return items.map((item) =>
          item.attempt
            ? this.settleOne(item.job, item.attempt, item.next, now)
            : this.stmts.handBack.run(
                item.next.runAt,
                now,
                Number(item.job.id),
                item.job.leaseOwner,
                item.job.leaseUntil,
              ).changes > 0,
        );
      })();
      // Only after the commit: a failed transaction changes no count.
      let settled = 0;
      moved.forEach((ok, i) => {
        if (!ok) return;
        settled++;
        this.counts.running--;
        this.counts[items[i]!.next.state]++;
      });
      return settled;
    });
  }

  dueGroups(now: number, limit: number): Promise<GroupRecord[]> {
    return this.guard('dueGroups', () =>
      this.stmts.dueGroups.all(now, limit).map((r) => toGroup(r)),
    );
  }

  getGroup(routeName: string, groupKey: string): Promise<GroupRecord | undefined> {
    return this.guard('getGroup', () => {
      const row = this.stmts.getGroup.get(routeName, groupKey);
      return row ? toGroup(row) : undefined;
    });
  }

  listGroups(options: { routeName?: string; limit?: number } = {}): Promise<GroupRecord[]> {
    return this.guard('listGroups', () =>
      this.stmts.listGroups
        .all(options.routeName ?? null, options.routeName ?? null, options.limit ?? 100)
        .map((r) => toGroup(r)),
    );
  }

  flushGroup(flush: GroupFlush): Promise<{ applied: boolean; jobIds: string[] }> {
    return this.guard('flushGroup', () => {
      let created = 0;
      const out = this.db.transaction(() => {
        const now = this.now();
        const params = {
          route: flush.routeName,
          key: flush.groupKey,
          version: flush.version,
          flushed: flush.flushed,
          seenStatus: flush.seenStatus,
        };
        let applied = false;
        if (flush.close) applied = this.stmts.groupClose.run(params).changes > 0;
        if (!applied) {
          applied =
            this.stmts.groupFlush.run({
              ...params,
              now,
              next: flush.nextFlushAt,
              sent: flush.sent ? 1 : 0,
              suppressed: flush.suppressed ? 1 : 0,
            }).changes > 0;
        }
        if (!applied || !flush.digest) return { applied, jobIds: [] };
        const r = this.ingestOne(
          { webhook: flush.digest.webhook, jobs: flush.digest.jobs, dedupWindowMs: 0 },
          now,
        );
        created = r.jobIds.length;
        return { applied, jobIds: r.jobIds };
      })();
      this.counts.pending += created;
      return out;
    });
  }

  rateAcquire(
    key: string,
    limit: number,
    windowMs: number,
  ): Promise<{ ok: true } | { ok: false; retryAt: number }> {
    return this.guard('rateAcquire', () =>
      this.db.transaction(() => {
        const now = this.now();
        const row = this.stmts.kvGet.get(RATE_NAMESPACE, key, now);
        const times = row ? (JSON.parse(row.value) as number[]) : [];
        const r = slidingWindow(times, now, limit, windowMs);
        if (!r.ok) return { ok: false as const, retryAt: r.retryAt };
        this.stmts.kvSet.run(RATE_NAMESPACE, key, JSON.stringify(r.times), now + windowMs);
        return { ok: true as const };
      })(),
    );
  }

  kvList(
    namespace: string,
    options: { prefix?: string; limit?: number } = {},
  ): Promise<Array<{ key: string; value: unknown }>> {
    return this.guard('kvList', () => {
      const prefix = options.prefix ?? '';
      // A key range instead of LIKE: uses the primary key, no escaping.
      return this.stmts.kvList
        .all(namespace, prefix, `${prefix}\uffff`, this.now(), options.limit ?? 10_000)
        .map((r) => ({ key: r.key, value: JSON.parse(r.value) as unknown }));
    });
  }

  rateHit(key: string, windowSeconds: number): Promise<number> {
    return this.guard('rateHit', () => {
      const windowMs = windowSeconds * 1000;
      const start = Math.floor(this.now() / windowMs) * windowMs;
      return this.stmts.rateHit.get(key, start)?.n ?? 1;
    });
  }

  /** Drop expired de-duplication keys and rate windows; called periodically. */
  purge(): Promise<void> {
    return this.guard('purge', () => {
      const now = this.now();
      this.stmts.dedupPurge.run(now);
      this.stmts.kvPurge.run(now);
      this.stmts.ratePurge.run(now - 24 * 3600 * 1000);
    });
  }

  checkWritable(): Promise<void> {
    return this.guard('checkWritable', () => {
      this.stmts.writable.run(String(this.now()));
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = (async () => {
        // Whatever was handed to the store before close is committed (or
        // refused) before the file closes: callers are waiting on it.
        this.ingests.flush();
        this.settles.flush();
        const worker = this.checkpointer;
        if (worker) {
          // Held open until the worker has closed its connection.
          worker.ref();
          let timer: NodeJS.Timeout | undefined;
          const exited = new Promise((resolve) => worker.once('exit', resolve));
          worker.postMessage('close');
          await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 2000)))]);
          clearTimeout(timer);
        }
        try {
          if (this.db.open) this.db.close();
        } finally {
          if (this.lockFile) rmSync(this.lockFile, { force: true });
        }
      })();
    }
    return this.closed;
  }
}
