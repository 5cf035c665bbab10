import type { ConfigField } from '@plugboard/sdk';
import type { ApiVersion, Deployment } from './convert';
import { unknownVariables } from './template';

export type OnRepeat = 'comment' | 'nothing';

/** One instance's settings, after the relay applied defaults and coerced types. */
export type JiraConfig = {
  baseUrl: string;
  deployment: Deployment;
  /** Cloud: the Atlassian account e-mail the API token belongs to. */
  email?: string;
  /** Cloud API token (basic auth with the e-mail) or Server/DC personal access token (Bearer). */
  token?: string;
  /** Server/DC without personal access tokens: basic auth with `username` and `password`. */
  username?: string;
  password?: string;
  projectKey: string;
  /** Issue type name (`Bug`) or id (`10004`). */
  issueType: string;
  /** `2` or `3`; unset means 3 on Cloud, 2 on Server/Data Center. */
  apiVersion?: string;
  /** Extra field values by field id or name: a JSON object, or `name: value` lines. */
  fields?: string;
  summary: string;
  description: string;
  onRepeat: OnRepeat;
  timeoutMs: number;
  /** Refuse to start when JIRA cannot be reached to check the fields. */
  strictCheck: boolean;
};

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_SUMMARY = '[{{project.slug}}] {{title}}';
export const DEFAULT_DESCRIPTION = '{{message}}';

export const CONFIG_FIELDS: readonly ConfigField[] = [
  {
    name: 'baseUrl',
    label: 'JIRA URL',
    type: 'url',
    placeholder: 'https://your-company.atlassian.net',
    help: 'The base URL of your JIRA site, with its context path on Server (https://host/jira).',
  },
  {
    name: 'deployment',
    label: 'Deployment',
    type: 'select',
    required: false,
    default: 'cloud',
    choices: [
      { value: 'cloud', label: 'JIRA Cloud (e-mail + API token)' },
      { value: 'server', label: 'JIRA Server / Data Center (personal access token)' },
    ],
  },
  {
    name: 'email',
    label: 'Account e-mail',
    type: 'email',
    required: false,
    help: 'Cloud only: the e-mail of the account the API token belongs to.',
  },
  {
    name: 'token',
    label: 'API token',
    type: 'secret',
    required: false,
    help: 'Cloud: an API token (id.atlassian.com), required. Server/Data Center: a personal access token, or leave it empty and give username and password.',
  },
  {
    name: 'username',
    label: 'User name (Server/Data Center basic auth)',
    type: 'text',
    required: false,
    help: 'Server/Data Center sites without personal access tokens (before 8.14): the user to sign in as, with password. Leave empty to use token.',
  },
  {
    name: 'password',
    label: 'Password (Server/Data Center basic auth)',
    type: 'secret',
    required: false,
    help: 'The password of username; sent as HTTP basic auth, so use https.',
  },
  { name: 'projectKey', label: 'Project key', type: 'text', placeholder: 'OPS' },
  {
    name: 'issueType',
    label: 'Issue type',
    type: 'text',
    required: false,
    default: 'Bug',
    help: 'Issue type name or id.',
  },
  {
    name: 'apiVersion',
    label: 'REST API version',
    type: 'select',
    required: false,
    choices: ['2', '3'],
    help: 'Default: 3 on Cloud (Atlassian Document Format), 2 on Server/Data Center (wiki text).',
  },
  {
    name: 'fields',
    label: 'Extra fields',
    type: 'textarea',
    required: false,
    placeholder: 'duedate: +7d\nPriority: High\nlabels: sentry, {{project.slug}}',
    help: 'Field values by field id or name: a JSON object, or one "name: value" line each. Values may use {{variables}}.',
  },
  {
    name: 'summary',
    label: 'Summary template',
    type: 'text',
    required: false,
    default: DEFAULT_SUMMARY,
  },
  {
    name: 'description',
    label: 'Description template',
    type: 'textarea',
    required: false,
    default: DEFAULT_DESCRIPTION,
    help: 'Opening text; the Sentry link, culprit, level, environment, dates and top frames follow.',
  },
  {
    name: 'onRepeat',
    label: 'On a repeated alert',
    type: 'select',
    required: false,
    default: 'comment',
    choices: [
      { value: 'comment', label: 'Comment on the JIRA issue' },
      { value: 'nothing', label: 'Do nothing' },
    ],
  },
  {
    name: 'timeoutMs',
    label: 'Timeout (ms)',
    type: 'number',
    required: false,
    default: DEFAULT_TIMEOUT_MS,
    help: 'How long each JIRA request may take.',
  },
  {
    name: 'strictCheck',
    label: 'Refuse to start when JIRA is unreachable',
    type: 'bool',
    required: false,
    default: false,
    help: 'Field problems always stop the start; this also stops it when JIRA cannot be reached to check them.',
  },
];

export function apiVersionOf(config: Pick<JiraConfig, 'apiVersion' | 'deployment'>): ApiVersion {
  if (config.apiVersion === '2' || config.apiVersion === '3') {
    return Number(config.apiVersion) as ApiVersion;
  }
  return config.deployment === 'server' ? 2 : 3;
}

/** The base URL without a trailing slash, query, or user:password part. */
export function normaliseBaseUrl(baseUrl: string): string {
  try {
    const u = new URL(baseUrl);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return baseUrl.replace(/\/+$/, '');
  }
}

export interface ParsedFields {
  values: Array<{ name: string; value: unknown }>;
  problems: string[];
}

/**
 * The `fields` setting: a JSON object, or `name: value` lines (YAML-like;
 * `#` lines are comments; a value starting with `[`, `{` or `"` is read as
 * JSON, anything else is text).
 */
export function parseFields(text: string | undefined): ParsedFields {
  const out: ParsedFields = { values: [], problems: [] };
  const source = (text ?? '').trim();
  if (!source) return out;
  if (source.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(source);
    } catch (err) {
      out.problems.push(`fields: not valid JSON (${(err as Error).message})`);
      return out;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      out.problems.push('fields: must be a JSON object of field id or name to value');
      return out;
    }
    for (const [name, value] of Object.entries(parsed)) out.values.push({ name, value });
    return out;
  }
  source.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      out.problems.push(`fields line ${i + 1}: expected "name: value"`);
      return;
    }
    const name = line.slice(0, colon).trim();
    const rawValue = line.slice(colon + 1).trim();
    let value: unknown = rawValue;
    if (/^[[{"]/.test(rawValue)) {
      try {
        value = JSON.parse(rawValue);
      } catch {
        out.problems.push(`fields line ${i + 1} (${name}): value is not valid JSON`);
        return;
      }
    }
    out.values.push({ name, value });
  });
  return out;
}

export type JiraAuth =
  | { kind: 'cloud'; email: string; token: string }
  | { kind: 'bearer'; token: string }
  | { kind: 'basic'; username: string; password: string };

/** The credentials a configuration gives, or what is wrong with them (never their values). */
export function authProblems(
  config: Pick<JiraConfig, 'deployment' | 'email' | 'token' | 'username' | 'password'>,
): string[] {
  const has = (v: string | undefined): boolean => typeof v === 'string' && v.trim() !== '';
  const problems: string[] = [];
  if (config.deployment === 'cloud') {
    if (!has(config.email)) {
      problems.push('email: required on Cloud (the API token is used with the account e-mail)');
    }
    if (!has(config.token)) problems.push('token: required on Cloud (an API token)');
    if (has(config.username) || has(config.password)) {
      problems.push(
        'username/password: only for JIRA Server/Data Center (deployment: server); Cloud uses email and an API token',
      );
    }
    return problems;
  }
  const basic = has(config.username) || has(config.password);
  if (has(config.token) && basic) {
    problems.push(
      'token and username/password: give one, a personal access token (token) or basic auth (username and password)',
    );
  } else if (basic) {
    if (!has(config.username)) problems.push('username: required with password (basic auth)');
    if (!has(config.password)) problems.push('password: required with username (basic auth)');
  } else if (!has(config.token)) {
    problems.push(
      'token: required on Server/Data Center (a personal access token), or give username and password for basic auth',
    );
  }
  return problems;
}

/** The credentials to send; call after `authProblems` found none. */
export function authOf(
  config: Pick<JiraConfig, 'deployment' | 'email' | 'token' | 'username' | 'password'>,
): JiraAuth {
  if (config.deployment === 'cloud') {
    return { kind: 'cloud', email: config.email ?? '', token: config.token ?? '' };
  }
  if (config.username || config.password) {
    return { kind: 'basic', username: config.username ?? '', password: config.password ?? '' };
  }
  return { kind: 'bearer', token: config.token ?? '' };
}

/** Problems that need no JIRA: missing credentials, bad templates, unreadable `fields`. */
export function localProblems(config: JiraConfig): string[] {
  const problems: string[] = [];
  problems.push(...authProblems(config));
  if (!config.projectKey.trim()) problems.push('projectKey: must not be empty');
  if (!config.issueType.trim()) problems.push('issueType: must not be empty');
  if (!(config.timeoutMs > 0))
    problems.push('timeoutMs: must be a positive number of milliseconds');
  for (const [name, template] of [
    ['summary', config.summary],
    ['description', config.description],
  ] as const) {
    const unknown = unknownVariables(template);
    if (unknown.length > 0) {
      problems.push(
        `${name}: unknown template variable(s) ${unknown.map((v) => `{{${v}}}`).join(', ')}`,
      );
    }
  }
  const parsed = parseFields(config.fields);
  problems.push(...parsed.problems);
  for (const { name, value } of parsed.values) {
    if (typeof value !== 'string') continue;
    const unknown = unknownVariables(value);
    if (unknown.length > 0) {
      problems.push(
        `fields.${name}: unknown template variable(s) ${unknown.map((v) => `{{${v}}}`).join(', ')}`,
      );
    }
  }
  return problems;
}
