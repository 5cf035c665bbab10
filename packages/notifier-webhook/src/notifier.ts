import { createHash } from 'node:crypto';
import {
  DeliveryError,
  NotificationPlugin,
  retryAfter,
  retryable,
  unrecoverable,
} from '@plugboard/sdk';
import type { ConfigField, Notification, NotifyContext } from '@plugboard/sdk';
import { plugboardBody, sentryLegacyBody } from './body';
import { CONFIG_FIELDS, configProblems, parseHeaders, parseUrls } from './config';
import type { WebhookConfig } from './config';
import { post } from './http';
import { displayUrl, sensitivePartsOf } from './redact';
import { signingKey, signWebhook } from './sign';
import { WEBHOOK_NOTIFIER_VERSION } from './version';

/** How long "already delivered to this URL" is remembered for a delivery's retries. */
const DELIVERED_TTL_SECONDS = 24 * 60 * 60;

interface Target {
  index: number;
  url: string;
  /** `webhook-id`: the idempotency key, suffixed per URL when there are several. */
  msgId: string;
  /** Store key marking this URL done for this delivery. */
  doneKey: string;
}

/**
 * POSTs each notification as JSON to one or more URLs, signed per Standard
 * Webhooks. The successor of Sentry's legacy WebHooks plugin (same title,
 * so the same `webhooks:` option prefix), with its body available as a
 * format.
 */
export class WebhookNotifier extends NotificationPlugin<WebhookConfig> {
  readonly slug = 'webhook';
  readonly title = 'WebHooks';
  readonly version = WEBHOOK_NOTIFIER_VERSION;
  override readonly description =
    'POST notifications as JSON to HTTP endpoints, signed per Standard Webhooks.';
  override readonly author = 'Plugboard';

  /**
   * No per-project cap (Sentry's default is 10 a minute): a webhook receiver
   * is a machine that does its own limiting and answers 429, which this
   * notifier honours; silently dropping notifications would lose data.
   */
  override rateLimit = null;

  override configFields(): ConfigField[] {
    return CONFIG_FIELDS.map((field) => ({ ...field }));
  }

  override validateConfig(config: WebhookConfig): string[] {
    return configProblems(config);
  }

  override async notify(
    notification: Notification,
    ctx: NotifyContext<WebhookConfig>,
  ): Promise<void> {
    const config = ctx.config;
    const problems = configProblems(config);
    if (problems.length > 0) {
      throw unrecoverable(`webhook: invalid configuration: ${problems.join('; ')}`);
    }
    const { urls } = parseUrls(config.urls);
    const { headers: extraHeaders } = parseHeaders(config.headers);
    const key = config.secret ? signingKey(config.secret) : undefined;
    const body = JSON.stringify(
      config.format === 'sentry-legacy'
        ? sentryLegacyBody(notification, ctx.idempotencyKey)
        : plugboardBody(notification, ctx.idempotencyKey),
    );
    const timeoutMs = Math.max(1, Math.min(config.timeoutMs, ctx.timeoutMs));
    const ownUserAgent = extraHeaders.some(([name]) => name.toLowerCase() === 'user-agent');
    const sensitive = [
      ...(config.secret ? [config.secret] : []),
      ...extraHeaders.map(([, value]) => value),
    ];

    const targets: Target[] = urls.map((url, index) => ({
      index,
      url,
      msgId: urls.length > 1 ? `${ctx.idempotencyKey}-${index}` : ctx.idempotencyKey,
      doneKey: `delivered:${ctx.instanceId}:${ctx.idempotencyKey}:${urlHash(url)}`,
    }));
    const pending = await this.skipDelivered(targets, ctx);

    const results = await Promise.allSettled(
      pending.map(async (target) => {
        const timestamp = Math.floor(Date.now() / 1000);
        const headers: Record<string, string> = {
          // An operator's own User-Agent line wins, whatever its case.
          ...(ownUserAgent ? {} : { 'User-Agent': `plugboard-webhook/${this.version}` }),
          ...Object.fromEntries(extraHeaders),
          'Content-Type': 'application/json',
          'webhook-id': target.msgId,
          'webhook-timestamp': String(timestamp),
        };
        if (key) headers['webhook-signature'] = signWebhook(key, target.msgId, timestamp, body);
        const started = Date.now();
        const status = await post({
          url: target.url,
          body,
          headers,
          timeoutMs,
          signal: ctx.signal,
          sensitive: [...sensitive, ...sensitivePartsOf(target.url)],
        });
        // Debug, not info: every attempt is in the relay's delivery log
        // already, and a line per success is noise at thousands a minute.
        ctx.logger.debug(
          {
            url: displayUrl(target.url),
            status,
            webhookId: target.msgId,
            ms: Date.now() - started,
          },
          'webhook.delivered',
        );
      }),
    );

    const failures: Failure[] = [];
    results.forEach((result, i) => {
      const target = pending[i] as Target;
      if (result.status === 'fulfilled') return;
      const failure = toFailure(result.reason, target);
      ctx.logger.warn(
        {
          url: displayUrl(target.url),
          code: failure.code,
          ...(failure.status !== undefined ? { status: failure.status } : {}),
          webhookId: target.msgId,
        },
        'webhook.failed',
      );
      failures.push(failure);
    });
    if (failures.length === 0) return;

    if (failures.some((f) => f.retryable)) {
      const failed = new Set(failures.map((f) => f.target));
      await this.markDelivered(
        pending.filter((t) => !failed.has(t)),
        ctx,
      );
    }
    throw combine(failures, targets.length);
  }

  /**
   * On a retry, leave out the URLs an earlier attempt of this delivery
   * already reached. Best effort: without the store every URL gets the
   * request again, with the same `webhook-id`, and receivers de-duplicate.
   */
  private async skipDelivered(
    targets: Target[],
    ctx: NotifyContext<WebhookConfig>,
  ): Promise<Target[]> {
    if (targets.length < 2 || ctx.attempt < 2) return targets;
    const pending: Target[] = [];
    for (const target of targets) {
      let done: boolean;
      try {
        done = (await ctx.store.get<boolean>(target.doneKey)) === true;
      } catch (err) {
        ctx.logger.warn({ code: (err as { code?: unknown }).code }, 'webhook.store_unavailable');
        return targets;
      }
      if (done) {
        ctx.logger.info(
          { url: displayUrl(target.url), webhookId: target.msgId },
          'webhook.skipped_already_delivered',
        );
      } else pending.push(target);
    }
    return pending;
  }

  private async markDelivered(targets: Target[], ctx: NotifyContext<WebhookConfig>): Promise<void> {
    try {
      for (const target of targets) {
        await ctx.store.set(target.doneKey, true, { ttlSeconds: DELIVERED_TTL_SECONDS });
      }
    } catch (err) {
      ctx.logger.warn({ code: (err as { code?: unknown }).code }, 'webhook.store_unavailable');
    }
  }
}

/** Short and stable: the store key must not hold the URL (it may carry a token). */
function urlHash(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 16);
}

interface Failure {
  target: Target;
  /** What was thrown, rethrown as-is when it is the only URL. */
  error: unknown;
  code: string;
  message: string;
  retryable: boolean;
  status?: number;
  retryAfterMs?: number;
}

/** Decided on `code`, not `instanceof`, like everything that reads SDK errors. */
function toFailure(error: unknown, target: Target): Failure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const code =
    typeof e.code === 'string' && e.code.startsWith('PB_DELIVERY_') ? e.code : 'PB_DELIVERY_FAILED';
  const message =
    error instanceof Error && code === e.code
      ? error.message
      : `${displayUrl(target.url)}: unexpected error`;
  return {
    target,
    error: code === e.code ? error : retryable(message),
    code,
    message,
    retryable: code !== 'PB_DELIVERY_UNRECOVERABLE',
    ...(typeof e.status === 'number' ? { status: e.status } : {}),
    ...(typeof e.retryAfterMs === 'number' ? { retryAfterMs: e.retryAfterMs } : {}),
  };
}

/**
 * One error for the whole delivery. With a single URL it is that URL's
 * error. With several, it lists each failed URL; it is retryable when any
 * failure is (a retry then re-sends only to URLs not yet reached, as far as
 * the store remembers), waiting as long as the longest Retry-After; it is
 * unrecoverable only when every failure is.
 */
function combine(failures: Failure[], total: number): unknown {
  const first = failures[0] as Failure;
  if (total === 1) return first.error;
  const message =
    `webhook: ${failures.length} of ${total} URLs failed: ` +
    failures
      .map((f) => `[${f.target.index + 1}] ${f.message}${f.retryable ? '' : ' (not retried)'}`)
      .join('; ');
  const statuses = new Set(failures.map((f) => f.status));
  const options = statuses.size === 1 && first.status !== undefined ? { status: first.status } : {};
  const retrying = failures.filter((f) => f.retryable);
  if (retrying.length === 0) return unrecoverable(message, options);
  const waits = retrying.map((f) => f.retryAfterMs).filter((ms): ms is number => ms !== undefined);
  if (waits.length > 0) return retryAfter(Math.max(...waits), message, options);
  if (retrying.every((f) => f.code === 'PB_DELIVERY_TIMEOUT')) {
    return new DeliveryError('PB_DELIVERY_TIMEOUT', message, options);
  }
  return retryable(message, options);
}
