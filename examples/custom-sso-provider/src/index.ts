import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConfigField } from '@plugboard/sdk';
import {
  constantTimeEqual,
  randomToken,
  SsoError,
  SsoProvider,
  type AuthView,
  type Identity,
  type PipelineHelper,
  type PipelineRequest,
  type PipelineState,
  type ViewOutcome,
} from '@plugboard/sso';

/**
 * ACME's company login (fictional) works like many in-house SSOs:
 *
 * 1. the application sends the browser to the login page with
 *    `return_to`, `state`, `nonce` and `audience` in the query;
 * 2. after the employee signs in, the login page POSTs a form back to
 *    `return_to` with `state` and `assertion` (or `error`);
 * 3. `assertion` is `<payload>.<signature>`: the payload is base64url JSON
 *    `{ sub, email, name, groups, iat, nonce, aud }`, the signature the
 *    base64url HMAC-SHA256 of the payload text, keyed with a secret the
 *    application and the login service share.
 */

export interface AcmeConfig extends Record<string, unknown> {
  loginUrl: string;
  sharedSecret: string;
  audience: string;
  maxAgeSeconds: number;
}

/** What a verified assertion says. */
export interface AcmeAssertion {
  sub: string;
  email: string;
  name?: string;
  groups?: string[];
  /** Issued at, seconds since the epoch. */
  iat: number;
  nonce: string;
  aud: string;
}

/** Future `iat`s tolerated: the two servers' clocks disagree a little. */
const CLOCK_SKEW_SECONDS = 30;

function hmac(secret: string, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload, 'utf8').digest();
}

/**
 * The login service's side: signs an assertion. Exported for tests and to
 * document the format; the relay never calls it.
 */
export function signAssertion(assertion: AcmeAssertion, sharedSecret: string): string {
  const payload = Buffer.from(JSON.stringify(assertion), 'utf8').toString('base64url');
  return `${payload}.${hmac(sharedSecret, payload).toString('base64url')}`;
}

function invalid(check: string, message: string): SsoError {
  return new SsoError('PB_SSO_RESPONSE_INVALID', {
    message: `SSO provider acme: the assertion failed the ${check} check: ${message}`,
    check,
  });
}

/**
 * Verifies an assertion: signature (constant time), then audience, age and
 * nonce. Throws an SsoError (`PB_SSO_RESPONSE_INVALID`) naming the check.
 */
export function verifyAssertion(
  assertion: string,
  options: {
    sharedSecret: string;
    audience: string;
    nonce: string;
    maxAgeSeconds: number;
    now: number;
  },
): AcmeAssertion {
  const [payload, signature, extra] = assertion.split('.');
  if (!payload || !signature || extra !== undefined) {
    throw invalid('format', 'not <payload>.<signature>');
  }
  const expected = hmac(options.sharedSecret, payload);
  const given = Buffer.from(signature, 'base64url');
  // timingSafeEqual needs equal lengths; the length of an HMAC is no secret.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw invalid('signature', 'the signature does not match the shared secret');
  }
  let claims: Partial<AcmeAssertion>;
  try {
    claims = JSON.parse(
      Buffer.from(payload, 'base64url').toString('utf8'),
    ) as Partial<AcmeAssertion>;
  } catch {
    throw invalid('format', 'the payload is not JSON');
  }
  if (typeof claims.sub !== 'string' || typeof claims.email !== 'string') {
    throw invalid('format', 'sub and email are required');
  }
  if (claims.aud !== options.audience) throw invalid('aud', 'it is meant for another application');
  const nowSeconds = Math.floor(options.now / 1000);
  if (typeof claims.iat !== 'number') throw invalid('iat', 'no issue time');
  if (claims.iat > nowSeconds + CLOCK_SKEW_SECONDS) throw invalid('iat', 'issued in the future');
  if (nowSeconds - claims.iat > options.maxAgeSeconds) {
    throw invalid('iat', `older than ${options.maxAgeSeconds} s`);
  }
  // The nonce ties the assertion to this flow: one captured from another
  // sign-in cannot be replayed into this one.
  if (typeof claims.nonce !== 'string' || !constantTimeEqual(claims.nonce, options.nonce)) {
    throw invalid('nonce', 'it was issued for another sign-in');
  }
  return claims as AcmeAssertion;
}

/** Step 1: send the browser to the company login; when it comes back, go on. */
class AcmeRedirectView implements AuthView {
  readonly name = 'acme.redirect';

  constructor(private readonly config: Readonly<AcmeConfig>) {}

  async dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    if (request.phase === 'start') {
      const nonce = randomToken();
      helper.bindState('nonce', nonce);
      const url = new URL(this.config.loginUrl);
      url.searchParams.set('return_to', helper.callbackUrl);
      url.searchParams.set('state', helper.state);
      url.searchParams.set('nonce', nonce);
      url.searchParams.set('audience', this.config.audience);
      return helper.redirect(url);
    }
    if (request.params.has('error')) {
      return helper.error(
        new SsoError('PB_SSO_IDP_ERROR', {
          message: 'SSO provider acme: the company login answered with an error',
        }),
      );
    }
    if (!request.params.has('assertion')) {
      return helper.error(invalid('format', 'the answer carries no assertion'));
    }
    return helper.nextStep();
  }
}

/** Step 2: verify the assertion the company login POSTed, bind who it names. */
class AcmeAssertionView implements AuthView {
  readonly name = 'acme.assertion';

  constructor(private readonly config: Readonly<AcmeConfig>) {}

  async dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    const nonce = helper.fetchState<string>('nonce');
    if (nonce === undefined)
      return helper.error('The sign-in lost its place. Please sign in again.');
    const claims = verifyAssertion(request.params.get('assertion') ?? '', {
      sharedSecret: this.config.sharedSecret,
      audience: this.config.audience,
      nonce,
      maxAgeSeconds: this.config.maxAgeSeconds,
      now: helper.now(),
    });
    helper.bindState('acme', {
      sub: claims.sub,
      email: claims.email,
      ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
      groups: Array.isArray(claims.groups)
        ? claims.groups.filter((g) => typeof g === 'string')
        : [],
    });
    return helper.nextStep();
  }
}

/** Plugboard SSO provider for ACME's company login. */
export class AcmeSsoProvider extends SsoProvider<AcmeConfig> {
  readonly slug = 'acme';
  readonly title = 'ACME company login';
  readonly version = '1.0.0';
  override readonly description =
    'Sign in with your ACME account (the company login posts a signed assertion back).';

  override configFields(): ConfigField[] {
    return [
      {
        name: 'loginUrl',
        label: 'Company login URL',
        type: 'url',
        placeholder: 'https://login.acme.example/sso',
      },
      {
        name: 'sharedSecret',
        label: 'Shared secret',
        type: 'secret',
        help: 'The HMAC key the login service signs assertions with; at least 32 characters.',
      },
      {
        name: 'audience',
        label: 'Audience',
        type: 'text',
        default: 'plugboard',
        help: 'The application name the login service puts in aud.',
      },
      {
        name: 'maxAgeSeconds',
        label: 'Oldest assertion accepted (s)',
        type: 'number',
        default: 120,
      },
    ];
  }

  protected override checkConfig(config: Readonly<AcmeConfig>): string[] {
    const problems: string[] = [];
    if (!config.loginUrl.startsWith('https://')) problems.push('loginUrl must be an https:// URL');
    if (config.sharedSecret.length < 32)
      problems.push('sharedSecret must have at least 32 characters');
    if (!(config.maxAgeSeconds >= 10 && config.maxAgeSeconds <= 600)) {
      problems.push('maxAgeSeconds must be between 10 and 600');
    }
    return problems;
  }

  /** The login POSTs back from its own site: the flow cookie must be SameSite=None; Secure. */
  override callbackMethod(): 'query' | 'form_post' {
    return 'form_post';
  }

  getAuthPipeline(): AuthView[] {
    return [new AcmeRedirectView(this.config), new AcmeAssertionView(this.config)];
  }

  async buildIdentity(state: PipelineState): Promise<Identity> {
    const acme = state.acme as
      { sub?: string; email?: string; name?: string; groups?: string[] } | undefined;
    if (typeof acme?.sub !== 'string' || typeof acme.email !== 'string') {
      throw new SsoError('PB_SSO_IDENTITY_INVALID', {
        message: 'SSO provider acme: no verified assertion',
      });
    }
    return {
      id: acme.sub,
      email: acme.email,
      ...(acme.name === undefined ? {} : { name: acme.name }),
      // The company directory is the source of the address.
      emailVerified: true,
      data: { groups: acme.groups ?? [] },
    };
  }
}
