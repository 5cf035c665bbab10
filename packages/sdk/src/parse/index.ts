import type { ParseResult, SentryResource } from '../model';
import {
  describeType,
  invalid,
  isRecord,
  readActor,
  record,
  ident,
  text,
  unsupported,
  type ResourceHandler,
} from './common';
import { commentHandler } from './comment';
import { errorHandler, eventAlertHandler } from './event';
import { installationHandler } from './installation';
import { issueHandler } from './issue';
import { LEGACY_ACTION, LEGACY_RESOURCE, looksLikeLegacyBody, parseLegacyBody } from './legacy';
import { metricAlertHandler } from './metric-alert';

export interface SentryWebhookInput {
  /** Value of the `Sentry-Hook-Resource` header. */
  resource: string;
  /** The parsed JSON body `{action, installation, data, actor}`. */
  body: unknown;
}

/*
 * dedupKey: the content identity of a webhook. A redelivery by Sentry carries
 * a new Request-ID and Sentry-Hook-Timestamp but the same body, so the key is
 * built from body content only, from the ids that name what happened:
 *
 *   issue.<action>            issue:<action>:<issue.id>   (archived keys as ignored)
 *   event_alert.triggered     event_alert:triggered:<event_id>:<triggered_rule>
 *   error.created             error:created:<event_id>
 *   metric_alert.<action>     metric_alert:<action>:<incident id>:<date_started|date_detected>
 *   comment.created|deleted   comment:<action>:<comment_id>
 *   comment.updated           comment:updated:<comment_id>:<hash of the text>
 *   installation.<action>     installation:<action>:<uuid>
 *   legacy_webhook.triggered  legacy_webhook:<event_id | issue id:hash of message>:<rules>
 *
 * Volatile fields (issue counts, lastSeen) stay out: Sentry re-serialises the
 * issue when it retries, and a retry must still map to the same key. The cost
 * is that the same transition of the same issue twice (resolved, reopened,
 * resolved) shares a key, so the consumer must keep keys for a bounded window.
 */

// A Map, not an object literal: the resource comes from a request header and
// must not resolve `constructor` or `__proto__`.
const HANDLERS = new Map<SentryResource, ResourceHandler>([
  ['issue', issueHandler],
  ['event_alert', eventAlertHandler],
  ['error', errorHandler],
  ['metric_alert', metricAlertHandler],
  ['comment', commentHandler],
  ['installation', installationHandler],
]);

/** `resource.action` pairs the parser builds notifications from. */
export const SUPPORTED_KINDS: readonly string[] = Object.freeze([
  ...[...HANDLERS].flatMap(([resource, handler]) =>
    handler.actions.map((action) => `${resource}.${action}`),
  ),
  `${LEGACY_RESOURCE}.${LEGACY_ACTION}`,
]);

const SUPPORTED_RESOURCES = [...HANDLERS.keys(), LEGACY_RESOURCE].join(', ');

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Build a Notification from an Integration Platform webhook. Never throws. */
export function parseSentryWebhook(input: SentryWebhookInput): ParseResult {
  const resource =
    isRecord(input) && typeof input.resource === 'string'
      ? input.resource.trim().toLowerCase()
      : '';
  try {
    return parseIntegrationBody(resource, isRecord(input) ? input.body : undefined);
  } catch (err) {
    // Only reachable through exotic inputs (throwing getters, proxies); the
    // readers themselves do not throw on any JSON value.
    return invalid(resource, undefined, `payload could not be read: ${errorMessage(err)}`);
  }
}

/** Build a Notification from the legacy WebHooks-plugin body. Never throws. */
export function parseLegacyWebhook(body: unknown): ParseResult {
  try {
    return parseLegacyBody(body);
  } catch (err) {
    return invalid(
      LEGACY_RESOURCE,
      LEGACY_ACTION,
      `payload could not be read: ${errorMessage(err)}`,
    );
  }
}

function parseIntegrationBody(resource: string, body: unknown): ParseResult {
  const action = isRecord(body) ? text(body.action)?.trim() : undefined;
  if (resource === LEGACY_RESOURCE) return parseLegacyBody(body);
  if (resource === '') {
    if (looksLikeLegacyBody(body)) return parseLegacyBody(body);
    return invalid(resource, action, 'Sentry-Hook-Resource header missing');
  }

  const handler = HANDLERS.get(resource as SentryResource);
  if (!handler) {
    return unsupported(
      resource,
      action,
      `resource '${resource}' is not supported (supported: ${SUPPORTED_RESOURCES})`,
    );
  }
  if (!isRecord(body)) {
    return invalid(resource, undefined, `body is ${describeType(body)}, not a JSON object`);
  }
  if (action === undefined) return invalid(resource, undefined, 'action missing');
  if (!handler.actions.includes(action)) {
    return unsupported(
      resource,
      action,
      `${resource} action '${action}' is not supported (supported: ${handler.actions.join(', ')})`,
    );
  }
  const data = body.data;
  if (!isRecord(data)) {
    const detail =
      data === undefined || data === null
        ? 'data missing'
        : `data is ${describeType(data)}, not an object`;
    return invalid(resource, action, detail);
  }

  return handler.parse(data, {
    resource: resource as SentryResource,
    action,
    installationUuid: ident(record(body.installation)?.uuid),
    actor: readActor(body.actor),
  });
}
