import { NotificationPlugin, retryAfter, retryable, unrecoverable } from '@plugboard/sdk';
import type { ConfigField, Notification, NotifyContext, TargetRateLimit } from '@plugboard/sdk';
import {
  checkTemplate,
  defaultTemplate,
  plainTitle,
  renderFitted,
  safeUrl,
} from '@plugboard/templates';
import { displayUrl, postJson, scrub } from '@plugboard/robot-http';
import { feishuSign } from './sign';

export type FeishuMessageType = 'interactive' | 'post';

/** One instance's settings, after the relay applied defaults and coerced types. */
export type FeishuConfig = {
  /** `https://open.feishu.cn/open-apis/bot/v2/hook/<id>` (or open.larksuite.com). */
  webhookUrl: string;
  /** The bot's signing secret ("签名校验"), when it has one. */
  secret?: string;
  msgType: FeishuMessageType;
  /** A custom keyword the bot requires in every message. */
  keyword?: string;
  /** open_ids (`ou_…`) to @mention, separated by commas. */
  atUserIds?: string;
  atAll: boolean;
  /** A Handlebars template replacing the default one (see @plugboard/templates). */
  template?: string;
};

/** Feishu refuses custom-bot request bodies over 20 KB; stay below with room to spare. */
export const MAX_BODY_BYTES = 19_500;

/** A custom bot takes 100 messages a minute and 5 a second. */
export const RATE_LIMIT_RETRY_MS = 10_000;

/**
 * `code`s meaning "too many requests": retried later. 9499 is Feishu's
 * generic "Bad Request" too, so it counts only when its message speaks of a
 * frequency limit.
 */
export const RATE_LIMIT_CODES: ReadonlySet<number> = new Set([11232, 9499]);

export function isRateLimited(code: number, msg: string): boolean {
  return code === 11232 || (code === 9499 && /frequen|too many|limit/i.test(msg));
}

/** `code`s that retrying cannot fix; any other non-zero code is treated the same way. */
export const CONFIG_ERROR_CODES: Readonly<Record<number, string>> = {
  19001: 'the message is invalid',
  19002: 'the message is invalid',
  19021: 'signature check failed (wrong secret, or the clock is off by more than an hour)',
  19022: 'the relay’s IP address is not on the bot’s allow-list',
  19024: 'the message does not contain the bot’s keyword',
};

export const FEISHU_FIELDS: readonly ConfigField[] = [
  {
    name: 'webhookUrl',
    label: 'Webhook URL',
    // The hook id in the path lets anyone post to the group: write-only.
    type: 'secret',
    help: 'The custom bot webhook, https://open.feishu.cn/open-apis/bot/v2/hook/… (kept secret).',
    placeholder: 'https://open.feishu.cn/open-apis/bot/v2/hook/…',
  },
  {
    name: 'secret',
    label: 'Signing secret',
    type: 'secret',
    required: false,
    help: 'The secret shown when "signature verification" (签名校验) is on.',
  },
  {
    name: 'msgType',
    label: 'Message type',
    type: 'select',
    default: 'interactive',
    required: false,
    choices: [
      { value: 'interactive', label: 'Card (interactive)' },
      { value: 'post', label: 'Rich text (post)' },
    ],
  },
  {
    name: 'keyword',
    label: 'Keyword',
    type: 'text',
    required: false,
    help: 'When the bot only accepts messages with a custom keyword, that keyword; it is put in the title.',
  },
  {
    name: 'atUserIds',
    label: '@ user open_ids',
    type: 'text',
    required: false,
    help: 'open_ids (ou_…) of people to @mention, separated by commas.',
  },
  { name: 'atAll', label: '@ everyone', type: 'bool', default: false, required: false },
  {
    name: 'template',
    label: 'Message template',
    type: 'textarea',
    required: false,
    help: 'A Handlebars template replacing the default message; Markdown (lark_md) in cards, plain text in posts.',
  },
];

export function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,;]+/)
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

type PostElement =
  | { tag: 'text'; text: string }
  | { tag: 'a'; text: string; href: string }
  | { tag: 'at'; user_id: string };

export interface FeishuNotifierOptions {
  /** Milliseconds since the epoch; injectable for signature tests. */
  now?: () => number;
}

const LINK = /\[([^\]\n]*)\]\((https?:\/\/[^)\s]+)\)/g;

/**
 * The link targets a post may have: Sentry's links for the notification
 * (which the relay trusts), and URLs written in the template itself. Event
 * text is defanged when it is rendered, so it holds no URL; this list keeps
 * a link out even if some value slipped through.
 */
function templateHrefs(notification: Notification, template: string): Set<string> {
  const n = notification;
  const trusted = [n.url, n.links.issue, n.links.event, n.links.alert];
  for (const item of n.digest?.items ?? []) trusted.push(item.url);
  const hrefs = new Set(template.match(/https?:\/\/[^)\s]+/g) ?? []);
  for (const url of trusted) {
    const safe = safeUrl(url);
    if (safe) hrefs.add(safe);
  }
  return hrefs;
}

/**
 * One line of plain template output as post elements: `[label](url)` becomes
 * a link when `hrefs` has the URL, and stays text otherwise.
 */
function postLine(line: string, hrefs: ReadonlySet<string>): PostElement[] {
  const out: PostElement[] = [];
  let last = 0;
  for (const match of line.matchAll(LINK)) {
    const href = match[2] as string;
    if (!hrefs.has(href)) continue;
    const index = match.index ?? 0;
    if (index > last) out.push({ tag: 'text', text: line.slice(last, index) });
    out.push({ tag: 'a', text: match[1] || href, href });
    last = index + match[0].length;
  }
  if (last < line.length) out.push({ tag: 'text', text: line.slice(last) });
  return out;
}

/** Markdown decoration of the default templates, which a post shows literally. */
function plainLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/^#{1,6}\s+/, '').replace(/\*\*/g, ''))
    .filter((line, i, all) => line !== '' || (i > 0 && all[i - 1] !== ''));
}

/**
 * lark_md has no headings: the card header already shows the title, so a
 * leading heading is dropped, and any other heading becomes bold.
 */
export function cardMarkdown(text: string): string {
  const lines = text.split('\n');
  if (/^#{1,6}\s/.test(lines[0] ?? '')) {
    lines.shift();
    while (lines[0] === '') lines.shift();
  }
  return lines.map((line) => line.replace(/^#{1,6}\s+(.*)$/, '**$1**')).join('\n');
}

function headerColour(notification: Notification): string {
  const level = String(notification.level ?? '');
  if (notification.kind.endsWith('.resolved')) return 'green';
  if (notification.metricAlert?.status === 'warning' || level === 'warning') return 'orange';
  if (['fatal', 'error'].includes(level) || notification.metricAlert?.status === 'critical') {
    return 'red';
  }
  return 'blue';
}

/** Sends Sentry notifications to a Feishu (Lark) group custom bot, as a card or a post. */
export class FeishuNotifier extends NotificationPlugin<FeishuConfig> {
  readonly slug = 'feishu';
  readonly title = 'Feishu';
  readonly version = '0.1.0';
  override readonly description =
    'Send notifications to a Feishu (Lark) group bot as cards or rich text: signed, with @mentions.';
  override readonly author = 'Plugboard';

  /**
   * Feishu takes 100 messages a minute (and 5 a second) per bot. The relay
   * keeps each instance under the minute limit, holding deliveries back and
   * folding a backlog into one digest, so nothing is dropped here.
   */
  override rateLimit = null;

  override targetRateLimit(): TargetRateLimit {
    return { limit: 100, perMs: 60_000 };
  }

  private readonly now: () => number;

  constructor(options: FeishuNotifierOptions = {}) {
    super();
    this.now = options.now ?? Date.now;
  }

  override configFields(): ConfigField[] {
    return FEISHU_FIELDS.map((field) => ({ ...field }));
  }

  override validateConfig(config: FeishuConfig): string[] {
    const problems: string[] = [];
    try {
      const url = new URL(config.webhookUrl);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        problems.push('webhookUrl: must be an http(s) URL');
      }
    } catch {
      problems.push('webhookUrl: must be an absolute URL (value hidden)');
    }
    for (const id of splitList(config.atUserIds)) {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
        problems.push(`atUserIds: ${JSON.stringify(id)} is not a user id`);
      }
    }
    if (config.template) {
      const problem = checkTemplate(config.template);
      if (problem) problems.push(`template: ${problem}`);
    }
    return problems;
  }

  /** The body this notifier would send at `timestampMs`, without sending it. */
  buildBody(
    notification: Notification,
    config: FeishuConfig,
    timestampMs: number = this.now(),
  ): Record<string, unknown> {
    const signature: Record<string, string> = {};
    if (config.secret) {
      const timestamp = Math.floor(timestampMs / 1000);
      signature.timestamp = String(timestamp);
      signature.sign = feishuSign(config.secret, timestamp);
    }
    const keyword = config.keyword?.trim() ?? '';
    const title = `${keyword ? `${keyword} ` : ''}${plainTitle(notification, 80)}`;
    const mentions = [...(config.atAll === true ? ['all'] : []), ...splitList(config.atUserIds)];
    const template = config.template || undefined;

    if (config.msgType === 'post') {
      const hrefs = templateHrefs(notification, template ?? defaultTemplate(notification.kind));
      const wrap = (text: string): Record<string, unknown> => {
        const content: PostElement[][] = plainLines(text).map((line) => postLine(line, hrefs));
        if (mentions.length > 0) content.push(mentions.map((id) => ({ tag: 'at', user_id: id })));
        return {
          ...signature,
          msg_type: 'post',
          content: { post: { zh_cn: { title, content } } },
        };
      };
      // Post text elements are plain text: values are defanged, not escaped,
      // so no `[label](https://…)` of an event's can reach postLine().
      const fitted = renderFitted(template, notification, {
        escape: 'none',
        maxBytes: MAX_BODY_BYTES,
        measure: (text) => Buffer.byteLength(JSON.stringify(wrap(text)), 'utf8'),
      });
      return wrap(fitted.text);
    }

    const url = notification.url;
    const wrap = (text: string): Record<string, unknown> => {
      const elements: unknown[] = [
        { tag: 'div', text: { tag: 'lark_md', content: cardMarkdown(text) } },
      ];
      if (mentions.length > 0) {
        const at = mentions.map((id) => `<at id=${id}></at>`).join(' ');
        elements.push({ tag: 'div', text: { tag: 'lark_md', content: at } });
      }
      if (url && /^https?:\/\//.test(url)) {
        elements.push({
          tag: 'action',
          actions: [
            {
              tag: 'button',
              text: { tag: 'plain_text', content: 'View in Sentry' },
              type: 'primary',
              url,
            },
          ],
        });
      }
      return {
        ...signature,
        msg_type: 'interactive',
        card: {
          config: { wide_screen_mode: true },
          header: {
            title: { tag: 'plain_text', content: title },
            template: headerColour(notification),
          },
          elements,
        },
      };
    };
    const fitted = renderFitted(template, notification, {
      escape: 'markdown',
      maxBytes: MAX_BODY_BYTES,
      measure: (text) => Buffer.byteLength(JSON.stringify(wrap(text)), 'utf8'),
    });
    return wrap(fitted.text);
  }

  /** For `plugboard render`: the body as `notify` would POST it (signed at the current time). */
  render(notification: Notification, config: FeishuConfig): { contentType: string; body: string } {
    return {
      contentType: 'application/json',
      body: JSON.stringify(
        this.buildBody(notification, { ...config, msgType: config.msgType ?? 'interactive' }),
      ),
    };
  }

  override async notify(
    notification: Notification,
    ctx: NotifyContext<FeishuConfig>,
  ): Promise<void> {
    const config = ctx.config;
    const problems = this.validateConfig(config);
    if (problems.length > 0) {
      throw unrecoverable(`feishu: invalid configuration: ${problems.join('; ')}`);
    }
    const body = JSON.stringify(this.buildBody(notification, config));
    const path = (() => {
      try {
        return new URL(config.webhookUrl).pathname;
      } catch {
        return '';
      }
    })();
    const hookId = path.split('/').pop() ?? '';
    const sensitive = [config.webhookUrl, hookId, ...(config.secret ? [config.secret] : [])];
    const started = Date.now();
    const answer = await postJson({
      url: config.webhookUrl,
      body,
      timeoutMs: ctx.timeoutMs,
      signal: ctx.signal,
      sensitive,
      name: 'feishu',
      display: hostOf(config.webhookUrl),
    });
    const where = `feishu: ${hostOf(config.webhookUrl)}`;
    const json = answer.json ?? {};
    const code = typeof json.code === 'number' ? json.code : json.StatusCode;
    const msg = scrub(String(json.msg ?? json.StatusMessage ?? ''), sensitive);
    if (typeof code !== 'number') {
      throw retryable(`${where} answered HTTP ${answer.status} without a code`, {
        status: answer.status,
      });
    }
    const fields = { host: hostOf(config.webhookUrl), code, ms: Date.now() - started };
    if (code === 0) {
      ctx.logger.info({ ...fields, bytes: Buffer.byteLength(body) }, 'feishu.delivered');
      return;
    }
    ctx.logger.warn({ ...fields, msg }, 'feishu.refused');
    const said = `code ${code} "${msg}"`;
    if (isRateLimited(code, msg)) {
      throw retryAfter(RATE_LIMIT_RETRY_MS, `${where}: bot rate limit (${said})`);
    }
    const meaning = CONFIG_ERROR_CODES[code];
    throw unrecoverable(
      `${where}: Feishu refused the message: ${said}${meaning ? ` (${meaning})` : ''}`,
    );
  }
}

/** Scheme and host only: the path of a Feishu hook is its secret. */
function hostOf(url: string): string {
  const shown = displayUrl(url);
  const match = /^[a-z]+:\/\/[^/]+/i.exec(shown);
  return match ? match[0] : shown;
}
