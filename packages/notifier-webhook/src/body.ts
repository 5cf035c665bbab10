import { describeDigest } from '@plugboard/sdk';
import type {
  Notification,
  NotificationComment,
  NotificationDigest,
  NotificationEvent,
  NotificationGroup,
  NotificationLinks,
  NotificationMetricAlert,
  NotificationProject,
} from '@plugboard/sdk';

/**
 * The `plugboard` body. Its shape is part of the package's API: fields are
 * only ever added. Absent parts are `null`, never missing, so receivers can
 * rely on every key being there.
 */
export interface PlugboardWebhookBody {
  /** The delivery's idempotency key: the same on every retry. */
  id: string;
  /** `Notification.kind`, e.g. `issue.created`, `metric_alert.critical`. */
  type: string;
  /** ISO-8601: when it happened per Sentry (event, comment), else when the body was built. */
  timestamp: string;
  data: PlugboardWebhookData;
}

export interface PlugboardWebhookData {
  project: NotificationProject | null;
  group: NotificationGroup | null;
  /** The normalised event; the raw Sentry event is left out (size, PII). */
  event: Omit<NotificationEvent, 'raw'> | null;
  metricAlert: NotificationMetricAlert | null;
  comment: NotificationComment | null;
  triggeringRules: string[];
  environment: string | null;
  level: string | null;
  release: string | null;
  tags: Record<string, string>;
  title: string;
  message: string;
  url: string | null;
  links: NotificationLinks;
  /** Present when the message stands for several notifications (group update, folded backlog). */
  digest?: NotificationDigest & { summary: string };
}

/** The body Sentry's legacy WebHooks plugin posts (`sentry_plugins.webhooks`). */
export interface SentryLegacyWebhookBody {
  /** The issue (group) id. */
  id: string;
  project: string | null;
  project_name: string | null;
  project_slug: string | null;
  logger: string | null;
  level: string | null;
  culprit: string | null;
  message: string;
  url: string | null;
  triggering_rules: string[];
  /** The event as Sentry stored it, `tags` as `[key, value]` pairs, `event_id` added. */
  event: Record<string, unknown>;
}

export function plugboardBody(
  notification: Notification,
  id: string,
  now: Date = new Date(),
): PlugboardWebhookBody {
  const n = notification;
  let event: Omit<NotificationEvent, 'raw'> | null = null;
  if (n.event) {
    const { raw: _raw, ...rest } = n.event;
    event = rest;
  }
  return {
    id,
    type: n.kind,
    timestamp: n.event?.datetime ?? n.comment?.timestamp ?? now.toISOString(),
    data: {
      project: n.project ?? null,
      group: n.group ?? null,
      event,
      metricAlert: n.metricAlert ?? null,
      comment: n.comment ?? null,
      triggeringRules: n.triggeringRules,
      environment: n.environment ?? null,
      level: n.level ?? null,
      release: n.release ?? null,
      tags: n.tags,
      title: n.title,
      message: n.message,
      url: n.url ?? null,
      links: n.links,
      ...(n.digest ? { digest: { ...n.digest, summary: describeDigest(n) ?? '' } } : {}),
    },
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sentry appends this to the issue link so its analytics can tell where clicks came from. */
function withReferrer(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const u = new URL(url);
    if (!u.searchParams.has('referrer')) u.searchParams.set('referrer', 'webhooks_plugin');
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * The legacy plugin's body. A notification that came in as a legacy body is
 * passed on exactly as Sentry sent it. Others are rebuilt the way the plugin
 * builds them from a group and an event; notifications without an issue
 * (metric alerts, comments) get the same keys, filled as well as they can be,
 * since the legacy plugin never sent those.
 */
export function sentryLegacyBody(
  notification: Notification,
  fallbackId: string,
): SentryLegacyWebhookBody | Record<string, unknown> {
  const n = notification;
  if (n.resource === 'legacy_webhook' && isRecord(n.raw)) return n.raw;

  const event: Record<string, unknown> = { ...(n.event?.raw ?? {}) };
  // The plugin drops the event's internal `id` (its node id), keeping `event_id`.
  delete event.id;
  event.tags = Object.entries(n.event?.tags ?? n.tags);
  if (n.event) event.event_id = n.event.eventId;

  const tags = n.event?.tags ?? n.tags;
  const rawLogger = n.event?.raw.logger;
  return {
    id: n.group?.id ?? n.metricAlert?.id ?? n.comment?.issueId ?? n.event?.eventId ?? fallbackId,
    project: n.project?.slug ?? null,
    project_name: n.project?.name ?? null,
    project_slug: n.project?.slug ?? null,
    logger: tags.logger ?? (typeof rawLogger === 'string' ? rawLogger : null),
    level: tags.level ?? n.level ?? null,
    culprit: n.group?.culprit ?? n.event?.culprit ?? null,
    message: n.event?.message ?? n.event?.title ?? n.title,
    url: withReferrer(n.group?.url ?? n.url),
    triggering_rules: n.triggeringRules,
    event,
  };
}
