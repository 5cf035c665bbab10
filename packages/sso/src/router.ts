import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { SsoError, toSsoError } from './errors';
import {
  checkIdentity,
  checkOutcome,
  createHelper,
  pipelineFingerprint,
  pipelineProblem,
} from './pipeline';
import type { SsoProvider } from './provider';
import { constantTimeEqual, digest, randomToken } from './secure';
import type {
  AuthView,
  FlowStore,
  Identity,
  JsonValue,
  PipelineRequest,
  SsoLogger,
  ViewOutcome,
  ViewResponse,
} from './types';

/** The cookie that binds a flow to the browser that started it. */
export const FLOW_COOKIE = 'pb_sso_flow';

/** Default lifetime of a flow: 10 minutes. */
export const DEFAULT_FLOW_TTL_MS = 600_000;

export interface SsoRouterProvider {
  /** The id in `/login/:providerId`; letters, digits, `.`, `_`, `-`. */
  id: string;
  /** What the host's login page shows. */
  label: string;
  /** A configured provider (from `provider.configure(config)`). */
  provider: SsoProvider;
}

export interface SsoSuccess {
  providerId: string;
  identity: Identity;
  /** The validated `returnTo` of `/login/:providerId?returnTo=`: a same-origin path. */
  returnTo?: string;
}

export interface SsoRouterOptions {
  providers: ReadonlyArray<SsoRouterProvider>;
  flowStore: FlowStore;
  /**
   * External base URL of the host, e.g. `https://relay.example.com`. The
   * callback (`redirect_uri`) is `publicUrl + mountPath + '/callback'`.
   */
  publicUrl: string;
  /** Where the host mounts the router. Default `/auth`. */
  mountPath?: string;
  /** Lifetime of a flow, from `/login` to the last callback. Default 600 000 (10 minutes). */
  flowTtlMs?: number;
  /**
   * `Secure` on the flow cookie. Default: true when `publicUrl` is https.
   * Flows of `form_post` providers always get `SameSite=None; Secure`.
   */
  secureCookies?: boolean;
  /** The clock, ms since the epoch. Default `Date.now`; injectable for tests. */
  now?: () => number;
  logger?: SsoLogger;
  /**
   * The flow finished: link the user, start the session, redirect. The flow
   * is already consumed. Throwing an SsoError (`PB_SSO_EMAIL_UNVERIFIED`, …)
   * before answering hands it to `onError`.
   */
  onSuccess(result: SsoSuccess, req: Request, res: Response): Promise<void>;
  /** Any SsoError of a flow: render the error page (`error.status`, `error.userMessage`). */
  onError(error: SsoError, req: Request, res: Response): void;
}

/** What is kept server-side for one flow. The cookie holds only its random id. */
interface FlowRecord {
  v: 1;
  providerId: string;
  fingerprint: string;
  step: number;
  /** Bumped by every answer; each revision may be handled once. */
  rev: number;
  state: string;
  data: Record<string, JsonValue>;
  returnTo?: string;
  createdAt: number;
  expiresAt: number;
}

const PROVIDER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const noopLogger: SsoLogger = { info() {}, warn() {}, error() {} };

/**
 * Pages a view renders get a strict policy: no scripts, forms only to this
 * origin, never framed. A view that needs more passes its own header.
 */
const PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'";

interface Settings {
  store: FlowStore;
  providers: Map<string, SsoRouterProvider>;
  publicOrigin: string;
  /** Path of the router as the browser sees it: the cookie's Path. */
  basePath: string;
  callbackUrl: string;
  ttlMs: number;
  ttlSeconds: number;
  secureCookies: boolean;
  now: () => number;
  logger: SsoLogger;
  onSuccess: SsoRouterOptions['onSuccess'];
  onError: SsoRouterOptions['onError'];
}

function invalid(message: string): SsoError {
  return new SsoError('PB_SSO_CONFIG_INVALID', { message: `createSsoRouter: ${message}` });
}

function settingsOf(options: SsoRouterOptions): Settings {
  let url: URL;
  try {
    url = new URL(options.publicUrl);
  } catch {
    throw invalid('publicUrl must be an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid('publicUrl must be an http(s) URL');
  }
  if (url.search !== '' || url.hash !== '') {
    throw invalid('publicUrl must not have a query or fragment');
  }
  const mountPath = options.mountPath ?? '/auth';
  if (!/^\/[A-Za-z0-9._~\-/]*$/.test(mountPath) || mountPath.endsWith('/')) {
    throw invalid('mountPath must start with "/" and not end with one, e.g. "/auth"');
  }
  const ttlMs = options.flowTtlMs ?? DEFAULT_FLOW_TTL_MS;
  if (!Number.isFinite(ttlMs) || ttlMs < 1000 || ttlMs > 86_400_000) {
    throw invalid('flowTtlMs must be between 1000 (1 s) and 86400000 (1 day)');
  }
  const providers = new Map<string, SsoRouterProvider>();
  for (const entry of options.providers) {
    if (!PROVIDER_ID.test(entry.id)) {
      throw invalid(`provider id ${JSON.stringify(entry.id)} must match ${PROVIDER_ID}`);
    }
    if (providers.has(entry.id)) throw invalid(`provider id "${entry.id}" is used twice`);
    if (typeof entry.provider?.getAuthPipeline !== 'function') {
      throw invalid(`provider "${entry.id}" is not an SSO provider`);
    }
    if (!entry.provider.isConfigured) {
      throw invalid(`provider "${entry.id}" is not configured: pass provider.configure(config)`);
    }
    providers.set(entry.id, entry);
  }
  if (typeof options.onSuccess !== 'function' || typeof options.onError !== 'function') {
    throw invalid('onSuccess and onError are required');
  }
  const basePath = url.pathname.replace(/\/+$/, '') + mountPath;
  const ttlSeconds = Math.ceil(ttlMs / 1000);
  return {
    store: options.flowStore,
    providers,
    publicOrigin: url.origin,
    basePath,
    callbackUrl: `${url.origin}${basePath}/callback`,
    ttlMs,
    ttlSeconds,
    secureCookies: options.secureCookies ?? url.protocol === 'https:',
    now: options.now ?? Date.now,
    logger: options.logger ?? noopLogger,
    onSuccess: options.onSuccess,
    onError: options.onError,
  };
}

const flowKey = (key: string) => `flow:${key}`;
const claimKey = (key: string, rev: number) => `claim:${key}:${rev}`;
const doneKey = (key: string) => `done:${key}`;

function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    // Only our own alphabet (base64url): anything else is not our cookie.
    return /^[A-Za-z0-9_-]{16,128}$/.test(value) ? value : undefined;
  }
  return undefined;
}

function isRecord(value: unknown): value is FlowRecord {
  const r = value as Partial<FlowRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.v === 1 &&
    typeof r.providerId === 'string' &&
    typeof r.fingerprint === 'string' &&
    Number.isInteger(r.step) &&
    Number.isInteger(r.rev) &&
    typeof r.state === 'string' &&
    typeof r.data === 'object' &&
    r.data !== null &&
    typeof r.expiresAt === 'number'
  );
}

/**
 * `returnTo` when it is a path on this origin (`/deliveries?x=1`), else
 * undefined: an absolute or protocol-relative URL would make the login an
 * open redirect.
 */
export function safeReturnTo(value: unknown, publicOrigin: string): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return undefined;
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\s]/.test(value)) return undefined;
  // No control characters: browsers strip some from URLs (`/\t/evil` becomes `//evil`).
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) < 0x20) return undefined;
  try {
    const url = new URL(value, publicOrigin);
    return url.origin === publicOrigin ? `${url.pathname}${url.search}${url.hash}` : undefined;
  } catch {
    return undefined;
  }
}

function bodyParams(body: unknown): URLSearchParams {
  const params = new URLSearchParams();
  if (typeof body !== 'object' || body === null) return params;
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (typeof v === 'string') params.append(key, v);
    }
  }
  return params;
}

/**
 * The router a host mounts at `mountPath`:
 * - `GET /login/:providerId[?returnTo=/path]` starts a flow: a random flow id
 *   in the HttpOnly cookie `pb_sso_flow`, the flow's state in the store, and
 *   the first view dispatched;
 * - `GET|POST /callback` continues it: the cookie's flow, the `state`
 *   parameter matched against it, the pipeline's fingerprint checked, then
 *   the current view dispatched. After the last view: `buildIdentity`, the
 *   flow consumed, `onSuccess`.
 *
 * The callback takes no CSRF token: what protects it is the `state` bound to
 * the browser's cookie (and, for OAuth providers, PKCE and the OIDC nonce).
 */
export function createSsoRouter(options: SsoRouterOptions): Router {
  const s = settingsOf(options);
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 100 });

  router.use((req: Request, res: Response, next: NextFunction) => {
    // Sign-in answers are one-time and carry codes in their URLs: never
    // cache them, never leak them in a Referer.
    res.set('Cache-Control', 'no-store');
    res.set('Referrer-Policy', 'no-referrer');
    // A HEAD (link preview, scanner) must not start or consume a flow.
    if (req.method === 'HEAD') {
      res
        .status(405)
        .set('Allow', req.path === '/callback' ? 'GET, POST' : 'GET')
        .end();
      return;
    }
    next();
  });
  router.get('/login/:providerId', (req, res) => start(s, req, res));
  router.get('/callback', (req, res) => callback(s, req, res));
  router.post('/callback', form, (req, res) => callback(s, req, res));
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // The body parser's errors (too large, bad encoding) and anything else.
    const status = (err as { status?: unknown }).status;
    const error =
      typeof status === 'number' && status >= 400 && status < 500
        ? new SsoError('PB_SSO_RESPONSE_INVALID', {
            message: 'the callback body could not be read',
            check: 'body',
            status,
          })
        : toSsoError(err, 'SSO router');
    report(s, error, req, res, {});
  });
  return router;
}

function cookieOptions(s: Settings, provider: SsoProvider | undefined) {
  const formPost = provider?.callbackMethod() === 'form_post';
  return {
    httpOnly: true,
    path: s.basePath,
    // Browsers do not send SameSite=Lax cookies on a cross-site POST, which
    // is how a form_post answer arrives; SameSite=None requires Secure.
    sameSite: formPost ? ('none' as const) : ('lax' as const),
    secure: formPost || s.secureCookies,
  };
}

function clearFlowCookie(s: Settings, res: Response, provider: SsoProvider | undefined): void {
  if (res.headersSent) return;
  // A flow that ends in the request that started it: drop the cookie just set.
  const set = res.getHeader('Set-Cookie');
  const list = Array.isArray(set) ? set : typeof set === 'string' ? [set] : [];
  const kept = list.filter((c) => !c.startsWith(`${FLOW_COOKIE}=`));
  if (kept.length !== list.length) {
    if (kept.length > 0) res.setHeader('Set-Cookie', kept);
    else res.removeHeader('Set-Cookie');
  }
  res.clearCookie(FLOW_COOKIE, cookieOptions(s, provider));
}

function pipelineRequest(
  s: Settings,
  req: Request,
  phase: 'start' | 'callback',
  path: string,
): PipelineRequest {
  const search = req.originalUrl.includes('?')
    ? req.originalUrl.slice(req.originalUrl.indexOf('?'))
    : '';
  const url = new URL(`${s.publicOrigin}${s.basePath}${path}${search}`);
  const query = new URLSearchParams(url.search);
  const method = req.method === 'POST' ? 'POST' : 'GET';
  const body = method === 'POST' ? bodyParams(req.body) : new URLSearchParams();
  return Object.freeze({
    phase,
    method,
    url,
    query,
    body,
    params: method === 'POST' ? body : query,
    header(name: string): string | undefined {
      const value = req.headers[name.toLowerCase()];
      return Array.isArray(value) ? value.join(', ') : value;
    },
  });
}

/** Logs the error (code, never secrets) and hands it to the host's error page. */
function report(
  s: Settings,
  error: SsoError,
  req: Request,
  res: Response,
  where: { providerId?: string; step?: number; view?: string },
): void {
  const fields = {
    ...where,
    code: error.code,
    reason: error.reason,
    status: error.status,
    ...(error.check === undefined ? {} : { check: error.check }),
  };
  if (error.code === 'PB_SSO_INTERNAL')
    s.logger.error({ ...fields, err: error.message }, 'sso.flow.failed');
  else s.logger.warn({ ...fields, err: error.message }, 'sso.flow.failed');
  if (res.headersSent) return;
  try {
    s.onError(error, req, res);
  } catch (err) {
    s.logger.error({ ...where, err: toSsoError(err, 'onError').message }, 'sso.on_error.failed');
    if (!res.headersSent) res.status(error.status).type('text/plain').send(error.userMessage);
  }
}

async function start(s: Settings, req: Request, res: Response): Promise<void> {
  const param = req.params.providerId;
  const providerId = typeof param === 'string' ? param : '';
  const entry = s.providers.get(providerId);
  if (entry === undefined) {
    report(
      s,
      new SsoError('PB_SSO_PROVIDER_UNKNOWN', {
        message: `no SSO provider ${JSON.stringify(providerId.slice(0, 64))}`,
      }),
      req,
      res,
      {},
    );
    return;
  }
  let key: string | undefined;
  try {
    const views = entry.provider.getAuthPipeline();
    const problem = pipelineProblem(views);
    if (problem !== undefined) {
      throw new SsoError('PB_SSO_INTERNAL', { message: `SSO provider ${entry.id}: ${problem}` });
    }
    // One flow per browser: a flow this browser left unfinished is dropped.
    const previous = readCookie(req, FLOW_COOKIE);
    if (previous !== undefined) await s.store.delete(flowKey(digest(previous)));

    const now = s.now();
    const flowId = randomToken();
    key = digest(flowId);
    const returnTo = safeReturnTo(req.query.returnTo, s.publicOrigin);
    if (req.query.returnTo !== undefined && returnTo === undefined) {
      s.logger.warn({ providerId: entry.id }, 'sso.return_to.ignored');
    }
    const record: FlowRecord = {
      v: 1,
      providerId: entry.id,
      fingerprint: pipelineFingerprint(entry.provider, views),
      step: 0,
      rev: 0,
      state: randomToken(),
      data: {},
      ...(returnTo === undefined ? {} : { returnTo }),
      createdAt: now,
      expiresAt: now + s.ttlMs,
    };
    res.cookie(FLOW_COOKIE, flowId, { ...cookieOptions(s, entry.provider), maxAge: s.ttlMs });
    s.logger.info({ providerId: entry.id }, 'sso.flow.started');
    // Nothing is stored until a view answers the browser (revision 1, the
    // first a callback can claim): a start that ends at once leaves no row,
    // and one that answers leaves one.
    const request = pipelineRequest(s, req, 'start', req.path);
    await run(s, entry, views, record, { key, stored: false }, request, req, res);
  } catch (err) {
    const error = toSsoError(err, `SSO provider ${entry.id}: starting the flow`);
    // No tombstone: the browser never gets this flow's cookie.
    if (key !== undefined) await s.store.delete(flowKey(key)).catch(() => undefined);
    clearFlowCookie(s, res, entry.provider);
    report(s, error, req, res, { providerId: entry.id });
  }
}

async function callback(s: Settings, req: Request, res: Response): Promise<void> {
  const flowId = readCookie(req, FLOW_COOKIE);
  if (flowId === undefined) {
    // Not terminal: nothing here says which flow it was, so none is touched.
    report(
      s,
      new SsoError('PB_SSO_STATE_MISMATCH', {
        message:
          'callback without the flow cookie: another browser started the flow, cookies are ' +
          'blocked, or a cross-site POST did not carry a SameSite=Lax cookie',
      }),
      req,
      res,
      {},
    );
    return;
  }
  const key = digest(flowId);
  let entry: SsoRouterProvider | undefined;
  try {
    const record = await s.store.get(flowKey(key));
    if (!isRecord(record)) {
      const used = (await s.store.get(doneKey(key))) !== undefined;
      clearFlowCookie(s, res, undefined);
      report(
        s,
        used
          ? new SsoError('PB_SSO_STATE_REPLAYED', {
              message: 'callback for a flow that has already finished',
            })
          : new SsoError('PB_SSO_STATE_EXPIRED', {
              message: 'callback for an unknown or expired flow',
            }),
        req,
        res,
        {},
      );
      return;
    }
    entry = s.providers.get(record.providerId);
    const where = { providerId: record.providerId, step: record.step };
    if (s.now() >= record.expiresAt) {
      await s.store.delete(flowKey(key));
      clearFlowCookie(s, res, entry?.provider);
      report(
        s,
        new SsoError('PB_SSO_STATE_EXPIRED', { message: 'the flow has expired' }),
        req,
        res,
        where,
      );
      return;
    }
    const request = pipelineRequest(s, req, 'callback', '/callback');
    if (!constantTimeEqual(request.params.get('state') ?? undefined, record.state)) {
      // Not terminal either: a forged or stray callback must not cancel the
      // sign-in this browser really has in progress.
      report(
        s,
        new SsoError('PB_SSO_STATE_MISMATCH', {
          message: 'the callback state does not match the flow bound to this browser',
        }),
        req,
        res,
        where,
      );
      return;
    }
    if (entry === undefined) {
      await finish(s, key);
      clearFlowCookie(s, res, undefined);
      report(
        s,
        new SsoError('PB_SSO_PROVIDER_UNKNOWN', {
          message: `the flow's provider "${record.providerId}" is no longer configured`,
        }),
        req,
        res,
        where,
      );
      return;
    }
    const views = entry.provider.getAuthPipeline();
    if (
      pipelineProblem(views) !== undefined ||
      !constantTimeEqual(pipelineFingerprint(entry.provider, views), record.fingerprint) ||
      record.step >= views.length
    ) {
      await finish(s, key);
      clearFlowCookie(s, res, entry.provider);
      report(
        s,
        new SsoError('PB_SSO_PIPELINE_CHANGED', {
          message: `SSO provider ${entry.id}: the pipeline changed since the flow started`,
        }),
        req,
        res,
        where,
      );
      return;
    }
    // One request per revision: a replayed or concurrent duplicate of this
    // callback loses here, before any view runs.
    if (!(await s.store.setIfAbsent(claimKey(key, record.rev), 1, s.ttlSeconds))) {
      report(
        s,
        new SsoError('PB_SSO_STATE_REPLAYED', {
          message: 'this step of the flow was already answered',
        }),
        req,
        res,
        where,
      );
      return;
    }
    await run(s, entry, views, record, { key, stored: true }, request, req, res);
  } catch (err) {
    const error = toSsoError(err, 'SSO callback');
    await finish(s, key).catch(() => undefined);
    clearFlowCookie(s, res, entry?.provider);
    report(s, error, req, res, entry === undefined ? {} : { providerId: entry.id });
  }
}

/** The flow is over (success or error): drop it, keep a tombstone so a replay is named as one. */
async function finish(s: Settings, key: string): Promise<void> {
  await s.store.set(doneKey(key), 1, s.ttlSeconds);
  await s.store.delete(flowKey(key));
}

/** The flow a view runs for; `stored` once a view has answered the browser. */
interface FlowHandle {
  key: string;
  stored: boolean;
}

/** Like {@link finish}, for a flow that may not be stored yet (then there is nothing to end). */
async function end(s: Settings, flow: FlowHandle): Promise<void> {
  if (flow.stored) await finish(s, flow.key);
}

async function run(
  s: Settings,
  entry: SsoRouterProvider,
  views: readonly AuthView[],
  record: FlowRecord,
  flow: FlowHandle,
  request: PipelineRequest,
  req: Request,
  res: Response,
): Promise<void> {
  const data = new Map<string, JsonValue>(Object.entries(record.data));
  let step = record.step;
  for (;;) {
    const view = views[step] as AuthView;
    const where = { providerId: entry.id, step, view: view.name };
    const helper = createHelper({
      providerId: entry.id,
      callbackUrl: s.callbackUrl,
      state: record.state,
      step,
      now: s.now,
      data,
    });
    let outcome: ViewOutcome | undefined;
    try {
      outcome = checkOutcome(await view.dispatch(request, helper));
      if (outcome === undefined) {
        throw new SsoError('PB_SSO_INTERNAL', {
          message: `SSO provider ${entry.id}: view ${view.name} returned no outcome (use the helper's nextStep/redirect/render/error)`,
        });
      }
    } catch (err) {
      return fail(
        s,
        flow,
        entry,
        toSsoError(err, `SSO provider ${entry.id}: view ${view.name}`),
        req,
        res,
        where,
      );
    }
    if (outcome.kind === 'error') {
      return fail(s, flow, entry, toSsoError(outcome.error, view.name), req, res, where);
    }
    if (outcome.kind === 'respond') {
      const next: FlowRecord = {
        ...record,
        step,
        rev: record.rev + 1,
        data: Object.fromEntries(data),
      };
      await s.store.set(
        flowKey(flow.key),
        next,
        Math.max(1, Math.ceil((record.expiresAt - s.now()) / 1000)),
      );
      s.logger.info({ ...where, outcome: outcome.response.type }, 'sso.flow.step');
      return respond(s, res, outcome.response);
    }
    step += 1;
    if (step < views.length) continue;

    let identity: Identity;
    try {
      const state = Object.freeze(Object.fromEntries(data));
      identity = checkIdentity(entry.id, await entry.provider.buildIdentity(state));
    } catch (err) {
      return fail(
        s,
        flow,
        entry,
        toSsoError(err, `SSO provider ${entry.id}: buildIdentity`),
        req,
        res,
        where,
      );
    }
    await end(s, flow);
    clearFlowCookie(s, res, entry.provider);
    s.logger.info({ providerId: entry.id }, 'sso.flow.succeeded');
    try {
      await s.onSuccess(
        {
          providerId: entry.id,
          identity,
          ...(record.returnTo === undefined ? {} : { returnTo: record.returnTo }),
        },
        req,
        res,
      );
    } catch (err) {
      report(s, toSsoError(err, 'onSuccess'), req, res, { providerId: entry.id });
    }
    return;
  }
}

async function fail(
  s: Settings,
  flow: FlowHandle,
  entry: SsoRouterProvider,
  error: SsoError,
  req: Request,
  res: Response,
  where: { providerId: string; step: number; view: string },
): Promise<void> {
  await end(s, flow);
  clearFlowCookie(s, res, entry.provider);
  report(s, error, req, res, where);
}

function respond(s: Settings, res: Response, response: ViewResponse): void {
  if (response.type === 'redirect') {
    let location: URL;
    try {
      location = new URL(response.location, s.publicOrigin);
    } catch {
      throw new SsoError('PB_SSO_INTERNAL', { message: 'a view redirected to an invalid URL' });
    }
    if (location.protocol !== 'https:' && location.protocol !== 'http:') {
      throw new SsoError('PB_SSO_INTERNAL', { message: 'a view redirected to a non-http(s) URL' });
    }
    // 303: the browser follows with a GET, also after a POSTed callback.
    res.redirect(303, location.href);
    return;
  }
  res.status(response.status);
  res.set('Content-Security-Policy', PAGE_CSP);
  res.set('X-Content-Type-Options', 'nosniff');
  for (const [name, value] of Object.entries(response.headers ?? {})) res.set(name, value);
  res.type('html').send(response.html);
}
