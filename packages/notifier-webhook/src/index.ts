// The public API of @plugboard/notifier-webhook. Keep this a curated list of re-exports.
export { WebhookNotifier } from './notifier';
export { WEBHOOK_NOTIFIER_VERSION } from './version';
export type { WebhookConfig, WebhookFormat } from './config';
export type { PlugboardWebhookBody, PlugboardWebhookData, SentryLegacyWebhookBody } from './body';
