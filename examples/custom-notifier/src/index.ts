import {
  NotificationPlugin,
  retryAfter,
  retryable,
  unrecoverable,
  type ConfigField,
  type Notification,
  type NotifyContext,
} from '@plugboard/sdk';

const LEVELS = ['debug', 'info', 'warning', 'error', 'fatal'];
const LEVEL_EMOJI: Record<string, string> = {
  fatal: ':red_circle:',
  error: ':large_orange_diamond:',
  warning: ':warning:',
  info: ':information_source:',
  debug: ':grey_question:',
};

/**
 * Mattermost splits a longer webhook text into several posts; keep one alert
 * in one post.
 */
export const MAX_TEXT_CHARS = 4000;

/** One instance's settings, after the relay applied defaults and coerced types. */
export type MattermostConfig = {
  /** `https://mattermost.example.com/hooks/<key>`: the key is the credential. */
  webhookUrl: string;
  channel?: string;
  username: string;
  iconUrl?: string;
  minLevel: string;
};

/** The body of a Mattermost incoming webhook request (the fields this notifier uses). */
export interface MattermostMessage {
  text: string;
  channel?: string;
  username?: string;
  icon_url?: string;
  props?: Record<string, unknown>;
}

/** Markdown text of one notification: level, project, title (linked), message, rules. */
export function formatMessage(notification: Notification): string {
  const level = notification.level ?? '';
  const project = notification.project?.slug ?? notification.project?.name;
  const title = notification.url
    ? `[${escapeMarkdown(notification.title)}](${notification.url})`
    : escapeMarkdown(notification.title);
  const lines = [
    `${LEVEL_EMOJI[level] ?? ':bell:'} **${title}**`,
    [project ? `project \`${project}\`` : '', level ? `level \`${level}\`` : '', notification.kind]
      .filter((part) => part !== '')
      .join(' · '),
    notification.message ? `> ${escapeMarkdown(notification.message)}` : '',
    notification.triggeringRules.length > 0
      ? `Rules: ${notification.triggeringRules.map(escapeMarkdown).join(', ')}`
      : '',
  ].filter((line) => line !== '');
  const text = lines.join('\n');
  return text.length <= MAX_TEXT_CHARS ? text : `${text.slice(0, MAX_TEXT_CHARS - 1)}…`;
}

function escapeMarkdown(text: string): string {
  return text.replace(/([\\`*_[\]])/g, '\\$1');
}

export class MattermostNotifier extends NotificationPlugin<MattermostConfig> {
  readonly slug = 'mattermost'; // equals the entry-point name in package.json
  readonly title = 'Mattermost';
  readonly version = '1.0.0';
  override readonly description = 'Posts Sentry alerts to a Mattermost incoming webhook.';
  override readonly author = 'Plugboard examples';
  // rateLimit stays at Sentry's default: 10 notifications per project per minute.

  override configFields(): ConfigField[] {
    return [
      {
        name: 'webhookUrl',
        label: 'Incoming webhook URL',
        // The URL holds the webhook's key: a secret, scrubbed from logs.
        type: 'secret',
        help: 'Integrations → Incoming Webhooks in Mattermost: https://<host>/hooks/<key>',
        placeholder: 'https://mattermost.example.com/hooks/xxxxxxxxxxxxxxxxxxxxxxxxxx',
      },
      {
        name: 'channel',
        label: 'Channel',
        type: 'text',
        required: false,
        help: "A channel name (town-square) or @user; default: the webhook's channel.",
      },
      { name: 'username', label: 'Post as', type: 'text', required: false, default: 'Sentry' },
      { name: 'iconUrl', label: 'Icon URL', type: 'url', required: false },
      {
        name: 'minLevel',
        label: 'Minimum level',
        type: 'select',
        required: false,
        default: 'warning',
        choices: LEVELS,
      },
    ];
  }

  override validateConfig(config: MattermostConfig): string[] {
    let url: URL;
    try {
      url = new URL(config.webhookUrl);
    } catch {
      return ['webhookUrl must be an http(s) URL'];
    }
    const problems: string[] = [];
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      problems.push('webhookUrl must be an http(s) URL');
    }
    if (!/\/hooks\/[^/]+\/?$/.test(url.pathname)) {
      problems.push('webhookUrl must end with /hooks/<key>');
    }
    return problems;
  }

  override async shouldNotify(
    notification: Notification,
    ctx: NotifyContext<MattermostConfig>,
  ): Promise<boolean> {
    const level = LEVELS.indexOf(notification.level ?? '');
    if (level !== -1 && level < LEVELS.indexOf(ctx.config.minLevel)) return false;
    return super.shouldNotify(notification, ctx); // isConfigured() + rate limit
  }

  override async notify(
    notification: Notification,
    ctx: NotifyContext<MattermostConfig>,
  ): Promise<void> {
    const message: MattermostMessage = {
      text: formatMessage(notification),
      username: ctx.config.username,
      ...(ctx.config.channel ? { channel: ctx.config.channel } : {}),
      ...(ctx.config.iconUrl ? { icon_url: ctx.config.iconUrl } : {}),
      props: { plugboard_delivery: ctx.idempotencyKey },
    };
    let res: Response;
    try {
      res = await fetch(ctx.config.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(message),
        signal: ctx.signal, // aborted when the attempt times out or the relay stops
      });
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      // Never put the URL in a message: it holds the webhook key.
      throw retryable(`mattermost: request failed: ${(err as Error).message}`);
    }
    const body = await res.text().catch(() => '');
    if (res.ok) {
      // The relay's logger already names the instance, plugin, job and attempt.
      ctx.logger.info({ status: res.status }, 'mattermost.posted');
      return;
    }
    const status = res.status;
    if (status === 429 || status === 503) {
      // Mattermost's rate limiter answers 429 with X-Ratelimit-Reset (seconds).
      const wait = res.headers.get('retry-after') ?? res.headers.get('x-ratelimit-reset');
      if (wait !== null && /^\d+$/.test(wait.trim())) {
        throw retryAfter(Math.max(1, Number(wait)) * 1000, `mattermost answered ${status}`, {
          status,
        });
      }
    }
    if (status === 408 || status === 429 || status >= 500) {
      throw retryable(`mattermost answered ${status}`, { status });
    }
    // 400 (bad channel, bad payload), 403 (webhook disabled), 404 (unknown key).
    throw unrecoverable(`mattermost answered ${status}: ${mattermostError(body)}`, { status });
  }
}

/** The `message` of Mattermost's JSON error body (`{id, message, status_code}`), short. */
function mattermostError(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown; id?: unknown };
    if (typeof parsed.message === 'string') return parsed.message.slice(0, 200);
  } catch {
    // not JSON
  }
  return body.slice(0, 200) || 'no details';
}
