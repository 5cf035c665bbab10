import { DeliveryError, serializeError, type Notification } from '@plugboard/sdk';
import { parseStoredWebhook } from '../store/stored-webhook';
import type { LeasedJob, SettleItem, Store } from '../store/types';
import { retryDelay, settlementFor, type AttemptResult } from './retry';
import type { DeliveryOutcome, DispatchInstance, DispatcherOptions } from './types';

/** A job's settlement as written, and what listeners hear of it. */
export interface Settlement {
  item: SettleItem;
  outcome: DeliveryOutcome;
}

/** Jobs settled per transaction: a huge fold does not hold the store for long. */
const SETTLE_CHUNK = 1000;

/**
 * Step 2 for one job: the notification it carries may be sent, or the job is
 * settled here: held back on purpose (silenced, inhibited, muted: skipped with
 * the reason), unreadable (dead), or the gate could not decide (tried again
 * later: without an answer it might be one an operator silenced).
 */
export async function judge(
  job: LeasedJob,
  def: DispatchInstance,
  o: Pick<DispatcherOptions, 'gate' | 'backoff'> & { random: () => number },
): Promise<{ send: Notification } | { settle: Settlement }> {
  const now = Date.now();
  const settle = (r: Omit<AttemptResult, 'startedAt' | 'finishedAt'>): { settle: Settlement } => ({
    settle: settlementFor(job, def, { startedAt: now, finishedAt: Date.now(), ...r }),
  });
  let parsed;
  try {
    parsed = parseStoredWebhook(job.source, job.resource, job.body);
  } catch (err) {
    parsed = { ok: false as const, detail: (err as Error).message };
  }
  if (!parsed.ok) {
    const err = new DeliveryError(
      'PB_DELIVERY_UNRECOVERABLE',
      `stored webhook no longer parses: ${parsed.detail}`,
    );
    return settle({ outcome: 'failed', error: serializeError(err) });
  }
  try {
    const held = await o.gate?.({
      instanceId: def.instanceId,
      routeName: def.routeName,
      notification: parsed.notification,
      job,
    });
    if (held) return settle({ outcome: 'skipped', error: held });
  } catch (err) {
    const error = serializeError(err);
    const retryInMs = error.retryAfterMs ?? retryDelay(job.attempts, def, o.backoff, o.random);
    return settle({ outcome: 'failed', error, retryInMs });
  }
  return { send: parsed.notification };
}

/** Step 6: write each job's settlement: one job alone, many in chunks of one transaction each. */
export async function writeSettlements(
  store: Store,
  settled: readonly Settlement[],
): Promise<void> {
  const only = settled.length === 1 ? settled[0]!.item : undefined;
  if (only?.attempt) {
    await store.settle(only.job, only.attempt, only.next);
    return;
  }
  for (let i = 0; i < settled.length; i += SETTLE_CHUNK) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve)); // ingest in between
    await store.settleMany(settled.slice(i, i + SETTLE_CHUNK).map((s) => s.item));
  }
}

/** Step 4 refused: leased jobs go back to the queue as they were, no attempt spent. */
export async function handBack(store: Store, jobs: readonly LeasedJob[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += SETTLE_CHUNK) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve)); // ingest in between
    await store.settleMany(
      jobs
        .slice(i, i + SETTLE_CHUNK)
        .map((job) => ({ job, next: { state: 'pending' as const, runAt: job.runAt } })),
    );
  }
}
