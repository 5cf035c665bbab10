import * as oidc from 'openid-client';
import { SsoError, safeCause } from '../errors';

/**
 * The bridge between the OIDC and OAuth2 providers and openid-client: server
 * metadata (discovered or given), one openid-client `Configuration` per flow,
 * a JWKS cache in front of openid-client's, and the translation of its errors
 * into SsoErrors that name the failed check.
 *
 * Why a Configuration per flow: openid-client caches the JWKS per
 * Configuration and, when an ID token names a `kid` it does not have, fetches
 * the set again only if its copy is at least 60 s old. A key rotated at the
 * provider within that minute would fail the next sign-in. A fresh
 * Configuration starts with no keys, so the JWKS request goes through
 * `customFetch`, where this class answers from its own cache when that cache
 * has the ID token's `kid`, and fetches the set again when it does not.
 */

/** Leeway for `exp`, `iat`, `nbf` (and `auth_time`): clocks of two servers disagree. */
export const CLOCK_TOLERANCE_SECONDS = 60;
/** A cached JWKS is used for at most this long even when it has the key. */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/** Discovered metadata is kept this long; a failed discovery is not kept. */
export const DISCOVERY_MAX_AGE_MS = 60 * 60_000;

export type TokenAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

export interface IdpClientOptions {
  providerId: string;
  clientId: string;
  clientSecret?: string;
  authMethod: TokenAuthMethod;
  /** OIDC: discover from this issuer. */
  issuer?: string;
  /** OAuth2: the endpoints as configured. */
  metadata?: oidc.ServerMetadata;
  /** openid-client's `allowInsecureRequests`: http:// endpoints, for local testing only. */
  allowInsecureHttp: boolean;
  /** Check the ID token's signature against the provider's JWKS. */
  verifySignatures: boolean;
  timeoutSeconds: number;
}

type Phase = 'discovery' | 'token' | 'userinfo';

interface JwksEntry {
  at: number;
  body: string;
  kids: ReadonlySet<string>;
}

const ID_TOKEN_CLAIMS = new Set([
  'iss',
  'aud',
  'exp',
  'iat',
  'nbf',
  'nonce',
  'azp',
  'auth_time',
  'sub',
]);

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/** The `kid` in the header of the token response's `id_token`, without trusting anything else. */
async function idTokenKid(response: Response): Promise<string | undefined> {
  try {
    const body = (await response.json()) as unknown;
    const idToken = field(body, 'id_token');
    if (typeof idToken !== 'string') return undefined;
    const header = JSON.parse(
      Buffer.from(idToken.split('.')[0] ?? '', 'base64url').toString('utf8'),
    ) as unknown;
    const kid = field(header, 'kid');
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    // openid-client reads the same body and reports what is wrong with it.
    return undefined;
  }
}

function kidsOf(body: string): ReadonlySet<string> {
  try {
    const keys = field(JSON.parse(body) as unknown, 'keys');
    return new Set(
      (Array.isArray(keys) ? keys : [])
        .map((key) => field(key, 'kid'))
        .filter((kid): kid is string => typeof kid === 'string'),
    );
  } catch {
    return new Set();
  }
}

export class IdpClient {
  private discovered: { at: number; metadata: Promise<oidc.ServerMetadata> } | undefined;
  private jwks: JwksEntry | undefined;

  constructor(private readonly options: IdpClientOptions) {}

  /** Server metadata: discovered (and cached) for OIDC, as configured for OAuth2. */
  async metadata(): Promise<oidc.ServerMetadata> {
    if (this.options.metadata !== undefined) return this.options.metadata;
    const now = Date.now();
    if (this.discovered === undefined || now - this.discovered.at >= DISCOVERY_MAX_AGE_MS) {
      const pending = this.discover();
      this.discovered = { at: now, metadata: pending };
      pending.catch(() => {
        if (this.discovered?.metadata === pending) this.discovered = undefined;
      });
    }
    return this.discovered.metadata;
  }

  private async discover(): Promise<oidc.ServerMetadata> {
    const { issuer, clientId, allowInsecureHttp, timeoutSeconds } = this.options;
    try {
      const config = await oidc.discovery(new URL(issuer ?? ''), clientId, undefined, undefined, {
        execute: allowInsecureHttp ? [oidc.allowInsecureRequests] : [],
        timeout: timeoutSeconds,
      });
      // Plain JSON: serverMetadata() adds helper functions a new Configuration cannot clone.
      return JSON.parse(JSON.stringify(config.serverMetadata())) as oidc.ServerMetadata;
    } catch (err) {
      throw this.translate(err, 'discovery');
    }
  }

  /** A new openid-client Configuration for one flow (see the module comment). */
  async configuration(): Promise<oidc.Configuration> {
    const metadata = await this.metadata();
    const { clientId, clientSecret, authMethod } = this.options;
    const auth =
      authMethod === 'none'
        ? oidc.None()
        : authMethod === 'client_secret_post'
          ? oidc.ClientSecretPost(clientSecret)
          : oidc.ClientSecretBasic(clientSecret);
    const config = new oidc.Configuration(
      metadata,
      clientId,
      {
        ...(clientSecret === undefined ? {} : { client_secret: clientSecret }),
        [oidc.clockTolerance]: CLOCK_TOLERANCE_SECONDS,
      },
      auth,
    );
    if (this.options.allowInsecureHttp) oidc.allowInsecureRequests(config);
    if (this.options.verifySignatures) oidc.enableNonRepudiationChecks(config);
    config.timeout = this.options.timeoutSeconds;
    config[oidc.customFetch] = this.fetcher(metadata);
    return config;
  }

  /**
   * The flow's fetch: remembers the `kid` of the ID token the token endpoint
   * returned, and answers the JWKS request from the cache only when the
   * cached set is fresh and has that `kid` (a rotated key: fetched again).
   */
  private fetcher(metadata: oidc.ServerMetadata): oidc.CustomFetch {
    const jwksUri =
      typeof metadata.jwks_uri === 'string' ? new URL(metadata.jwks_uri).href : undefined;
    const tokenUri =
      typeof metadata.token_endpoint === 'string'
        ? new URL(metadata.token_endpoint).href
        : undefined;
    let kid: string | undefined;
    return async (url, options) => {
      const init = options as RequestInit;
      if (url === jwksUri && options.method === 'GET') {
        const cached = this.jwks;
        if (
          cached !== undefined &&
          Date.now() - cached.at < JWKS_MAX_AGE_MS &&
          (kid === undefined || cached.kids.has(kid))
        ) {
          return new Response(cached.body, {
            status: 200,
            headers: { 'content-type': 'application/json' },
          });
        }
        const response = await fetch(url, init);
        if (response.status === 200) {
          const body = await response.clone().text();
          this.jwks = { at: Date.now(), body, kids: kidsOf(body) };
        }
        return response;
      }
      const response = await fetch(url, init);
      if (url === tokenUri && response.ok) kid = await idTokenKid(response.clone());
      return response;
    };
  }

  /** openid-client's error as an SsoError naming what failed; its payload is left out. */
  translate(err: unknown, phase: Phase): SsoError {
    if (err instanceof SsoError) return err;
    const id = this.options.providerId;
    const cause = safeCause(err);
    const code = field(err, 'code');
    const inner = field(err, 'cause');
    const detail = field(inner, 'cause');

    if (err instanceof oidc.AuthorizationResponseError) {
      return idpError(id, err.error, cause);
    }
    if (err instanceof oidc.ResponseBodyError) {
      const oauthError = printable(err.error);
      if (phase === 'token') {
        return new SsoError('PB_SSO_TOKEN_EXCHANGE_FAILED', {
          message: `SSO provider ${id}: the token endpoint refused the code: ${oauthError} (HTTP ${err.status})`,
          cause,
        });
      }
      return new SsoError(
        err.status >= 500 ? 'PB_SSO_IDP_UNAVAILABLE' : 'PB_SSO_RESPONSE_INVALID',
        {
          message: `SSO provider ${id}: the ${phase} endpoint answered ${oauthError} (HTTP ${err.status})`,
          ...(err.status >= 500 ? {} : { check: phase }),
          cause,
        },
      );
    }
    if (err instanceof oidc.WWWAuthenticateChallengeError) {
      return new SsoError('PB_SSO_RESPONSE_INVALID', {
        message: `SSO provider ${id}: the ${phase} endpoint refused the access token (HTTP ${err.status})`,
        check: phase,
        cause,
      });
    }
    const idTokenInvalid = (check: string, what: string) =>
      new SsoError('PB_SSO_ID_TOKEN_INVALID', {
        message: `SSO provider ${id}: the ID token failed the ${check} check: ${what}`,
        check,
        cause,
      });
    const message = err instanceof Error ? err.message : 'unknown error';
    const innerMessage = String(field(inner, 'message') ?? message);
    switch (code) {
      case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED':
      case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED': {
        const claim = field(detail, 'claim');
        const check = typeof claim === 'string' && ID_TOKEN_CLAIMS.has(claim) ? claim : 'claims';
        return idTokenInvalid(check, innerMessage);
      }
      case 'OAUTH_KEY_SELECTION_FAILED':
        return idTokenInvalid('signature', "no key of the provider's JWKS matches its kid and alg");
      case 'OAUTH_UNSUPPORTED_OPERATION':
        return idTokenInvalid('alg', 'it is signed with an unsupported algorithm');
      case 'OAUTH_INVALID_RESPONSE':
        // Told apart by the shape of oauth4webapi's error details, not by message.
        if (field(detail, 'signature') !== undefined && field(detail, 'algorithm') !== undefined) {
          return idTokenInvalid('signature', 'the signature does not verify');
        }
        if (field(detail, 'header') !== undefined && field(detail, 'expected') !== undefined) {
          return idTokenInvalid('alg', 'its alg is not the one expected');
        }
        if (field(detail, 'parameters') !== undefined) {
          return new SsoError('PB_SSO_RESPONSE_INVALID', {
            message: `SSO provider ${id}: the authorization response is not acceptable: ${innerMessage}`,
            check: 'authorization_response',
            cause,
          });
        }
        if (field(detail, 'claims') !== undefined) return idTokenInvalid('claims', innerMessage);
        if (phase === 'token') {
          return new SsoError('PB_SSO_TOKEN_EXCHANGE_FAILED', {
            message: `SSO provider ${id}: the token response is not conform: ${innerMessage}`,
            cause,
          });
        }
        return new SsoError('PB_SSO_RESPONSE_INVALID', {
          message: `SSO provider ${id}: the ${phase} response is not conform: ${innerMessage}`,
          check: phase,
          cause,
        });
      case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
        if (phase === 'discovery') {
          return new SsoError('PB_SSO_CONFIG_INVALID', {
            message: `SSO provider ${id}: the discovery document names another issuer than the configured one`,
            cause,
          });
        }
        return new SsoError('PB_SSO_RESPONSE_INVALID', {
          message: `SSO provider ${id}: the ${phase} response names another subject`,
          check: phase === 'userinfo' ? 'userinfo_sub' : phase,
          cause,
        });
      case 'OAUTH_PARSE_ERROR':
        return new SsoError('PB_SSO_RESPONSE_INVALID', {
          message: `SSO provider ${id}: the ${phase} response cannot be parsed`,
          check: 'format',
          cause,
        });
      case 'OAUTH_RESPONSE_IS_NOT_CONFORM':
      case 'OAUTH_RESPONSE_IS_NOT_JSON': {
        // The cause is the HTTP response: a 4xx discovery answer is a wrong issuer URL.
        const status = field(inner, 'status');
        if (phase === 'discovery' && typeof status === 'number' && status < 500) {
          return new SsoError('PB_SSO_CONFIG_INVALID', {
            message: `SSO provider ${id}: no discovery document at the issuer (HTTP ${status})`,
            cause,
          });
        }
        return unavailable(
          id,
          phase,
          `${message}${typeof status === 'number' ? ` (HTTP ${status})` : ''}`,
          cause,
        );
      }
      case 'OAUTH_TIMEOUT':
      case 'OAUTH_ABORT':
        return unavailable(id, phase, message, cause);
      case 'OAUTH_HTTP_REQUEST_FORBIDDEN':
      case 'OAUTH_REQUEST_PROTOCOL_FORBIDDEN':
        return new SsoError('PB_SSO_CONFIG_INVALID', {
          message: `SSO provider ${id}: ${message} (an http:// URL needs allowInsecureHttp, for local testing only)`,
          cause,
        });
      case 'OAUTH_INVALID_SERVER_METADATA':
      case 'OAUTH_MISSING_SERVER_METADATA':
        return new SsoError('PB_SSO_CONFIG_INVALID', {
          message: `SSO provider ${id}: the server metadata is not usable: ${innerMessage}`,
          cause,
        });
      default:
        break;
    }
    // fetch() rejects with a plain TypeError when the server cannot be reached
    // (openid-client passes it on, or wraps it when it is no TypeError).
    if ((err instanceof TypeError && code === undefined) || field(inner, 'name') === 'TypeError') {
      return unavailable(id, phase, message, cause);
    }
    return new SsoError('PB_SSO_INTERNAL', {
      message: `SSO provider ${id}: ${phase} failed: ${message}`,
      cause,
    });
  }
}

function unavailable(id: string, phase: Phase, message: string, cause: Error): SsoError {
  return new SsoError('PB_SSO_IDP_UNAVAILABLE', {
    message: `SSO provider ${id}: the ${phase} request failed: ${message}`,
    cause,
  });
}

/** An OAuth error code as it may appear in a log line: `access_denied`, never free text. */
export function printable(value: unknown): string {
  return typeof value === 'string' && /^[\x21-\x7e]{1,64}$/.test(value)
    ? JSON.stringify(value)
    : '(unreadable)';
}

/** The provider answered `error=…` (RFC 6749 4.1.2.1). */
export function idpError(providerId: string, error: unknown, cause?: Error): SsoError {
  return new SsoError('PB_SSO_IDP_ERROR', {
    message: `SSO provider ${providerId}: the identity provider answered error=${printable(error)}`,
    ...(cause === undefined ? {} : { cause }),
  });
}
