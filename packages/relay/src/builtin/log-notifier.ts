import {
  NotificationPlugin,
  describeDigest,
  type ConfigField,
  type Notification,
  type NotifyContext,
} from '@plugboard/sdk';
import { RELAY_VERSION } from '../version';

/**
 * Event text on one line, whatever it holds: line breaks, control characters
 * (ANSI escapes included), Unicode line separators and bidi overrides are
 * written as JSON writes them (`\n`, `\u001b`), and so is a backslash, so a
 * title cannot forge a log line of its own nor recolour a terminal.
 */
export function escapeLine(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex -- control characters are what it escapes
    /[\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** Renders a notification as the one line an operator would read (see `escapeLine`). */
export function renderNotificationLine(n: Notification): string {
  const parts = [
    `[${n.kind}]`,
    n.project ? `${n.project.name || n.project.slug}:` : '',
    n.group?.shortId ? `${n.group.shortId}` : '',
    n.title,
    n.level ? `(level ${n.level}` + (n.environment ? `, env ${n.environment})` : ')') : '',
    n.url ?? '',
    n.digest ? `| ${describeDigest(n)}` : '',
  ];
  return escapeLine(parts.filter((p) => p !== '').join(' '));
}

type LogConfig = { prefix: string; stream: string };

/**
 * Prints every notification it receives. Used by the demo configuration so a
 * first run shows an alert travelling end to end without any target.
 */
export class LogNotifier extends NotificationPlugin<LogConfig> {
  readonly slug = 'log';
  readonly title = 'Log';
  readonly version = RELAY_VERSION;
  override readonly description = 'Prints each notification to the relay output.';
  // Printing cannot overwhelm anyone; Sentry's 10-per-minute limit would only hide the demo.
  override rateLimit = null;

  override configFields(): ConfigField[] {
    return [
      {
        name: 'prefix',
        label: 'Prefix',
        type: 'text',
        required: false,
        default: 'ALERT',
        help: 'Printed before each notification.',
      },
      {
        name: 'stream',
        label: 'Output',
        type: 'select',
        required: false,
        default: 'log',
        choices: [
          { value: 'log', label: 'The relay log (JSON)' },
          { value: 'stdout', label: 'Plain text on standard output' },
        ],
      },
    ];
  }

  /** For `plugboard render`: the line `notify` writes, as it writes it. */
  render(n: Notification, config: Partial<LogConfig>): { contentType: string; body: string } {
    return { contentType: 'text/plain', body: this.line(n, config) };
  }

  private line(n: Notification, config: Partial<LogConfig>): string {
    return `${escapeLine(config.prefix ?? 'ALERT')} ${renderNotificationLine(n)}`;
  }

  override async notify(n: Notification, ctx: NotifyContext<LogConfig>): Promise<void> {
    const line = this.line(n, ctx.config);
    if (ctx.config.stream === 'stdout') process.stdout.write(line + '\n');
    else ctx.logger.info({ notification: line, deliveryId: ctx.idempotencyKey }, 'notification');
  }
}
