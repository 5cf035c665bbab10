import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/**
 * A small OpenID Provider (and OAuth 2.0 server) on 127.0.0.1 for the tests:
 * discovery, JWKS, a token endpoint issuing ID tokens the test controls
 * (claims, signing key), userinfo, and a GitHub-like user API for OAuth2.
 * The authorization step is a function (`authorize`) instead of a login
 * page: it checks the request the relay's redirect carries and returns the
 * answer the browser would bring back to the callback.
 */

export interface FakeUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

interface PendingCode {
  clientId: string;
  redirectUri: string;
  scope: string;
  codeChallenge: string | undefined;
  nonce: string | undefined;
  user: FakeUser;
  used: boolean;
}

export interface TokenRequest {
  params: Record<string, string>;
  authorization: string | undefined;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomBytes(8).toString('hex');
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, publicJwk };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

export class FakeOp {
  readonly clientId = 'plugboard-relay';
  readonly clientSecret = 'op-client-secret-0123456789';
  issuer = '';
  readonly counts = { discovery: 0, jwks: 0, token: 0, userinfo: 0, api: 0 };
  readonly tokenRequests: TokenRequest[] = [];
  /** Every access token and ID token issued, to check that none leaks anywhere. */
  readonly issued: string[] = [];
  /** Claims merged into the next ID tokens; `undefined` removes a claim. */
  idTokenClaims: Record<string, unknown> = {};
  /** Sign the next ID tokens with a key the JWKS does not publish (under the current kid). */
  forgeSignature = false;
  /** The issuer the discovery document names; the real one when unset. */
  advertisedIssuer: string | undefined;
  /** Make the token endpoint answer this OAuth error. */
  tokenError: string | undefined;

  private server: Server | undefined;
  private key!: SigningKey;
  private forger!: SigningKey;
  private readonly codes = new Map<string, PendingCode>();
  private readonly accessTokens = new Map<string, FakeUser>();

  static async start(): Promise<FakeOp> {
    const op = new FakeOp();
    op.key = await newKey();
    op.forger = await newKey();
    op.server = createServer((req, res) => {
      op.handle(req, res).catch((err: unknown) => json(res, 500, { error: String(err) }));
    });
    await new Promise<void>((resolve) => op.server!.listen(0, '127.0.0.1', resolve));
    const { port } = op.server.address() as AddressInfo;
    op.issuer = `http://127.0.0.1:${port}`;
    return op;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** The current key's id. */
  get kid(): string {
    return this.key.kid;
  }

  /** A key rotation: a new key signs from now on, and the JWKS publishes only it. */
  async rotateKey(): Promise<void> {
    this.key = await newKey();
  }

  /**
   * The identity provider's side of the browser's visit to the authorization
   * endpoint: checks the request and returns the parameters of its answer.
   */
  authorize(url: URL, user: FakeUser): URLSearchParams {
    const p = url.searchParams;
    if (`${url.origin}${url.pathname}` !== `${this.issuer}/authorize`) {
      throw new Error(`not this provider's authorization endpoint: ${url.origin}${url.pathname}`);
    }
    if (p.get('client_id') !== this.clientId) throw new Error('unknown client_id');
    if (p.get('response_type') !== 'code') throw new Error('response_type must be code');
    const redirectUri = p.get('redirect_uri');
    if (redirectUri === null) throw new Error('no redirect_uri');
    const challenge = p.get('code_challenge') ?? undefined;
    if (challenge !== undefined && p.get('code_challenge_method') !== 'S256') {
      throw new Error('only S256');
    }
    const code = randomBytes(16).toString('base64url');
    this.codes.set(code, {
      clientId: this.clientId,
      redirectUri,
      scope: p.get('scope') ?? '',
      codeChallenge: challenge,
      nonce: p.get('nonce') ?? undefined,
      user,
      used: false,
    });
    const answer = new URLSearchParams({ code });
    const state = p.get('state');
    if (state !== null) answer.set('state', state);
    return answer;
  }

  /** The answer of a provider that refuses (the user cancelled, or is not allowed). */
  deny(url: URL, error = 'access_denied'): URLSearchParams {
    const answer = new URLSearchParams({ error, error_description: 'The user said no' });
    const state = url.searchParams.get('state');
    if (state !== null) answer.set('state', state);
    return answer;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.issuer);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      this.counts.discovery += 1;
      json(res, 200, {
        issuer: this.advertisedIssuer ?? this.issuer,
        authorization_endpoint: `${this.issuer}/authorize`,
        token_endpoint: `${this.issuer}/token`,
        userinfo_endpoint: `${this.issuer}/userinfo`,
        jwks_uri: `${this.issuer}/jwks`,
        response_types_supported: ['code'],
        response_modes_supported: ['query', 'form_post'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/jwks') {
      this.counts.jwks += 1;
      json(res, 200, { keys: [this.key.publicJwk] });
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      this.counts.token += 1;
      await this.token(req, res);
      return;
    }
    if (req.method === 'GET' && (url.pathname === '/userinfo' || url.pathname === '/api/user')) {
      const auth = req.headers.authorization ?? '';
      const user = this.accessTokens.get(auth.replace(/^Bearer /i, ''));
      if (user === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
        res.end();
        return;
      }
      if (url.pathname === '/userinfo') {
        this.counts.userinfo += 1;
        json(res, 200, { ...user });
      } else {
        // GitHub-like: a numeric id, its own names for things.
        this.counts.api += 1;
        json(res, 200, {
          id: 4242,
          login: user.sub,
          profile: { email: user.email, display_name: user.name },
          verified: user.email_verified ?? false,
          teams: user.groups ?? [],
        });
      }
      return;
    }
    json(res, 404, { error: 'not_found' });
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const params = Object.fromEntries(new URLSearchParams(await readBody(req)));
    this.tokenRequests.push({ params, authorization: req.headers.authorization });
    if (this.tokenError !== undefined) {
      json(res, 400, { error: this.tokenError });
      return;
    }
    // RFC 6749 2.3.1: Basic credentials are form-urlencoded before base64.
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [user, password] = Buffer.from(basic ?? '', 'base64')
      .toString('utf8')
      .split(':')
      .map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
    const clientOk =
      (user === this.clientId && password === this.clientSecret) ||
      (params.client_id === this.clientId && params.client_secret === this.clientSecret);
    if (!clientOk) {
      json(res, 401, { error: 'invalid_client' });
      return;
    }
    const pending = this.codes.get(params.code ?? '');
    if (params.grant_type !== 'authorization_code' || pending === undefined || pending.used) {
      json(res, 400, { error: 'invalid_grant' });
      return;
    }
    pending.used = true;
    if (params.redirect_uri !== pending.redirectUri) {
      json(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri' });
      return;
    }
    if (pending.codeChallenge !== undefined) {
      const verifier = params.code_verifier ?? '';
      const computed = createHash('sha256').update(verifier).digest('base64url');
      if (computed !== pending.codeChallenge) {
        json(res, 400, { error: 'invalid_grant', error_description: 'PKCE' });
        return;
      }
    }
    const accessToken = randomBytes(16).toString('base64url');
    this.accessTokens.set(accessToken, pending.user);
    this.issued.push(accessToken);
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 300,
    };
    if (pending.scope.split(' ').includes('openid')) {
      body.id_token = await this.idToken(pending);
      this.issued.push(body.id_token as string);
    }
    json(res, 200, body);
  }

  private async idToken(pending: PendingCode): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: this.issuer,
      aud: pending.clientId,
      sub: pending.user.sub,
      iat: now,
      exp: now + 300,
      ...(pending.nonce === undefined ? {} : { nonce: pending.nonce }),
      ...(pending.user.email === undefined ? {} : { email: pending.user.email }),
    };
    for (const [name, value] of Object.entries(this.idTokenClaims)) {
      if (value === undefined) delete claims[name];
      else claims[name] = value;
    }
    const signer = this.forgeSignature ? this.forger.privateKey : this.key.privateKey;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: this.key.kid, typ: 'JWT' })
      .sign(signer);
  }
}
