import type { ConfigField } from '@plugboard/sdk';
import * as oidc from 'openid-client';
import { SsoError } from '../errors';
import { SsoProvider } from '../provider';
import type {
  AuthView,
  Identity,
  JsonValue,
  PipelineHelper,
  PipelineState,
  ViewOutcome,
} from '../types';
import { SSO_VERSION } from '../version';
import { AuthorizeView, TokenView, claimBool, claimGroups, claimText } from './authcode';
import { CLOCK_TOLERANCE_SECONDS, IdpClient, type TokenAuthMethod } from './idp-client';

export interface OidcConfig extends Record<string, unknown> {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  scopes: string;
  responseMode: 'query' | 'form_post';
  tokenAuthMethod: TokenAuthMethod;
  userinfo: boolean;
  groupsClaim: string;
  allowInsecureHttp: boolean;
  timeoutSeconds: number;
}

/** The configured instances' clients (discovery and JWKS caches): instances are frozen. */
const CLIENTS = new WeakMap<OidcProvider, IdpClient>();

/** Checks shared with the OAuth2 provider: https, unless explicitly for local testing. */
export function urlProblem(
  name: string,
  value: unknown,
  allowInsecureHttp: boolean,
): string | undefined {
  if (typeof value !== 'string') return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${name} must be an absolute URL`;
  }
  if (url.protocol === 'http:' && !allowInsecureHttp) {
    return `${name} must be an https:// URL (http:// only with allowInsecureHttp: true, for local testing)`;
  }
  if (url.hash !== '') return `${name} must not have a fragment`;
  return undefined;
}

export const TOKEN_AUTH_CHOICES = [
  {
    value: 'client_secret_basic',
    label: 'HTTP Basic with the client secret (client_secret_basic)',
  },
  { value: 'client_secret_post', label: 'Client secret in the request body (client_secret_post)' },
  { value: 'none', label: 'None: a public client, protected by PKCE only' },
];

/**
 * OpenID Connect sign-in: discovery, authorization code with PKCE (S256),
 * state and nonce, the ID token validated by openid-client (signature against
 * the provider's JWKS, `iss`, `aud`, `exp`, `iat`, `nonce`, 60 s clock
 * tolerance), then the userinfo endpoint.
 */
export class OidcProvider extends SsoProvider<OidcConfig> {
  readonly slug = 'oidc';
  readonly title = 'OpenID Connect';
  readonly version = SSO_VERSION;
  override readonly description =
    'Sign in with any OpenID Connect provider (Keycloak, Okta, Entra ID, Google, Authentik, Dex…).';

  override configFields(): ConfigField[] {
    return [
      {
        name: 'issuer',
        label: 'Issuer URL',
        type: 'url',
        help: 'The Issuer Identifier; its /.well-known/openid-configuration is read at the first sign-in.',
        placeholder: 'https://login.example.com/realms/ops',
      },
      { name: 'clientId', label: 'Client ID', type: 'text' },
      {
        name: 'clientSecret',
        label: 'Client secret',
        type: 'secret',
        required: false,
        help: 'Leave empty for a public client (tokenAuthMethod: none).',
      },
      {
        name: 'scopes',
        label: 'Scopes',
        type: 'text',
        default: 'openid email profile',
        help: 'Space-separated; must include openid. Add "groups" if your provider needs it for a groups claim.',
      },
      {
        name: 'responseMode',
        label: 'Response mode',
        type: 'select',
        default: 'query',
        choices: [
          { value: 'query', label: 'query: the provider redirects back with a GET' },
          {
            value: 'form_post',
            label: 'form_post: the provider POSTs back (flow cookie SameSite=None; Secure)',
          },
        ],
      },
      {
        name: 'tokenAuthMethod',
        label: 'Token endpoint authentication',
        type: 'select',
        default: 'client_secret_basic',
        choices: TOKEN_AUTH_CHOICES,
      },
      {
        name: 'userinfo',
        label: 'Read the userinfo endpoint',
        type: 'bool',
        default: true,
        help: 'Fills e-mail, name and groups the ID token leaves out.',
      },
      { name: 'groupsClaim', label: 'Groups claim', type: 'text', default: 'groups' },
      {
        name: 'allowInsecureHttp',
        label: 'Allow http:// (local testing only)',
        type: 'bool',
        default: false,
        help: 'Lets openid-client talk to an http:// issuer, e.g. a test provider on 127.0.0.1. Never in production.',
      },
      {
        name: 'timeoutSeconds',
        label: 'Timeout of each request to the provider (s)',
        type: 'number',
        default: 10,
      },
    ];
  }

  protected override checkConfig(config: Readonly<OidcConfig>): string[] {
    const problems: string[] = [];
    const issuer = urlProblem('issuer', config.issuer, config.allowInsecureHttp);
    if (issuer !== undefined) problems.push(issuer);
    if (!config.scopes.split(/\s+/).includes('openid')) problems.push('scopes must include openid');
    if (config.tokenAuthMethod !== 'none' && !config.clientSecret) {
      problems.push(`clientSecret is required with tokenAuthMethod ${config.tokenAuthMethod}`);
    }
    if (!(config.timeoutSeconds >= 1 && config.timeoutSeconds <= 120)) {
      problems.push('timeoutSeconds must be between 1 and 120');
    }
    return problems;
  }

  override callbackMethod(): 'query' | 'form_post' {
    return this.isConfigured && this.config.responseMode === 'form_post' ? 'form_post' : 'query';
  }

  private client(): IdpClient {
    let client = CLIENTS.get(this);
    if (client === undefined) {
      const c = this.config;
      client = new IdpClient({
        providerId: this.slug,
        issuer: c.issuer,
        clientId: c.clientId,
        ...(c.clientSecret ? { clientSecret: c.clientSecret } : {}),
        authMethod: c.tokenAuthMethod,
        allowInsecureHttp: c.allowInsecureHttp,
        verifySignatures: true,
        timeoutSeconds: c.timeoutSeconds,
      });
      CLIENTS.set(this, client);
    }
    return client;
  }

  getAuthPipeline(): AuthView[] {
    const config = this.config;
    const settings = {
      kind: 'oidc',
      client: this.client(),
      scopes: config.scopes,
      pkce: true,
      openid: true,
      responseMode: config.responseMode,
      afterTokens: (
        tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>,
        cfg: oidc.Configuration,
        helper: PipelineHelper,
      ) => this.afterTokens(tokens, cfg, helper),
    };
    return [new AuthorizeView(settings), new TokenView(settings)];
  }

  private async afterTokens(
    tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>,
    cfg: oidc.Configuration,
    helper: PipelineHelper,
  ): Promise<ViewOutcome> {
    const claims = tokens.claims();
    if (claims === undefined) {
      return helper.error(
        new SsoError('PB_SSO_ID_TOKEN_INVALID', {
          message: `SSO provider ${helper.providerId}: the token response has no ID token`,
          check: 'claims',
        }),
      );
    }
    // openid-client checks that iat is a number, not that it is in the past.
    const nowSeconds = Math.floor(Date.now() / 1000);
    if (claims.iat > nowSeconds + CLOCK_TOLERANCE_SECONDS) {
      return helper.error(
        new SsoError('PB_SSO_ID_TOKEN_INVALID', {
          message: `SSO provider ${helper.providerId}: the ID token failed the iat check: issued ${claims.iat - nowSeconds} s in the future`,
          check: 'iat',
        }),
      );
    }
    let info: Record<string, unknown> = {};
    const userinfoEndpoint = cfg.serverMetadata().userinfo_endpoint;
    if (this.config.userinfo && typeof userinfoEndpoint === 'string' && tokens.access_token) {
      try {
        // The subject check (userinfo sub = ID token sub) is openid-client's.
        info = await oidc.fetchUserInfo(cfg, tokens.access_token, claims.sub);
      } catch (err) {
        return helper.error(this.client().translate(err, 'userinfo'));
      }
    }
    const pick = (name: string): unknown => (info[name] !== undefined ? info[name] : claims[name]);
    const facts: Record<string, JsonValue> = { iss: claims.iss, sub: claims.sub };
    const email = claimText(pick('email'));
    if (email !== undefined) facts.email = email;
    const verified = claimBool(pick('email_verified'));
    if (verified !== undefined) facts.email_verified = verified;
    const name = claimText(pick('name')) ?? claimText(pick('preferred_username'));
    if (name !== undefined) facts.name = name;
    const username = claimText(pick('preferred_username'));
    if (username !== undefined) facts.preferred_username = username;
    const groups = claimGroups(pick(this.config.groupsClaim));
    if (groups !== undefined) facts.groups = groups;
    helper.bindState('oidc', facts);
    return helper.nextStep();
  }

  async buildIdentity(state: PipelineState): Promise<Identity> {
    const facts = state.oidc as Record<string, JsonValue> | undefined;
    const sub = claimText(facts?.sub);
    const email = claimText(facts?.email);
    if (sub === undefined || email === undefined) {
      throw new SsoError('PB_SSO_IDENTITY_INVALID', {
        message:
          `SSO provider ${this.slug}: the ID token and userinfo carry no ${sub === undefined ? 'sub' : 'email'}` +
          (sub === undefined ? '' : ' (is the email scope requested and allowed for this client?)'),
      });
    }
    const data: Record<string, unknown> = { issuer: facts?.iss };
    if (facts?.preferred_username !== undefined) data.username = facts.preferred_username;
    if (facts?.groups !== undefined) data.groups = facts.groups;
    return {
      id: sub,
      email,
      ...(typeof facts?.name === 'string' ? { name: facts.name } : {}),
      ...(typeof facts?.email_verified === 'boolean'
        ? { emailVerified: facts.email_verified }
        : {}),
      data,
    };
  }
}
