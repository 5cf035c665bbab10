import {
  describeDigest,
  type Notification,
  type NotificationDigest,
  type SerializedError,
} from '@plugboard/sdk';
import type { LeasedJob } from '../store/types';
import type { Delivery } from './types';

/** Items a folded digest lists; its count covers them all. */
export const FOLD_ITEMS = 20;

type FoldItem = NonNullable<NotificationDigest['items']>[number];

const NO_BODY = Buffer.alloc(0);

/**
 * The deliveries a rate-limited target could not take one by one, becoming
 * one message: it lists the newest `FOLD_ITEMS` and counts all. Built one
 * gated delivery at a time, keeping no body, so a backlog of tens of
 * thousands costs a few hundred bytes per delivery.
 */
export class Fold {
  private readonly members: LeasedJob[] = [];
  /** The newest first, at most FOLD_ITEMS. */
  private readonly newest: Array<{ job: LeasedJob; item: FoldItem }> = [];
  private lead: { job: LeasedJob; n: Notification } | undefined;
  private count = 0;
  private since = Infinity;

  get size(): number {
    return this.members.length;
  }

  add(job: LeasedJob, n: Notification): void {
    this.members.push({ ...job, body: NO_BODY });
    // A group digest stands for every notification it counted.
    this.count += n.digest ? Math.max(1, n.digest.count) : 1;
    this.since = Math.min(this.since, job.createdAt);
    if (!this.lead || isNewer(job, this.lead.job)) this.lead = { job, n };
    if (this.newest.length < FOLD_ITEMS || isNewer(job, this.newest.at(-1)!.job)) {
      const item: FoldItem = {
        kind: n.kind,
        title: n.digest ? `${n.title} (${describeDigest(n) ?? 'digest'})` : n.title,
        ...(n.project?.slug ? { project: n.project.slug } : {}),
        ...(n.url ? { url: n.url } : {}),
      };
      let i = this.newest.findIndex((e) => isNewer(job, e.job));
      if (i < 0) i = this.newest.length;
      this.newest.splice(i, 0, { job, item });
      if (this.newest.length > FOLD_ITEMS) this.newest.pop();
    }
  }

  /** Every member, sent as one message whose body is the newest notification with its digest. */
  delivery(now: number): Delivery {
    const lead = this.lead;
    if (!lead) throw new Error('an empty fold has no delivery');
    if (this.members.length === 1) {
      return {
        jobs: this.members,
        lead: lead.job,
        notification: lead.n,
        idempotencyKey: lead.job.idempotencyKey,
      };
    }
    const digest: NotificationDigest = {
      reason: 'folded',
      count: this.count,
      total: this.count,
      since: new Date(this.since).toISOString(),
      until: new Date(now).toISOString(),
      lastSeen: new Date(lead.job.createdAt).toISOString(),
      route: lead.job.routeName,
      items: this.newest.map((e) => e.item),
    };
    return {
      jobs: this.members,
      lead: lead.job,
      notification: { ...lead.n, digest },
      // The same members retried make the same key; a different set, another.
      idempotencyKey: `${lead.job.idempotencyKey}:fold:${this.members.length}`,
    };
  }

  /** What each member's attempt records once the target took the digest. */
  note(limit: { limit: number; perMs: number }): SerializedError {
    return {
      name: 'DeliveryError',
      code: 'PB_DELIVERY_FOLDED',
      message: `delivered in one digest of ${this.members.length} deliveries (${this.count} notifications, led by job ${this.lead?.job.id ?? '?'}): the target's rate limit (${limit.limit} per ${limit.perMs / 1000} s) held them back`,
      retryable: false,
    };
  }
}

function isNewer(a: LeasedJob, b: LeasedJob): boolean {
  return a.createdAt > b.createdAt || (a.createdAt === b.createdAt && Number(a.id) > Number(b.id));
}
