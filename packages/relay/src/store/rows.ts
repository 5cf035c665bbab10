import type { SerializedError } from '@plugboard/sdk';
import type { AttemptInput, GroupRecord, JobRecord, JobState, LeasedJob } from './types';

/** A `jobs` row as both stores hold it (column names as in the schema). */
export interface JobRow {
  id: number;
  webhook_id: number;
  route_name: string;
  instance_id: string;
  plugin_slug: string;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: number;
  lease_owner?: string | null;
  lease_until?: number | null;
  idempotency_key: string;
  created_at: number;
  updated_at: number;
  last_error: string | null;
  project: string | null;
  replays: number;
}

export function toJob(row: JobRow): JobRecord {
  const job: JobRecord = {
    id: String(row.id),
    webhookId: String(row.webhook_id),
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
    replays: row.replays,
  };
  if (row.last_error) job.lastError = JSON.parse(row.last_error) as SerializedError;
  if (row.project) job.project = row.project;
  return job;
}

export type { SettleNext } from './types';

/** The last error of a job whose last allowed attempt a crash cut short. */
export const CRASH_ERROR: SerializedError = {
  name: 'DeliveryError',
  code: 'PB_DELIVERY_UNRECOVERABLE',
  message: 'the relay stopped during the last allowed attempt of this delivery',
  retryable: false,
};

/** A `groups` row as both stores hold it. */
export interface GroupRow {
  route: string;
  group_key: string;
  pending: number;
  total: number;
  window_start: number | null;
  first_at: number;
  last_at: number;
  last_webhook_id: number;
  status: string;
  status_changed: number | boolean;
  next_flush_at: number;
  last_flush_at: number | null;
  sent: number;
  suppressed: number;
  project: string | null;
  version: number;
}

export function toGroup(row: GroupRow): GroupRecord {
  const g: GroupRecord = {
    routeName: row.route,
    groupKey: row.group_key,
    pending: row.pending,
    total: row.total,
    firstAt: row.first_at,
    lastAt: row.last_at,
    lastWebhookId: String(row.last_webhook_id),
    status: row.status,
    statusChanged: row.status_changed === true || row.status_changed === 1,
    nextFlushAt: row.next_flush_at,
    sent: row.sent,
    suppressed: row.suppressed,
    version: row.version,
  };
  if (row.window_start !== null) g.windowStart = row.window_start;
  if (row.last_flush_at !== null) g.lastFlushAt = row.last_flush_at;
  if (row.project) g.project = row.project;
  return g;
}

/** Key-value namespace of the targets' send logs (rateAcquire). */
export const RATE_NAMESPACE = '_rate';

/**
 * Sliding-window rate limiting over a list of send times: a slot is free
 * when fewer than `limit` sends happened in the last `windowMs`. Unlike fixed
 * windows this never lets 2×limit through around a window boundary (DingTalk
 * blocks a robot for 10 minutes when it sees that).
 */
export function slidingWindow(
  times: readonly number[],
  now: number,
  limit: number,
  windowMs: number,
): { ok: true; times: number[] } | { ok: false; retryAt: number; times: number[] } {
  const live = times.filter((t) => t > now - windowMs).sort((a, b) => a - b);
  if (live.length < limit) return { ok: true, times: [...live, now] };
  return { ok: false, retryAt: live[live.length - limit]! + windowMs, times: live };
}

/**
 * An `attempts` row's values in the order both stores insert them: job_id,
 * attempt, started_at, finished_at, outcome, error, chain.
 */
export function attemptValues(
  job: LeasedJob,
  attempt: AttemptInput,
  error: string | null,
): [number, number, number, number, string, string | null, number] {
  return [
    Number(job.id),
    attempt.attempt,
    attempt.startedAt,
    attempt.finishedAt,
    attempt.outcome,
    error,
    job.replays,
  ];
}
