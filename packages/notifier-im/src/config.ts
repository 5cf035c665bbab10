import type { ConfigField } from '@plugboard/sdk';

export type SignatureScheme = 'mws' | 'hmac-sha256';
export type RecipientSource = 'static' | 'sentry';
export type Addressing = 'local-part' | 'mapping';

/** One instance's settings, after the relay applied defaults and coerced types. */
export type ImConfig = {
  /** Base URL of the company IM API; messages go to `<apiUrl>/messages`. */
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** The sender (public) account. */
  sender: string;
  signatureScheme: SignatureScheme;
  hmacStringToSign?: string;
  hmacSignatureHeader?: string;
  hmacClientIdHeader?: string;
  hmacTimestampHeader?: string;
  recipientSource: RecipientSource;
  /** `static`: one e-mail per line. */
  recipients?: string;
  sentryUrl: string;
  sentryToken?: string;
  /** Defaults to the organization named in the webhook. */
  sentryOrg?: string;
  addressing: Addressing;
  /** `mapping`: `email=imUser` per line. */
  addressMap?: string;
  /** Whether people who set nothing get messages. */
  defaultOptIn: boolean;
  template?: string;
  timeoutMs: number;
};

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_SENTRY_URL = 'https://sentry.io';

export const CONFIG_FIELDS: readonly ConfigField[] = [
  {
    name: 'apiUrl',
    label: 'API base URL',
    type: 'url',
    placeholder: 'https://im.example.com/open/api',
    help: 'Messages are POSTed to <API base URL>/messages.',
  },
  { name: 'clientId', label: 'Client id', type: 'text' },
  { name: 'clientSecret', label: 'Client secret', type: 'secret' },
  {
    name: 'sender',
    label: 'Sender account',
    type: 'text',
    help: 'The public (pub) account the messages come from.',
  },
  {
    name: 'signatureScheme',
    label: 'Request signing',
    type: 'select',
    required: false,
    default: 'mws',
    choices: [
      { value: 'mws', label: 'MWS (Date + HMAC-SHA1 Authorization)' },
      { value: 'hmac-sha256', label: 'Generic HMAC-SHA256 headers' },
    ],
  },
  {
    name: 'hmacStringToSign',
    label: 'HMAC-SHA256: string to sign',
    type: 'text',
    required: false,
    placeholder: '{method}\\n{path}\\n{timestamp}\\n{bodySha256}',
    help: 'Placeholders: {method} {path} {date} {timestamp} {clientId} {bodySha256}; \\n is a newline.',
  },
  {
    name: 'hmacSignatureHeader',
    label: 'HMAC-SHA256: signature header',
    type: 'text',
    required: false,
    default: 'X-Signature',
  },
  {
    name: 'hmacClientIdHeader',
    label: 'HMAC-SHA256: client id header',
    type: 'text',
    required: false,
    default: 'X-Client-Id',
  },
  {
    name: 'hmacTimestampHeader',
    label: 'HMAC-SHA256: timestamp header',
    type: 'text',
    required: false,
    default: 'X-Timestamp',
  },
  {
    name: 'recipientSource',
    label: 'Recipients',
    type: 'select',
    required: false,
    default: 'static',
    choices: [
      { value: 'static', label: 'A fixed list of e-mails' },
      { value: 'sentry', label: "The Sentry project's members" },
    ],
  },
  {
    name: 'recipients',
    label: 'Recipient e-mails',
    type: 'textarea',
    required: false,
    help: 'For "A fixed list": one e-mail per line.',
  },
  {
    name: 'sentryUrl',
    label: 'Sentry URL',
    type: 'url',
    required: false,
    default: DEFAULT_SENTRY_URL,
  },
  {
    name: 'sentryToken',
    label: 'Sentry auth token',
    type: 'secret',
    required: false,
    help: 'For project members: a token with project:read (and member:read).',
  },
  {
    name: 'sentryOrg',
    label: 'Sentry organization slug',
    type: 'text',
    required: false,
    help: 'Defaults to the organization the webhook names.',
  },
  {
    name: 'addressing',
    label: 'Address people by',
    type: 'select',
    required: false,
    default: 'local-part',
    choices: [
      { value: 'local-part', label: 'The local part of their e-mail (ann@x.com → ann)' },
      { value: 'mapping', label: 'A mapping (unmapped people are skipped)' },
    ],
  },
  {
    name: 'addressMap',
    label: 'Address mapping',
    type: 'textarea',
    required: false,
    placeholder: 'ann.lee@example.com=alee',
    help: 'For "A mapping": email=imUser per line.',
  },
  {
    name: 'defaultOptIn',
    label: 'Message people who set nothing',
    type: 'bool',
    required: false,
    default: true,
  },
  {
    name: 'template',
    label: 'Message template',
    type: 'textarea',
    required: false,
    help: 'Placeholders: {{project}} {{title}} {{message}} {{url}} {{level}} {{environment}} {{shortId}}.',
  },
  {
    name: 'timeoutMs',
    label: 'Timeout (ms)',
    type: 'number',
    required: false,
    default: DEFAULT_TIMEOUT_MS,
  },
];

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function lines(text: string | undefined): Array<{ line: number; text: string }> {
  return (text ?? '')
    .split(/\r?\n/)
    .map((raw, i) => ({ line: i + 1, text: raw.trim() }))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'));
}

/** The e-mails of a textarea (one per line, commas allowed), lower-cased, de-duplicated. */
export function parseRecipients(text: string | undefined): {
  emails: string[];
  problems: string[];
} {
  const emails: string[] = [];
  const problems: string[] = [];
  for (const { line, text: raw } of lines(text)) {
    for (const part of raw.split(/[,;]/)) {
      const email = part.trim().toLowerCase();
      if (email === '') continue;
      if (!EMAIL.test(email))
        problems.push(`recipients: line ${line}: "${email}" is not an e-mail`);
      else if (!emails.includes(email)) emails.push(email);
    }
  }
  return { emails, problems };
}

/** `email=imUser` lines. */
export function parseAddressMap(text: string | undefined): {
  map: Map<string, string>;
  problems: string[];
} {
  const map = new Map<string, string>();
  const problems: string[] = [];
  for (const { line, text: raw } of lines(text)) {
    const eq = raw.indexOf('=');
    const email = eq > 0 ? raw.slice(0, eq).trim().toLowerCase() : '';
    const user = eq > 0 ? raw.slice(eq + 1).trim() : '';
    if (!EMAIL.test(email) || user === '') {
      problems.push(`addressMap: line ${line} must be "email=imUser"`);
      continue;
    }
    map.set(email, user);
  }
  return { map, problems };
}

/** Every problem with a config whose fields already have the right types. */
export function configProblems(config: ImConfig): string[] {
  const problems: string[] = [];
  if (config.recipientSource === 'static') {
    const r = parseRecipients(config.recipients);
    problems.push(...r.problems);
    if (r.emails.length === 0 && r.problems.length === 0) {
      problems.push('recipients: enter at least one e-mail (recipientSource is "static")');
    }
  } else if (config.recipientSource === 'sentry') {
    if (!config.sentryToken) {
      problems.push('sentryToken: required when recipientSource is "sentry"');
    }
  } else {
    problems.push('recipientSource: must be "static" or "sentry"');
  }
  if (config.addressing === 'mapping') {
    const m = parseAddressMap(config.addressMap);
    problems.push(...m.problems);
    if (m.map.size === 0 && m.problems.length === 0) {
      problems.push('addressMap: enter at least one "email=imUser" line (addressing is "mapping")');
    }
  }
  if (!(config.timeoutMs > 0))
    problems.push('timeoutMs: must be a positive number of milliseconds');
  return problems;
}
