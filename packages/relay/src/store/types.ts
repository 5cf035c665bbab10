import type { SerializedError } from '@plugboard/sdk';

/**
 * The relay's durable state behind two small interfaces: `Store` (webhooks,
 * jobs, attempts) and the plugin key-value space. Async-only so a networked
 * backend (PostgreSQL) can implement the same contract.
 */

export type WebhookStatus = 'accepted' | 'ignored' | 'duplicate' | 'unsupported';
/** `digest`: made by the relay itself, one message for a group of notifications. */
export type WebhookSource = 'sentry' | 'legacy' | 'digest';

export interface IncomingWebhook {
  source: WebhookSource;
  resource: string;
  action: string;
  /** Sentry's Request-ID header (changes on every redelivery). */
  requestId?: string;
  /** Content identity; see Notification.dedupKey. Empty for unsupported payloads. */
  dedupKey: string;
  /** The exact bytes received. */
  body: Buffer;
  receivedAt: number;
  /** Why the webhook is ignored/unsupported, when it is. */
  detail?: string;
}

export interface NewJob {
  routeName: string;
  instanceId: string;
  pluginSlug: string;
  maxAttempts: number;
  /** Sentry project slug, for filtering the delivery log. */
  project?: string;
  /** Due time; default: now. */
  runAt?: number;
}

/**
 * A notification counted into a route's group instead of becoming deliveries
 * of its own; the group flusher turns the group into one message later.
 */
export interface GroupHit {
  routeName: string;
  groupKey: string;
  /** First flush of a new group: `now + waitMs` (Alertmanager's group_wait). */
  waitMs: number;
  /** At most one flush per group per interval (group_interval). */
  intervalMs: number;
  /** Set when the notification carries a state (`resolved`, `open`, `critical`…). */
  status?: string;
  project?: string;
}

export interface IngestRequest {
  webhook: IncomingWebhook;
  /** One per matching plugin instance; empty (and no groups) → recorded as ignored. */
  jobs: NewJob[];
  /** One per matching grouped route. */
  groups?: GroupHit[];
  /** Unsupported payloads are recorded but never de-duplicated or dispatched. */
  unsupported?: boolean;
  /** How long a dedupKey suppresses redeliveries. */
  dedupWindowMs: number;
}

export interface IngestResult {
  webhookId: string;
  status: WebhookStatus;
  jobIds: string[];
  /** For duplicates: the webhook that was first accepted with this content. */
  duplicateOf?: string;
  /** How many groups counted it (grouped routes). */
  grouped?: number;
}

export type JobState = 'pending' | 'running' | 'succeeded' | 'failed' | 'dead' | 'skipped';
export const JOB_STATES: readonly JobState[] = [
  'pending',
  'running',
  'succeeded',
  'failed',
  'dead',
  'skipped',
];

export interface JobRecord {
  id: string;
  webhookId: string;
  routeName: string;
  instanceId: string;
  pluginSlug: string;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  runAt: number;
  /** Stable across retries of this delivery; handed to the notifier. */
  idempotencyKey: string;
  createdAt: number;
  updatedAt: number;
  lastError?: SerializedError;
  project?: string;
  /** How many times an operator replayed this delivery. */
  replays: number;
}

/** A job handed to a worker, with what it needs to run. */
export interface LeasedJob extends JobRecord {
  resource: string;
  action: string;
  source: WebhookSource;
  body: Buffer;
  leaseOwner: string;
  leaseUntil: number;
}

export type AttemptOutcome = 'succeeded' | 'failed' | 'skipped';

export interface AttemptInput {
  /** The attempt number (1-based). */
  attempt: number;
  startedAt: number;
  finishedAt: number;
  outcome: AttemptOutcome;
  error?: SerializedError;
}

/** Where a settled job goes next. */
export type SettleNext =
  { state: 'succeeded' | 'skipped' | 'dead' } | { state: 'pending'; runAt: number };

/** One job of `Store.settleMany`; without `attempt` it is handed back uncounted (pending). */
export type SettleItem =
  | { job: LeasedJob; attempt: AttemptInput; next: SettleNext }
  | { job: LeasedJob; attempt?: undefined; next: { state: 'pending'; runAt: number } };

export interface AttemptRecord extends AttemptInput {
  id: number;
  jobId: string;
  durationMs: number;
  /** 0 for the first chain of attempts, n after the n-th replay. */
  chain: number;
}

export interface WebhookRecord {
  id: string;
  source: WebhookSource;
  resource: string;
  action: string;
  requestId?: string;
  dedupKey: string;
  status: WebhookStatus;
  receivedAt: number;
  detail?: string;
  duplicateOf?: string;
}

export interface JobFilter {
  state?: JobState;
  instanceId?: string;
  project?: string;
  /** `code` of the last error, e.g. `PB_DELIVERY_TIMEOUT`. */
  errorCode?: string;
  /** Created at or after (ms since the epoch). */
  since?: number;
  /** Created before (ms since the epoch). */
  until?: number;
  limit?: number;
}

/** The durable state of one notification group (route + group key). */
export interface GroupRecord {
  routeName: string;
  groupKey: string;
  /** Notifications since the last flush. */
  pending: number;
  /** Notifications since the group opened. */
  total: number;
  /** When the first of the `pending` notifications arrived (undefined when none). */
  windowStart?: number;
  firstAt: number;
  lastAt: number;
  /** The latest notification: its body is what a digest shows. */
  lastWebhookId: string;
  /** Latest known state: `open`, `resolved`, or a metric alert's level. */
  status: string;
  /** The state changed since the last flush. */
  statusChanged: boolean;
  nextFlushAt: number;
  lastFlushAt?: number;
  /** Messages sent for this group. */
  sent: number;
  /** Notifications flushed while nothing was sent (cap reached, muted, silenced). */
  suppressed: number;
  project?: string;
  /** Optimistic lock: every flush bumps it; ingest does not. */
  version: number;
}

/** The outcome of one flush decision, applied atomically by `flushGroup`. */
export interface GroupFlush {
  routeName: string;
  groupKey: string;
  /** The version the decision was made on; another replica's flush wins otherwise. */
  version: number;
  /** The group's status the decision saw; a change since keeps `statusChanged`. */
  seenStatus: string;
  /** How many pending notifications this flush accounts for (sent or suppressed). */
  flushed: number;
  /** Close the group (resolved and flushed, or idle): deleted unless new notifications arrived. */
  close?: boolean;
  nextFlushAt: number;
  /** A message went out: counts it and records the flush time. */
  sent: boolean;
  /** Record `flushed` as suppressed (not sent). */
  suppressed?: boolean;
  /** The digest to deliver: a relay-made webhook and one job per instance of the route. */
  digest?: { webhook: IncomingWebhook; jobs: NewJob[] };
}

export interface Store {
  /** Atomically: de-duplicate, record the webhook, create its jobs. */
  ingest(request: IngestRequest): Promise<IngestResult>;
  /**
   * Take up to `limit` due pending jobs of one instance for `leaseMs`.
   * Cost must not grow with the backlog (indexed, bounded).
   */
  lease(instanceId: string, limit: number, owner: string, leaseMs: number): Promise<LeasedJob[]>;
  /** Record a finished attempt and settle the job: succeeded/skipped, retry at `retryAt`, or dead. */
  settle(job: LeasedJob, attempt: AttemptInput, next: SettleNext): Promise<void>;
  /**
   * Running jobs whose lease expired (or all of `owner`'s, or all) go back to
   * pending. `uncount`: the attempt was cut short on purpose (shutdown) and
   * does not count against maxAttempts; after a crash it does, so a job that
   * kills the process cannot run forever.
   */
  releaseLeases(options: {
    owner?: string;
    expiredOnly?: boolean;
    uncount?: boolean;
  }): Promise<number>;
  /**
   * Settle many leased jobs in one transaction: the members of a folded
   * digest once the target took (or refused) it, deliveries the gate held
   * back, or jobs handed back unsent. An item with an `attempt` records it;
   * one without goes back to `pending` at `next.runAt` with the lease's
   * attempt uncounted (it was never tried). Jobs whose lease was lost are left
   * alone. Returns how many jobs were settled.
   */
  settleMany(items: readonly SettleItem[]): Promise<number>;
  /** Groups whose next flush is due (indexed by next flush time). */
  dueGroups(now: number, limit: number): Promise<GroupRecord[]>;
  /**
   * Apply a flush decision if the group is still at `version`; false when
   * another replica flushed it first (nothing changed). With a digest, its
   * webhook and jobs are created in the same transaction.
   */
  flushGroup(flush: GroupFlush): Promise<{ applied: boolean; jobIds: string[] }>;
  getGroup(routeName: string, groupKey: string): Promise<GroupRecord | undefined>;
  listGroups(options?: { routeName?: string; limit?: number }): Promise<GroupRecord[]>;
  /**
   * Take one send slot of a target's sliding-window rate limit, shared by
   * every replica: `{ ok: true }`, or the time the next slot frees.
   */
  rateAcquire(
    key: string,
    limit: number,
    windowMs: number,
  ): Promise<{ ok: true } | { ok: false; retryAt: number }>;
  /** Earliest runAt of a pending job of this instance, if any. */
  nextRunAt(instanceId: string): Promise<number | undefined>;
  getWebhook(id: string): Promise<(WebhookRecord & { body: Buffer }) | undefined>;
  listJobs(filter?: JobFilter): Promise<JobRecord[]>;
  getJob(id: string): Promise<JobRecord | undefined>;
  listAttempts(jobId: string): Promise<AttemptRecord[]>;
  /**
   * Run finished deliveries again: a new chain of attempts under the same
   * idempotency key. By ids (any finished state), else by filter (dead ones,
   * unless the filter names another finished state). Returns the ids.
   */
  replay(selection: { ids?: string[]; filter?: JobFilter }): Promise<string[]>;
  countJobsByState(): Promise<Record<JobState, number>>;
  /** Plugin key-value space (namespaced by the caller). */
  kvGet(namespace: string, key: string): Promise<unknown>;
  kvSet(namespace: string, key: string, value: unknown, ttlSeconds?: number): Promise<void>;
  kvSetIfAbsent(
    namespace: string,
    key: string,
    value: unknown,
    ttlSeconds?: number,
  ): Promise<boolean>;
  kvDelete(namespace: string, key: string): Promise<void>;
  /** Every live entry of a namespace, by key (small namespaces: silences, SSO users). */
  kvList(
    namespace: string,
    options?: { prefix?: string; limit?: number },
  ): Promise<Array<{ key: string; value: unknown }>>;
  /** Count one hit in the fixed window containing now; returns the count. */
  rateHit(key: string, windowSeconds: number): Promise<number>;
  /** Throws a StoreError when the store cannot take writes. */
  checkWritable(): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}
