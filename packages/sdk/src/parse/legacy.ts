import type { NotificationGroup, ParseResult } from '../model';
import {
  defined,
  describeType,
  ident,
  invalid,
  isRecord,
  record,
  shortHash,
  stringList,
  success,
  text,
  type JsonObject,
} from './common';
import { readEvent } from './event';
import { organizationFromWebUrl } from './urls';

export const LEGACY_RESOURCE = 'legacy_webhook';
export const LEGACY_ACTION = 'triggered';

/**
 * Whether a body without `Sentry-Hook-Resource` is the legacy WebHooks plugin's
 * `{id, project, project_slug, triggering_rules, event, …}` rather than an
 * Integration Platform body whose header got lost.
 */
export function looksLikeLegacyBody(body: unknown): boolean {
  if (!isRecord(body) || 'data' in body) return false;
  return 'project_slug' in body || 'triggering_rules' in body || ('id' in body && 'event' in body);
}

export function parseLegacyBody(body: unknown): ParseResult {
  if (!isRecord(body)) {
    return invalid(
      LEGACY_RESOURCE,
      LEGACY_ACTION,
      `body is ${describeType(body)}, not a JSON object`,
    );
  }
  const rawEvent = record(body.event);
  const parts = rawEvent && readEvent(rawEvent);
  const groupId = ident(body.id);
  if (groupId === undefined && parts === undefined) {
    return invalid(LEGACY_RESOURCE, LEGACY_ACTION, 'id and event.event_id missing');
  }

  const event = parts?.event;
  const url = text(body.url);
  const slug = text(body.project_slug) ?? text(body.project) ?? parts?.project?.slug;
  const culprit = text(body.culprit) ?? event?.culprit;
  const message = text(body.message) ?? event?.message;
  const level = text(body.level) ?? event?.level;
  const title = event?.title ?? message ?? culprit ?? `Issue ${groupId}`;
  const triggeringRules = stringList(body.triggering_rules);
  const group =
    groupId === undefined
      ? parts?.group
      : defined<NotificationGroup>({
          ...parts?.group,
          id: groupId,
          title,
          culprit,
          level,
          platform: event?.platform,
          type: text(rawEvent?.type),
          metadata: record(rawEvent?.metadata),
          url: url ?? parts?.group?.url,
        });

  return success(
    { resource: LEGACY_RESOURCE, action: LEGACY_ACTION },
    {
      project:
        slug === undefined
          ? undefined
          : defined({
              id: ident(rawEvent?.project),
              slug,
              name: text(body.project_name) ?? slug,
            }),
      group,
      event,
      organizationSlug: organizationFromWebUrl(url) ?? parts?.organizationSlug,
      triggeringRules,
      environment: event?.environment,
      level,
      release: event?.release,
      tags: event?.tags ?? {},
      title,
      message: message ?? culprit ?? '',
      url: url ?? parts?.links.issue,
      links: { issue: url ?? parts?.links.issue, event: parts?.links.event },
      dedupKey: legacyDedupKey(body, event?.eventId, groupId, message, triggeringRules),
      raw: body as JsonObject,
    },
  );
}

/**
 * Sentry posts the legacy body once per rule that fired, so the rules are part
 * of the identity. Without an event id (hand-written or trimmed bodies), the
 * issue id plus a hash of the message is the best content identity left.
 */
function legacyDedupKey(
  body: JsonObject,
  eventId: string | undefined,
  groupId: string | undefined,
  message: string | undefined,
  rules: string[],
): string {
  const identity = eventId ?? `${groupId ?? ''}:${shortHash(message ?? text(body.culprit) ?? '')}`;
  return [LEGACY_RESOURCE, identity, ...(rules.length > 0 ? [rules.join('|')] : [])].join(':');
}
