import { normaliseHeaders, recordedRequest } from './requests';
import type { RecordedRequest } from './requests';

/** The part of a nock `Scope` the recorder listens on. */
export interface NockScopeLike {
  on(
    event: 'request',
    listener: (req: unknown, interceptor: unknown, body: unknown) => void,
  ): unknown;
  removeListener(
    event: 'request',
    listener: (req: unknown, interceptor: unknown, body: unknown) => void,
  ): unknown;
}

interface NockInterceptorLike {
  reply(status: number, body?: unknown, headers?: Record<string, string>): unknown;
}

interface NockBuilderLike extends NockScopeLike {
  persist(): NockBuilderLike;
  intercept(uri: (path: string) => boolean, method: string): NockInterceptorLike;
}

/** The nock default export, as far as the recorder uses it. */
export interface NockLike {
  (basePath: string): NockBuilderLike;
  removeInterceptor(interceptor: never): unknown;
}

export interface RecordRequestsOptions {
  /**
   * The nock function to use. Defaults to `require('nock')`; pass your own
   * (`import nock from 'nock'`) from ESM tests or to share its instance.
   */
  nock?: NockLike;
  /** For a base URL: the answer to every request (default 200, empty body). */
  reply?: { status?: number; body?: string | object; headers?: Record<string, string> };
}

export interface RequestRecorder {
  /** Requests in the order they were sent; grows while the recorder runs. */
  requests: RecordedRequest[];
  /** The scope listened on (the one created for a base URL, or yours). */
  scope: NockScopeLike;
  /** Stop recording; for a base URL also remove the interceptors it added. */
  stop(): void;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/**
 * Capture the requests a notifier sends through nock.
 *
 * - `recordRequests(scope)`: listen on a scope you set up (replies, delays,
 *   errors are yours); every request it intercepts is recorded.
 * - `recordRequests('https://hooks.example.com')`: intercept every request to
 *   that origin (persisted until `stop()`), answer `reply`, record them.
 *
 * nock is an optional peer dependency: it is loaded only for the base-URL
 * form and only if `options.nock` is not given.
 */
export function recordRequests(
  target: string | URL | NockScopeLike,
  options: RecordRequestsOptions = {},
): RequestRecorder {
  const requests: RecordedRequest[] = [];
  const listener = (req: unknown, _interceptor: unknown, body: unknown): void => {
    requests.push(fromNockRequest(req, body));
  };

  if (typeof target !== 'string' && !(target instanceof URL)) {
    target.on('request', listener);
    return { requests, scope: target, stop: () => void target.removeListener('request', listener) };
  }

  const nock = options.nock ?? loadNock();
  const origin = new URL(String(target)).origin;
  const scope = nock(origin).persist();
  const reply = options.reply ?? {};
  const interceptors = METHODS.map((method) => {
    const interceptor = scope.intercept(() => true, method);
    interceptor.reply(reply.status ?? 200, reply.body ?? '', reply.headers ?? {});
    return interceptor;
  });
  scope.on('request', listener);
  return {
    requests,
    scope,
    stop: () => {
      scope.removeListener('request', listener);
      for (const interceptor of interceptors) nock.removeInterceptor(interceptor as never);
    },
  };
}

function loadNock(): NockLike {
  let mod: unknown;
  try {
    mod = require('nock');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND') {
      throw new Error(
        'recordRequests: nock is not installed. It is an optional peer dependency of ' +
          '@plugboard/sdk: add it to your devDependencies (npm install --save-dev nock).',
        { cause: err },
      );
    }
    throw new Error(
      `recordRequests: nock could not be loaded (${(err as Error).message ?? String(err)}). ` +
        'Import it yourself and pass it in: recordRequests(url, { nock }), or pass a nock scope.',
      { cause: err },
    );
  }
  const fn = (mod as { default?: unknown }).default ?? mod;
  if (typeof fn !== 'function') {
    throw new Error('recordRequests: require("nock") did not return the nock function');
  }
  return fn as NockLike;
}

type HeaderSource =
  | { entries(): Iterable<[string, string]> }
  | Record<string, string | number | readonly string[] | undefined>;

/**
 * nock 15 emits a WHATWG `Request`; nock 14 and earlier an http.ClientRequest
 * with `path`, `headers` and `options`. Accept both.
 */
function fromNockRequest(req: unknown, body: unknown): RecordedRequest {
  const r = (req ?? {}) as {
    method?: string;
    url?: unknown;
    path?: string;
    headers?: HeaderSource;
    getHeaders?: () => Record<string, string | number | string[] | undefined>;
    options?: {
      proto?: string;
      protocol?: string;
      host?: string;
      hostname?: string;
      port?: unknown;
    };
  };
  let headers: Record<string, string> = {};
  if (r.headers && typeof (r.headers as { entries?: unknown }).entries === 'function') {
    headers = normaliseHeaders((r.headers as { entries(): Iterable<[string, string]> }).entries());
  } else if (r.headers) {
    headers = normaliseHeaders(Object.entries(r.headers));
  } else if (typeof r.getHeaders === 'function') {
    headers = normaliseHeaders(Object.entries(r.getHeaders()));
  }
  let url: string;
  if (typeof r.url === 'string' && /^[a-z][a-z0-9+.-]*:/i.test(r.url)) {
    url = r.url;
  } else {
    const o = r.options ?? {};
    const proto = (o.proto ?? o.protocol ?? 'http').replace(/:$/, '');
    const host = o.host ?? o.hostname ?? headers.host ?? 'localhost';
    const port = o.port !== undefined && !String(host).includes(':') ? `:${String(o.port)}` : '';
    url = `${proto}://${host}${port}${r.path ?? (typeof r.url === 'string' ? r.url : '/')}`;
  }
  const rawBody = typeof body === 'string' ? body : body === undefined ? '' : String(body);
  return recordedRequest(r.method ?? 'GET', url, headers, rawBody);
}
