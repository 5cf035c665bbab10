import { NotificationPlugin, retryAfter, retryable, unrecoverable } from '@plugboard/sdk';
import type { ConfigField, Notification, NotifyContext, TargetRateLimit } from '@plugboard/sdk';
import { checkTemplate, plainTitle, renderFitted } from '@plugboard/templates';
import { displayUrl, postJson, scrub } from '@plugboard/robot-http';
import { signedUrl } from './sign';

/** One instance's settings, after the relay applied defaults and coerced types. */
export type DingTalkConfig = {
  /** `https://oapi.dingtalk.com/robot/send?access_token=…` */
  webhookUrl: string;
  /** `SEC…`: the robot's signing secret ("加签"), when it has one. */
  secret?: string;
  /** A custom keyword the robot requires in every message. */
  keyword?: string;
  /** Phone numbers to @mention, separated by commas, spaces or new lines. */
  atMobiles?: string;
  /** DingTalk user ids to @mention. */
  atUserIds?: string;
  atAll: boolean;
  /** A Handlebars template replacing the default one (see @plugboard/templates). */
  template?: string;
};

/** DingTalk refuses bodies over 20,000 bytes; stay below with room to spare. */
export const MAX_BODY_BYTES = 19_500;

/** After 20 messages in a minute DingTalk blocks the robot for up to 10 minutes. */
export const RATE_LIMIT_RETRY_MS = 60_000;

/** `errcode`s meaning "too many messages": retried later. */
export const RATE_LIMIT_CODES: ReadonlySet<number> = new Set([130101, 130102, 410100, 660026]);

/**
 * `errcode`s that retrying cannot fix: the robot, token, signature, keyword,
 * IP allow-list or message itself is wrong. Any other non-zero code is
 * treated the same way, except `-1` (system busy), which is retried.
 */
export const CONFIG_ERROR_CODES: Readonly<Record<number, string>> = {
  300001: 'invalid access_token (the robot was removed or the URL is wrong)',
  310000: 'security settings refused the message (signature, keyword or IP allow-list)',
  400013: 'the group was dissolved',
  400101: 'the access_token does not exist',
  400102: 'the robot is disabled',
  400105: 'unsupported message type',
  430101: 'the message content is not allowed',
};

export const DINGTALK_FIELDS: readonly ConfigField[] = [
  {
    name: 'webhookUrl',
    label: 'Webhook URL',
    // The URL carries the robot's access token: stored write-only, never shown.
    type: 'secret',
    help: 'The robot webhook, https://oapi.dingtalk.com/robot/send?access_token=… (kept secret: its token lets anyone post).',
    placeholder: 'https://oapi.dingtalk.com/robot/send?access_token=…',
  },
  {
    name: 'secret',
    label: 'Signing secret',
    type: 'secret',
    required: false,
    help: 'The SEC… secret when the robot uses "additional signature" (加签).',
  },
  {
    name: 'keyword',
    label: 'Keyword',
    type: 'text',
    required: false,
    help: 'When the robot only accepts messages with a custom keyword, that keyword; it is put at the start of each message.',
  },
  {
    name: 'atMobiles',
    label: '@ phone numbers',
    type: 'text',
    required: false,
    help: 'Phone numbers of people to @mention, separated by commas.',
  },
  {
    name: 'atUserIds',
    label: '@ user ids',
    type: 'text',
    required: false,
    help: 'DingTalk user ids to @mention, separated by commas.',
  },
  { name: 'atAll', label: '@ everyone', type: 'bool', default: false, required: false },
  {
    name: 'template',
    label: 'Message template',
    type: 'textarea',
    required: false,
    help: 'A Handlebars template (Markdown) replacing the default message; values are escaped for Markdown.',
  },
];

export function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,;]+/)
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

export interface DingTalkMessage {
  msgtype: 'markdown';
  markdown: { title: string; text: string };
  at: { atMobiles: string[]; atUserIds: string[]; isAtAll: boolean };
}

export interface DingTalkNotifierOptions {
  /** Milliseconds since the epoch; injectable for signature tests. */
  now?: () => number;
}

/** Sends Sentry notifications to a DingTalk group robot as Markdown messages. */
export class DingTalkNotifier extends NotificationPlugin<DingTalkConfig> {
  readonly slug = 'dingtalk';
  readonly title = 'DingTalk';
  readonly version = '0.1.0';
  override readonly description =
    'Send notifications to a DingTalk group robot: signed, @mentions, kept under the size limit.';
  override readonly author = 'Plugboard';

  /**
   * A robot takes 20 messages a minute, then DingTalk blocks it for 10
   * minutes. The relay keeps each instance under that (holding deliveries
   * back, folding a backlog into one digest), so nothing is dropped here.
   */
  override rateLimit = null;

  override targetRateLimit(): TargetRateLimit {
    return { limit: 20, perMs: 60_000 };
  }

  private readonly now: () => number;

  constructor(options: DingTalkNotifierOptions = {}) {
    super();
    this.now = options.now ?? Date.now;
  }

  override configFields(): ConfigField[] {
    return DINGTALK_FIELDS.map((field) => ({ ...field }));
  }

  override validateConfig(config: DingTalkConfig): string[] {
    const problems: string[] = [];
    try {
      const url = new URL(config.webhookUrl);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        problems.push('webhookUrl: must be an http(s) URL');
      } else if (!url.searchParams.get('access_token')) {
        problems.push(
          `webhookUrl: ${displayUrl(config.webhookUrl)} has no access_token in its query`,
        );
      }
    } catch {
      problems.push('webhookUrl: must be an absolute URL (value hidden)');
    }
    for (const mobile of splitList(config.atMobiles)) {
      if (!/^\+?[0-9][0-9-]{4,19}$/.test(mobile)) {
        problems.push(`atMobiles: ${JSON.stringify(mobile)} is not a phone number`);
      }
    }
    if (config.template) {
      const problem = checkTemplate(config.template);
      if (problem) problems.push(`template: ${problem}`);
    }
    return problems;
  }

  /** The message this notifier would send, without sending it. */
  buildMessage(notification: Notification, config: DingTalkConfig): DingTalkMessage {
    const atMobiles = splitList(config.atMobiles);
    const atUserIds = splitList(config.atUserIds);
    const keyword = config.keyword?.trim() ?? '';
    const title = `${keyword ? `${keyword} ` : ''}${plainTitle(notification, 64)}`;
    // DingTalk highlights a mention only when the text carries `@<mobile>` / `@<userId>`.
    const mentions = [...atMobiles, ...atUserIds].map((m) => `@${m}`).join(' ');
    const wrap = (text: string): DingTalkMessage => ({
      msgtype: 'markdown',
      markdown: {
        title,
        text: [keyword, text, mentions].filter((part) => part !== '').join('\n\n'),
      },
      at: { atMobiles, atUserIds, isAtAll: config.atAll === true },
    });
    const fitted = renderFitted(config.template || undefined, notification, {
      escape: 'markdown',
      maxBytes: MAX_BODY_BYTES,
      measure: (text) => Buffer.byteLength(JSON.stringify(wrap(text)), 'utf8'),
    });
    return wrap(fitted.text);
  }

  /** For `plugboard render`: the body exactly as `notify` would POST it. */
  render(
    notification: Notification,
    config: DingTalkConfig,
  ): { contentType: string; body: string } {
    return {
      contentType: 'application/json',
      body: JSON.stringify(this.buildMessage(notification, config)),
    };
  }

  override async notify(
    notification: Notification,
    ctx: NotifyContext<DingTalkConfig>,
  ): Promise<void> {
    const config = ctx.config;
    const problems = this.validateConfig(config);
    if (problems.length > 0) {
      throw unrecoverable(`dingtalk: invalid configuration: ${problems.join('; ')}`);
    }
    const body = JSON.stringify(this.buildMessage(notification, config));
    const url = config.secret
      ? signedUrl(config.webhookUrl, config.secret, this.now())
      : config.webhookUrl;
    const token = new URL(config.webhookUrl).searchParams.get('access_token') ?? '';
    const sensitive = [url, config.webhookUrl, token, ...(config.secret ? [config.secret] : [])];
    const started = Date.now();
    const answer = await postJson({
      url,
      body,
      timeoutMs: ctx.timeoutMs,
      signal: ctx.signal,
      sensitive,
      name: 'dingtalk',
    });
    const where = `dingtalk: ${displayUrl(url)}`;
    const errcode = answer.json?.errcode;
    const errmsg = scrub(String(answer.json?.errmsg ?? ''), sensitive);
    if (typeof errcode !== 'number') {
      throw retryable(`${where} answered HTTP ${answer.status} without an errcode`, {
        status: answer.status,
      });
    }
    const fields = { url: displayUrl(url), errcode, ms: Date.now() - started };
    if (errcode === 0) {
      ctx.logger.info({ ...fields, bytes: Buffer.byteLength(body) }, 'dingtalk.delivered');
      return;
    }
    ctx.logger.warn({ ...fields, errmsg }, 'dingtalk.refused');
    const said = `errcode ${errcode} "${errmsg}"`;
    if (RATE_LIMIT_CODES.has(errcode)) {
      throw retryAfter(
        RATE_LIMIT_RETRY_MS,
        `${where}: robot rate limit (${said}); DingTalk blocks a robot for up to 10 minutes after 20 messages a minute`,
      );
    }
    if (errcode === -1) throw retryable(`${where}: DingTalk is busy (${said})`);
    const meaning = CONFIG_ERROR_CODES[errcode];
    throw unrecoverable(
      `${where}: DingTalk refused the message: ${said}${meaning ? ` (${meaning})` : ''}`,
    );
  }
}
