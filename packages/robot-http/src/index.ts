// @plugboard/robot-http: one JSON POST to a chat robot, shared by the DingTalk
// and Feishu notifiers (see README.md).
import axios from 'axios';
import { retryAfter, retryable, unrecoverable } from '@plugboard/sdk';
import type { DeliveryError } from '@plugboard/sdk';

/**
 * How a robot URL appears in errors and logs: scheme, host and path. The
 * query holds the robot's access token (and the signature), which lets
 * anyone post to the group.
 */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Replace every sensitive string (secret, token, full URL) in a text we did not write. */
export function scrub(text: string, sensitive: readonly string[]): string {
  let out = text;
  for (const value of sensitive) {
    if (value.length >= 3) out = out.split(value).join('[redacted]');
  }
  return out;
}

export interface PostJsonOptions {
  url: string;
  body: string;
  timeoutMs: number;
  signal: AbortSignal;
  sensitive: readonly string[];
  /** Prefix of every error message, e.g. `dingtalk`. */
  name: string;
  /** How the target is named in errors; default scheme, host and path. */
  display?: string;
}

export interface JsonAnswer {
  status: number;
  /** The parsed answer, or undefined when it was not JSON. */
  json: Record<string, unknown> | undefined;
}

const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/**
 * POST a JSON body once and read the answer. Transport failures, 429 and
 * 5xx throw retryable errors; other non-2xx statuses throw unrecoverable
 * ones; a 2xx resolves with the parsed body for the caller to judge (chat
 * robots answer 200 with their own error codes).
 */
export async function postJson(options: PostJsonOptions): Promise<JsonAnswer> {
  const where = `${options.name}: ${options.display ?? displayUrl(options.url)}`;
  let status: number;
  let text: string;
  let headers: Record<string, unknown>;
  try {
    const res = await axios.post<string>(options.url, options.body, {
      headers: { 'Content-Type': 'application/json; charset=utf-8' },
      timeout: options.timeoutMs,
      signal: options.signal,
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: 'text',
      maxContentLength: 1024 * 1024,
      transformRequest: [(data: unknown) => data],
      transformResponse: [(data: unknown) => data],
    });
    status = res.status;
    text = typeof res.data === 'string' ? res.data : '';
    headers = res.headers as Record<string, unknown>;
  } catch (err) {
    throw networkError(err, where, options);
  }
  if (status >= 200 && status < 300) return { status, json: parseObject(text) };
  const answered = `${where} answered HTTP ${status}`;
  if (status === 429 || status >= 500) {
    const wait = parseRetryAfter(headers['retry-after']);
    if (wait !== undefined) {
      throw retryAfter(wait, `${answered}, retry after ${Math.round(wait / 1000)} s`, { status });
    }
    throw retryable(answered, { status });
  }
  if (status >= 300 && status < 400) {
    throw unrecoverable(`${answered}: redirects are not followed, check the webhook URL`, {
      status,
    });
  }
  const detail = scrub(text.slice(0, 200), options.sensitive).replace(/\s+/g, ' ').trim();
  throw unrecoverable(`${answered}${detail ? `: ${detail}` : ''}`, { status });
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function parseRetryAfter(value: unknown): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string' || !/^\d+$/.test(text.trim())) return undefined;
  return Math.min(Number(text.trim()) * 1000, MAX_RETRY_AFTER_MS);
}

/** No answer. Not attached as `cause`: the library error holds the full URL. */
function networkError(err: unknown, where: string, options: PostJsonOptions): DeliveryError {
  const code = (err as { code?: unknown }).code;
  const codeText = typeof code === 'string' ? code : undefined;
  if (codeText === 'ECONNABORTED' || codeText === 'ETIMEDOUT') {
    return retryable(`${where} did not answer within ${options.timeoutMs} ms`);
  }
  if (codeText === 'ERR_CANCELED' || options.signal.aborted) {
    return retryable(`${where}: request aborted (attempt timed out or relay shutting down)`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return retryable(
    `${where}: request failed${codeText ? ` (${codeText})` : ''}: ${scrub(message, options.sensitive)}`,
  );
}
