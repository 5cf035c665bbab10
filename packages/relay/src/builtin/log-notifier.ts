import {
  NotificationPlugin,
  describeDigest,
  type ConfigField,
  type Notification,
  type NotifyContext,
} from '@plugboard/sdk';
import { RELAY_VERSION } from '../version';

/** Renders a notification as the one line an operator would read. */
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
  return parts.filter((p) => p !== '').join(' ');
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

  override async notify(n: Notification, ctx: NotifyContext<LogConfig>): Promise<void> {
    const line = `${ctx.config.prefix} ${renderNotificationLine(n)}`;
    if (ctx.config.stream === 'stdout') process.stdout.write(line + '\n');
    else ctx.logger.info({ notification: line, deliveryId: ctx.idempotencyKey }, 'notification');
  }
}
