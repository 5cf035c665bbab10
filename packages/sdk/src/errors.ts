/**
 * Every error Plugboard raises belongs to one family (one class) and carries a
 * stable `code`. Decide on `code`, never on `message` or `instanceof`: plugins
 * may bundle their own copy of the SDK, and delivery outcomes cross process
 * boundaries as plain data (see `serializeError`).
 *
 * Codes are documented in docs/errors.md (a test checks every code listed
 * here is documented). Retired codes are never reused.
 */

export const ERROR_CODES = {
  config: [
    'PB_CONFIG_INVALID',
    'PB_CONFIG_FILE_UNREADABLE',
    'PB_CONFIG_SECRET_UNRESOLVED',
    'PB_CONFIG_PLUGIN_UNKNOWN',
    'PB_CONFIG_FIELD_INVALID',
  ],
  plugin: [
    'PB_PLUGIN_NOT_FOUND',
    'PB_PLUGIN_MANIFEST_INVALID',
    'PB_PLUGIN_IMPORT_FAILED',
    'PB_PLUGIN_EXPORT_MISSING',
    'PB_PLUGIN_BRAND_INVALID',
    'PB_PLUGIN_SDK_INCOMPATIBLE',
    'PB_PLUGIN_CONTRACT_INVALID',
    'PB_PLUGIN_DUPLICATE_SLUG',
  ],
  delivery: [
    'PB_DELIVERY_FAILED',
    'PB_DELIVERY_UNRECOVERABLE',
    'PB_DELIVERY_RETRY_AFTER',
    'PB_DELIVERY_TIMEOUT',
    'PB_DELIVERY_EXPIRED',
    'PB_DELIVERY_SILENCED',
    'PB_DELIVERY_MUTED',
    'PB_DELIVERY_INHIBITED',
    'PB_DELIVERY_FOLDED',
  ],
  webhook: [
    'PB_SIGNATURE_MISSING',
    'PB_SIGNATURE_INVALID',
    'PB_PAYLOAD_INVALID',
    'PB_PAYLOAD_UNSUPPORTED',
    'PB_PAYLOAD_TOO_LARGE',
  ],
  store: ['PB_STORE_UNAVAILABLE', 'PB_STORE_CLOSED'],
  http: ['PB_NOT_FOUND', 'PB_INTERNAL', 'PB_API_DISABLED'],
  // Sign-in through SSO providers. The class (`SsoError`, with `reason`,
  // `userMessage` and `status`) lives in @plugboard/sso.
  sso: [
    'PB_SSO_STATE_MISMATCH',
    'PB_SSO_STATE_EXPIRED',
    'PB_SSO_STATE_REPLAYED',
    'PB_SSO_PIPELINE_CHANGED',
    'PB_SSO_PIPELINE_ERROR',
    'PB_SSO_IDP_ERROR',
    'PB_SSO_IDP_UNAVAILABLE',
    'PB_SSO_TOKEN_EXCHANGE_FAILED',
    'PB_SSO_ID_TOKEN_INVALID',
    'PB_SSO_RESPONSE_INVALID',
    'PB_SSO_IDENTITY_INVALID',
    'PB_SSO_PROVIDER_UNKNOWN',
    'PB_SSO_PROVIDER_NOT_ALLOWED',
    'PB_SSO_CONFIG_INVALID',
    'PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED',
    'PB_SSO_EMAIL_UNVERIFIED',
    'PB_SSO_ACCOUNT_LINK_REFUSED',
    'PB_SSO_SESSION_INVALID',
    'PB_SSO_CSRF_INVALID',
    'PB_SSO_RATE_LIMITED',
    'PB_SSO_INTERNAL',
  ],
} as const;

/** Outcomes that end a delivery: trying again would not change them. */
const FINAL_DELIVERY_CODES: ReadonlySet<string> = new Set([
  'PB_DELIVERY_UNRECOVERABLE',
  'PB_DELIVERY_EXPIRED',
  'PB_DELIVERY_SILENCED',
  'PB_DELIVERY_MUTED',
  'PB_DELIVERY_INHIBITED',
  'PB_DELIVERY_FOLDED',
]);

export type ConfigErrorCode = (typeof ERROR_CODES.config)[number];
export type PluginErrorCode = (typeof ERROR_CODES.plugin)[number];
export type DeliveryErrorCode = (typeof ERROR_CODES.delivery)[number];
export type WebhookErrorCode = (typeof ERROR_CODES.webhook)[number];
export type StoreErrorCode = (typeof ERROR_CODES.store)[number];
export type HttpErrorCode = (typeof ERROR_CODES.http)[number];
export type SsoErrorCode = (typeof ERROR_CODES.sso)[number];
export type ErrorCode =
  | ConfigErrorCode
  | PluginErrorCode
  | DeliveryErrorCode
  | WebhookErrorCode
  | StoreErrorCode
  | HttpErrorCode
  | SsoErrorCode;

export const ALL_ERROR_CODES: readonly ErrorCode[] = Object.values(ERROR_CODES).flat();

export interface PlugboardErrorOptions {
  cause?: unknown;
}

/** Base class of every Plugboard error. */
export class PlugboardError extends Error {
  readonly code: ErrorCode | string;

  constructor(code: ErrorCode | string, message: string, options?: PlugboardErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
  }
}

export interface ConfigErrorDetails {
  /** Where the bad value came from: a file path, an environment variable, a route. */
  source?: string;
  /** Dotted path of the setting, e.g. `routes[0].instances[1].config.url`. */
  path?: string;
  /** The offending value, already masked when it is a secret. */
  value?: string;
  expected?: string;
  hint?: string;
}

/** Settings and plugin instance configuration that cannot be used. */
export class ConfigError extends PlugboardError {
  readonly details: ConfigErrorDetails;
  constructor(
    code: ConfigErrorCode,
    message: string,
    details: ConfigErrorDetails = {},
    options?: PlugboardErrorOptions,
  ) {
    super(code, message, options);
    this.details = details;
  }
}

export interface PluginErrorDetails {
  packageName?: string;
  packageVersion?: string;
  group?: string;
  entry?: string;
  slug?: string;
}

/** A plugin package that cannot be found, loaded or accepted by the registry. */
export class PluginError extends PlugboardError {
  readonly details: PluginErrorDetails;
  constructor(
    code: PluginErrorCode,
    message: string,
    details: PluginErrorDetails = {},
    options?: PlugboardErrorOptions,
  ) {
    super(code, message, options);
    this.details = details;
  }
}

export interface DeliveryErrorOptions extends PlugboardErrorOptions {
  /** HTTP status the target answered, when there was one. */
  status?: number;
  /** For PB_DELIVERY_RETRY_AFTER: how long to wait before the next attempt. */
  retryAfterMs?: number;
}

/**
 * A failed delivery. The code decides what the dispatcher does next:
 * - `PB_DELIVERY_FAILED`, `PB_DELIVERY_TIMEOUT`: retry with backoff;
 * - `PB_DELIVERY_RETRY_AFTER`: retry, not before `retryAfterMs`;
 * - `PB_DELIVERY_UNRECOVERABLE`: do not retry (bad configuration, 4xx).
 */
export class DeliveryError extends PlugboardError {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(code: DeliveryErrorCode, message: string, options: DeliveryErrorOptions = {}) {
    super(code, message, options);
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  get retryable(): boolean {
    return !FINAL_DELIVERY_CODES.has(this.code);
  }
}

/** "Do not retry": throw from a notifier when retrying cannot help. */
export function unrecoverable(message: string, options?: DeliveryErrorOptions): DeliveryError {
  return new DeliveryError('PB_DELIVERY_UNRECOVERABLE', message, options);
}

/** "Retry after N ms": throw from a notifier on 429/503 with Retry-After. */
export function retryAfter(
  ms: number,
  message: string,
  options?: Omit<DeliveryErrorOptions, 'retryAfterMs'>,
): DeliveryError {
  return new DeliveryError('PB_DELIVERY_RETRY_AFTER', message, {
    ...options,
    retryAfterMs: Math.max(0, Math.round(ms)),
  });
}

/** A retryable failure (5xx, connection reset, ...). */
export function retryable(message: string, options?: DeliveryErrorOptions): DeliveryError {
  return new DeliveryError('PB_DELIVERY_FAILED', message, options);
}

/** The webhook request itself is wrong: bad signature, body, or unknown payload. */
export class WebhookError extends PlugboardError {
  constructor(code: WebhookErrorCode, message: string, options?: PlugboardErrorOptions) {
    super(code, message, options);
  }
}

/** The store cannot take or give data (disk full, database down, closed). */
export class StoreError extends PlugboardError {
  constructor(code: StoreErrorCode, message: string, options?: PlugboardErrorOptions) {
    super(code, message, options);
  }
}

/** The plain-data form of an error, as stored with a delivery attempt. */
export interface SerializedError {
  name: string;
  code: string;
  message: string;
  retryable: boolean;
  status?: number;
  retryAfterMs?: number;
  cause?: SerializedError;
}

function readField(err: unknown, key: string): unknown {
  return typeof err === 'object' && err !== null
    ? (err as Record<string, unknown>)[key]
    : undefined;
}

/**
 * Turn anything thrown into plain data. Works on errors from another copy of
 * the SDK (duck-typed on `code`), on axios/node errors and on non-errors.
 */
export function serializeError(err: unknown, depth = 0): SerializedError {
  const code = readField(err, 'code');
  const message =
    err instanceof Error ? err.message : typeof err === 'string' ? err : safeString(err);
  const name = err instanceof Error ? err.name : typeof err;
  const codeStr = typeof code === 'string' && code.startsWith('PB_') ? code : 'PB_DELIVERY_FAILED';
  const out: SerializedError = {
    name,
    code: codeStr,
    message,
    retryable: !FINAL_DELIVERY_CODES.has(codeStr),
  };
  const status = readField(err, 'status');
  if (typeof status === 'number') out.status = status;
  const retryAfterMs = readField(err, 'retryAfterMs');
  if (typeof retryAfterMs === 'number') out.retryAfterMs = retryAfterMs;
  const cause = readField(err, 'cause');
  if (cause !== undefined && depth < 5) out.cause = serializeError(cause, depth + 1);
  return out;
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The first error of a cause chain and every cause below it, as lines. */
export function describeErrorChain(err: unknown): string {
  const lines: string[] = [];
  let current: unknown = err;
  for (let i = 0; current !== undefined && current !== null && i < 6; i++) {
    const code = readField(current, 'code');
    const msg = current instanceof Error ? current.message : safeString(current);
    lines.push(
      `${i === 0 ? '' : 'caused by: '}${typeof code === 'string' ? `[${code}] ` : ''}${msg}`,
    );
    current = readField(current, 'cause');
  }
  return lines.join('\n');
}
