import type { SerializedError } from '@plugboard/sdk';
import type { JobRecord, JobState } from './types';

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

export type SettleNext =
  { state: 'succeeded' | 'skipped' | 'dead' } | { state: 'pending'; runAt: number };

/** The last error of a job whose last allowed attempt a crash cut short. */
export const CRASH_ERROR: SerializedError = {
  name: 'DeliveryError',
  code: 'PB_DELIVERY_UNRECOVERABLE',
  message: 'the relay stopped during the last allowed attempt of this delivery',
  retryable: false,
};
