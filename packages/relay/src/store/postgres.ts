import { randomUUID } from 'node:crypto';
import { Pool, types as pgTypes, type PoolClient } from 'pg';
import { StoreError, type SerializedError } from '@plugboard/sdk';
import {
  JOB_STATES,
  type AttemptInput,
  type AttemptRecord,
  type GroupFlush,
  type GroupHit,
  type GroupRecord,
  type IngestRequest,
  type IngestResult,
  type JobFilter,
  type JobRecord,
  type JobState,
  type LeasedJob,
  type NewJob,
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
import { errorCodes, errorMessages, leaseDeadline, retryTransient } from './retry';

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:5432/db` */
  connectionString: string;
  /** Schema holding the relay's tables (created if missing). Default `plugboard`. */
  schema?: string;
  /** Pool size. Default 10. */
  maxConnections?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const INT8_OID = 20;
// Millisecond timestamps and row ids fit in a double; the driver's default
// (strings for int8) would leak into every record.
const typeParser = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (v: string) => Number(v)
      : (pgTypes.getTypeParser as (o: number, f?: 'text' | 'binary') => unknown)(oid, format),
};

function migrations(s: string): string[] {
  return [
    `
    CREATE TABLE ${s}.webhooks (
      id BIGSERIAL PRIMARY KEY,
      source TEXT NOT NULL,
      resource TEXT NOT NULL,
      action TEXT NOT NULL,
      request_id TEXT,
      dedup_key TEXT NOT NULL,
      status TEXT NOT NULL,
      received_at BIGINT NOT NULL,
      detail TEXT,
      duplicate_of BIGINT,
      body BYTEA NOT NULL
    );
    CREATE TABLE ${s}.dedup (
      key TEXT PRIMARY KEY,
      webhook_id BIGINT NOT NULL,
      expires_at BIGINT NOT NULL
    );
    CREATE TABLE ${s}.jobs (
      id BIGSERIAL PRIMARY KEY,
      webhook_id BIGINT NOT NULL,
      route_name TEXT NOT NULL,
      instance_id TEXT NOT NULL,
      plugin_slug TEXT NOT NULL,
      state TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      max_attempts INTEGER NOT NULL,
      run_at BIGINT NOT NULL,
      lease_owner TEXT,
      lease_until BIGINT,
      idempotency_key TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      last_error TEXT
    );
    CREATE INDEX jobs_pending ON ${s}.jobs (instance_id, run_at, id) WHERE state = 'pending';
    CREATE INDEX jobs_running ON ${s}.jobs (lease_until) WHERE state = 'running';
    CREATE INDEX jobs_webhook ON ${s}.jobs (webhook_id);
    CREATE TABLE ${s}.attempts (
      id BIGSERIAL PRIMARY KEY,
      job_id BIGINT NOT NULL,
      attempt INTEGER NOT NULL,
      started_at BIGINT NOT NULL,
      finished_at BIGINT NOT NULL,
      outcome TEXT NOT NULL,
      error TEXT
    );
    CREATE INDEX attempts_job ON ${s}.attempts (job_id);
    CREATE TABLE ${s}.kv (
      ns TEXT NOT NULL,
      key TEXT NOT NULL,
      value TEXT NOT NULL,
      expires_at BIGINT,
      PRIMARY KEY (ns, key)
    );
    CREATE TABLE ${s}.rate (
      key TEXT NOT NULL,
      window_start BIGINT NOT NULL,
      n INTEGER NOT NULL,
      PRIMARY KEY (key, window_start)
    );
    `,
    // 2: the delivery log can be filtered by project, and replayed.
    `
    ALTER TABLE ${s}.jobs ADD COLUMN project TEXT;
    ALTER TABLE ${s}.jobs ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ${s}.attempts ADD COLUMN chain INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX jobs_dead ON ${s}.jobs (instance_id, id) WHERE state = 'dead';
    `,
    // 3: notification groups (digests).
    `
    CREATE TABLE ${s}.groups (
      route TEXT NOT NULL,
      group_key TEXT NOT NULL,
      pending INTEGER NOT NULL,
      total BIGINT NOT NULL,
      window_start BIGINT,
      first_at BIGINT NOT NULL,
      last_at BIGINT NOT NULL,
      last_webhook_id BIGINT NOT NULL,
      status TEXT NOT NULL,
      status_changed BOOLEAN NOT NULL DEFAULT false,
      next_flush_at BIGINT NOT NULL,
      last_flush_at BIGINT,
      sent INTEGER NOT NULL DEFAULT 0,
      suppressed BIGINT NOT NULL DEFAULT 0,
      project TEXT,
      version INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (route, group_key)
    );
    CREATE INDEX groups_due ON ${s}.groups (next_flush_at);
    `,
  ];
}

/** Validates a schema name before it is written into SQL. */
function schemaName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new StoreError(
      'PB_STORE_UNAVAILABLE',
      `invalid PostgreSQL schema name ${JSON.stringify(name)}: lowercase letters, digits and _`,
    );
  }
  return name;
}

/**
 * SQLSTATEs of a connection the server ended: admin_shutdown
 * (pg_terminate_backend, a pooler or operator killing sessions),
 * crash_shutdown, cannot_connect_now (starting up, in recovery). Class 08
 * (connection_exception) is checked as a class.
 */
const SERVER_ENDED = new Set(['57P01', '57P02', '57P03']);
/** Socket failures Node reports on the connection's stream. */
const SOCKET_FAILURES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
// node-postgres raises these with no code at all (lib/client.js), when a
// query is sent on, or was waiting on, a connection that died; the message
// is all there is to go by.
const DEAD_CLIENT =
  /^(Connection terminated|Client has encountered a connection error|Client was closed)/;

/**
 * Whether `err` (or its cause) says the connection failed rather than the
 * statement: another try on a fresh connection may succeed. A statement the
 * server refused (constraint, syntax, serialization) is not one of these.
 */
export function isConnectionError(err: unknown): boolean {
  const codes = errorCodes(err);
  if (codes.some((c) => c.startsWith('08') || SERVER_ENDED.has(c) || SOCKET_FAILURES.has(c))) {
    return true;
  }
  return errorMessages(err).some((m) => DEAD_CLIENT.test(m));
}

/** Tries of one ingest: a second one on a fresh connection before answering 503. */
const INGEST_TRIES = 2;
const INGEST_RETRY_WITHIN_MS = 10_000;

/**
 * The store for several replicas: PostgreSQL, with leases taken by
 * `FOR UPDATE SKIP LOCKED` so replicas never hand out the same job, and the
 * de-duplication key claimed with a conditional upsert so two replicas that
 * receive the same redelivery accept it once.
 */
export class PostgresStore implements Store {
  private readonly pool: Pool;
  private readonly s: string;
  private readonly now: () => number;
  private closed: Promise<void> | undefined;
  private ready: Promise<void> | undefined;
  /** Errors of transactions whose COMMIT was sent but not answered. */
  private readonly commitUnknown = new WeakSet<object>();

  constructor(options: PostgresStoreOptions) {
    this.s = schemaName(options.schema ?? 'plugboard');
    this.now = options.now ?? Date.now;
    this.pool = new Pool({
      connectionString: options.connectionString,
      max: options.maxConnections ?? 10,
      types: typeParser as never,
      connectionTimeoutMillis: 5000,
    });
    // An idle client losing its connection (database restart) must not
    // crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
    // A client in use also emits 'error' when its connection dies (database
    // restart, failover); its pending query rejects anyway, so the event only
    // needs a listener to keep it from crashing the process.
    this.pool.on('connect', (client) => client.on('error', () => undefined));
  }

  /** Create the schema and tables (once; safe when replicas start together). */
  migrate(): Promise<void> {
    if (!this.ready) {
      this.ready = this.tx(async (c) => {
        // One replica migrates at a time; the others wait, then find it done.
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`plugboard:${this.s}`]);
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.s}`);
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${this.s}.migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
        );
        const { rows } = await c.query<{ v: number | null }>(
          `SELECT max(version) AS v FROM ${this.s}.migrations`,
        );
        const current = rows[0]?.v ?? 0;
        const steps = migrations(this.s);
        if (current > steps.length) {
          throw new Error(
            `schema ${this.s} was written by a newer Plugboard (version ${current}, this build knows ${steps.length})`,
          );
        }
        for (let v = current; v < steps.length; v++) {
          await c.query(steps[v]!);
          await c.query(`INSERT INTO ${this.s}.migrations (version, applied_at) VALUES ($1, $2)`, [
            v + 1,
            Date.now(),
          ]);
        }
      }, 'migrate');
      this.ready.catch(() => {
        this.ready = undefined;
      });
    }
    return this.ready;
  }

  private wrap(what: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    return new StoreError(
      'PB_STORE_UNAVAILABLE',
      `store ${what} failed: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('PB_STORE_CLOSED', `store is closed (${what})`);
    try {
      if (what !== 'migrate') await this.migrate();
      return await fn();
    } catch (err) {
      throw this.wrap(what, err);
    }
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>, what: string): Promise<T> {
    if (this.closed) throw new StoreError('PB_STORE_CLOSED', `store is closed (${what})`);
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.wrap(what, err);
    }
    let failure: unknown;
    let committing = false;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      committing = true;
      await client.query('COMMIT');
      return out;
    } catch (err) {
      failure = err;
      if (!committing) await client.query('ROLLBACK').catch(() => undefined);
      const wrapped = this.wrap(what, err);
      // Before COMMIT went out, a dead connection means the server rolled the
      // transaction back. After, it may have committed just before the
      // connection died, and the answer was lost: a retry must allow for that.
      if (committing && isConnectionError(err)) this.commitUnknown.add(wrapped);
      throw wrapped;
    } finally {
      // A connection that failed is discarded, not handed to the next caller
      // (node-postgres closes a client released with an error).
      client.release(failure instanceof Error ? failure : failure !== undefined);
    }
  }

  /**
   * Run a lease-guarded write again while its connection fails, on a fresh
   * connection each time, until it succeeds or the lease runs out (after
   * that the job may be another worker's, and the write a no-op anyway).
   * Without this a lost answer from PostgreSQL left the job `running` until
   * its lease expired, and then it was delivered a second time.
   *
   * Each try is safe because the write only touches jobs still `running`
   * under the caller's lease, and writes its attempt rows once: a try whose
   * COMMIT may have landed is retried as is (a second run changes nothing).
   */
  private retryGuarded<T>(leaseUntil: number, fn: () => Promise<T>): Promise<T> {
    return retryTransient(fn, {
      transient: isConnectionError,
      until: leaseDeadline(leaseUntil, this.now()),
      stopped: () => this.closed !== undefined,
    });
  }

  ingest(req: IngestRequest): Promise<IngestResult> {
    // The pool may hand out a connection that died while idle (terminated,
    // a failover) before the client noticed: one more try on a fresh one
    // instead of a 503 that would make Sentry redeliver.
    //
    // A retry after a COMMIT whose answer was lost may find the first try
    // committed. When the webhook creates deliveries, its content key then
    // protects them: the first try's claim is live (the window is at least a
    // second, de-duplication being configured in seconds), so the retry records
    // the webhook as a `duplicate` of it, creates no job, and the caller is told
    // `duplicate` (the jobs exist and the dispatcher's poll finds them). With
    // no key or de-duplication off nothing would stop a second set of jobs, so
    // that case answers 503 instead, as before. A webhook that creates no
    // delivery (ignored, unsupported) costs at most a second log row.
    const delivers = !req.unsupported && (req.jobs.length > 0 || (req.groups?.length ?? 0) > 0);
    const keyProtects = req.webhook.dedupKey !== '' && req.dedupWindowMs > 0;
    return retryTransient(() => this.ingestOnce(req), {
      transient: isConnectionError,
      tries: INGEST_TRIES,
      until: Date.now() + INGEST_RETRY_WITHIN_MS,
      stopped: () => this.closed !== undefined,
      beforeRetry: (err) => {
        if (delivers && !keyProtects && this.commitUnknown.has(err as object)) throw err;
        return Promise.resolve(undefined);
      },
    });
  }

  private ingestOnce(req: IngestRequest): Promise<IngestResult> {
    const s = this.s;
    return this.run('ingest', () =>
      this.tx(async (c) => {
        const now = this.now();
        const w = req.webhook;
        const groups = req.groups ?? [];
        let status: WebhookStatus = req.unsupported
          ? 'unsupported'
          : req.jobs.length === 0 && groups.length === 0
            ? 'ignored'
            : 'accepted';
        const { rows } = await c.query<{ id: number }>(
          `INSERT INTO ${s}.webhooks (source, resource, action, request_id, dedup_key, status, received_at, detail, body)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
          [
            w.source,
            w.resource,
            w.action,
            w.requestId ?? null,
            w.dedupKey,
            status,
            w.receivedAt,
            w.detail ?? null,
            w.body,
          ],
        );
        const id = rows[0]!.id;
        let duplicateOf: number | undefined;
        // A window of 0 is de-duplication off: no claim at all. (A claim with
        // a zero window would still refuse a concurrent twin: its transaction
        // read `now` before the other's claim, which then looks live.)
        if (status === 'accepted' && w.dedupKey && req.dedupWindowMs > 0) {
          // Claim the key unless a live claim exists; a concurrent claim by
          // another replica blocks here until it commits, then loses.
          const claim = await c.query(
            `INSERT INTO ${s}.dedup (key, webhook_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET webhook_id = excluded.webhook_id, expires_at = excluded.expires_at
             WHERE ${s}.dedup.expires_at <= $4
             RETURNING key`,
            [w.dedupKey, id, now + req.dedupWindowMs, now],
          );
          if (claim.rowCount === 0) {
            const prior = await c.query<{ webhook_id: number }>(
              `SELECT webhook_id FROM ${s}.dedup WHERE key = $1`,
              [w.dedupKey],
            );
            status = 'duplicate';
            duplicateOf = prior.rows[0]?.webhook_id;
            await c.query(`UPDATE ${s}.webhooks SET status = $1, duplicate_of = $2 WHERE id = $3`, [
              status,
              duplicateOf ?? null,
              id,
            ]);
          }
        }
        const jobIds = status === 'accepted' ? await this.insertJobs(c, id, req.jobs, now) : [];
        if (status === 'accepted') {
          for (const g of groups) await this.groupHit(c, g, id, now);
        }
        const result: IngestResult = { webhookId: String(id), status, jobIds };
        if (duplicateOf !== undefined) result.duplicateOf = String(duplicateOf);
        if (status === 'accepted' && groups.length > 0) result.grouped = groups.length;
        return result;
      }, 'ingest'),
    );
  }

  private async insertJobs(
    c: PoolClient,
    webhookId: number,
    jobs: readonly NewJob[],
    now: number,
  ): Promise<string[]> {
    if (jobs.length === 0) return [];
    const values: unknown[] = [];
    const tuples = jobs.map((job, i) => {
      const b = i * 8;
      values.push(
        job.routeName,
        job.instanceId,
        job.pluginSlug,
        job.maxAttempts,
        `pbd_${randomUUID().replace(/-/g, '')}`,
        now,
        job.project ?? null,
        job.runAt ?? now,
      );
      return `($${b + 1}, $${b + 2}, $${b + 3}, 'pending', $${b + 4}, $${b + 8}, $${b + 5}, $${b + 6}, $${b + 6}, ${webhookId}, $${b + 7})`;
    });
    const ins = await c.query<{ id: number }>(
      `INSERT INTO ${this.s}.jobs (route_name, instance_id, plugin_slug, state, max_attempts, run_at, idempotency_key, created_at, updated_at, webhook_id, project)
       VALUES ${tuples.join(', ')} RETURNING id`,
      values,
    );
    return ins.rows.map((r) => String(r.id));
  }

  /** See the SQLite store's groupHit: the same rule in PostgreSQL's dialect. */
  private async groupHit(
    c: PoolClient,
    g: GroupHit,
    webhookId: number,
    now: number,
  ): Promise<void> {
    await c.query(
      `INSERT INTO ${this.s}.groups AS g (route, group_key, pending, total, window_start, first_at, last_at, last_webhook_id, status, status_changed, next_flush_at, project)
       VALUES ($1, $2, 1, 1, $3, $3, $3, $4, COALESCE($5::text, 'open'), false, $3::bigint + $6::bigint, $8)
       ON CONFLICT (route, group_key) DO UPDATE SET pending = g.pending + 1, total = g.total + 1,
         window_start = COALESCE(g.window_start, $3), last_at = $3, last_webhook_id = $4,
         status_changed = CASE WHEN $5::text IS NOT NULL AND $5::text <> g.status THEN true ELSE g.status_changed END,
         status = COALESCE($5::text, g.status),
         next_flush_at = LEAST(g.next_flush_at, GREATEST($3::bigint, COALESCE(g.last_flush_at + $7::bigint, $3::bigint + $6::bigint)))`,
      [
        g.routeName,
        g.groupKey,
        now,
        webhookId,
        g.status ?? null,
        g.waitMs,
        g.intervalMs,
        g.project ?? null,
      ],
    );
  }

  settleMany(items: readonly SettleItem[]): Promise<number> {
    if (items.length === 0) return Promise.resolve(0);
    // Idempotent like settle (the very lease, each attempt row once): a try
    // whose COMMIT may have landed is retried as is. After one that did, the
    // count is of the jobs the retry found still held (none).
    const until = Math.min(...items.map((item) => item.job.leaseUntil));
    return this.retryGuarded(until, () => this.settleManyOnce(items));
  }

  private settleManyOnce(items: readonly SettleItem[]): Promise<number> {
    const s = this.s;
    return this.run('settleMany', () =>
      this.tx(async (c) => {
        // Two statements for any number of jobs: arrays unnested server-side.
        const ids: number[] = [];
        const owners: string[] = [];
        const leaseUntils: number[] = [];
        const states: string[] = [];
        const runAts: number[] = [];
        const errors: Array<string | null> = [];
        const uncount: boolean[] = [];
        const tried: SettleItem[] = [];
        for (const item of items) {
          ids.push(Number(item.job.id));
          owners.push(item.job.leaseOwner);
          leaseUntils.push(item.job.leaseUntil);
          states.push(item.next.state);
          runAts.push(item.next.state === 'pending' ? item.next.runAt : item.job.runAt);
          errors.push(item.attempt?.error ? JSON.stringify(item.attempt.error) : null);
          uncount.push(!item.attempt);
          if (item.attempt) tried.push(item);
        }
        const res = await c.query(
          `UPDATE ${s}.jobs j SET state = i.state, run_at = i.run_at, lease_owner = NULL, lease_until = NULL, updated_at = $7,
             last_error = CASE WHEN i.uncount THEN j.last_error ELSE i.error END,
             attempts = CASE WHEN i.uncount AND j.attempts > 0 THEN j.attempts - 1 ELSE j.attempts END
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::boolean[], $8::bigint[])
             AS i(id, owner, state, run_at, error, uncount, lease_until)
           WHERE j.id = i.id AND j.state = 'running' AND j.lease_owner = i.owner AND j.lease_until = i.lease_until`,
          [ids, owners, states, runAts, errors, uncount, this.now(), leaseUntils],
        );
        if (tried.length > 0) {
          // Recorded even where the lease was lost: the delivery log shows every attempt.
          await c.query(
            `INSERT INTO ${s}.attempts (job_id, attempt, started_at, finished_at, outcome, error, chain)
             SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::int[])
               AS a(job_id, attempt, started_at, finished_at, outcome, error, chain)
             WHERE NOT EXISTS (SELECT 1 FROM ${s}.attempts x WHERE x.job_id = a.job_id
                                 AND x.chain = a.chain AND x.attempt = a.attempt AND x.started_at = a.started_at)`,
            [
              tried.map((t) => Number(t.job.id)),
              tried.map((t) => t.attempt!.attempt),
              tried.map((t) => t.attempt!.startedAt),
              tried.map((t) => t.attempt!.finishedAt),
              tried.map((t) => t.attempt!.outcome),
              tried.map((t) => (t.attempt!.error ? JSON.stringify(t.attempt!.error) : null)),
              tried.map((t) => t.job.replays),
            ],
          );
        }
        return res.rowCount ?? 0;
      }, 'settleMany'),
    );
  }

  dueGroups(now: number, limit: number): Promise<GroupRecord[]> {
    return this.run('dueGroups', async () => {
      const { rows } = await this.pool.query<GroupRow>(
        `SELECT * FROM ${this.s}.groups WHERE next_flush_at <= $1 ORDER BY next_flush_at LIMIT $2`,
        [now, limit],
      );
      return rows.map((r) => toGroup(r));
    });
  }

  getGroup(routeName: string, groupKey: string): Promise<GroupRecord | undefined> {
    return this.run('getGroup', async () => {
      const { rows } = await this.pool.query<GroupRow>(
        `SELECT * FROM ${this.s}.groups WHERE route = $1 AND group_key = $2`,
        [routeName, groupKey],
      );
      return rows[0] ? toGroup(rows[0]) : undefined;
    });
  }

  listGroups(options: { routeName?: string; limit?: number } = {}): Promise<GroupRecord[]> {
    return this.run('listGroups', async () => {
      const { rows } = await this.pool.query<GroupRow>(
        `SELECT * FROM ${this.s}.groups WHERE ($1::text IS NULL OR route = $1) ORDER BY last_at DESC LIMIT $2`,
        [options.routeName ?? null, options.limit ?? 100],
      );
      return rows.map((r) => toGroup(r));
    });
  }

  flushGroup(flush: GroupFlush): Promise<{ applied: boolean; jobIds: string[] }> {
    const s = this.s;
    return this.run('flushGroup', () =>
      this.tx(async (c) => {
        const now = this.now();
        const key = [
          flush.routeName,
          flush.groupKey,
          flush.version,
          flush.flushed,
          flush.seenStatus,
        ];
        let applied = false;
        if (flush.close) {
          // Closed only if nothing arrived since the decision; else kept open.
          const del = await c.query(
            `DELETE FROM ${s}.groups WHERE route = $1 AND group_key = $2 AND version = $3
             AND pending = $4 AND status = $5`,
            key,
          );
          applied = (del.rowCount ?? 0) > 0;
        }
        if (!applied) {
          const upd = await c.query(
            `UPDATE ${s}.groups SET version = version + 1, pending = pending - $4,
               window_start = CASE WHEN $4 = 0 THEN window_start WHEN pending - $4 > 0 THEN $6::bigint ELSE NULL END,
               status_changed = CASE WHEN status <> $5 THEN true WHEN $8 OR $9 THEN false ELSE status_changed END,
               next_flush_at = $7, last_flush_at = CASE WHEN $8 THEN $6::bigint ELSE last_flush_at END,
               sent = sent + CASE WHEN $8 THEN 1 ELSE 0 END,
               suppressed = suppressed + CASE WHEN $9 THEN $4 ELSE 0 END
             WHERE route = $1 AND group_key = $2 AND version = $3`,
            [...key, now, flush.nextFlushAt, flush.sent, flush.suppressed === true],
          );
          applied = (upd.rowCount ?? 0) > 0;
        }
        if (!applied || !flush.digest) return { applied, jobIds: [] };
        const w = flush.digest.webhook;
        const { rows } = await c.query<{ id: number }>(
          `INSERT INTO ${s}.webhooks (source, resource, action, request_id, dedup_key, status, received_at, detail, body)
           VALUES ($1, $2, $3, NULL, $4, 'accepted', $5, $6, $7) RETURNING id`,
          [w.source, w.resource, w.action, w.dedupKey, w.receivedAt, w.detail ?? null, w.body],
        );
        const jobIds = await this.insertJobs(c, rows[0]!.id, flush.digest.jobs, now);
        return { applied, jobIds };
      }, 'flushGroup'),
    );
  }

  rateAcquire(
    key: string,
    limit: number,
    windowMs: number,
  ): Promise<{ ok: true } | { ok: false; retryAt: number }> {
    const s = this.s;
    return this.run('rateAcquire', () =>
      this.tx(async (c) => {
        const now = this.now();
        // The row is created first so FOR UPDATE has something to lock:
        // replicas taking a slot of the same target queue up here.
        await c.query(
          `INSERT INTO ${s}.kv (ns, key, value, expires_at) VALUES ($1, $2, '[]', $3)
           ON CONFLICT (ns, key) DO NOTHING`,
          [RATE_NAMESPACE, key, now + windowMs],
        );
        const { rows } = await c.query<{ value: string; expires_at: number | null }>(
          `SELECT value, expires_at FROM ${s}.kv WHERE ns = $1 AND key = $2 FOR UPDATE`,
          [RATE_NAMESPACE, key],
        );
        const live = rows[0] && (rows[0].expires_at ?? Infinity) > now;
        const times = live ? (JSON.parse(rows[0]!.value) as number[]) : [];
        const r = slidingWindow(times, now, limit, windowMs);
        if (!r.ok) return { ok: false as const, retryAt: r.retryAt };
        await c.query(`UPDATE ${s}.kv SET value = $3, expires_at = $4 WHERE ns = $1 AND key = $2`, [
          RATE_NAMESPACE,
          key,
          JSON.stringify(r.times),
          now + windowMs,
        ]);
        return { ok: true as const };
      }, 'rateAcquire'),
    );
  }

  lease(instanceId: string, limit: number, owner: string, leaseMs: number): Promise<LeasedJob[]> {
    const s = this.s;
    return this.run('lease', async () => {
      const now = this.now();
      const leaseUntil = now + leaseMs;
      const { rows } = await this.pool.query<
        JobRow & { resource: string; action: string; source: WebhookSource; body: Buffer }
      >(
        `WITH picked AS (
           SELECT id FROM ${s}.jobs
           WHERE instance_id = $1 AND state = 'pending' AND run_at <= $2
           ORDER BY run_at, id LIMIT $3
           FOR UPDATE SKIP LOCKED
         )
         UPDATE ${s}.jobs j
            SET state = 'running', lease_owner = $4, lease_until = $5, attempts = j.attempts + 1, updated_at = $2
           FROM picked, ${s}.webhooks w
          WHERE j.id = picked.id AND w.id = j.webhook_id
        RETURNING j.*, w.resource, w.action, w.source, w.body`,
        [instanceId, now, limit, owner, leaseUntil],
      );
      rows.sort((a, b) => a.run_at - b.run_at || a.id - b.id);
      return rows.map((row) => ({
        ...toJob(row),
        resource: row.resource,
        action: row.action,
        source: row.source,
        body: row.body,
        leaseOwner: owner,
        leaseUntil,
      }));
    });
  }

  settle(job: LeasedJob, attempt: AttemptInput, next: SettleNext): Promise<void> {
    const s = this.s;
    // Idempotent, so retried as is even when a COMMIT may have landed: the
    // update matches only this very lease (lease_until tells it from a later
    // lease of the same replica, which a retry must not settle), and the
    // attempt row is written once, whichever try commits.
    const once = (): Promise<void> =>
      this.run('settle', () =>
        this.tx(async (c) => {
          const error = attempt.error ? JSON.stringify(attempt.error) : null;
          await c.query(
            `UPDATE ${s}.jobs SET state = $1, run_at = $2, lease_owner = NULL, lease_until = NULL, updated_at = $3, last_error = $4
             WHERE id = $5 AND state = 'running' AND lease_owner = $6 AND lease_until = $7`,
            [
              next.state,
              next.state === 'pending' ? next.runAt : job.runAt,
              this.now(),
              error,
              Number(job.id),
              job.leaseOwner,
              job.leaseUntil,
            ],
          );
          // Recorded even where the lease was lost: the delivery log shows every attempt.
          await c.query(
            `INSERT INTO ${s}.attempts (job_id, attempt, started_at, finished_at, outcome, error, chain)
             SELECT $1::bigint, $2::int, $3::bigint, $4::bigint, $5::text, $6::text, $7::int
             WHERE NOT EXISTS (SELECT 1 FROM ${s}.attempts
                                WHERE job_id = $1 AND chain = $7 AND attempt = $2 AND started_at = $3)`,
            attemptValues(job, attempt, error),
          );
        }, 'settle'),
      );
    return this.retryGuarded(job.leaseUntil, once);
  }

  releaseLeases(options: {
    owner?: string;
    expiredOnly?: boolean;
    uncount?: boolean;
  }): Promise<number> {
    const s = this.s;
    return this.run('releaseLeases', () =>
      this.tx(async (c) => {
        const now = this.now();
        if (!options.owner) {
          const crash = JSON.stringify(CRASH_ERROR);
          await c.query(
            `UPDATE ${s}.jobs SET state = 'dead', lease_owner = NULL, lease_until = NULL, updated_at = $1, last_error = $2
             WHERE state = 'running' AND attempts >= max_attempts ${options.expiredOnly ? 'AND lease_until <= $1' : ''}`,
            [now, crash],
          );
        }
        const res = options.owner
          ? await c.query(
              `UPDATE ${s}.jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = $1,
                 attempts = CASE WHEN $2 AND attempts > 0 THEN attempts - 1 ELSE attempts END
               WHERE state = 'running' AND lease_owner = $3`,
              [now, options.uncount === true, options.owner],
            )
          : await c.query(
              `UPDATE ${s}.jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = $1
               WHERE state = 'running' ${options.expiredOnly ? 'AND lease_until <= $1' : ''}`,
              [now],
            );
        return res.rowCount ?? 0;
      }, 'releaseLeases'),
    );
  }

  nextRunAt(instanceId: string): Promise<number | undefined> {
    return this.run('nextRunAt', async () => {
      const { rows } = await this.pool.query<{ run_at: number }>(
        `SELECT run_at FROM ${this.s}.jobs WHERE instance_id = $1 AND state = 'pending' ORDER BY run_at, id LIMIT 1`,
        [instanceId],
      );
      return rows[0]?.run_at;
    });
  }

  getWebhook(id: string): Promise<(WebhookRecord & { body: Buffer }) | undefined> {
    return this.run('getWebhook', async () => {
      if (!/^\d+$/.test(id)) return undefined;
      const { rows } = await this.pool.query<Record<string, unknown>>(
        `SELECT * FROM ${this.s}.webhooks WHERE id = $1`,
        [Number(id)],
      );
      const r = rows[0];
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

  private where(filter: JobFilter, args: unknown[]): string {
    const where: string[] = [];
    const add = (cond: (n: string) => string, value: unknown): void => {
      args.push(value);
      where.push(cond(`$${args.length}`));
    };
    if (filter.state) add((n) => `state = ${n}`, filter.state);
    if (filter.instanceId) add((n) => `instance_id = ${n}`, filter.instanceId);
    if (filter.project) add((n) => `project = ${n}`, filter.project);
    if (filter.errorCode) add((n) => `(last_error::json ->> 'code') = ${n}`, filter.errorCode);
    if (filter.since !== undefined) add((n) => `created_at >= ${n}`, filter.since);
    if (filter.until !== undefined) add((n) => `created_at < ${n}`, filter.until);
    return where.length ? 'WHERE ' + where.join(' AND ') : '';
  }

  listJobs(filter: JobFilter = {}): Promise<JobRecord[]> {
    return this.run('listJobs', async () => {
      const args: unknown[] = [];
      const where = this.where(filter, args);
      args.push(Math.min(Math.max(filter.limit ?? 100, 1), 1000));
      const { rows } = await this.pool.query<JobRow>(
        `SELECT * FROM ${this.s}.jobs ${where} ORDER BY id DESC LIMIT $${args.length}`,
        args,
      );
      return rows.map(toJob);
    });
  }

  getJob(id: string): Promise<JobRecord | undefined> {
    return this.run('getJob', async () => {
      if (!/^\d+$/.test(id)) return undefined;
      const { rows } = await this.pool.query<JobRow>(`SELECT * FROM ${this.s}.jobs WHERE id = $1`, [
        Number(id),
      ]);
      return rows[0] ? toJob(rows[0]) : undefined;
    });
  }

  replay(selection: { ids?: string[]; filter?: JobFilter }): Promise<string[]> {
    return this.run('replay', () =>
      this.tx(async (c) => {
        const now = this.now();
        const args: unknown[] = [now];
        let where: string;
        if (selection.ids) {
          args.push(selection.ids.filter((id) => /^\d+$/.test(id)).map(Number));
          where = `WHERE id = ANY($2::bigint[])`;
        } else {
          where = this.where({ state: 'dead', ...selection.filter }, args);
        }
        // Pending and running deliveries are already on their way.
        const { rows } = await c.query<{ id: number }>(
          `UPDATE ${this.s}.jobs SET state = 'pending', attempts = 0, run_at = $1, updated_at = $1,
             last_error = NULL, replays = replays + 1, lease_owner = NULL, lease_until = NULL
           WHERE id IN (SELECT id FROM ${this.s}.jobs ${where}${where ? ' AND' : ' WHERE'} state NOT IN ('pending', 'running') ORDER BY id LIMIT 10000)
           RETURNING id`,
          args,
        );
        return rows.map((r) => String(r.id)).sort((a, b) => Number(a) - Number(b));
      }, 'replay'),
    );
  }

  listAttempts(jobId: string): Promise<AttemptRecord[]> {
    return this.run('listAttempts', async () => {
      const { rows } = await this.pool.query<Record<string, unknown>>(
        `SELECT * FROM ${this.s}.attempts WHERE job_id = $1 ORDER BY attempt, id`,
        [Number(jobId)],
      );
      return rows.map((r) => {
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
      });
    });
  }

  countJobsByState(): Promise<Record<JobState, number>> {
    return this.run('countJobsByState', async () => {
      const out = Object.fromEntries(JOB_STATES.map((st) => [st, 0])) as Record<JobState, number>;
      const { rows } = await this.pool.query<{ state: JobState; n: number }>(
        `SELECT state, count(*)::int8 AS n FROM ${this.s}.jobs GROUP BY state`,
      );
      for (const r of rows) out[r.state] = r.n;
      return out;
    });
  }

  kvGet(namespace: string, key: string): Promise<unknown> {
    return this.run('kvGet', async () => {
      const { rows } = await this.pool.query<{ value: string }>(
        `SELECT value FROM ${this.s}.kv WHERE ns = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)`,
        [namespace, key, this.now()],
      );
      return rows[0] ? (JSON.parse(rows[0].value) as unknown) : undefined;
    });
  }

  kvSet(namespace: string, key: string, value: unknown, ttlSeconds?: number): Promise<void> {
    return this.run('kvSet', async () => {
      await this.pool.query(
        `INSERT INTO ${this.s}.kv (ns, key, value, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
        [
          namespace,
          key,
          JSON.stringify(value ?? null),
          ttlSeconds ? this.now() + ttlSeconds * 1000 : null,
        ],
      );
    });
  }

  kvSetIfAbsent(
    namespace: string,
    key: string,
    value: unknown,
    ttlSeconds?: number,
  ): Promise<boolean> {
    return this.run('kvSetIfAbsent', async () => {
      const now = this.now();
      // Takes over an expired entry; a live one wins.
      const res = await this.pool.query(
        `INSERT INTO ${this.s}.kv (ns, key, value, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
         WHERE ${this.s}.kv.expires_at IS NOT NULL AND ${this.s}.kv.expires_at <= $5`,
        [
          namespace,
          key,
          JSON.stringify(value ?? null),
          ttlSeconds ? now + ttlSeconds * 1000 : null,
          now,
        ],
      );
      return (res.rowCount ?? 0) > 0;
    });
  }

  kvDelete(namespace: string, key: string): Promise<void> {
    return this.run('kvDelete', async () => {
      await this.pool.query(`DELETE FROM ${this.s}.kv WHERE ns = $1 AND key = $2`, [
        namespace,
        key,
      ]);
    });
  }
  kvList(
    namespace: string,
    options: { prefix?: string; limit?: number } = {},
  ): Promise<Array<{ key: string; value: unknown }>> {
    return this.run('kvList', async () => {
      const prefix = options.prefix ?? '';
      const { rows } = await this.pool.query<{ key: string; value: string }>(
        `SELECT key, value FROM ${this.s}.kv WHERE ns = $1 AND key COLLATE "C" >= $2 AND key COLLATE "C" < $3
         AND (expires_at IS NULL OR expires_at > $4) ORDER BY key COLLATE "C" LIMIT $5`,
        [namespace, prefix, `${prefix}\uffff`, this.now(), options.limit ?? 10_000],
      );
      return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as unknown }));
    });
  }

  rateHit(key: string, windowSeconds: number): Promise<number> {
    return this.run('rateHit', async () => {
      const windowMs = windowSeconds * 1000;
      const start = Math.floor(this.now() / windowMs) * windowMs;
      const { rows } = await this.pool.query<{ n: number }>(
        `INSERT INTO ${this.s}.rate (key, window_start, n) VALUES ($1, $2, 1)
         ON CONFLICT (key, window_start) DO UPDATE SET n = ${this.s}.rate.n + 1 RETURNING n`,
        [key, start],
      );
      return rows[0]?.n ?? 1;
    });
  }

  purge(): Promise<void> {
    return this.run('purge', async () => {
      const now = this.now();
      await this.pool.query(`DELETE FROM ${this.s}.dedup WHERE expires_at <= $1`, [now]);
      await this.pool.query(
        `DELETE FROM ${this.s}.kv WHERE expires_at IS NOT NULL AND expires_at <= $1`,
        [now],
      );
      await this.pool.query(`DELETE FROM ${this.s}.rate WHERE window_start < $1`, [
        now - 24 * 3600 * 1000,
      ]);
    });
  }

  checkWritable(): Promise<void> {
    return this.run('checkWritable', async () => {
      await this.pool.query(
        `INSERT INTO ${this.s}.kv (ns, key, value, expires_at) VALUES ('_relay', 'writable', $1, NULL)
         ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value`,
        [String(this.now())],
      );
    });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = this.pool.end().catch(() => undefined);
    }
    return this.closed;
  }
}
