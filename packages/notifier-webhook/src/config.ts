import type { ConfigField } from '@plugboard/sdk';
import { displayLine } from './redact';
import { checkSecret } from './sign';

export type WebhookFormat = 'plugboard' | 'sentry-legacy';

/** One instance's settings, after the relay applied defaults and coerced types. */
export type WebhookConfig = {
  /** One http(s) URL per line. */
  urls: string;
  /** Standard Webhooks signing secret: `whsec_<base64>` or any string. */
  secret?: string;
  format: WebhookFormat;
  timeoutMs: number;
  /** Extra request headers, `Name: value` per line. */
  headers?: string;
};

export const WEBHOOK_FORMATS: readonly WebhookFormat[] = ['plugboard', 'sentry-legacy'];

/** Sentry's legacy WebHooks plugin gave each POST 5 s. */
export const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Headers the notifier sets itself: overriding them would break the body
 * framing or the signature a receiver checks.
 */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const CONFIG_FIELDS: readonly ConfigField[] = [
  {
    name: 'urls',
    label: 'Callback URLs',
    type: 'textarea',
    placeholder: 'https://hooks.example.com/sentry',
    help: 'Enter callback URLs to POST new events to (one per line).',
  },
  {
    name: 'secret',
    label: 'Signing secret',
    type: 'secret',
    required: false,
    help:
      'Signs each request per Standard Webhooks (webhook-signature header). ' +
      '"whsec_<base64>" is decoded; any other text is used as-is (its UTF-8 bytes).',
  },
  {
    name: 'format',
    label: 'Body format',
    type: 'select',
    required: false,
    default: 'plugboard',
    choices: [
      { value: 'plugboard', label: 'Plugboard (documented, versioned JSON)' },
      { value: 'sentry-legacy', label: "Sentry's legacy WebHooks plugin body" },
    ],
  },
  {
    name: 'timeoutMs',
    label: 'Timeout (ms)',
    type: 'number',
    required: false,
    default: DEFAULT_TIMEOUT_MS,
    help: 'How long each POST may take; never longer than the delivery attempt itself.',
  },
  {
    name: 'headers',
    label: 'Extra headers',
    type: 'textarea',
    required: false,
    placeholder: 'Authorization: Bearer …',
    help: 'Sent with every request, "Name: value" per line.',
  },
];

/** The non-empty lines of a textarea, with their 1-based line numbers. */
function lines(text: string | undefined): Array<{ line: number; text: string }> {
  return (text ?? '')
    .split(/\r?\n/)
    .map((raw, i) => ({ line: i + 1, text: raw.trim() }))
    .filter((l) => l.text !== '');
}

/** The URLs of the `urls` field, and a message per bad line (field name first). */
export function parseUrls(text: string | undefined): { urls: string[]; problems: string[] } {
  const urls: string[] = [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const { line, text: raw } of lines(text)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      problems.push(`urls: line ${line} (${displayLine(raw)}) is not an absolute URL`);
      continue;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      problems.push(`urls: line ${line} (${displayLine(raw)}) must be http or https`);
      continue;
    }
    const first = seen.get(raw);
    if (first !== undefined) {
      problems.push(`urls: line ${line} repeats line ${first}`);
      continue;
    }
    seen.set(raw, line);
    urls.push(raw);
  }
  if (urls.length === 0 && problems.length === 0) problems.push('urls: enter at least one URL');
  return { urls, problems };
}

/**
 * The `headers` field as pairs. Problems name the line and the header name,
 * never the value: it is typically a token.
 */
export function parseHeaders(text: string | undefined): {
  headers: Array<[string, string]>;
  problems: string[];
} {
  const headers: Array<[string, string]> = [];
  const problems: string[] = [];
  for (const { line, text: raw } of lines(text)) {
    const colon = raw.indexOf(':');
    const name = colon > 0 ? raw.slice(0, colon).trim() : '';
    if (!HEADER_NAME.test(name)) {
      problems.push(`headers: line ${line} must be "Name: value" (value hidden)`);
      continue;
    }
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      problems.push(`headers: line ${line}: ${name} is set by the notifier and cannot be changed`);
      continue;
    }
    headers.push([name, raw.slice(colon + 1).trim()]);
  }
  return { headers, problems };
}

/** Every problem with a config whose fields already have the right types. */
export function configProblems(config: WebhookConfig): string[] {
  const problems = [...parseUrls(config.urls).problems, ...parseHeaders(config.headers).problems];
  if (config.secret) {
    const secretProblem = checkSecret(config.secret);
    if (secretProblem) problems.push(`secret: ${secretProblem}`);
  }
  if (!WEBHOOK_FORMATS.includes(config.format)) {
    problems.push(`format: must be one of ${WEBHOOK_FORMATS.join(', ')}`);
  }
  if (!(config.timeoutMs > 0))
    problems.push('timeoutMs: must be a positive number of milliseconds');
  return problems;
}
