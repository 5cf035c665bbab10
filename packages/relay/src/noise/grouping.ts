import type { Notification, NotificationDigest } from '@plugboard/sdk';
import type { RouteConfig } from '../config/schema';
import { durationMs } from '../durations';
import type { GroupFlush, GroupHit, GroupRecord, IncomingWebhook, NewJob } from '../store/types';
import type { DigestBody } from '../store/stored-webhook';
import { labelValue, notificationLabels } from './labels';

/**
 * Grouping and digests, Alertmanager's way: a grouped route counts its
 * notifications into groups (by default one per Sentry issue) and a flusher
 * turns each group into at most one message per `interval`, after `wait`
 * for a new group, with a reminder after `repeat` while it stays open.
 *
 * The rules are pure functions of the stored group and the clock, so the
 * timers are tested with a fake clock and every replica decides alike; the
 * store applies a decision only to the group version it was made on.
 */

/** A route's `group` settings in milliseconds. */
export interface GroupTimers {
  by: readonly string[];
  waitMs: number;
  intervalMs: number;
  /** 0: never repeat. */
  repeatMs: number;
  /** 0: no cap. */
  maxNotifications: number;
  closeAfterMs: number;
  sendResolved: boolean;
}

export function groupTimers(route: RouteConfig): GroupTimers | undefined {
  const g = route.group;
  if (!g) return undefined;
  return {
    by: g.by,
    waitMs: durationMs(g.wait),
    intervalMs: durationMs(g.interval),
    repeatMs: durationMs(g.repeat),
    maxNotifications: g.maxNotifications,
    closeAfterMs: durationMs(g.closeAfter),
    sendResolved: route.sendResolved,
  };
}

/** Kinds that close what they are about. */
const RESOLVED_KINDS: ReadonlySet<string> = new Set(['issue.resolved', 'metric_alert.resolved']);

export function isResolved(n: Notification): boolean {
  return RESOLVED_KINDS.has(n.kind);
}

/**
 * The state a notification reports for its group, if any: an issue is
 * `open` or `resolved`; a metric alert is `critical`, `warning` or
 * `resolved`. Events and comments carry none.
 */
export function groupStatus(n: Notification): string | undefined {
  switch (n.kind) {
    case 'issue.created':
    case 'issue.unresolved':
      return 'open';
    case 'issue.resolved':
      return 'resolved';
    case 'issue.ignored':
    case 'issue.archived':
      return 'archived';
    default:
      return n.resource === 'metric_alert' ? n.action : undefined;
  }
}

/**
 * `issue=123` (or `project=web,level=error` for `by: [project, level]`);
 * undefined when the notification has none of the labels: it is delivered
 * on its own, like Alertmanager's alerts without the group-by labels would
 * form one big group otherwise.
 */
export function groupKey(
  by: readonly string[],
  labels: Readonly<Record<string, string>>,
): string | undefined {
  const values = by.map((name) => labelValue(labels, name));
  if (values.every((v) => v === '')) return undefined;
  return by.map((name, i) => `${name}=${values[i]}`).join(',');
}

/** The group hit for a grouped route, or undefined when the route delivers it directly. */
export function groupHitFor(
  route: RouteConfig,
  timers: GroupTimers,
  n: Notification,
  labels: Readonly<Record<string, string>> = notificationLabels(n),
): GroupHit | undefined {
  const key = groupKey(timers.by, labels);
  if (key === undefined) return undefined;
  const hit: GroupHit = {
    routeName: route.name,
    groupKey: key,
    waitMs: timers.waitMs,
    intervalMs: timers.intervalMs,
  };
  const status = groupStatus(n);
  if (status !== undefined) hit.status = status;
  if (n.project?.slug) hit.project = n.project.slug;
  return hit;
}

/** What the flusher does with one due group. */
export interface FlushPlan {
  /** Send a message, and why; undefined: nothing is sent this time. */
  reason?: NotificationDigest['reason'];
  /** Pending notifications accounted for (sent, or dropped by a cap). */
  flushed: number;
  suppressed: boolean;
  close: boolean;
  nextFlushAt: number;
  /** For logs and `plugboard routes test`: why nothing was sent. */
  note?: string;
}

/**
 * Alertmanager's timers on one group. `mutedBy` (a mute interval in force)
 * holds the group: nothing is sent, the counts keep growing, and the first
 * flush after the mute covers the whole muted time.
 */
export function planFlush(
  g: GroupRecord,
  t: GroupTimers,
  now: number,
  mutedBy?: string,
): FlushPlan {
  if (mutedBy !== undefined) {
    return {
      flushed: 0,
      suppressed: false,
      close: false,
      nextFlushAt: now + Math.min(60_000, t.intervalMs),
      note: `muted by ${mutedBy}`,
    };
  }
  const capped = t.maxNotifications > 0 && g.sent >= t.maxNotifications;
  if (g.pending > 0 || g.statusChanged) {
    if (g.status === 'resolved' && !t.sendResolved) {
      return {
        flushed: g.pending,
        suppressed: true,
        close: true,
        nextFlushAt: now + t.intervalMs,
        note: 'resolved; the route does not send resolved notifications',
      };
    }
    if (capped && !g.statusChanged) {
      // Counted but not sent: the group stays open so a state change
      // (resolved, reopened) still gets through.
      return {
        flushed: g.pending,
        suppressed: true,
        close: false,
        nextFlushAt: Math.min(now + Math.max(t.intervalMs, t.repeatMs), g.lastAt + t.closeAfterMs),
        note: `cap of ${t.maxNotifications} message(s) reached; only state changes are sent`,
      };
    }
    return {
      reason: g.statusChanged ? 'state' : g.sent === 0 ? 'first' : 'update',
      flushed: g.pending,
      suppressed: false,
      // A resolved group ends with its message; new events reopen a new one.
      close: g.status === 'resolved',
      nextFlushAt: now + t.intervalMs,
    };
  }
  if (g.status === 'resolved' || now >= g.lastAt + t.closeAfterMs) {
    return { flushed: 0, suppressed: false, close: true, nextFlushAt: now, note: 'closed' };
  }
  const repeatAt =
    t.repeatMs > 0 && !capped && g.lastFlushAt !== undefined
      ? g.lastFlushAt + t.repeatMs
      : Number.POSITIVE_INFINITY;
  if (now >= repeatAt) {
    return {
      reason: 'repeat',
      flushed: 0,
      suppressed: false,
      close: false,
      nextFlushAt: Math.min(now + t.repeatMs, g.lastAt + t.closeAfterMs),
    };
  }
  return {
    flushed: 0,
    suppressed: false,
    close: false,
    nextFlushAt: Math.min(repeatAt, g.lastAt + t.closeAfterMs),
  };
}

export function digestOf(
  g: GroupRecord,
  plan: FlushPlan & { reason: NotificationDigest['reason'] },
  now: number,
): NotificationDigest {
  const since =
    plan.reason === 'repeat'
      ? (g.lastFlushAt ?? g.firstAt)
      : (g.windowStart ?? g.lastFlushAt ?? g.firstAt);
  return {
    reason: plan.reason,
    count: g.pending,
    total: g.total,
    since: new Date(since).toISOString(),
    until: new Date(now).toISOString(),
    lastSeen: new Date(g.lastAt).toISOString(),
    route: g.routeName,
    groupKey: g.groupKey,
    status: g.status,
  };
}

/**
 * The store-level flush for a plan: with a message, a webhook for it (a
 * plain copy of the latest notification when the group had just that one,
 * a `digest` webhook otherwise) and one job per instance of the route.
 */
export function flushFor(
  g: GroupRecord,
  plan: FlushPlan,
  now: number,
  message?: {
    latest: { source: 'sentry' | 'legacy'; resource: string; action: string; body: Buffer };
    jobs: NewJob[];
  },
): GroupFlush {
  const flush: GroupFlush = {
    routeName: g.routeName,
    groupKey: g.groupKey,
    version: g.version,
    seenStatus: g.status,
    flushed: plan.flushed,
    nextFlushAt: plan.nextFlushAt,
    sent: message !== undefined && plan.reason !== undefined,
  };
  if (plan.close) flush.close = true;
  if (plan.suppressed) flush.suppressed = true;
  if (!message || plan.reason === undefined) return flush;
  const dedupKey = `digest:${g.routeName}:${g.groupKey}:${g.version}`;
  let webhook: IncomingWebhook;
  if (plan.reason === 'first' && g.pending === 1) {
    // One notification is shown as itself: "1 new event" would say less.
    webhook = {
      source: message.latest.source,
      resource: message.latest.resource,
      action: message.latest.action,
      dedupKey,
      body: message.latest.body,
      receivedAt: now,
      detail: `group ${g.groupKey} of route ${g.routeName}`,
    };
  } else {
    const body: DigestBody = {
      digest: digestOf(g, { ...plan, reason: plan.reason }, now),
      source: message.latest.source,
      resource: message.latest.resource,
      body: JSON.parse(message.latest.body.toString('utf8')) as unknown,
    };
    webhook = {
      source: 'digest',
      resource: message.latest.resource,
      action: message.latest.action,
      dedupKey,
      body: Buffer.from(JSON.stringify(body)),
      receivedAt: now,
      detail: `${plan.reason} digest of group ${g.groupKey} of route ${g.routeName}: ${g.pending} notification(s)`,
    };
  }
  flush.digest = { webhook, jobs: message.jobs };
  return flush;
}

const timersCache = new WeakMap<RouteConfig, GroupTimers | null>();

function cachedTimers(route: RouteConfig): GroupTimers | undefined {
  let t = timersCache.get(route);
  if (t === undefined) {
    t = groupTimers(route) ?? null;
    timersCache.set(route, t);
  }
  return t ?? undefined;
}

/**
 * What one accepted notification becomes: deliveries for the instances of
 * ungrouped routes, a count in a group for grouped ones. Resolved
 * notifications are left out of routes with `sendResolved: false` (a
 * grouped route still counts them: they close the group).
 */
export function planDeliveries(
  targets: ReadonlyArray<{
    route: RouteConfig;
    instance: RouteConfig['instances'][number];
    instanceId: string;
  }>,
  n: Notification,
  defaultMaxAttempts: number,
): { jobs: NewJob[]; groups: GroupHit[]; dropped: string[] } {
  const jobs: NewJob[] = [];
  const groups: GroupHit[] = [];
  const dropped: string[] = [];
  let labels: Record<string, string> | undefined;
  const seen = new Set<string>();
  for (const t of targets) {
    const timers = cachedTimers(t.route);
    if (timers) {
      if (seen.has(t.route.name)) continue;
      seen.add(t.route.name);
      labels ??= notificationLabels(n);
      const hit = groupHitFor(t.route, timers, n, labels);
      if (hit) {
        groups.push(hit);
        continue;
      }
      seen.delete(t.route.name);
    }
    if (!t.route.sendResolved && isResolved(n)) {
      if (!dropped.includes(t.route.name)) dropped.push(t.route.name);
      continue;
    }
    jobs.push({
      routeName: t.route.name,
      instanceId: t.instanceId,
      pluginSlug: t.instance.plugin,
      maxAttempts: t.instance.maxAttempts ?? defaultMaxAttempts,
      ...(n.project?.slug ? { project: n.project.slug } : {}),
    });
  }
  return { jobs, groups, dropped };
}
