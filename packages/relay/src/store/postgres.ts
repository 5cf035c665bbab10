import { randomUUID } from 'node:crypto';
import { Pool, types as pgTypes, type PoolClient } from 'pg';
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
import { CRASH_ERROR, toJob, type JobRow, type SettleNext } from './rows';

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
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      failure = err;
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.wrap(what, err);
    } finally {
      // A connection that failed is discarded, not handed to the next caller.
      client.release(failure instanceof Error ? failure : undefined);
    }
  }

  ingest(req: IngestRequest): Promise<IngestResult> {
    const s = this.s;
    return this.run('ingest', () =>
      this.tx(async (c) => {
        const now = this.now();
        const w = req.webhook;
        let status: WebhookStatus = req.unsupported
          ? 'unsupported'
          : req.jobs.length === 0
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
        if (status === 'accepted' && w.dedupKey) {
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
        const jobIds: string[] = [];
        if (status === 'accepted' && req.jobs.length > 0) {
          const values: unknown[] = [];
          const tuples = req.jobs.map((job, i) => {
            const b = i * 7;
            values.push(
              job.routeName,
              job.instanceId,
              job.pluginSlug,
              job.maxAttempts,
              `pbd_${randomUUID().replace(/-/g, '')}`,
              now,
              job.project ?? null,
            );
            return `($${b + 1}, $${b + 2}, $${b + 3}, 'pending', $${b + 4}, $${b + 6}, $${b + 5}, $${b + 6}, $${b + 6}, ${id}, $${b + 7})`;
          });
          const ins = await c.query<{ id: number }>(
            `INSERT INTO ${s}.jobs (route_name, instance_id, plugin_slug, state, max_attempts, run_at, idempotency_key, created_at, updated_at, webhook_id, project)
             VALUES ${tuples.join(', ')} RETURNING id`,
            values,
          );
          for (const r of ins.rows) jobIds.push(String(r.id));
        }
        const result: IngestResult = { webhookId: String(id), status, jobIds };
        if (duplicateOf !== undefined) result.duplicateOf = String(duplicateOf);
        return result;
      }, 'ingest'),
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
    return this.run('settle', () =>
      this.tx(async (c) => {
        const error = attempt.error ? JSON.stringify(attempt.error) : null;
        await c.query(
          `UPDATE ${s}.jobs SET state = $1, run_at = $2, lease_owner = NULL, lease_until = NULL, updated_at = $3, last_error = $4
           WHERE id = $5 AND state = 'running' AND lease_owner = $6`,
          [
            next.state,
            next.state === 'pending' ? next.runAt : job.runAt,
            this.now(),
            error,
            Number(job.id),
            job.leaseOwner,
          ],
        );
        await c.query(
          `INSERT INTO ${s}.attempts (job_id, attempt, started_at, finished_at, outcome, error, chain) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [
            Number(job.id),
            attempt.attempt,
            attempt.startedAt,
            attempt.finishedAt,
            attempt.outcome,
            error,
            job.replays,
          ],
        );
      }, 'settle'),
    );
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
