import { WebhookError } from '../errors';
import type { Notification, ParseResult } from '../model';
import { parseLegacyWebhook, parseSentryWebhook } from '../parse';
import { loadSample } from '../samples';

/** A webhook as it would arrive: the `Sentry-Hook-Resource` value and the parsed body. */
export interface WebhookPayload {
  /** `issue`, `event_alert`, ... or `legacy_webhook` for the legacy plugin body. */
  resource: string;
  body: unknown;
}

/**
 * A Notification built the way the relay builds it: from one of the SDK's
 * recorded Sentry samples (`'issue.created'`, see `SAMPLE_KINDS`; an unknown
 * kind throws `PB_PAYLOAD_UNSUPPORTED` naming the known ones) or from a
 * payload of your own. `overrides` are merged shallowly on top, so
 * `{ project: {...} }` replaces the whole project.
 *
 * Throws (`PB_PAYLOAD_INVALID` / `PB_PAYLOAD_UNSUPPORTED`) when the parser
 * rejects the payload, so a broken fixture fails the test that uses it
 * rather than producing a half-empty notification.
 */
export function buildNotification(
  kindOrPayload: string | WebhookPayload,
  overrides: Partial<Notification> = {},
): Notification {
  const payload = typeof kindOrPayload === 'string' ? samplePayload(kindOrPayload) : kindOrPayload;
  const result: ParseResult =
    payload.resource === 'legacy_webhook'
      ? parseLegacyWebhook(payload.body)
      : parseSentryWebhook({ resource: payload.resource, body: payload.body });
  if (!result.ok) {
    const what = typeof kindOrPayload === 'string' ? `sample "${kindOrPayload}"` : 'payload';
    throw new WebhookError(
      result.reason === 'unsupported_resource' ? 'PB_PAYLOAD_UNSUPPORTED' : 'PB_PAYLOAD_INVALID',
      `buildNotification: cannot build a notification from ${what} ` +
        `(resource "${payload.resource}"): ${result.reason}: ${result.detail}`,
    );
  }
  return { ...result.notification, ...overrides };
}

function samplePayload(kind: string): WebhookPayload {
  // loadSample knows the aliases (`legacy_webhook`) and names every known kind when it throws.
  const sample = loadSample(kind);
  return { resource: sample.resource, body: sample.body };
}
