import type { ConfigField } from '@plugboard/sdk';
import * as oidc from 'openid-client';
import { SsoError, safeCause } from '../errors';
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
import { AuthorizeView, TokenView, claimAt, claimBool, claimGroups, claimText } from './authcode';
import { IdpClient, type TokenAuthMethod } from './idp-client';
import { TOKEN_AUTH_CHOICES, urlProblem } from './oidc';

export interface OAuth2Config extends Record<string, unknown> {
  authorizeUrl: string;
  tokenUrl: string;
  userinfoUrl: string;
  clientId: string;
  clientSecret?: string;
  scopes: string;
  pkce: boolean;
  tokenAuthMethod: TokenAuthMethod;
  issuer?: string;
  idClaim: string;
  emailClaim: string;
  nameClaim: string;
  emailVerifiedClaim: string;
  groupsClaim: string;
  allowInsecureHttp: boolean;
  timeoutSeconds: number;
}

const CLIENTS = new WeakMap<OAuth2Provider, IdpClient>();

/**
 * A generic OAuth 2.0 authorization-code provider (Sentry's
 * `OAuth2Provider`): authorize, token and userinfo URLs, PKCE on by default,
 * the identity mapped from the userinfo answer's claims (dotted paths allowed).
 */
export class OAuth2Provider extends SsoProvider<OAuth2Config> {
  readonly slug = 'oauth2';
  readonly title = 'OAuth 2.0';
  readonly version = SSO_VERSION;
  override readonly description =
    'Sign in with any OAuth 2.0 server that has a userinfo-like API (GitHub, GitLab, an in-house server).';

  override configFields(): ConfigField[] {
    return [
      { name: 'authorizeUrl', label: 'Authorization endpoint', type: 'url' },
      { name: 'tokenUrl', label: 'Token endpoint', type: 'url' },
      {
        name: 'userinfoUrl',
        label: 'Userinfo endpoint',
        type: 'url',
        help: 'Called with the access token; its JSON answer gives the claims below.',
      },
      { name: 'clientId', label: 'Client ID', type: 'text' },
      { name: 'clientSecret', label: 'Client secret', type: 'secret', required: false },
      { name: 'scopes', label: 'Scopes', type: 'text', required: false, default: '' },
      { name: 'pkce', label: 'Use PKCE (S256)', type: 'bool', default: true },
      {
        name: 'tokenAuthMethod',
        label: 'Token endpoint authentication',
        type: 'select',
        default: 'client_secret_basic',
        choices: TOKEN_AUTH_CHOICES,
      },
      {
        name: 'issuer',
        label: 'Issuer (RFC 9207 iss parameter)',
        type: 'text',
        required: false,
        help: 'Only if the server sends an iss parameter with its answer; defaults to the authorization endpoint’s origin.',
      },
      { name: 'idClaim', label: 'Claim with the user id', type: 'text', default: 'sub' },
      {
        name: 'emailClaim',
        label: 'Claim with the e-mail address',
        type: 'text',
        default: 'email',
      },
      { name: 'nameClaim', label: 'Claim with the name', type: 'text', default: 'name' },
      {
        name: 'emailVerifiedClaim',
        label: 'Claim saying the e-mail is verified',
        type: 'text',
        default: 'email_verified',
      },
      { name: 'groupsClaim', label: 'Claim with the groups', type: 'text', default: 'groups' },
      {
        name: 'allowInsecureHttp',
        label: 'Allow http:// (local testing only)',
        type: 'bool',
        default: false,
      },
      {
        name: 'timeoutSeconds',
        label: 'Timeout of each request to the server (s)',
        type: 'number',
        default: 10,
      },
    ];
  }

  protected override checkConfig(config: Readonly<OAuth2Config>): string[] {
    const problems: string[] = [];
    for (const name of ['authorizeUrl', 'tokenUrl', 'userinfoUrl'] as const) {
      const problem = urlProblem(name, config[name], config.allowInsecureHttp);
      if (problem !== undefined) problems.push(problem);
    }
    if (config.tokenAuthMethod !== 'none' && !config.clientSecret) {
      problems.push(`clientSecret is required with tokenAuthMethod ${config.tokenAuthMethod}`);
    }
    if (config.tokenAuthMethod === 'none' && !config.pkce) {
      problems.push('a public client (tokenAuthMethod none) needs pkce: true');
    }
    if (!(config.timeoutSeconds >= 1 && config.timeoutSeconds <= 120)) {
      problems.push('timeoutSeconds must be between 1 and 120');
    }
    return problems;
  }

  private client(): IdpClient {
    let client = CLIENTS.get(this);
    if (client === undefined) {
      const c = this.config;
      client = new IdpClient({
        providerId: this.slug,
        clientId: c.clientId,
        ...(c.clientSecret ? { clientSecret: c.clientSecret } : {}),
        authMethod: c.tokenAuthMethod,
        metadata: {
          issuer: c.issuer || new URL(c.authorizeUrl).origin,
          authorization_endpoint: c.authorizeUrl,
          token_endpoint: c.tokenUrl,
        },
        allowInsecureHttp: c.allowInsecureHttp,
        // No ID token is asked for; one that comes anyway is still checked by openid-client.
        verifySignatures: false,
        timeoutSeconds: c.timeoutSeconds,
      });
      CLIENTS.set(this, client);
    }
    return client;
  }

  getAuthPipeline(): AuthView[] {
    const config = this.config;
    const settings = {
      kind: 'oauth2',
      client: this.client(),
      scopes: config.scopes,
      pkce: config.pkce,
      openid: false,
      responseMode: 'query' as const,
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
    const c = this.config;
    let body: unknown;
    try {
      const response = await oidc.fetchProtectedResource(
        cfg,
        tokens.access_token,
        new URL(c.userinfoUrl),
        'GET',
        undefined,
        new Headers({ accept: 'application/json' }),
      );
      if (!response.ok) {
        await response.body?.cancel();
        return helper.error(
          new SsoError(
            response.status >= 500 ? 'PB_SSO_IDP_UNAVAILABLE' : 'PB_SSO_RESPONSE_INVALID',
            {
              message: `SSO provider ${helper.providerId}: the userinfo endpoint answered HTTP ${response.status}`,
              ...(response.status >= 500 ? {} : { check: 'userinfo' }),
            },
          ),
        );
      }
      try {
        body = await response.json();
      } catch (err) {
        return helper.error(
          new SsoError('PB_SSO_RESPONSE_INVALID', {
            message: `SSO provider ${helper.providerId}: the userinfo answer is not JSON`,
            check: 'userinfo',
            cause: safeCause(err),
          }),
        );
      }
    } catch (err) {
      return helper.error(this.client().translate(err, 'userinfo'));
    }
    const facts: Record<string, JsonValue> = {};
    const id = claimText(claimAt(body, c.idClaim));
    if (id !== undefined) facts.id = id;
    const email = claimText(claimAt(body, c.emailClaim));
    if (email !== undefined) facts.email = email;
    const name = claimText(claimAt(body, c.nameClaim));
    if (name !== undefined) facts.name = name;
    const verified = claimBool(claimAt(body, c.emailVerifiedClaim));
    if (verified !== undefined) facts.email_verified = verified;
    const groups = claimGroups(claimAt(body, c.groupsClaim));
    if (groups !== undefined) facts.groups = groups;
    helper.bindState('oauth2', facts);
    return helper.nextStep();
  }

  async buildIdentity(state: PipelineState): Promise<Identity> {
    const facts = state.oauth2 as Record<string, JsonValue> | undefined;
    const id = claimText(facts?.id);
    const email = claimText(facts?.email);
    if (id === undefined || email === undefined) {
      const c = this.config;
      throw new SsoError('PB_SSO_IDENTITY_INVALID', {
        message: `SSO provider ${this.slug}: the userinfo answer has no ${id === undefined ? `"${c.idClaim}" (idClaim)` : `"${c.emailClaim}" (emailClaim)`}`,
      });
    }
    return {
      id,
      email,
      ...(typeof facts?.name === 'string' ? { name: facts.name } : {}),
      ...(typeof facts?.email_verified === 'boolean'
        ? { emailVerified: facts.email_verified }
        : {}),
      data: facts?.groups === undefined ? {} : { groups: facts.groups },
    };
  }
}
