import type { SsoError } from '@plugboard/sso';
import { RATE_LIMITED_CODE } from '../../auth/errors';
import { html, layout, type Html, type NavUser } from './html';

/** A short title per code; the code's user message says the rest. */
const TITLES: Record<string, string> = {
  PB_SSO_STATE_MISMATCH: 'This sign-in does not belong to this browser',
  PB_SSO_STATE_EXPIRED: 'This sign-in has expired',
  PB_SSO_STATE_REPLAYED: 'This sign-in was already used',
  PB_SSO_PIPELINE_CHANGED: 'The sign-in method changed',
  PB_SSO_IDP_ERROR: 'Your identity provider did not sign you in',
  PB_SSO_IDP_UNAVAILABLE: 'Your identity provider could not be reached',
  PB_SSO_TOKEN_EXCHANGE_FAILED: 'Sign-in could not be completed',
  PB_SSO_ID_TOKEN_INVALID: "The identity provider's answer failed a security check",
  PB_SSO_RESPONSE_INVALID: 'The sign-in answer failed a security check',
  PB_SSO_IDENTITY_INVALID: 'Your identity provider did not say who you are',
  PB_SSO_PROVIDER_UNKNOWN: 'No such sign-in method',
  PB_SSO_PROVIDER_NOT_ALLOWED: 'This sign-in method is switched off',
  PB_SSO_CONFIG_INVALID: 'This sign-in method is not set up correctly',
  PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED: 'Your e-mail domain may not sign in here',
  PB_SSO_EMAIL_UNVERIFIED: 'Your e-mail address is not verified',
  PB_SSO_ACCOUNT_LINK_REFUSED: 'This sign-in cannot be linked to the existing account',
  PB_SSO_SESSION_INVALID: 'Your session has ended',
  PB_SSO_CSRF_INVALID: 'This form could not be accepted',
};

/**
 * The page a failed sign-in (or a refused form) ends on: what happened (the
 * code's message), the code and the reason to quote to an admin, and a way
 * forward. It shows what the error says for people, never a token or a
 * callback parameter.
 */
export function errorPage(err: SsoError, user?: NavUser): Html {
  const retry =
    err.code === 'PB_SSO_CSRF_INVALID'
      ? html`<p><a class="button" href="/me/notifications">Back to My notifications</a></p>`
      : html`<p><a class="button" href="/login">Sign in again</a></p>`;
  return layout({
    title: TITLES[err.code] ?? 'Sign-in failed',
    ...(user ? { user } : {}),
    body: html`<div class="notice error" role="alert">
        <p id="error-message">${err.userMessage}</p>
      </div>
      <dl>
        <dt>Code</dt>
        <dd><code id="error-code">${err.code}</code></dd>
        <dt>Reason</dt>
        <dd>
          <code id="error-reason">${err.reason}</code
          >${err.check ? html` (<code id="error-check">${err.check}</code>)` : ''}
        </dd>
      </dl>
      <p>
        If it happens again, give these to your relay's admin: the relay's log has the details under
        the same code.
      </p>
      ${retry}`,
  });
}

/** The answer to a client over `sso.rateLimit` (429, with Retry-After). */
export function rateLimitedPage(retryAfterSeconds: number, user?: NavUser): Html {
  return layout({
    title: 'Too many sign-in attempts',
    ...(user ? { user } : {}),
    body: html`<div class="notice error" role="alert">
        <p id="error-message">
          Too many sign-in attempts came from your network in the last minute. Wait
          <span id="retry-after">${retryAfterSeconds}</span> seconds, then sign in again.
        </p>
      </div>
      <dl>
        <dt>Code</dt>
        <dd><code id="error-code">${RATE_LIMITED_CODE}</code></dd>
      </dl>
      <p>
        If it keeps happening, tell your relay's admin: many people may be signing in through one
        address (<code>sso.rateLimit</code>, <code>trustProxy</code>).
      </p>
      <p><a class="button" href="/login">Sign in again</a></p>`,
  });
}
