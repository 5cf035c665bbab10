import { SsoError } from '@plugboard/sso';

/**
 * The refusals the relay itself raises around the SSO flow (domain, e-mail
 * verification, linking, sessions, CSRF), as the SSO package's own error
 * class: the error page and the audit log treat them like the flow's. The
 * code's default user message applies unless one is given; `check` says
 * which rule refused when a code has several.
 */
export type RelaySsoCode =
  | 'PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED'
  | 'PB_SSO_EMAIL_UNVERIFIED'
  | 'PB_SSO_ACCOUNT_LINK_REFUSED'
  | 'PB_SSO_IDENTITY_INVALID'
  | 'PB_SSO_SESSION_INVALID'
  | 'PB_SSO_CSRF_INVALID';

export function refusal(
  code: RelaySsoCode,
  options: { message: string; userMessage?: string; check?: string },
): SsoError {
  return new SsoError(code, options);
}

export { SsoError };

/**
 * Too many sign-in requests from one client address (429, with
 * Retry-After). Not an SsoError: it answers before any flow exists and is
 * never recorded in the audit log, so junk costs one counter write.
 */
export const RATE_LIMITED_CODE = 'PB_SSO_RATE_LIMITED';
