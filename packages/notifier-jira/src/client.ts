import axios, { type AxiosResponse } from 'axios';
import { DeliveryError, retryAfter, retryable, unrecoverable } from '@plugboard/sdk';
import type { ApiVersion, Deployment } from './convert';
import { readFields, readIssueType, readLegacyCreateMeta, pickIssueType } from './meta';
import type { CreateMeta, FieldMeta, IssueTypeRef } from './meta';
import { normaliseBaseUrl, type JiraAuth } from './config';
import { JIRA_NOTIFIER_VERSION } from './version';

export interface ClientOptions {
  baseUrl: string;
  deployment: Deployment;
  email?: string;
  /** Cloud API token, or Server/DC personal access token; not with `basic`. */
  token?: string;
  /** Server/DC basic auth, for sites without personal access tokens. */
  basic?: { username: string; password: string };
  apiVersion: ApiVersion;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface JiraResponse {
  status: number;
  data: unknown;
  headers: Record<string, unknown>;
}

interface RequestOptions {
  query?: Record<string, string | number>;
  body?: unknown;
  /** Statuses handed back to the caller instead of thrown (e.g. 404 for a fallback). */
  allow?: number[];
  /** For error messages: what the request was for ("create the issue"). */
  what: string;
  /** Field id → name, to name fields in a 400's message. */
  fieldNames?: Map<string, string>;
}

/** A far-future Retry-After is a server bug; the relay retries no later than this. */
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;
/** A 429 without Retry-After: JIRA Cloud's documented back-off starts around here. */
const DEFAULT_429_WAIT_MS = 30_000;
/** Page size asked for; JIRA may answer with fewer, pagination follows `isLast`/`total`. */
const PAGE_SIZE = 50;
/** Bounds a misbehaving server that never says "last page". */
const MAX_PAGES = 40;

/**
 * JIRA's REST API, as the notifier uses it. Every call has a timeout and the
 * delivery's abort signal; every failure is a DeliveryError whose code says
 * whether to retry, and whose message never carries the token.
 */
export class JiraClient {
  readonly baseUrl: string;
  private readonly authorization: string;

  /** What must never appear in an error: the token or password. */
  private readonly secrets: string[];

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = normaliseBaseUrl(options.baseUrl);
    // Cloud: e-mail + API token as basic auth. Server/DC: a personal access
    // token as Bearer, or (sites without tokens) user name + password as basic.
    const basic = (user: string, secret: string): string =>
      `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
    this.authorization =
      options.deployment === 'cloud'
        ? basic(options.email ?? '', options.token ?? '')
        : options.basic
          ? basic(options.basic.username, options.basic.password)
          : `Bearer ${options.token ?? ''}`;
    this.secrets = [options.token, options.basic?.password].filter(
      (v): v is string => typeof v === 'string' && v !== '',
    );
  }

  /** Client options for the credentials of a configuration. */
  static authOptions(auth: JiraAuth): Pick<ClientOptions, 'email' | 'token' | 'basic'> {
    if (auth.kind === 'cloud') return { email: auth.email, token: auth.token };
    if (auth.kind === 'basic') {
      return { basic: { username: auth.username, password: auth.password } };
    }
    return { token: auth.token };
  }

  get apiVersion(): ApiVersion {
    return this.options.apiVersion;
  }

  api(path: string): string {
    return `/rest/api/${this.options.apiVersion}${path}`;
  }

  async request(method: string, path: string, o: RequestOptions): Promise<JiraResponse> {
    const url = this.baseUrl + path;
    let res: AxiosResponse;
    try {
      res = await axios.request({
        method,
        url,
        params: o.query,
        data: o.body,
        headers: {
          Authorization: this.authorization,
          Accept: 'application/json',
          'User-Agent': `plugboard-jira/${JIRA_NOTIFIER_VERSION}`,
          ...(o.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
          // Server/DC's XSRF check refuses some API calls without it.
          'X-Atlassian-Token': 'no-check',
        },
        timeout: this.options.timeoutMs,
        ...(this.options.signal ? { signal: this.options.signal } : {}),
        maxRedirects: 0,
        validateStatus: () => true,
        responseType: 'json',
      });
    } catch (err) {
      throw this.networkError(err, method, path, o.what);
    }
    const response: JiraResponse = {
      status: res.status,
      data: res.data as unknown,
      headers: res.headers as Record<string, unknown>,
    };
    if ((res.status >= 200 && res.status < 300) || o.allow?.includes(res.status)) return response;
    throw this.httpError(response, method, path, o);
  }

  private where(method: string, path: string): string {
    return `${method} ${path}`;
  }

  private httpError(
    res: JiraResponse,
    method: string,
    path: string,
    o: RequestOptions,
  ): DeliveryError {
    const status = res.status;
    const head = `jira: could not ${o.what}: ${this.where(method, path)} answered HTTP ${status}`;
    const detail = jiraErrorText(res.data, o.fieldNames);
    const withDetail = detail ? `${head}: ${detail}` : head;
    if (status === 401) {
      const check =
        this.options.deployment === 'cloud'
          ? 'check `email` and `token` (a Cloud API token is used as basic auth with the account e-mail), and that `deployment` is cloud'
          : this.options.basic
            ? 'check `username` and `password` (sent as basic auth; a CAPTCHA after failed logins also refuses them until someone signs in through the browser), and that `deployment` is server'
            : 'check `token` (a Server/Data Center personal access token, sent as Bearer), and that `deployment` is server';
      return unrecoverable(`${head}: JIRA did not accept the credentials: ${check}`, { status });
    }
    if (status === 403) {
      return unrecoverable(
        `${withDetail} (the account of ${this.options.basic ? '`username`' : `\`token\`${this.options.deployment === 'cloud' ? '/`email`' : ''}`} lacks permission: it needs Browse and Create Issues in the project; a CAPTCHA after failed logins also answers 403)`,
        { status },
      );
    }
    if (status === 404) {
      return unrecoverable(
        `${withDetail} (check \`baseUrl\`, \`projectKey\`, \`issueType\` and \`apiVersion\`, and that the account can see the project)`,
        { status },
      );
    }
    if (status === 429 || status === 503) {
      const wait = parseRetryAfter(headerValue(res.headers['retry-after']));
      if (wait !== undefined || status === 429) {
        const ms = wait ?? DEFAULT_429_WAIT_MS;
        return retryAfter(ms, `${head}, retry after ${Math.round(ms / 1000)} s`, { status });
      }
    }
    if (status >= 500 || status === 408) return retryable(withDetail, { status });
    if (status >= 300 && status < 400) {
      return unrecoverable(
        `${head}: redirected (check \`baseUrl\`: use the final https URL with its context path)`,
        { status },
      );
    }
    return unrecoverable(withDetail, { status });
  }

  /**
   * No answer. The library's own error is not attached as `cause`: it holds
   * the request config, Authorization header included.
   */
  private networkError(err: unknown, method: string, path: string, what: string): DeliveryError {
    const code = (err as { code?: unknown }).code;
    const codeText = typeof code === 'string' ? code : undefined;
    const where = `jira: could not ${what}: ${this.where(method, path)}`;
    if (codeText === 'ECONNABORTED' || codeText === 'ETIMEDOUT') {
      return new DeliveryError(
        'PB_DELIVERY_TIMEOUT',
        `${where}: no answer within ${this.options.timeoutMs} ms`,
      );
    }
    if (codeText === 'ERR_CANCELED' || this.options.signal?.aborted) {
      return retryable(`${where}: request aborted (attempt timed out or relay shutting down)`);
    }
    const message = err instanceof Error ? err.message : String(err);
    return retryable(
      `${where}: request failed${codeText ? ` (${codeText})` : ''}: ${this.secrets.reduce((m, secret) => m.split(secret).join('***'), message)}`,
    );
  }

  // ------------------------------------------------------------ createmeta

  /**
   * The fields of one project's issue type. Uses the paged endpoints
   * (Data Center 9 removed the all-in-one createmeta, Cloud deprecated it)
   * and falls back to the legacy one only when they answer 404.
   *
   * A 404 is also how the paged endpoint says the project does not exist.
   * On Data Center 9 the legacy endpoint is gone, and its own 404 ("Issue
   * Does Not Exist": JIRA reads `createmeta` as an issue key) would hide
   * that, so the paged endpoint's answer is the one reported: at once when
   * it names the project, else when the legacy endpoint answers 404 too.
   */
  async createMeta(projectKey: string, issueType: string): Promise<CreateMeta> {
    const base = this.api(`/issue/createmeta/${encodeURIComponent(projectKey)}/issuetypes`);
    const what = `read the issue types of project ${projectKey}`;
    const first = await this.request('GET', base, {
      query: { startAt: 0, maxResults: PAGE_SIZE },
      allow: [404],
      what,
    });
    if (first.status === 404) {
      const detail = jiraErrorText(first.data);
      if (/\bproject\b/i.test(detail)) {
        throw unrecoverable(
          `jira: project ${projectKey} was not found, or the account cannot see it: ` +
            `${this.where('GET', base)} answered HTTP 404: ${detail} ` +
            "(check `projectKey` and the account's permissions)",
          { status: 404 },
        );
      }
      return this.legacyCreateMeta(projectKey, issueType, () => {
        const paged = this.httpError(first, 'GET', base, { what });
        return unrecoverable(
          `${paged.message}; the legacy ${this.api('/issue/createmeta')} answered 404 as well`,
          { status: 404 },
        );
      });
    }

    const types = await this.pages(base, first, ['values', 'issueTypes'], readIssueType, {
      what: `read the issue types of project ${projectKey}`,
    });
    const picked = pickIssueType(types, issueType);
    if (!picked) {
      throw unrecoverable(
        `jira: project ${projectKey} has no issue type "${issueType}" (it has: ${types.map((t) => `${t.name} [${t.id}]`).join(', ') || 'none'})`,
      );
    }
    const path = `${base}/${encodeURIComponent(picked.id)}`;
    const whatFields = `read the fields of ${projectKey} / ${picked.name}`;
    const firstFields = await this.request('GET', path, {
      query: { startAt: 0, maxResults: PAGE_SIZE },
      what: whatFields,
    });
    const fields = await this.pages(
      path,
      firstFields,
      ['values', 'fields'],
      (raw) => readFields([raw])[0],
      { what: whatFields },
    );
    return { projectKey, issueType: picked, fields };
  }

  /** Follows `{values|issueTypes|fields, startAt, maxResults, total, isLast}` pages. */
  private async pages<T>(
    path: string,
    first: JiraResponse,
    keys: string[],
    read: (raw: unknown) => T | undefined,
    o: { what: string },
  ): Promise<T[]> {
    const out: T[] = [];
    let page = first;
    for (let n = 0; n < MAX_PAGES; n++) {
      const body = (typeof page.data === 'object' && page.data !== null ? page.data : {}) as Record<
        string,
        unknown
      >;
      const list = keys.map((k) => body[k]).find(Array.isArray) ?? [];
      for (const raw of list) {
        const item = read(raw);
        if (item !== undefined) out.push(item);
      }
      const startAt = typeof body.startAt === 'number' ? body.startAt : out.length - list.length;
      const total = typeof body.total === 'number' ? body.total : undefined;
      const next = startAt + list.length;
      const last =
        body.isLast === true ||
        list.length === 0 ||
        (total !== undefined && next >= total) ||
        (body.isLast === undefined && total === undefined);
      if (last) break;
      page = await this.request('GET', path, {
        query: { startAt: next, maxResults: PAGE_SIZE },
        what: o.what,
      });
    }
    return out;
  }

  /** `notFound`: the error for a 404, which says nothing about the project here. */
  private async legacyCreateMeta(
    projectKey: string,
    issueType: string,
    notFound: () => DeliveryError,
  ): Promise<CreateMeta> {
    const numeric = /^\d+$/.test(issueType.trim());
    const res = await this.request('GET', this.api('/issue/createmeta'), {
      query: {
        projectKeys: projectKey,
        ...(numeric ? { issuetypeIds: issueType.trim() } : { issuetypeNames: issueType.trim() }),
        expand: 'projects.issuetypes.fields',
      },
      allow: [404],
      what: `read the create-metadata of project ${projectKey}`,
    });
    if (res.status === 404) throw notFound();
    const meta = readLegacyCreateMeta(res.data, projectKey, issueType);
    if ('missing' in meta) {
      throw unrecoverable(
        meta.missing === 'project'
          ? `jira: project ${projectKey} was not found, or the account cannot create issues in it (check \`projectKey\` and the account's permissions)`
          : `jira: project ${projectKey} has no issue type "${issueType}"${meta.issueTypes.length ? ` (it has: ${meta.issueTypes.map((t) => `${t.name} [${t.id}]`).join(', ')})` : ''}`,
      );
    }
    return meta;
  }

  // ------------------------------------------------------------ issues

  async createIssue(
    fields: Record<string, unknown>,
    fieldNames: Map<string, string>,
  ): Promise<{ id: string; key: string }> {
    const res = await this.request('POST', this.api('/issue'), {
      body: { fields },
      what: 'create the issue',
      fieldNames,
    });
    const data = (res.data ?? {}) as { id?: unknown; key?: unknown };
    if (typeof data.key !== 'string') {
      // Created, but the answer is unreadable: retrying finds it by label.
      throw retryable('jira: the create answer carried no issue key');
    }
    return { id: String(data.id ?? ''), key: data.key };
  }

  async addComment(issueKey: string, body: unknown): Promise<void> {
    await this.request('POST', this.api(`/issue/${encodeURIComponent(issueKey)}/comment`), {
      body: { body },
      what: `comment on ${issueKey}`,
    });
  }

  /**
   * The key of an issue of the project carrying `label`, if any. Cloud's
   * `/search/jql` replaces `/search`; older sites only have `/search`.
   */
  async findByLabel(projectKey: string, label: string): Promise<string | undefined> {
    const jql = `project = "${projectKey}" AND labels = "${label}" ORDER BY created ASC`;
    const query = { jql, fields: 'key', maxResults: 1 };
    const what = `search for an issue labelled ${label}`;
    let res: JiraResponse | undefined;
    if (this.options.deployment === 'cloud') {
      res = await this.request('GET', this.api('/search/jql'), { query, allow: [404, 410], what });
      if (res.status === 404 || res.status === 410) res = undefined;
    }
    res ??= await this.request('GET', this.api('/search'), { query, what });
    const issues = (res.data as { issues?: Array<{ key?: unknown }> } | undefined)?.issues;
    const key = issues?.[0]?.key;
    return typeof key === 'string' ? key : undefined;
  }

  async addRemoteLink(issueKey: string, url: string, title: string): Promise<void> {
    await this.request('POST', this.api(`/issue/${encodeURIComponent(issueKey)}/remotelink`), {
      body: {
        // The same globalId updates the link instead of adding a second one.
        globalId: `sentry:${url}`,
        application: { type: 'io.sentry', name: 'Sentry' },
        object: { url, title: title.slice(0, 255) },
      },
      what: `link ${issueKey} to Sentry`,
    });
  }
}

/** JIRA's `{errorMessages: [...], errors: {field: reason}}`, as one line naming each field. */
export function jiraErrorText(data: unknown, fieldNames?: Map<string, string>): string {
  if (typeof data !== 'object' || data === null) return '';
  const body = data as { errorMessages?: unknown; errors?: unknown };
  const parts: string[] = [];
  if (Array.isArray(body.errorMessages)) {
    for (const m of body.errorMessages) if (typeof m === 'string' && m) parts.push(m);
  }
  if (typeof body.errors === 'object' && body.errors !== null) {
    for (const [field, reason] of Object.entries(body.errors as Record<string, unknown>)) {
      const name = fieldNames?.get(field);
      parts.push(`${field}${name && name !== field ? ` (${name})` : ''}: ${String(reason)}`);
    }
  }
  return parts.join('; ').slice(0, 2000);
}

function headerValue(value: unknown): string | undefined {
  if (Array.isArray(value)) return headerValue(value[0]);
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

/** `Retry-After`: delay-seconds or an HTTP date, as milliseconds from now. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

export type { FieldMeta, IssueTypeRef };
