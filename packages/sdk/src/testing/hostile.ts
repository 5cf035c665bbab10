import type { Notification } from '../model';
import { loadSample } from '../samples';
import { buildNotification } from './notification';
import type { WebhookPayload } from './notification';

/**
 * Whoever can make a monitored app throw writes its issue titles, messages,
 * culprits, tags and stack frames (a browser app's DSN is public). These
 * fixtures carry what such a person would try, so a notifier can show that
 * event text stays data: never a link, a mention, markup, or a log line of
 * its own. Every URL points at {@link HOSTILE_HOST}; a test asserts that
 * nothing on the wire links there.
 */
export const HOSTILE_HOST = 'evil.example';

/** A log line forged after a line break: it must never stand on a line of its own. */
export const FORGED_LOG_LINE = '{"level":50,"time":"2026-01-01T00:00:00.000Z","msg":"FORGED"}';

/** One attempt per entry, by the target that would fall for it. */
export const HOSTILE_SNIPPETS: readonly string[] = [
  // Markdown (DingTalk, Feishu lark_md, Feishu post's own link syntax)
  '[View in Sentry](https://evil.example/login)',
  '![pixel](https://evil.example/pixel.png)',
  '<https://evil.example/autolink>',
  'https://evil.example/bare www.evil.example/www',
  '**bold** _em_ `code` ~~strike~~ | cell |',
  // HTML
  '<a href="https://evil.example/a">click</a>',
  '<script>alert(1)</script>',
  '<img src=x onerror="alert(1)">',
  // Mentions (Feishu, DingTalk, IM, chat in general)
  '<at id=all></at>',
  '<at user_id="ou_0123456789abcdef">boss</at>',
  '@all @everyone @here',
  '@13800000000',
  // JIRA wiki markup
  '[x|https://evil.example/wiki]',
  '{color:red}red{color}',
  '[~accountid:5b10ac8d82e05b22cc7d4ef5]',
  '{noformat}',
  '!https://evil.example/image.png!',
  // Terminals and log files
  '\u001b[31mred\u001b[0m\u001b]8;;https://evil.example/osc\u0007osc\u001b]8;;\u0007',
  'nul\u0000bel\u0007bs\u0008vt\u000bff\u000cdel\u007fnel\u0085ls\u2028ps\u2029rlo\u202eolr',
  'cr\rlf\ncrlf\r\n',
  `\n${FORGED_LOG_LINE}\n`,
  // Line-start markup
  '\n# heading\n- item\n> quote\nh1. wiki heading\n----\n',
];

/** Every snippet, in one text (it spans several lines). */
export const HOSTILE_TEXT: string = HOSTILE_SNIPPETS.join(' ');

/** Tag keys are event text too. */
const HOSTILE_TAG_KEY = 'x[k](https://evil.example/k)<at id=all></at>';

/**
 * {@link HOSTILE_TEXT}, or that text repeated and cut to `length` characters
 * (code points), e.g. `hostileText(30_000)` for size limits.
 */
export function hostileText(length?: number): string {
  if (length === undefined) return HOSTILE_TEXT;
  const chars = Array.from(HOSTILE_TEXT);
  const out: string[] = [];
  while (out.length < length) out.push(...chars);
  return out.slice(0, Math.max(0, length)).join('');
}

export interface HostileOptions {
  /** Characters of each hostile value; default the snippets once ({@link HOSTILE_TEXT}). */
  length?: number;
}

/** Keys whose string values are event text in Sentry's payloads. */
const TEXT_KEYS = new Set([
  'title',
  'message',
  'culprit',
  'formatted',
  'value',
  'description_title',
  'description_text',
  'comment',
  'environment',
  'release',
  'triggered_rule',
  'function',
  'filename',
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function poison(node: unknown, text: string): void {
  if (Array.isArray(node)) {
    for (const item of node) poison(item, text);
    return;
  }
  if (!isRecord(node)) return;
  const isEvent = typeof node.event_id === 'string';
  for (const [key, value] of Object.entries(node)) {
    if (key === 'tags' && Array.isArray(value)) {
      node.tags = [
        ...value.map((pair: unknown) => (Array.isArray(pair) ? [pair[0], text] : pair)),
        [HOSTILE_TAG_KEY, text],
      ];
    } else if (TEXT_KEYS.has(key) && typeof value === 'string') {
      node[key] = text;
    } else {
      poison(value, text);
    }
  }
  // Sentry moves these into tags on ingest; set them on the event as well.
  if (isEvent) {
    node.environment = text;
    node.release = text;
  }
}

/**
 * A Sentry webhook (one of the SDK's samples, default `event_alert.triggered`:
 * it has tags, environment, release and a stack trace) with every piece of
 * event text replaced by {@link hostileText}: title, message, culprit,
 * exception value, tag values (and one tag key), environment, release, rule
 * name, stack frame names, comment and metric alert description. Links,
 * ids, levels and project slugs are left alone: Sentry writes those.
 */
export function hostileWebhook(
  kind = 'event_alert.triggered',
  options: HostileOptions = {},
): WebhookPayload {
  const sample = loadSample(kind);
  const body = JSON.parse(JSON.stringify(sample.body)) as unknown;
  poison(body, hostileText(options.length));
  return { resource: sample.resource, body };
}

/** {@link hostileWebhook}, parsed the way the relay parses it. */
export function hostileNotification(
  kind = 'event_alert.triggered',
  options: HostileOptions = {},
): Notification {
  return buildNotification(hostileWebhook(kind, options));
}

/** What {@link hostileLeaks} looks for. */
export type HostileLeak = 'url' | 'tag' | 'mention' | 'control';

const LEAKS: ReadonlyArray<[HostileLeak, RegExp, string]> = [
  ['url', /(?:[a-z][a-z0-9+.-]*:\/\/|www\.)evil\.example/i, 'a URL of evil.example'],
  ['tag', /<\s*(?:at|a|script|img)\b/i, 'a raw tag'],
  ['mention', /(?:^|[^\w.@+-])@(?:all|everyone|here|13800000000)\b/, 'a mention'],
  [
    'control',
    // eslint-disable-next-line no-control-regex -- control characters are what it looks for
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/,
    'a control character',
  ],
];

/**
 * What of the hostile text survived in `value` (a string, or every string
 * in a parsed JSON body): a URL of {@link HOSTILE_HOST} a client could turn
 * into a link, a raw tag (`<at …>`, `<a …>`, `<script>`, `<img>`), a
 * word-initial mention (`@all`, `@13800000000`), a control character or a
 * Unicode line separator. Empty when the text went through inert. Checks
 * that depend on the target's markup (only the template's `[label](url)`,
 * no wiki `[x|url]`) stay with the notifier's own test. Mentions and tags a
 * notifier makes from its configuration should be left out of `value`.
 * `ignore` leaves out kinds the target does not act on (JIRA renders no
 * HTML tag, for one).
 */
export function hostileLeaks(
  value: unknown,
  options: { ignore?: readonly HostileLeak[] } = {},
): string[] {
  const out: string[] = [];
  const checks = LEAKS.filter(([kind]) => !options.ignore?.includes(kind));
  const visit = (v: unknown, path: string): void => {
    if (typeof v === 'string') {
      for (const [, re, what] of checks) {
        const m = re.exec(v);
        if (m) out.push(`${path || '(value)'}: ${what}: ${JSON.stringify(m[0])}`);
      }
    } else if (Array.isArray(v)) v.forEach((item, i) => visit(item, `${path}[${i}]`));
    else if (isRecord(v)) for (const [k, item] of Object.entries(v)) visit(item, `${path}.${k}`);
  };
  visit(value, '');
  return out;
}
