import { ERROR_CODES, PlugboardError, type SsoErrorCode } from '@plugboard/sdk';

/**
 * What each code means to the person signing in: the HTTP status of the page
 * that shows it and a message saying what happened and what to do. Messages
 * never name a token, code, secret or cookie value; details for operators go
 * into `message` (logs), still without secrets.
 */
const CODE_INFO: Record<SsoErrorCode, { status: number; userMessage: string }> = {
  PB_SSO_STATE_MISMATCH: {
    status: 400,
    userMessage:
      'This sign-in answer does not belong to a sign-in started in this browser. ' +
      'Start signing in again from this browser, with cookies enabled.',
  },
  PB_SSO_STATE_EXPIRED: {
    status: 400,
    userMessage: 'Your sign-in took too long or was already finished. Please sign in again.',
  },
  PB_SSO_STATE_REPLAYED: {
    status: 400,
    userMessage:
      'This sign-in answer was already used. If you pressed Back or reloaded the page, ' +
      'please sign in again.',
  },
  PB_SSO_PIPELINE_CHANGED: {
    status: 400,
    userMessage: 'The sign-in method changed while you were signing in. Please sign in again.',
  },
  PB_SSO_PIPELINE_ERROR: {
    status: 400,
    userMessage: 'Sign-in could not be completed. Please try again.',
  },
  PB_SSO_IDP_ERROR: {
    status: 401,
    userMessage:
      'Your identity provider did not sign you in (you may have cancelled, or you are not ' +
      'allowed to use this application). Please try again or ask your administrator.',
  },
  PB_SSO_IDP_UNAVAILABLE: {
    status: 502,
    userMessage: 'Your identity provider could not be reached. Please try again in a moment.',
  },
  PB_SSO_TOKEN_EXCHANGE_FAILED: {
    status: 401,
    userMessage:
      'Your identity provider refused to complete the sign-in. Please sign in again; if it ' +
      'keeps happening, ask your administrator.',
  },
  PB_SSO_ID_TOKEN_INVALID: {
    status: 401,
    userMessage:
      "The identity provider's answer did not pass the security checks. Please sign in " +
      'again; if it keeps happening, ask your administrator (the relay log says which check failed).',
  },
  PB_SSO_RESPONSE_INVALID: {
    status: 401,
    userMessage:
      'The sign-in answer did not pass the security checks. Please sign in again; if it keeps ' +
      'happening, ask your administrator (the relay log says which check failed).',
  },
  PB_SSO_IDENTITY_INVALID: {
    status: 502,
    userMessage:
      'Your identity provider did not say who you are (no user id or e-mail address). ' +
      'Ask your administrator to check the provider settings.',
  },
  PB_SSO_PROVIDER_UNKNOWN: {
    status: 404,
    userMessage: 'This sign-in method does not exist (any more). Choose another one.',
  },
  PB_SSO_PROVIDER_NOT_ALLOWED: {
    status: 500,
    userMessage: 'This sign-in method is switched off on this server.',
  },
  PB_SSO_CONFIG_INVALID: {
    status: 500,
    userMessage:
      'This sign-in method is not set up correctly. Ask your administrator to check the relay log.',
  },
  PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED: {
    status: 403,
    userMessage:
      'Your e-mail address is not in a domain allowed to sign in here. Use another account ' +
      'or ask your administrator.',
  },
  PB_SSO_EMAIL_UNVERIFIED: {
    status: 403,
    userMessage:
      'Your identity provider has not verified your e-mail address. Verify it there, then ' +
      'sign in again.',
  },
  PB_SSO_ACCOUNT_LINK_REFUSED: {
    status: 403,
    userMessage:
      'An account with this e-mail address already exists and is linked to another sign-in. ' +
      'Sign in the way you did before, or ask your administrator to link the accounts.',
  },
  PB_SSO_SESSION_INVALID: {
    status: 401,
    userMessage: 'Your session has ended. Please sign in again.',
  },
  PB_SSO_CSRF_INVALID: {
    status: 403,
    userMessage:
      'This form has expired or was not sent from this site. Reload the page and try again.',
  },
  PB_SSO_RATE_LIMITED: {
    status: 429,
    userMessage: 'Too many sign-in attempts from your network. Please wait a minute and try again.',
  },
  PB_SSO_INTERNAL: {
    status: 500,
    userMessage: 'Something went wrong while signing you in. Please try again later.',
  },
};

const SSO_CODES: ReadonlySet<string> = new Set(ERROR_CODES.sso);

/** True for a code of the SSO family (works on errors from another package copy). */
export function isSsoErrorCode(code: unknown): code is SsoErrorCode {
  return typeof code === 'string' && SSO_CODES.has(code);
}

export interface SsoErrorOptions {
  /** For operators and logs: what exactly failed. Never put secrets here. Defaults to the user message. */
  message?: string;
  /** Overrides the default message shown to the user. Never put secrets here. */
  userMessage?: string;
  /** For `PB_SSO_ID_TOKEN_INVALID` / `PB_SSO_RESPONSE_INVALID`: which check failed (`signature`, `iss`, `aud`, `exp`, `iat`, `nonce`, …). */
  check?: string;
  /** Overrides the code's default HTTP status. */
  status?: number;
  cause?: unknown;
}

/**
 * The failure family of sign-in. Decide on `code` (or on `reason`, its short
 * lowercase form), never on the message.
 */
export class SsoError extends PlugboardError {
  declare readonly code: SsoErrorCode;
  /** `state_mismatch`, `id_token_invalid`, …: the code without `PB_SSO_`, lowercase. Safe to show. */
  readonly reason: string;
  /** What happened and what to do, for the person signing in. Contains no secrets. */
  readonly userMessage: string;
  /** HTTP status of the page that reports it. */
  readonly status: number;
  /** Which check failed, for the codes that have several. */
  readonly check: string | undefined;

  constructor(code: SsoErrorCode, options: SsoErrorOptions = {}) {
    const info = CODE_INFO[code] ?? CODE_INFO.PB_SSO_INTERNAL;
    const userMessage = options.userMessage ?? info.userMessage;
    super(
      code,
      options.message ?? userMessage,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.reason = code.slice('PB_SSO_'.length).toLowerCase();
    this.userMessage = userMessage;
    this.status = options.status ?? info.status;
    this.check = options.check;
  }
}

/**
 * A stand-in for a library error as the `cause` of an SsoError: its name, code
 * and message only. Library errors carry payloads (token responses, claims,
 * callback parameters) that must not reach a log through the cause chain.
 */
export function safeCause(err: unknown): Error {
  const name = err instanceof Error ? err.name : typeof err;
  const message = err instanceof Error ? err.message : 'non-error thrown';
  const out = new Error(message);
  out.name = name;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') (out as Error & { code?: string }).code = code;
  return out;
}

/** `err` when it is an SsoError (of any package copy), else an internal one wrapping it. */
export function toSsoError(err: unknown, what: string): SsoError {
  if (err instanceof SsoError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (isSsoErrorCode(code) && err instanceof Error) {
    // An SsoError from another copy of this package: keep its meaning.
    const other = err as Partial<SsoError>;
    return new SsoError(code, {
      message: err.message,
      ...(typeof other.userMessage === 'string' ? { userMessage: other.userMessage } : {}),
      ...(typeof other.check === 'string' ? { check: other.check } : {}),
      ...(typeof other.status === 'number' ? { status: other.status } : {}),
      cause: err,
    });
  }
  return new SsoError('PB_SSO_INTERNAL', {
    message: `${what}: ${err instanceof Error ? `${err.name}: ${err.message}` : 'non-error thrown'}`,
    cause: safeCause(err),
  });
}
