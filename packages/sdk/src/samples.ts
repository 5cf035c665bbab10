import { randomBytes, randomInt, randomUUID } from 'node:crypto';
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

export interface LoadSampleOptions {
  /**
   * Give the sample fresh ids (issue id, event id, incident start, comment id,
   * installation uuid), so that its dedup key differs from every earlier one:
   * a relay drops a second webhook with the same content as a redelivery.
   * Default false: the body exactly as recorded.
   */
  unique?: boolean;
}

/** A recorded webhook body. Throws `PB_PAYLOAD_UNSUPPORTED` for a kind without a sample. */
export function loadSample(kind: string, options: LoadSampleOptions = {}): Sample {
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
  const resource = canonical.slice(0, dot);
  const body = JSON.parse(pretty) as unknown;
  if (options.unique) {
    freshen(resource, body as Json);
    return {
      resource,
      action: canonical.slice(dot + 1),
      body,
      pretty: JSON.stringify(body, null, 2) + '\n',
    };
  }
  return { resource, action: canonical.slice(dot + 1), body, pretty };
}

type Json = Record<string, unknown>;

function child(value: unknown, ...path: string[]): Json | undefined {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Json)[key];
  }
  return typeof current === 'object' && current !== null ? (current as Json) : undefined;
}

/** Replace `from` by `to` in every string of `value` (ids also sit in URLs). */
function replaceEverywhere(value: unknown, from: string, to: string): unknown {
  if (typeof value === 'string') return value.split(from).join(to);
  if (Array.isArray(value)) return value.map((v) => replaceEverywhere(v, from, to));
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      (value as Json)[k] = replaceEverywhere(v, from, to);
    }
  }
  return value;
}

const freshDigits = (length: number): string =>
  String(randomInt(1, 10)) +
  Array.from({ length: length - 1 }, () => String(randomInt(0, 10))).join('');

/** Swap an id for a fresh one of the same shape, wherever the body repeats it. */
function renew(body: Json, holder: Json | undefined, key: string): void {
  const old = holder?.[key];
  if (typeof old === 'number') {
    holder![key] = Number(freshDigits(Math.max(6, String(old).length)));
  } else if (typeof old === 'string' && old !== '') {
    const fresh = /^[0-9a-f]{32}$/i.test(old)
      ? randomBytes(16).toString('hex')
      : /^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(old)
        ? randomUUID()
        : /^\d+$/.test(old)
          ? freshDigits(Math.max(6, old.length))
          : `${old}-${randomBytes(4).toString('hex')}`;
    // A short id ("53") also occurs inside unrelated strings: only the field changes.
    if (old.length >= 8) replaceEverywhere(body, old, fresh);
    else holder![key] = fresh;
  }
}

/**
 * Change what each parser builds the dedup key from (see parse/index.ts):
 * the ids, and a metric alert's start time (set to now, as a new incident).
 */
function freshen(resource: string, body: Json): void {
  const data = child(body, 'data');
  switch (resource) {
    case 'issue':
      renew(body, child(data, 'issue'), 'id');
      break;
    case 'event_alert':
      renew(body, child(data, 'event'), 'event_id');
      break;
    case 'error':
      renew(body, child(data, 'error'), 'event_id');
      break;
    case 'metric_alert': {
      const incident = child(data, 'metric_alert');
      renew(body, incident, 'id');
      const now = new Date().toISOString();
      for (const key of ['date_started', 'date_detected', 'date_created']) {
        if (incident && typeof incident[key] === 'string') incident[key] = now;
      }
      if (incident && typeof incident.date_closed === 'string') incident.date_closed = now;
      break;
    }
    case 'comment':
      renew(body, data, 'comment_id');
      break;
    case 'installation':
      renew(body, child(data, 'installation'), 'uuid');
      break;
    case 'legacy_webhook':
      renew(body, child(body, 'event'), 'event_id');
      break;
  }
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
