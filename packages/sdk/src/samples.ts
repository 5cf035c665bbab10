import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebhookError } from './errors';

/**
 * Kinds with a recorded body in `packages/sdk/samples/`, named as the parser
 * names the notification they produce (`Notification.kind`).
 */
export const SAMPLE_KINDS: readonly string[] = Object.freeze([
  'issue.created',
  'issue.resolved',
  'issue.assigned',
  'issue.ignored',
  'event_alert.triggered',
  'error.created',
  'metric_alert.critical',
  'metric_alert.warning',
  'metric_alert.resolved',
  'comment.created',
  'installation.created',
  'legacy_webhook.triggered',
]);

// The legacy plugin has a single action, so its file and the CLI shorthand
// drop it.
const LEGACY_KIND = 'legacy_webhook.triggered';
const ALIASES: ReadonlyMap<string, string> = new Map([['legacy_webhook', LEGACY_KIND]]);

export interface Sample {
  /** `Sentry-Hook-Resource` to send with the body (`legacy_webhook`: none, legacy endpoint). */
  resource: string;
  action: string;
  /** The parsed body; a fresh copy on every call. */
  body: unknown;
  /** The file as stored: pretty-printed JSON, for display. Sentry sends `compactSentryJson(body)`. */
  pretty: string;
}

/** A recorded webhook body. Throws `PB_PAYLOAD_UNSUPPORTED` for a kind without a sample. */
export function loadSample(kind: string): Sample {
  const canonical = ALIASES.get(kind) ?? kind;
  // Checked against the list before touching the disk: `kind` comes from the
  // command line and must not name a path.
  if (!SAMPLE_KINDS.includes(canonical)) {
    throw new WebhookError(
      'PB_PAYLOAD_UNSUPPORTED',
      `no sample webhook "${kind}"; known kinds: ${SAMPLE_KINDS.join(', ')}`,
    );
  }
  const file = canonical === LEGACY_KIND ? 'legacy_webhook.json' : `${canonical}.json`;
  // `..` from both src/ (tests) and dist/ (installed package) reaches the package root.
  const pretty = readFileSync(join(__dirname, '..', 'samples', file), 'utf8');
  const dot = canonical.indexOf('.');
  return {
    resource: canonical.slice(0, dot),
    action: canonical.slice(dot + 1),
    body: JSON.parse(pretty) as unknown,
    pretty,
  };
}

/**
 * Serialise as Sentry does before signing: compact separators and every
 * character outside printable ASCII escaped as a lowercase `\uXXXX` (astral
 * characters as their two surrogate escapes), like Python's
 * `json.dumps(..., separators=(",", ":"), ensure_ascii=True)`.
 *
 * Numbers are written the JavaScript way, which differs from Python for some
 * values (Python writes `1.0` and `1e+16`, JavaScript `1` and
 * `10000000000000000`). That is why a receiver must verify the bytes it got
 * and never a re-serialisation; this function is for producing test bodies.
 */
export function compactSentryJson(value: unknown): string {
  const json = JSON.stringify(value) as string | undefined;
  if (json === undefined) {
    throw new WebhookError('PB_PAYLOAD_INVALID', `cannot serialise ${typeof value} as JSON`);
  }
  // U+007F is ASCII but not printable; Python's ensure_ascii escapes it too.
  return json.replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
