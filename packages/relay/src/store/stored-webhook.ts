import {
  parseLegacyWebhook,
  parseSentryWebhook,
  type NotificationDigest,
  type ParseResult,
} from '@plugboard/sdk';
import type { WebhookSource } from './types';

/**
 * Stored webhooks as notifications. A job's webhook is read back from the
 * store on every attempt (the body as received, so a relay upgrade renders
 * old deliveries with new code), whether Sentry's, the legacy plugin's, or
 * a digest the relay made itself.
 */

/** The body of a relay-made `digest` webhook: the latest notification and its digest. */
export interface DigestBody {
  digest: NotificationDigest;
  /** The latest notification's webhook, as received. */
  source: 'sentry' | 'legacy';
  resource: string;
  body: unknown;
}

/**
 * A stored webhook as a notification: Sentry's and the legacy plugin's
 * bodies as received, and the relay's own digests (the latest notification
 * with its `digest`).
 */
export function parseStoredWebhook(
  source: WebhookSource,
  resource: string,
  body: Buffer,
): ParseResult {
  const json = JSON.parse(body.toString('utf8')) as unknown;
  if (source === 'legacy') return parseLegacyWebhook(json);
  if (source === 'sentry') return parseSentryWebhook({ resource, body: json });
  const d = json as DigestBody;
  const inner =
    d.source === 'legacy'
      ? parseLegacyWebhook(d.body)
      : parseSentryWebhook({ resource: d.resource, body: d.body });
  if (inner.ok) inner.notification.digest = d.digest;
  return inner;
}
