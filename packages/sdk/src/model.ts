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
