import type { Event as SentryEvent } from '@sentry/core';

/** Sentry-Hook-Resource values the parser understands, plus the legacy plugin body. */
export type SentryResource =
  | 'issue'
  | 'event_alert'
  | 'error'
  | 'metric_alert'
  | 'comment'
  | 'installation'
  | 'legacy_webhook';

export type SentryLevel = 'fatal' | 'error' | 'warning' | 'info' | 'debug' | 'sample' | string;

export interface NotificationProject {
  /** Sentry's numeric project id, as a string. */
  id?: string;
  slug: string;
  name: string;
  platform?: string;
}

/** A Sentry issue (Sentry's internal name: group). */
export interface NotificationGroup {
  id: string;
  shortId?: string;
  title: string;
  culprit?: string;
  level?: SentryLevel;
  status?: string;
  substatus?: string;
  /** Number of events in the issue, when Sentry sent it. */
  count?: number;
  userCount?: number;
  firstSeen?: string;
  lastSeen?: string;
  platform?: string;
  type?: string;
  metadata?: Record<string, unknown>;
  /** Browser link to the issue. */
  url?: string;
}

/** A single event, with the raw Sentry event kept for plugins that need more. */
export interface NotificationEvent {
  eventId: string;
  title?: string;
  message?: string;
  culprit?: string;
  level?: SentryLevel;
  platform?: string;
  environment?: string;
  release?: string;
  /** ISO-8601 time the event happened. */
  datetime?: string;
  /** Event tags as a flat map (Sentry sends `[[key, value], ...]`). */
  tags: Record<string, string>;
  /** Browser link to the event. */
  url?: string;
  /** The event as Sentry sent it. */
  raw: SentryEvent & Record<string, unknown>;
}

export interface NotificationMetricAlert {
  /** Sentry's incident id. */
  id: string;
  identifier?: string;
  title: string;
  description?: string;
  status: 'critical' | 'warning' | 'resolved' | string;
  url?: string;
  alertRuleName?: string;
}

export interface NotificationComment {
  id: string;
  issueId: string;
  text: string;
  timestamp?: string;
}

export interface NotificationActor {
  id: string;
  name: string;
  type: 'user' | 'application' | string;
}

/** Who an issue was assigned to (`issue.assigned`): a user or a team. */
export interface NotificationAssignee {
  type: 'user' | 'team' | string;
  id: string;
  name: string;
  /** Sentry leaves it out when the organisation has enhanced privacy on. */
  email?: string;
}

/** The Sentry integration installation an `installation.*` webhook is about. */
export interface NotificationInstallation {
  uuid: string;
  /** `pending` until the integrator finishes the OAuth exchange, then `installed`. */
  status?: string;
  appSlug?: string;
  appUuid?: string;
}

export interface NotificationLinks {
  issue?: string;
  event?: string;
  alert?: string;
}

/**
 * What a notifier receives: one Sentry webhook (or legacy plugin body),
 * normalised. Fields that a resource does not carry are undefined.
 */
export interface Notification {
  /** `Sentry-Hook-Resource`, or `legacy_webhook` for the legacy plugin body. */
  resource: SentryResource;
  action: string;
  /** `${resource}.${action}`, e.g. `issue.created`. */
  kind: string;
  project?: NotificationProject;
  group?: NotificationGroup;
  event?: NotificationEvent;
  metricAlert?: NotificationMetricAlert;
  comment?: NotificationComment;
  /** Names of the alert rules that fired (issue alerts). */
  triggeringRules: string[];
  environment?: string;
  level?: SentryLevel;
  release?: string;
  /** Tags of the event, when there is one. */
  tags: Record<string, string>;
  /** One line a human reads first (issue title, event title, alert title). */
  title: string;
  /** Longer text (culprit, description), may be empty. */
  message: string;
  /** The best browser link (issue, else event, else alert). */
  url?: string;
  links: NotificationLinks;
  installationUuid?: string;
  /** Slug of the Sentry organisation, when the payload names it (links, installation). */
  organizationSlug?: string;
  /** `issue.assigned`: the new assignee. */
  assignee?: NotificationAssignee;
  /** `installation.*`: the installation (never its one-time OAuth grant code). */
  installation?: NotificationInstallation;
  actor?: NotificationActor;
  /**
   * Content identity of the webhook: stable across Sentry's redeliveries
   * (which carry a new Request-ID and timestamp), different for distinct
   * content. Used to acknowledge a redelivery without dispatching it twice.
   */
  dedupKey: string;
  /** The payload as received (`data` of an Integration Platform body). */
  raw: unknown;
  /**
   * Set when this message stands for several notifications: a group's
   * update (the relay's grouped routes), or notifications a rate-limited
   * target could not take one by one. The other fields describe the latest.
   */
  digest?: NotificationDigest;
}

/** What a digest message summarises. `describeDigest` turns it into one line. */
export interface NotificationDigest {
  /**
   * `first`: a new group's first message; `update`: new notifications in an
   * open group; `repeat`: reminder of an open group with nothing new;
   * `state`: the group was resolved or reopened; `folded`: notifications
   * held back by the target's rate limit.
   */
  reason: 'first' | 'update' | 'repeat' | 'state' | 'folded';
  /** Notifications this message stands for (new since the group's previous message). */
  count: number;
  /** Notifications since the group opened. */
  total: number;
  /** The window `count` covers (ISO-8601). */
  since: string;
  until: string;
  /** When the group's latest notification arrived (ISO-8601). */
  lastSeen: string;
  /** The relay route it came through, and the group's key there. */
  route?: string;
  groupKey?: string;
  /** The group's state: `open`, `resolved`, or a metric alert's status. */
  status?: string;
  /** `folded`: the notifications it stands for, newest first (at most 20). */
  items?: Array<{ kind: string; title: string; project?: string; url?: string }>;
}

function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** `5 minutes`, `2 hours`, `40 seconds`: the rough length of a window. */
export function humanDuration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 90) return plural(s, 'second', 'seconds');
  const m = Math.round(s / 60);
  if (m < 90) return plural(m, 'minute', 'minutes');
  const h = Math.round(m / 60);
  if (h < 36) return plural(h, 'hour', 'hours');
  return plural(Math.round(h / 24), 'day', 'days');
}

/**
 * One line for a digest: "FRONT-END-9: 1,204 new events in the last 5
 * minutes, last seen 2024-05-01T10:00:00Z". Undefined for a notification
 * that is not a digest.
 */
export function describeDigest(n: Notification): string | undefined {
  const d = n.digest;
  if (!d) return undefined;
  const who = n.group?.shortId ?? n.metricAlert?.identifier ?? n.title;
  const span = humanDuration(Date.parse(d.until) - Date.parse(d.since));
  switch (d.reason) {
    case 'folded':
      return `${plural(d.count, 'notification', 'notifications')} held back by the target's rate limit in the last ${span}`;
    case 'repeat':
      return `${who}: still ${d.status ?? 'open'}, ${plural(d.total, 'event', 'events')} in all, last seen ${d.lastSeen}`;
    case 'state':
      return `${who}: now ${d.status ?? 'changed'}${d.count > 0 ? `, ${plural(d.count, 'new event', 'new events')} in the last ${span}` : ''}`;
    default:
      return `${who}: ${plural(d.count, 'new event', 'new events')} in the last ${span}, last seen ${d.lastSeen}`;
  }
}

export type ParseFailureReason = 'unsupported_resource' | 'invalid_payload';

export type ParseResult =
  | { ok: true; notification: Notification }
  | {
      ok: false;
      /** `unsupported_resource`: understood but not a kind we build notifications from. */
      reason: ParseFailureReason;
      /** Human-readable detail naming what was missing or unknown. */
      detail: string;
      resource: string;
      action?: string;
    };
