import * as oidc from 'openid-client';
import { SsoError } from '../errors';
import type { AuthView, PipelineHelper, PipelineRequest, ViewOutcome } from '../types';
import { idpError, type IdpClient } from './idp-client';

/**
 * The two views of an authorization-code sign-in (Sentry's `OAuth2LoginView`
 * and `OAuth2CallbackView`), shared by the OIDC and OAuth2 providers; both
 * leave the protocol to openid-client.
 */
export interface AuthCodeSettings {
  /** `oidc` or `oauth2`: prefixes the views' names. */
  kind: string;
  client: IdpClient;
  scopes: string;
  /** PKCE with S256. Always on for OIDC. */
  pkce: boolean;
  /** OpenID Connect: send a nonce and require an ID token carrying it. */
  openid: boolean;
  responseMode: 'query' | 'form_post';
  /** What to bind from the token response (never the tokens themselves). */
  afterTokens(
    tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>,
    config: oidc.Configuration,
    helper: PipelineHelper,
  ): Promise<ViewOutcome>;
}

/** Step 1: send the browser to the authorization endpoint; on its answer, go on. */
export class AuthorizeView implements AuthView {
  readonly name: string;

  constructor(private readonly settings: AuthCodeSettings) {
    this.name = `${settings.kind}.authorize`;
  }

  async dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    const { settings } = this;
    if (request.phase === 'start') {
      const config = await settings.client.configuration();
      const params: Record<string, string> = {
        redirect_uri: helper.callbackUrl,
        response_type: 'code',
        state: helper.state,
      };
      if (settings.scopes !== '') params.scope = settings.scopes;
      if (settings.pkce) {
        const verifier = oidc.randomPKCECodeVerifier();
        helper.bindState('pkce', verifier);
        params.code_challenge = await oidc.calculatePKCECodeChallenge(verifier);
        params.code_challenge_method = 'S256';
      }
      if (settings.openid) {
        const nonce = oidc.randomNonce();
        helper.bindState('nonce', nonce);
        params.nonce = nonce;
      }
      if (settings.responseMode === 'form_post') params.response_mode = 'form_post';
      return helper.redirect(oidc.buildAuthorizationUrl(config, params));
    }
    // The answer must come the way it was asked for: a form_post answer in a
    // query string (or the reverse) is not one this flow requested.
    const expected = settings.responseMode === 'form_post' ? 'POST' : 'GET';
    if (request.method !== expected) {
      return helper.error(
        new SsoError('PB_SSO_RESPONSE_INVALID', {
          message: `SSO provider ${helper.providerId}: the answer came by ${request.method}, the flow asked for response_mode=${settings.responseMode}`,
          check: 'response_mode',
        }),
      );
    }
    const error = request.params.get('error');
    if (error !== null) return helper.error(idpError(helper.providerId, error));
    if (!request.params.get('code')) {
      return helper.error(
        new SsoError('PB_SSO_RESPONSE_INVALID', {
          message: `SSO provider ${helper.providerId}: the answer carries neither code nor error`,
          check: 'code',
        }),
      );
    }
    return helper.nextStep();
  }
}

/** Step 2: exchange the code (PKCE, state, nonce and ID token checked by openid-client). */
export class TokenView implements AuthView {
  readonly name: string;

  constructor(private readonly settings: AuthCodeSettings) {
    this.name = `${settings.kind}.token`;
  }

  async dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    const { settings } = this;
    const verifier = helper.fetchState<string>('pkce');
    const nonce = helper.fetchState<string>('nonce');
    if (
      (settings.pkce && typeof verifier !== 'string') ||
      (settings.openid && typeof nonce !== 'string')
    ) {
      throw new SsoError('PB_SSO_INTERNAL', {
        message: `SSO provider ${helper.providerId}: the flow lost its PKCE verifier or nonce`,
      });
    }
    const config = await settings.client.configuration();
    // The callback URL with the answer's parameters, wherever they came:
    // openid-client takes the redirect_uri from it (parameters stripped).
    const current = new URL(helper.callbackUrl);
    for (const [key, value] of request.params) current.searchParams.append(key, value);
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, current, {
        // The router has already compared state in constant time; openid-client checks it again.
        expectedState: helper.state,
        ...(settings.pkce ? { pkceCodeVerifier: verifier as string } : {}),
        ...(settings.openid ? { expectedNonce: nonce as string, idTokenExpected: true } : {}),
      });
    } catch (err) {
      return helper.error(settings.client.translate(err, 'token'));
    }
    return settings.afterTokens(tokens, config, helper);
  }
}

/** `value` as a claim path lookup: `email`, or `data.attributes.email`. */
export function claimAt(source: unknown, path: string): unknown {
  let value: unknown = source;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** A claim as text: strings as they are, numbers (GitHub's ids) as decimal. */
export function claimText(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Group names from a claim that is a list of names or one name. */
export function claimGroups(value: unknown): string[] | undefined {
  if (typeof value === 'string' && value !== '') return [value];
  if (Array.isArray(value)) {
    const groups = value.filter((g): g is string => typeof g === 'string' && g !== '');
    return groups;
  }
  return undefined;
}

/** `true`/`false`, also from the strings some providers send. */
export function claimBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}
