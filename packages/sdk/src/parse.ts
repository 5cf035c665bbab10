import type { ParseResult } from './model';

export interface SentryWebhookInput {
  /** Value of the `Sentry-Hook-Resource` header. */
  resource: string;
  /** The parsed JSON body `{action, installation, data, actor}`. */
  body: unknown;
}

/** `resource.action` pairs the parser builds notifications from. */
export const SUPPORTED_KINDS: readonly string[] = [];

/** Build a Notification from an Integration Platform webhook. Never throws. */
export function parseSentryWebhook(_input: SentryWebhookInput): ParseResult {
  throw new Error('not implemented yet');
}

/** Build a Notification from the legacy WebHooks-plugin body. Never throws. */
export function parseLegacyWebhook(_body: unknown): ParseResult {
  throw new Error('not implemented yet');
}
