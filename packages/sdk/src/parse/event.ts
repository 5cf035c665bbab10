import type {
  NotificationEvent,
  NotificationGroup,
  NotificationLinks,
  NotificationProject,
} from '../model';
import {
  defined,
  flattenTags,
  ident,
  invalid,
  isRecord,
  projectFromSlug,
  record,
  success,
  text,
  type JsonObject,
  type ResourceHandler,
} from './common';
import { issueUrlFromEventWebUrl, organizationFromWebUrl, slugsFromEventApiUrl } from './urls';

/** What a full Sentry event (as webhooks serialise it) tells about itself and its issue. */
export interface EventParts {
  event: NotificationEvent;
  group?: NotificationGroup;
  project?: NotificationProject;
  organizationSlug?: string;
  links: NotificationLinks;
}

function isoFromEpochSeconds(value: unknown): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  const date = new Date(value * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** Undefined when the event has no `event_id`: without it there is no identity to dedup on. */
export function readEvent(raw: JsonObject): EventParts | undefined {
  const eventId = ident(raw.event_id);
  if (eventId === undefined) return undefined;

  const tags = flattenTags(raw.tags);
  const logentry = record(raw.logentry);
  const message = text(raw.message) ?? text(logentry?.formatted) ?? text(logentry?.message);
  const metadata = record(raw.metadata);
  const culprit = text(raw.culprit);
  const level = text(raw.level) ?? tags.level;
  const platform = text(raw.platform);
  const webUrl = text(raw.web_url);
  const title = text(raw.title) ?? message ?? text(metadata?.value) ?? `Event ${eventId}`;

  const event = defined<NotificationEvent>({
    eventId,
    title,
    message,
    culprit,
    level,
    platform,
    // Sentry moves `environment` and `release` into tags on ingest; older
    // serialisations keep only the tag.
    environment: text(raw.environment) ?? tags.environment,
    release: text(raw.release) ?? tags.release,
    datetime: text(raw.datetime) ?? isoFromEpochSeconds(raw.timestamp),
    tags,
    url: webUrl,
    raw: raw as NotificationEvent['raw'],
  });

  const slugs = slugsFromEventApiUrl(text(raw.url));
  const issueUrl = issueUrlFromEventWebUrl(webUrl);
  const issueId = ident(raw.issue_id) ?? ident(raw.group_id);
  const group =
    issueId === undefined
      ? undefined
      : defined<NotificationGroup>({
          id: issueId,
          title,
          culprit,
          level,
          platform,
          type: text(raw.type),
          metadata,
          url: issueUrl,
        });

  return defined({
    event,
    group,
    project: projectFromSlug(slugs?.project, ident(raw.project)),
    organizationSlug: slugs?.organization ?? organizationFromWebUrl(webUrl),
    links: defined({ issue: issueUrl, event: webUrl }),
  });
}

/** Shared by `event_alert` and `error`: both carry one full event under a different key. */
function readEventData(data: JsonObject, key: string): EventParts | string {
  const raw = data[key];
  if (!isRecord(raw)) return `data.${key} missing`;
  return readEvent(raw) ?? `data.${key}.event_id missing`;
}

function eventFields(parts: EventParts) {
  const { event } = parts;
  return {
    project: parts.project,
    group: parts.group,
    event,
    organizationSlug: parts.organizationSlug,
    environment: event.environment,
    level: event.level,
    release: event.release,
    tags: event.tags,
    title: event.title ?? `Event ${event.eventId}`,
    message: event.message ?? event.culprit ?? '',
    url: parts.links.issue ?? parts.links.event,
    links: parts.links,
  };
}

export const eventAlertHandler: ResourceHandler = {
  actions: ['triggered'],
  parse(data, envelope) {
    const parts = readEventData(data, 'event');
    if (typeof parts === 'string') return invalid(envelope.resource, envelope.action, parts);
    const rule = text(data.triggered_rule) ?? text(record(data.issue_alert)?.title);
    return success(envelope, {
      ...eventFields(parts),
      triggeringRules: rule === undefined ? [] : [rule],
      dedupKey: ['event_alert', envelope.action, parts.event.eventId, rule]
        .filter((part) => part !== undefined)
        .join(':'),
      raw: data,
    });
  },
};

export const errorHandler: ResourceHandler = {
  actions: ['created'],
  parse(data, envelope) {
    const parts = readEventData(data, 'error');
    if (typeof parts === 'string') return invalid(envelope.resource, envelope.action, parts);
    return success(envelope, {
      ...eventFields(parts),
      dedupKey: `error:${envelope.action}:${parts.event.eventId}`,
      raw: data,
    });
  },
};
