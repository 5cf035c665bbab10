import type { SerializedError } from '@plugboard/sdk';
import type { AttemptInput, LeasedJob, SettleItem } from '../store/types';
import type { BackoffOptions, DeliveryOutcome, DispatchInstance } from './types';

/**
 * Exponential backoff with "equal jitter": half the delay is fixed so retries
 * never bunch at zero, half is random so a burst of failures spreads out.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number): number {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, Math.max(0, attempt - 1)));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** The wait before the attempt after `attempt`, by the instance's ladder. */
export function retryDelay(
  attempt: number,
  def: Pick<DispatchInstance, 'retrySchedule' | 'retryJitter'>,
  backoff: BackoffOptions,
  random: () => number,
): number {
  const schedule = def.retrySchedule ?? [];
  if (schedule.length === 0) return backoffDelay(attempt, backoff, random);
  const base = schedule[Math.min(attempt - 1, schedule.length - 1)]!;
  const jitter = def.retryJitter ?? 0;
  return Math.round(base * (1 - jitter / 2 + random() * jitter));
}

/** What became of one attempt at a message (before it is applied to each job). */
export interface AttemptResult {
  startedAt: number;
  finishedAt: number;
  /** `failed`: `error` says why and whether to retry. */
  outcome: 'succeeded' | 'skipped' | 'failed';
  error?: SerializedError;
  /** The wait before the next attempt, for every job of the message alike. */
  retryInMs?: number;
}

/**
 * How one job is settled after an attempt: succeeded or skipped as the
 * attempt was; a failure is retried after `retryInMs`, unless it was not
 * retryable, the job has used its attempts, or the retry would come after
 * the instance's expiry (then it is dead, and the error says why).
 */
export function settlementFor(
  job: LeasedJob,
  def: Pick<DispatchInstance, 'expireAfterMs'>,
  result: AttemptResult,
  note?: SerializedError,
): { item: SettleItem; outcome: DeliveryOutcome } {
  const attempt: AttemptInput = {
    attempt: job.attempts,
    startedAt: result.startedAt,
    finishedAt: result.finishedAt,
    outcome: result.outcome,
  };
  const error = result.error ?? note;
  if (error) attempt.error = error;
  if (result.outcome !== 'failed') {
    return { item: { job, attempt, next: { state: result.outcome } }, outcome: result.outcome };
  }
  const retryable = result.error?.retryable === true && job.attempts < job.maxAttempts;
  if (!retryable) return { item: { job, attempt, next: { state: 'dead' } }, outcome: 'dead' };
  const delay = result.retryInMs ?? 0;
  const expireAfterMs = def.expireAfterMs;
  if (expireAfterMs !== undefined && result.finishedAt + delay > job.createdAt + expireAfterMs) {
    // Later than this the alert is noise: stop, and say why.
    attempt.error = {
      name: 'DeliveryError',
      code: 'PB_DELIVERY_EXPIRED',
      message: `gave up after ${job.attempts} attempt(s): the next would come more than ${Math.round(expireAfterMs / 60_000)} min after the webhook arrived`,
      retryable: false,
      ...(result.error ? { cause: result.error } : {}),
    };
    return { item: { job, attempt, next: { state: 'dead' } }, outcome: 'dead' };
  }
  return {
    item: { job, attempt, next: { state: 'pending', runAt: result.finishedAt + delay } },
    outcome: 'retry',
  };
}
