import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DeliveryError, retryAfter, retryable, unrecoverable } from '@plugboard/sdk';
import { displayUrl, scrub } from './redact';

export interface PostOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  /** Strings that must not appear in an error (secret, header values, URL parts). */
  sensitive: readonly string[];
}

// Connections to a target are kept open between deliveries: at a few
// hundred alerts a second, a TCP (and TLS) handshake per POST costs more than
// the POST. Free sockets do not keep the process alive.
/** Exported for tests, not from the package. */
export const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 256 });

/** Answers longer than this are cut off (and their connection closed) unread. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** A far-future Retry-After is a receiver bug; the relay retries no later than this. */
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * POST once; resolves with the status on 2xx, throws a DeliveryError
 * otherwise. Plain `node:http`: at hundreds of deliveries a second a client
 * library's per-request configuration work costs more than the request.
 * Redirects are not followed (a redirect would re-send the signed body
 * somewhere the operator did not configure), and the body goes out byte for
 * byte as signed.
 */
export function post(options: PostOptions): Promise<number> {
  return postOnce(options, false);
}

/**
 * A kept-alive connection the target closed while idle (its keep-alive
 * timeout, 5 s for Node's servers, ran out just as this request went out)
 * fails with ECONNRESET or EPIPE before any answer. The target never saw
 * that request: it is sent once more on a new connection of its own (the
 * pool may hold more connections closed the same way), as Node's
 * documentation advises (`request.reusedSocket`). Without this, a delivery
 * retried after exactly that idle time (a rate limit's 5 s slot, a retry
 * ladder's 5 s step) could fail every time.
 */
function staleConnection(err: unknown, req: { reusedSocket: boolean }): boolean {
  const code = (err as { code?: unknown }).code;
  return req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE');
}

function postOnce(options: PostOptions, fresh: boolean): Promise<number> {
  const where = displayUrl(options.url);
  return new Promise<number>((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch (err) {
      reject(networkError(err, where, options));
      return;
    }
    const https = url.protocol === 'https:';
    let settled = false;
    // Runs after `req` below exists: a timer never fires before this code ends.
    const timer = setTimeout(() => {
      req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }));
    }, options.timeoutMs);
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      fn();
    };
    const body = Buffer.from(options.body, 'utf8');
    const req = (https ? httpsRequest : httpRequest)(
      url,
      {
        method: 'POST',
        // `false`: a connection of its own, outside the pool.
        agent: fresh ? false : https ? httpsAgent : httpAgent,
        headers: { ...options.headers, 'content-length': String(body.length) },
      },
      (res) => {
        drain(res);
        settle(() => {
          try {
            resolve(outcome(res.statusCode ?? 0, res.headers, where));
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    const onAbort = (): void => {
      req.destroy(Object.assign(new Error('request aborted'), { code: 'ERR_CANCELED' }));
    };
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) =>
      settle(() => {
        if (!fresh && staleConnection(err, req) && !options.signal.aborted) {
          postOnce(options, true).then(resolve, reject);
        } else {
          reject(networkError(err, where, options));
        }
      }),
    );
    req.end(body);
  });
}

/**
 * Read the answer to its end, so the connection can serve the next delivery;
 * an endless answer is cut off instead.
 */
function drain(stream: unknown): void {
  const s = stream as NodeJS.ReadableStream & { destroy?: () => void };
  let bytes = 0;
  s.on('error', () => undefined);
  s.on('data', (chunk: Buffer | string) => {
    bytes += chunk.length;
    if (bytes > MAX_ANSWER_BYTES) s.destroy?.();
  });
  s.resume();
}

function outcome(status: number, headers: IncomingHttpHeaders, where: string): number {
  const answered = `${where} answered HTTP ${status}`;
  if (status >= 200 && status < 300) return status;
  if (status === 410) {
    return fail(unrecoverable(`${answered}: endpoint gone, remove it from the config`, { status }));
  }
  if (status === 408 || status === 429 || status >= 500) {
    const wait = parseRetryAfter(headerValue(headers['retry-after']));
    if (wait !== undefined) {
      return fail(
        retryAfter(wait, `${answered}, retry after ${Math.round(wait / 1000)} s`, { status }),
      );
    }
    return fail(retryable(answered, { status }));
  }
  if (status >= 300 && status < 400) {
    return fail(
      unrecoverable(`${answered}: redirects are not followed, configure the final URL`, { status }),
    );
  }
  return fail(unrecoverable(`${answered}: the receiver rejected the request`, { status }));
}

function fail(err: DeliveryError): never {
  throw err;
}

function headerValue(value: unknown): string | undefined {
  if (Array.isArray(value)) return headerValue(value[0]);
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

/** `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as milliseconds from now. */
export function parseRetryAfter(
  value: string | undefined,
  now: number = Date.now(),
): number | undefined {
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

/**
 * A request that got no answer. All of these are worth retrying: timeouts,
 * refused or reset connections, DNS and TLS trouble are usually transient.
 * The underlying error is not attached as `cause`: it can hold the full URL
 * (with a token in its query) and would reach logs and stored attempts.
 */
function networkError(err: unknown, where: string, options: PostOptions): DeliveryError {
  const code = (err as { code?: unknown }).code;
  const codeText = typeof code === 'string' ? code : undefined;
  if (codeText === 'ETIMEDOUT' && !options.signal.aborted) {
    return new DeliveryError(
      'PB_DELIVERY_TIMEOUT',
      `${where} did not answer within ${options.timeoutMs} ms`,
    );
  }
  if (codeText === 'ERR_CANCELED' || options.signal.aborted) {
    return retryable(`${where}: request aborted (attempt timed out or relay shutting down)`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return retryable(
    `${where}: request failed${codeText ? ` (${codeText})` : ''}: ${scrub(message, options.sensitive)}`,
  );
}
