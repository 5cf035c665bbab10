import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError, type SerializedError } from '@plugboard/sdk';
import {
  JOB_STATES,
  type AttemptInput,
  type AttemptRecord,
  type IngestRequest,
  type IngestResult,
  type JobFilter,
  type JobRecord,
  type JobState,
  type LeasedJob,
  type Store,
  type WebhookRecord,
  type WebhookSource,
  type WebhookStatus,
} from './types';

export interface SqliteStoreOptions {
  /** Directory holding `plugboard.db` (created if missing). `:memory:` for tests. */
  dataDir: string;
  /**
   * `normal` (default): WAL with synchronous=NORMAL, durable across a killed
   * process (what the relay promises); the last commits can be lost only if
   * the machine itself loses power. `full`: fsync on every commit.
   */
  synchronous?: 'normal' | 'full';
  /** Clock, for tests. */
  now?: () => number;
}

const SCHEMA_VERSION = 1;

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
  CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT,
    dedup_key TEXT NOT NULL,
    status TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    detail TEXT,
    duplicate_of TEXT,
    body BLOB NOT NULL
  );
  CREATE INDEX webhooks_received ON webhooks(received_at);
  CREATE TABLE dedup (
    key TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
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
  CREATE TABLE job_counts (
    state TEXT PRIMARY KEY,
    n INTEGER NOT NULL
  );
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
  );
  CREATE TABLE rate (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
  );
  `,
];

interface JobRow {
  id: number;
  webhook_id: string;
  route_name: string;
  instance_id: string;
  plugin_slug: string;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  idempotency_key: string;
  created_at: number;
  updated_at: number;
  last_error: string | null;
}

function toJob(row: JobRow): JobRecord {
  const job: JobRecord = {
    id: String(row.id),
    webhookId: row.webhook_id,
    routeName: row.route_name,
    instanceId: row.instance_id,
    pluginSlug: row.plugin_slug,
    state: row.state,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAt: row.run_at,
    idempotencyKey: row.idempotency_key,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  if (row.last_error) job.lastError = JSON.parse(row.last_error) as SerializedError;
  return job;
}

/** The embedded store: one SQLite file in WAL mode. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private closed: Promise<void> | undefined;
  private readonly stmts;
  private readonly lockFile: string | undefined;

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
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('foreign_keys = OFF');
      this.migrate();
    } catch (err) {
      throw new StoreError(
        'PB_STORE_UNAVAILABLE',
        `cannot open the SQLite store at ${file}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const db = this.db;
    this.stmts = {
      dedupGet: db.prepare<[string, number], { webhook_id: string }>(
        'SELECT webhook_id FROM dedup WHERE key = ? AND expires_at > ?',
      ),
      dedupPut: db.prepare(
        'INSERT INTO dedup (key, webhook_id, expires_at) VALUES (?, ?, ?) ' +
          'ON CONFLICT(key) DO UPDATE SET webhook_id = excluded.webhook_id, expires_at = excluded.expires_at',
      ),
      dedupPurge: db.prepare('DELETE FROM dedup WHERE expires_at <= ?'),
      webhookInsert: db.prepare(
        'INSERT INTO webhooks (id, source, resource, action, request_id, dedup_key, status, received_at, detail, duplicate_of, body) ' +
          'VALUES (@id, @source, @resource, @action, @requestId, @dedupKey, @status, @receivedAt, @detail, @duplicateOf, @body)',
      ),
      jobInsert: db.prepare(
        'INSERT INTO jobs (webhook_id, route_name, instance_id, plugin_slug, state, max_attempts, run_at, idempotency_key, created_at, updated_at) ' +
          "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
      ),
      countAdd: db.prepare(
        'INSERT INTO job_counts (state, n) VALUES (?, ?) ON CONFLICT(state) DO UPDATE SET n = n + excluded.n',
      ),
      leaseSelect: db.prepare<[string, number, number], JobRow>(
        "SELECT * FROM jobs WHERE instance_id = ? AND state = 'pending' AND run_at <= ? ORDER BY run_at, id LIMIT ?",
      ),
      leaseUpdate: db.prepare(
        "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'pending'",
      ),
      webhookBody: db.prepare<
        [string],
        { resource: string; action: string; source: WebhookSource; body: Buffer }
      >('SELECT resource, action, source, body FROM webhooks WHERE id = ?'),
      settle: db.prepare(
        'UPDATE jobs SET state = ?, run_at = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?, last_error = ? ' +
          "WHERE id = ? AND state = 'running' AND lease_owner = ?",
      ),
      attemptInsert: db.prepare(
        'INSERT INTO attempts (job_id, attempt, started_at, finished_at, outcome, error) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      releaseAll: db.prepare(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE state = 'running'",
      ),
      releaseOwner: db.prepare(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ?, " +
          "attempts = CASE WHEN ? AND attempts > 0 THEN attempts - 1 ELSE attempts END WHERE state = 'running' AND lease_owner = ?",
      ),
      releaseExpired: db.prepare(
        "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE state = 'running' AND lease_until <= ?",
      ),
      nextRunAt: db.prepare<[string], { run_at: number }>(
        "SELECT run_at FROM jobs WHERE instance_id = ? AND state = 'pending' ORDER BY run_at, id LIMIT 1",
      ),
      getWebhook: db.prepare<[string], Record<string, unknown>>(
        'SELECT * FROM webhooks WHERE id = ?',
      ),
      attempts: db.prepare<[number], Record<string, unknown>>(
        'SELECT * FROM attempts WHERE job_id = ? ORDER BY attempt, id',
      ),
      counts: db.prepare<[], { state: JobState; n: number }>('SELECT state, n FROM job_counts'),
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
      kvInsertIgnore: db.prepare(
        'INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(ns, key) DO NOTHING',
      ),
      kvDelete: db.prepare('DELETE FROM kv WHERE ns = ? AND key = ?'),
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

  private guard<T>(what: string, fn: () => T): Promise<T> {
    if (this.closed) {
      return Promise.reject(new StoreError('PB_STORE_CLOSED', `store is closed (${what})`));
    }
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(
        new StoreError('PB_STORE_UNAVAILABLE', `store ${what} failed: ${(err as Error).message}`, {
          cause: err,
        }),
      );
    }
  }

  private readonly ingestTx = (req: IngestRequest, now: number): IngestResult => {
    const id = randomUUID();
    const w = req.webhook;
    let status: WebhookStatus = req.unsupported
      ? 'unsupported'
      : req.jobs.length === 0
        ? 'ignored'
        : 'accepted';
    let duplicateOf: string | undefined;
    if (status === 'accepted' && w.dedupKey) {
      const prior = this.stmts.dedupGet.get(w.dedupKey, now);
      if (prior) {
        status = 'duplicate';
        duplicateOf = prior.webhook_id;
      } else {
        this.stmts.dedupPut.run(w.dedupKey, id, now + req.dedupWindowMs);
      }
    }
    this.stmts.webhookInsert.run({
      id,
      source: w.source,
      resource: w.resource,
      action: w.action,
      requestId: w.requestId ?? null,
      dedupKey: w.dedupKey,
      status,
      receivedAt: w.receivedAt,
      detail: w.detail ?? null,
      duplicateOf: duplicateOf ?? null,
      body: w.body,
    });
    const jobIds: string[] = [];
    if (status === 'accepted') {
      for (const job of req.jobs) {
        const key = `pbd_${randomUUID().replace(/-/g, '')}`;
        const info = this.stmts.jobInsert.run(
          id,
          job.routeName,
          job.instanceId,
          job.pluginSlug,
          job.maxAttempts,
          now,
          key,
          now,
          now,
        );
        jobIds.push(String(info.lastInsertRowid));
      }
      this.stmts.countAdd.run('pending', req.jobs.length);
    }
    const result: IngestResult = { webhookId: id, status, jobIds };
    if (duplicateOf) result.duplicateOf = duplicateOf;
    return result;
  };

  ingest(request: IngestRequest): Promise<IngestResult> {
    return this.guard('ingest', () => this.db.transaction(this.ingestTx)(request, this.now()));
  }

  lease(instanceId: string, limit: number, owner: string, leaseMs: number): Promise<LeasedJob[]> {
    return this.guard('lease', () =>
      this.db.transaction(() => {
        const now = this.now();
        const rows = this.stmts.leaseSelect.all(instanceId, now, limit);
        const out: LeasedJob[] = [];
        for (const row of rows) {
          const leaseUntil = now + leaseMs;
          this.stmts.leaseUpdate.run(owner, leaseUntil, now, row.id);
          const hook = this.stmts.webhookBody.get(row.webhook_id);
          if (!hook) continue;
          out.push({
            ...toJob({ ...row, attempts: row.attempts + 1, state: 'running' }),
            resource: hook.resource,
            action: hook.action,
            source: hook.source,
            body: hook.body,
            leaseOwner: owner,
            leaseUntil,
          });
        }
        if (out.length > 0) {
          this.stmts.countAdd.run('pending', -out.length);
          this.stmts.countAdd.run('running', out.length);
        }
        return out;
      })(),
    );
  }

  settle(
    job: LeasedJob,
    attempt: AttemptInput,
    next: { state: 'succeeded' | 'skipped' | 'dead' } | { state: 'pending'; runAt: number },
  ): Promise<void> {
    return this.guard('settle', () =>
      this.db.transaction(() => {
        const now = this.now();
        const runAt = next.state === 'pending' ? next.runAt : job.runAt;
        const info = this.stmts.settle.run(
          next.state,
          runAt,
          now,
          attempt.error ? JSON.stringify(attempt.error) : null,
          Number(job.id),
          job.leaseOwner,
        );
        // A lease lost to another worker (expired and re-leased) is not ours
        // to settle; the attempt is still recorded for the delivery log.
        this.stmts.attemptInsert.run(
          Number(job.id),
          attempt.attempt,
          attempt.startedAt,
          attempt.finishedAt,
          attempt.outcome,
          attempt.error ? JSON.stringify(attempt.error) : null,
        );
        if (info.changes > 0) {
          this.stmts.countAdd.run('running', -1);
          this.stmts.countAdd.run(next.state, 1);
        }
      })(),
    );
  }

  releaseLeases(options: {
    owner?: string;
    expiredOnly?: boolean;
    uncount?: boolean;
  }): Promise<number> {
    return this.guard('releaseLeases', () =>
      this.db.transaction(() => {
        const now = this.now();
        const info = options.expiredOnly
          ? this.stmts.releaseExpired.run(now, now)
          : options.owner
            ? this.stmts.releaseOwner.run(now, options.uncount ? 1 : 0, options.owner)
            : this.stmts.releaseAll.run(now);
        if (info.changes > 0) {
          this.stmts.countAdd.run('running', -info.changes);
          this.stmts.countAdd.run('pending', info.changes);
        }
        return info.changes;
      })(),
    );
  }

  nextRunAt(instanceId: string): Promise<number | undefined> {
    return this.guard('nextRunAt', () => this.stmts.nextRunAt.get(instanceId)?.run_at);
  }

  getWebhook(id: string): Promise<(WebhookRecord & { body: Buffer }) | undefined> {
    return this.guard('getWebhook', () => {
      const r = this.stmts.getWebhook.get(id);
      if (!r) return undefined;
      const rec: WebhookRecord & { body: Buffer } = {
        id: r.id as string,
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
      if (r.duplicate_of) rec.duplicateOf = r.duplicate_of as string;
      return rec;
    });
  }

  listJobs(filter: JobFilter = {}): Promise<JobRecord[]> {
    return this.guard('listJobs', () => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (filter.state) {
        where.push('state = ?');
        args.push(filter.state);
      }
      if (filter.instanceId) {
        where.push('instance_id = ?');
        args.push(filter.instanceId);
      }
      const sql = `SELECT * FROM jobs ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
      args.push(Math.min(Math.max(filter.limit ?? 100, 1), 1000));
      return (this.db.prepare(sql).all(...args) as JobRow[]).map(toJob);
    });
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
        };
        if (r.error) rec.error = JSON.parse(r.error as string) as SerializedError;
        return rec;
      }),
    );
  }

  countJobsByState(): Promise<Record<JobState, number>> {
    return this.guard('countJobsByState', () => {
      const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
      for (const row of this.stmts.counts.all()) out[row.state] = row.n;
      return out;
    });
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
      this.closed = Promise.resolve().then(() => {
        try {
          if (this.db.open) this.db.close();
        } finally {
          if (this.lockFile) rmSync(this.lockFile, { force: true });
        }
      });
    }
    return this.closed;
  }
}
