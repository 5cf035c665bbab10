import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import cookieParser from 'cookie-parser';
import type { DiscoveredPlugin } from '@plugboard/sdk';
import { createSsoRouter, SsoError, type Identity } from '@plugboard/sso';
import { AuditLog } from '../../auth/audit';
import { RATE_LIMITED_CODE, refusal } from '../../auth/errors';
import { storeFlowStore } from '../../auth/flow-store';
import type { ConfiguredSsoProvider } from '../../auth/providers';
import { clientAddress, SignInRateLimit } from '../../auth/rate-limit';
import { csrfMatches, SessionManager } from '../../auth/sessions';
import { policyFrom, UserDirectory } from '../../auth/users';
import type { RelayConfig } from '../../config/schema';
import { durationMs } from '../../durations';
import type { Logger } from '../../logger';
import type { Store } from '../../store/types';
import { errorBody } from '../ingest';
import { mountAdmin } from './admin';
import {
  formField,
  navUser,
  queryParam,
  safeReturnTo,
  sessionOf,
  type PagesContext,
} from './context';
import { errorPage, rateLimitedPage } from './error-page';
import { html, layout, sendPage } from './html';
import { mountNotifications } from './notifications';

/**
 * The relay's pages: sign-in through the configured SSO providers, "My
 * notifications" for everyone, the delivery log, plugins, users and audit
 * log for admins. Mounted at the root of the relay's express app; the SSO
 * flow itself runs under `/auth`.
 */

export interface PagesOptions {
  config: RelayConfig;
  store: Store;
  logger: Logger;
  /** Configured providers; none: the pages are off (404 with a clear message). */
  providers: readonly ConfiguredSsoProvider[];
  /** The registry's current list, for the plugins page. */
  plugins: () => DiscoveredPlugin[];
  /** Called with errors no page expected (the relay reports them to Sentry). */
  onUnexpectedError?: (err: unknown, context: Record<string, string>) => void;
  /** Clock for sessions, flows and the audit log; default `Date.now`. */
  now?: () => number;
}

/** Where the SSO flow runs: `/auth/login/:providerId`, `/auth/callback`. */
export const AUTH_MOUNT = '/auth';
/** Where a person lands after signing in, unless they asked for a page. */
export const HOME = '/me/notifications';

/** Paths the pages own; with sign-in off they answer 404 saying why. */
const PAGE_PREFIXES = ['/login', '/logout', '/me', '/admin', AUTH_MOUNT];

export function createPagesRouter(o: PagesOptions): Router {
  return o.providers.length === 0 ? pagesOff() : pagesOn(o);
}

function pagesOff(): Router {
  const router = express.Router();
  router.use(PAGE_PREFIXES, (req: Request, res: Response) => {
    const message =
      "the relay's pages are off: no sign-in is configured. Set sso.providers (with sso.publicUrl " +
      'and sso.sessionSecret) to turn them on; see docs/relay-pages.md';
    if (req.accepts(['html', 'json']) === 'html') {
      sendPage(
        res,
        404,
        layout({
          title: 'Pages are off',
          body: html`<div class="notice" id="pages-off">
            <p>This relay's pages are off: no sign-in is configured.</p>
            <p>
              An operator turns them on by setting <code>sso.providers</code>,
              <code>sso.publicUrl</code> and <code>sso.sessionSecret</code> (see
              <code>docs/relay-pages.md</code>).
            </p>
          </div>`,
        }),
      );
      return;
    }
    res.status(404).json(errorBody('PB_NOT_FOUND', message));
  });
  return router;
}

function pagesOn(o: PagesOptions): Router {
  const sso = o.config.sso;
  const now = o.now ?? Date.now;
  // The schema requires both once there are providers.
  const publicUrl = new URL(sso.publicUrl as string);
  const secure = publicUrl.protocol === 'https:';
  const ctx: PagesContext = {
    config: o.config,
    store: o.store,
    logger: o.logger,
    sessions: new SessionManager({
      store: o.store,
      secret: sso.sessionSecret as string,
      ttlMs: durationMs(sso.sessionTtl),
      secure,
      now,
    }),
    users: new UserDirectory(o.store, policyFrom(sso), now),
    audit: new AuditLog(o.store, now, durationMs(sso.audit.collapseWindow)),
    providers: o.providers,
    plugins: o.plugins,
  };
  const { sessions, audit, logger } = ctx;
  const limit = new SignInRateLimit({ store: o.store, ...sso.rateLimit });
  const router = express.Router();
  router.use(PAGE_PREFIXES, cookieParser());

  /** Record in the audit log without letting a store hiccup break the page. */
  const record = (entry: Parameters<AuditLog['record']>[0]): Promise<void> =>
    audit.record(entry).then(
      () => undefined,
      (err: unknown) => logger.error({ err, event: entry.event }, 'sso: audit log write failed'),
    );

  const refuse = (
    err: SsoError,
    req: Request,
    res: Response,
    details: { provider?: string; email?: string; subject?: string } = {},
    log = true,
  ): Promise<void> => {
    // The reason and code are what operators search for; never a token.
    if (log) {
      logger.warn(
        { code: err.code, reason: err.reason, check: err.check, ...details, detail: err.message },
        'sso: sign-in refused',
      );
    }
    sendPage(res, err.status, errorPage(err, navUser(res)));
    return record({
      event: 'sign_in_refused',
      outcome: 'refused',
      code: err.code,
      reason: err.check ? `${err.reason} (${err.check})` : err.reason,
      ...details,
      address: clientAddress(req),
    });
  };

  /**
   * Every request of the sign-in flow is counted per client address before
   * the flow runs: one over `sso.rateLimit.perMinute` gets 429 and writes
   * nothing (no flow, no audit entry).
   */
  const limitSignIn: RequestHandler = async (req, res, next) => {
    try {
      const address = clientAddress(req);
      const decision = await limit.hit(address);
      if (!decision.limited) {
        next();
        return;
      }
      if (decision.first) {
        logger.warn(
          { code: RATE_LIMITED_CODE, address, perMinute: sso.rateLimit.perMinute },
          'sso: sign-in rate limit reached',
        );
      }
      res
        .status(429)
        .set('retry-after', String(decision.retryAfter))
        .set('cache-control', 'no-store');
      if (req.accepts(['html', 'json']) === 'json') {
        res.json(
          errorBody(
            RATE_LIMITED_CODE,
            `too many sign-in requests from this address; try again in ${decision.retryAfter} s`,
          ),
        );
        return;
      }
      sendPage(res, 429, rateLimitedPage(decision.retryAfter, navUser(res)));
    } catch (err) {
      next(err);
    }
  };

  /** Reads the session cookie; a bad or ended one is cleared, never trusted. */
  const loadSession: RequestHandler = async (req, res, next) => {
    try {
      const token = (req.cookies as Record<string, string> | undefined)?.[sessions.cookieName];
      const { session, problem } = await sessions.read(token);
      if (session) res.locals.session = session;
      else if (problem !== 'missing') {
        logger.info(
          { code: 'PB_SSO_SESSION_INVALID', reason: problem, path: req.path },
          'sso: session cookie refused',
        );
        res.clearCookie(sessions.cookieName, sessions.clearCookieOptions());
        res.locals.sessionProblem = problem;
      }
      next();
    } catch (err) {
      next(err);
    }
  };

  const requireUser: RequestHandler = (req, res, next) => {
    if (sessionOf(res)) {
      next();
      return;
    }
    // A script (audit.json) gets the code; a person gets the sign-in page.
    if (req.accepts(['html', 'json']) === 'json') {
      const err = refusal('PB_SSO_SESSION_INVALID', {
        message: `no live session (${String(res.locals.sessionProblem ?? 'missing')})`,
      });
      res
        .status(err.status)
        .set('cache-control', 'no-store')
        .json(errorBody(err.code, `${err.userMessage} Sign in at /login.`));
      return;
    }
    const returnTo = req.method === 'GET' ? safeReturnTo(req.originalUrl) : undefined;
    const params = new URLSearchParams();
    if (returnTo) params.set('returnTo', returnTo);
    if (res.locals.sessionProblem) params.set('ended', '1');
    const query = params.toString();
    res.redirect(303, `/login${query ? `?${query}` : ''}`);
  };

  const requireAdmin: RequestHandler = (_req, res, next) => {
    if (sessionOf(res)?.role === 'admin') {
      next();
      return;
    }
    sendPage(
      res,
      403,
      layout({
        title: 'Admins only',
        user: navUser(res)!,
        body: html`<p id="forbidden">
            This page is for the relay's admins. Admins are named in <code>sso.admins</code> (by
            e-mail or group); ask one if you need access.
          </p>
          <p><a href="/me/notifications">My notifications</a></p>`,
      }),
    );
  };

  const urlencoded = express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 500 });

  /**
   * The synchronizer token of the session must come with every form the
   * relay's pages post (the SSO callback is not one of them: its state,
   * PKCE and nonce protect it). A cross-site Origin is refused outright.
   */
  const requireCsrf: RequestHandler = (req, res, next) => {
    const session = sessionOf(res);
    const origin = req.headers.origin;
    const sameOrigin = origin === undefined || origin === publicUrl.origin;
    const check = !sameOrigin
      ? 'origin'
      : formField(req, '_csrf') === undefined
        ? 'token_missing'
        : session && csrfMatches(session, formField(req, '_csrf'))
          ? undefined
          : 'token_mismatch';
    if (check === undefined) {
      next();
      return;
    }
    const err = refusal('PB_SSO_CSRF_INVALID', {
      message: `form POST ${req.path} refused: ${check}`,
      check,
    });
    logger.warn(
      { code: err.code, reason: err.reason, check, path: req.path, email: session?.email },
      'sso: form refused (CSRF)',
    );
    sendPage(res, err.status, errorPage(err, navUser(res)));
  };

  router.use(AUTH_MOUNT, limitSignIn);
  router.use(
    AUTH_MOUNT,
    createSsoRouter({
      providers: o.providers.map((p) => ({ id: p.id, label: p.label, provider: p.provider })),
      flowStore: storeFlowStore(o.store),
      publicUrl: publicUrl.origin,
      mountPath: AUTH_MOUNT,
      flowTtlMs: durationMs(sso.flowTtl),
      secureCookies: secure,
      now,
      logger,
      onSuccess: async (result, req, res) => {
        await signedIn(result, req, res);
      },
      onError: (err, req, res) => {
        // The SSO router has logged it (sso.flow.failed) with its reason.
        void refuse(err, req, res, {}, false);
      },
    }),
  );

  /** The flow vouched for an identity: apply the relay's rules, start a session. */
  async function signedIn(
    result: { providerId: string; identity: Identity; returnTo?: string },
    req: Request,
    res: Response,
  ): Promise<void> {
    const { providerId, identity } = result;
    const details = {
      provider: providerId,
      email: identity.email,
      subject: String(identity.id),
      address: clientAddress(req),
    };
    let outcome: Awaited<ReturnType<UserDirectory['signIn']>>;
    try {
      outcome = await ctx.users.signIn(providerId, identity);
    } catch (err) {
      if (err instanceof SsoError) {
        await refuse(err, req, res, details);
        return;
      }
      throw err;
    }
    const { user } = outcome;
    details.email = user.email;
    if (outcome.created) {
      await record({ event: 'account_created', outcome: 'success', ...details, role: user.role });
    }
    if (outcome.linked) {
      await record({ event: 'identity_linked', outcome: 'success', ...details });
    }
    // A new session id at every sign-in: a session planted before it is useless.
    const previous = await sessions.read(
      (req.cookies as Record<string, string> | undefined)?.[sessions.cookieName],
    );
    if (previous.session) await sessions.end(previous.session);
    const { token } = await sessions.start({
      email: user.email,
      role: user.role,
      ...(user.name ? { name: user.name } : {}),
      provider: providerId,
    });
    await record({ event: 'sign_in', outcome: 'success', ...details, role: user.role });
    logger.info({ provider: providerId, email: user.email, role: user.role }, 'sso: signed in');
    res.cookie(sessions.cookieName, token, sessions.cookieOptions());
    res.redirect(303, safeReturnTo(result.returnTo) ?? HOME);
  }

  router.use(PAGE_PREFIXES, loadSession);

  router.get('/login', (req, res) => {
    const returnTo = safeReturnTo(queryParam(req, 'returnTo'));
    if (sessionOf(res)) {
      res.redirect(303, returnTo ?? HOME);
      return;
    }
    const suffix = returnTo ? `?returnTo=${encodeURIComponent(returnTo)}` : '';
    const notice =
      queryParam(req, 'signedOut') === '1'
        ? html`<div class="notice" role="status" id="signed-out">You are signed out.</div>`
        : queryParam(req, 'ended') === '1'
          ? html`<div class="notice" role="status" id="session-ended">
              Your session has ended. Please sign in again.
            </div>`
          : '';
    // Links, not forms: the CSP's form-action would stop the redirect to the provider.
    const buttons = o.providers.map(
      (p) =>
        html`<a
          class="button"
          id="sign-in-${p.id}"
          href="${AUTH_MOUNT}/login/${encodeURIComponent(p.id)}${suffix}"
          >Sign in with ${p.label}</a
        >`,
    );
    sendPage(
      res,
      200,
      layout({
        title: 'Sign in',
        body: html`${notice}
          <p>Sign in to manage your alert notifications.</p>
          <div class="providers">${buttons}</div>`,
      }),
    );
  });

  router.post(
    '/logout',
    urlencoded,
    (_req, res, next) => {
      // Signed out already (or the session ended): nothing to protect.
      if (sessionOf(res)) next();
      else res.redirect(303, '/login?signedOut=1');
    },
    requireCsrf,
    async (_req, res, next) => {
      try {
        const session = sessionOf(res)!;
        await sessions.end(session);
        res.clearCookie(sessions.cookieName, sessions.clearCookieOptions());
        await record({
          event: 'sign_out',
          outcome: 'success',
          provider: session.provider,
          email: session.email,
        });
        logger.info({ email: session.email }, 'sso: signed out');
        res.redirect(303, '/login?signedOut=1');
      } catch (err) {
        next(err);
      }
    },
  );

  router.use(['/me', '/admin'], requireUser);
  router.post(['/me/*path', '/admin/*path'], urlencoded, requireCsrf);
  router.use('/admin', requireAdmin);
  mountNotifications(router, ctx);
  mountAdmin(router, ctx);

  router.get('/', (_req, res) => {
    res.redirect(303, HOME);
  });

  router.use(PAGE_PREFIXES, (_req: Request, res: Response) => {
    sendPage(
      res,
      404,
      layout({
        title: 'Not found',
        ...(navUser(res) ? { user: navUser(res)! } : {}),
        body: html`<p>There is no such page.</p>
          <p><a href="${HOME}">My notifications</a></p>`,
      }),
    );
  });

  // Errors no page expected: a page saying so, the details in the log only.
  router.use(PAGE_PREFIXES, (err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = err as { type?: unknown };
    if (e.type === 'entity.too.large' || e.type === 'parameters.too.many') {
      sendPage(
        res,
        413,
        layout({ title: 'Form too large', body: html`<p>The form sent was too large.</p>` }),
      );
      return;
    }
    o.onUnexpectedError?.(err, { path: req.path });
    logger.error({ err, path: req.path }, 'pages: unexpected error');
    sendPage(
      res,
      500,
      layout({
        title: 'Something went wrong',
        body: html`<p>
          The relay could not show this page. Try again; if it keeps happening, the relay's log says
          why.
        </p>`,
      }),
    );
  });
  return router;
}
