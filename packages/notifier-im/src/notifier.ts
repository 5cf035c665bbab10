import axios, { type AxiosInstance } from 'axios';
import { NotificationPlugin, retryAfter, retryable, unrecoverable } from '@plugboard/sdk';
import type { ConfigField, Notification, NotifyContext } from '@plugboard/sdk';
import {
  CONFIG_FIELDS,
  configProblems,
  parseAddressMap,
  parseRecipients,
  type ImConfig,
} from './config';
import { renderMessage } from './message';
import { sentryMembers } from './recipients';
import { hmacSha256Signer, installSigner, mwsSigner, type RequestSigner } from './signers';
import { IM_NOTIFIER_VERSION } from './version';

/** How long "already messaged" is remembered for a delivery's retries. */
const SENT_TTL_SECONDS = 24 * 60 * 60;
/** Messages sent at once. */
const CONCURRENCY = 4;
/** Wait after a 429 without Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 30_000;
const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

export interface ImNotifierOptions {
  /** Clock of the request signer (tests). */
  now?: () => Date;
}

interface Recipient {
  email: string;
  user: string;
}

type Outcome =
  | { kind: 'sent'; r: Recipient }
  | { kind: 'rejected'; r: Recipient; reason: string }
  | { kind: 'retry'; r: Recipient; reason: string; retryAfterMs?: number };

/**
 * Messages each recipient of a project through a company IM API, every
 * request signed (the seed's MWS scheme by default). Recipients come from a
 * fixed list or the Sentry project's members, minus those who turned IM off.
 */
export class ImNotifier extends NotificationPlugin<ImConfig> {
  readonly slug = 'im';
  readonly title = 'IM';
  readonly version = IM_NOTIFIER_VERSION;
  override readonly description =
    'Message each recipient of a project through a signed IM public-account API.';
  override readonly author = 'Plugboard';

  constructor(private readonly options: ImNotifierOptions = {}) {
    super();
  }

  override configFields(): ConfigField[] {
    return CONFIG_FIELDS.map((field) => ({ ...field }));
  }

  override validateConfig(config: ImConfig): string[] {
    return configProblems(config);
  }

  /** The request signer for a config. Override to add a company scheme. */
  protected createSigner(config: ImConfig): RequestSigner {
    if (config.signatureScheme === 'hmac-sha256') {
      return hmacSha256Signer({
        clientId: config.clientId,
        clientSecret: config.clientSecret,
        ...(config.hmacStringToSign ? { stringToSign: config.hmacStringToSign } : {}),
        ...(config.hmacSignatureHeader ? { signatureHeader: config.hmacSignatureHeader } : {}),
        ...(config.hmacClientIdHeader ? { clientIdHeader: config.hmacClientIdHeader } : {}),
        ...(config.hmacTimestampHeader ? { timestampHeader: config.hmacTimestampHeader } : {}),
      });
    }
    return mwsSigner({ clientId: config.clientId, clientSecret: config.clientSecret });
  }

  override async notify(notification: Notification, ctx: NotifyContext<ImConfig>): Promise<void> {
    const config = ctx.config;
    const problems = configProblems(config);
    if (problems.length > 0) {
      throw unrecoverable(`im: invalid configuration: ${problems.join('; ')}`);
    }
    const project = notification.project?.slug;
    const recipients = await this.recipients(notification, ctx);
    if (recipients.length === 0) {
      ctx.logger.info({ project }, 'im.no_recipients');
      return;
    }
    const text = renderMessage(config.template, notification);
    const http = axios.create({
      baseURL: config.apiUrl.replace(/\/+$/, ''),
      timeout: Math.max(1, Math.min(config.timeoutMs, ctx.timeoutMs)),
      maxRedirects: 0,
      validateStatus: () => true,
      transformRequest: [(data: unknown) => data],
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': `plugboard-im/${this.version}`,
      },
    });
    installSigner(http, this.createSigner(config), this.options.now);

    const doneKey = (r: Recipient): string =>
      `sent:${ctx.instanceId}:${ctx.idempotencyKey}:${r.user}`;
    const pending: Recipient[] = [];
    const outcomes: Outcome[] = [];
    let alreadySent = 0;
    for (const r of recipients) {
      const before = ctx.attempt > 1 ? await this.safeGet(ctx, doneKey(r)) : undefined;
      if (before === 'sent') alreadySent++;
      else if (before === 'rejected') {
        outcomes.push({ kind: 'rejected', r, reason: 'refused on an earlier attempt' });
      } else pending.push(r);
    }

    let fatal: unknown;
    const queue = [...pending];
    const worker = async (): Promise<void> => {
      for (let r = queue.shift(); r && fatal === undefined; r = queue.shift()) {
        try {
          const outcome = await this.send(http, r, text, ctx);
          outcomes.push(outcome);
          if (outcome.kind !== 'retry') {
            await this.safeSet(ctx, doneKey(r), outcome.kind);
          }
        } catch (err) {
          fatal ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, pending.length) }, worker));
    if (fatal !== undefined) throw fatal;

    for (const o of outcomes) {
      if (o.kind === 'rejected' && o.reason === 'refused on an earlier attempt') continue;
      if (o.kind === 'sent') ctx.logger.info({ to: o.r.user, project }, 'im.sent');
      else ctx.logger.warn({ to: o.r.user, project, reason: o.reason }, `im.${o.kind}`);
    }
    const sent = outcomes.filter((o) => o.kind === 'sent').length + alreadySent;
    const retries = outcomes.filter((o) => o.kind === 'retry');
    const rejected = outcomes.filter((o) => o.kind === 'rejected');
    const list = (os: Outcome[]): string =>
      os.map((o) => `${o.r.user} (${o.kind === 'sent' ? 'sent' : o.reason})`).join('; ');
    if (retries.length > 0) {
      const message = `im: ${retries.length} of ${recipients.length} recipients to retry: ${list(retries)}`;
      const waits = retries
        .map((o) => (o.kind === 'retry' ? o.retryAfterMs : undefined))
        .filter((ms): ms is number => ms !== undefined);
      if (waits.length > 0) throw retryAfter(Math.max(...waits), message);
      throw retryable(message);
    }
    if (sent === 0 && rejected.length > 0) {
      throw unrecoverable(`im: every recipient was refused: ${list(rejected)}`);
    }
  }

  /** Recipients of this notification, addressed, minus those who turned IM off. */
  private async recipients(
    notification: Notification,
    ctx: NotifyContext<ImConfig>,
  ): Promise<Recipient[]> {
    const config = ctx.config;
    const project = notification.project?.slug;
    let emails: string[];
    if (config.recipientSource === 'sentry') {
      const org = config.sentryOrg || notification.organizationSlug;
      if (!org || !project) {
        throw unrecoverable(
          'im: cannot look up project members: the webhook names no project or organization; set sentryOrg',
        );
      }
      emails = await sentryMembers(config, org, project, ctx);
    } else {
      emails = parseRecipients(config.recipients).emails;
    }
    const mapping = config.addressing === 'mapping' ? parseAddressMap(config.addressMap).map : null;
    const out: Recipient[] = [];
    const seen = new Set<string>();
    for (const email of emails) {
      let on: boolean;
      try {
        on = ctx.users
          ? await ctx.users.isNotificationEnabled(email, project, {
              defaultEnabled: config.defaultOptIn,
            })
          : config.defaultOptIn;
      } catch (err) {
        throw retryable(`im: cannot read the user settings of ${email}`, { cause: err });
      }
      if (!on) {
        ctx.logger.debug({ email, project }, 'im.opted_out');
        continue;
      }
      const user = mapping ? mapping.get(email) : email.slice(0, email.indexOf('@'));
      if (!user) {
        ctx.logger.warn({ email }, 'im.unmapped_recipient_skipped');
        continue;
      }
      if (seen.has(user)) continue;
      seen.add(user);
      out.push({ email, user });
    }
    return out;
  }

  private async send(
    http: AxiosInstance,
    r: Recipient,
    text: string,
    ctx: NotifyContext<ImConfig>,
  ): Promise<Outcome> {
    const body = JSON.stringify({
      from: ctx.config.sender,
      to: r.user,
      text,
      msgId: `${ctx.idempotencyKey}-${r.user}`,
    });
    let res;
    try {
      res = await http.post<unknown>('/messages', body, { signal: ctx.signal });
    } catch (err) {
      // Not attached as cause: axios errors carry the request config (signed headers).
      const code = (err as { code?: unknown }).code;
      return {
        kind: 'retry',
        r,
        reason: `request failed${typeof code === 'string' ? ` (${code})` : ''}`,
      };
    }
    const status = res.status;
    const apiError = errorText(res.data);
    if (status >= 200 && status < 300 && apiError === undefined) return { kind: 'sent', r };
    if (status === 401 || status === 403) {
      throw unrecoverable(
        `im: the IM API refused the credentials (HTTP ${status}${apiError ? `: ${apiError}` : ''}); check clientId and clientSecret (and signatureScheme)`,
        { status },
      );
    }
    if (status === 429) {
      const wait = parseRetryAfter(res.headers['retry-after']);
      return { kind: 'retry', r, reason: 'HTTP 429', retryAfterMs: wait ?? DEFAULT_RETRY_AFTER_MS };
    }
    if (status >= 500 || status === 408) {
      const wait = parseRetryAfter(res.headers['retry-after']);
      return {
        kind: 'retry',
        r,
        reason: `HTTP ${status}`,
        ...(wait !== undefined ? { retryAfterMs: wait } : {}),
      };
    }
    return {
      kind: 'rejected',
      r,
      reason: `HTTP ${status}${apiError ? `: ${apiError}` : ''}`,
    };
  }

  private async safeGet(ctx: NotifyContext<ImConfig>, key: string): Promise<unknown> {
    try {
      return await ctx.store.get(key);
    } catch (err) {
      ctx.logger.warn({ code: (err as { code?: unknown }).code }, 'im.store_unavailable');
      return undefined;
    }
  }

  private async safeSet(ctx: NotifyContext<ImConfig>, key: string, value: unknown): Promise<void> {
    try {
      await ctx.store.set(key, value, { ttlSeconds: SENT_TTL_SECONDS });
    } catch (err) {
      ctx.logger.warn({ code: (err as { code?: unknown }).code }, 'im.store_unavailable');
    }
  }
}

/** The API's `{ "error": "…" }`, bounded; undefined when there is none. */
function errorText(data: unknown): string | undefined {
  let d = data;
  if (typeof d === 'string') {
    try {
      d = JSON.parse(d) as unknown;
    } catch {
      return undefined;
    }
  }
  if (typeof d !== 'object' || d === null) return undefined;
  const e = (d as Record<string, unknown>).error;
  if (typeof e === 'string' && e !== '') return e.slice(0, 200);
  return undefined;
}

function parseRetryAfter(value: unknown): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string' && typeof text !== 'number') return undefined;
  const s = String(text).trim();
  let ms: number;
  if (/^\d+$/.test(s)) ms = Number(s) * 1000;
  else {
    const at = Date.parse(s);
    if (Number.isNaN(at)) return undefined;
    ms = at - Date.now();
  }
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}
