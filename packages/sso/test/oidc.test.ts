import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OidcProvider } from '@plugboard/sso';
import { testApp, type TestApp } from './helpers/app';
import { Browser, location, setCookies } from './helpers/browser';
import { FakeOp, type FakeUser } from './helpers/fake-op';

// Every request goes to a real OpenID Provider on 127.0.0.1 (FakeOp), with
// ID tokens signed by jose; openid-client does the protocol work.

let op: FakeOp;
beforeEach(async () => {
  op = await FakeOp.start();
});
afterEach(async () => {
  await op.close();
});

const ada: FakeUser = {
  sub: 'u-ada',
  email: 'ada@example.com',
  email_verified: true,
  name: 'Ada Lovelace',
  groups: ['ops', 'admins'],
};

function oidcApp(config: Record<string, unknown> = {}): TestApp {
  const provider = new OidcProvider().configure({
    issuer: op.issuer,
    clientId: op.clientId,
    clientSecret: op.clientSecret,
    allowInsecureHttp: true,
    ...config,
  });
  return testApp([{ id: 'corp', label: 'Corp SSO', provider }]);
}

/** The whole round trip: /login, the provider's answer, the callback. */
async function signIn(browser: Browser, mode: 'query' | 'form_post' = 'query', user = ada) {
  const start = await browser.get('/auth/login/corp');
  expect(start.status).toBe(303);
  const answer = op.authorize(location(start), user);
  return mode === 'query'
    ? browser.get(`/auth/callback?${answer}`)
    : browser.post('/auth/callback', Object.fromEntries(answer));
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('OIDC sign-in', () => {
  it('signs in with the authorization code flow, PKCE S256, state and nonce (query mode)', async () => {
    const t = oidcApp();
    const browser = new Browser(t.app);
    const start = await browser.get('/auth/login/corp');
    const authorize = location(start);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(`${op.issuer}/authorize`);
    const p = authorize.searchParams;
    expect(p.get('response_type')).toBe('code');
    expect(p.get('client_id')).toBe(op.clientId);
    expect(p.get('redirect_uri')).toBe('http://127.0.0.1:8080/auth/callback');
    expect(p.get('scope')).toBe('openid email profile');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.get('nonce')).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(p.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.has('response_mode')).toBe(false);

    const res = await browser.get(`/auth/callback?${op.authorize(authorize, ada)}`);
    expect(res.status).toBe(200);
    expect(res.body.signedIn).toEqual({
      id: 'u-ada',
      email: 'ada@example.com',
      name: 'Ada Lovelace',
      emailVerified: true,
      data: { issuer: op.issuer, groups: ['ops', 'admins'] },
    });
    // The code went to the token endpoint with the PKCE verifier (the fake
    // provider checks it against the challenge) and HTTP Basic client auth.
    const tokenRequest = op.tokenRequests[0];
    expect(tokenRequest?.params.code_verifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    expect(tokenRequest?.authorization).toMatch(/^Basic /);
    expect(tokenRequest?.params.client_secret).toBeUndefined();
    expect(op.counts).toMatchObject({ discovery: 1, token: 1, jwks: 1, userinfo: 1 });
  });

  it('signs in with response_mode=form_post, the flow cookie SameSite=None; Secure', async () => {
    const t = oidcApp({ responseMode: 'form_post' });
    const browser = new Browser(t.app);
    const start = await browser.get('/auth/login/corp');
    expect(location(start).searchParams.get('response_mode')).toBe('form_post');
    const [cookie] = setCookies(start);
    expect(cookie?.attributes).toMatchObject({ samesite: 'None', secure: true, httponly: true });

    const answer = op.authorize(location(start), ada);
    const res = await browser.post('/auth/callback', Object.fromEntries(answer));
    expect(res.status).toBe(200);
    expect(res.body.signedIn.email).toBe('ada@example.com');
  });

  it('refuses an answer that does not come the way it was asked for', async () => {
    const t = oidcApp({ responseMode: 'form_post' });
    const res = await signIn(new Browser(t.app), 'query');
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'PB_SSO_RESPONSE_INVALID', check: 'response_mode' });
    expect(op.counts.token).toBe(0);
  });

  it('reports the provider’s error= answer as PB_SSO_IDP_ERROR', async () => {
    const t = oidcApp();
    const browser = new Browser(t.app);
    const start = await browser.get('/auth/login/corp');
    const res = await browser.get(`/auth/callback?${op.deny(location(start))}`);
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'PB_SSO_IDP_ERROR', reason: 'idp_error' });
    expect(t.errors[0]?.message).toContain('"access_denied"');
    expect(res.body.userMessage).not.toContain('The user said no');
    expect(op.counts.token).toBe(0);
  });

  it('reports a refused code as PB_SSO_TOKEN_EXCHANGE_FAILED', async () => {
    const t = oidcApp();
    op.tokenError = 'invalid_grant';
    const res = await signIn(new Browser(t.app));
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('PB_SSO_TOKEN_EXCHANGE_FAILED');
    expect(t.errors[0]?.message).toContain('"invalid_grant"');
  });

  it('refuses the same callback twice without asking the provider again', async () => {
    const t = oidcApp();
    const browser = new Browser(t.app);
    const start = await browser.get('/auth/login/corp');
    const cookie = browser.flowCookie!;
    const answer = op.authorize(location(start), ada);
    expect((await browser.get(`/auth/callback?${answer}`)).status).toBe(200);
    browser.cookies.set('pb_sso_flow', cookie);
    const replay = await browser.get(`/auth/callback?${answer}`);
    expect(replay.body.code).toBe('PB_SSO_STATE_REPLAYED');
    expect(op.counts.token).toBe(1);
  });

  it('keeps tokens and codes out of the identity, the errors and the logs', async () => {
    const t = oidcApp();
    await signIn(new Browser(t.app));
    op.idTokenClaims = { aud: 'someone-else' };
    await signIn(new Browser(t.app));
    expect(op.issued.length).toBeGreaterThanOrEqual(3);
    const visible = JSON.stringify([
      t.successes,
      t.logs,
      t.errors.map((e) => [e.message, e.userMessage]),
    ]);
    for (const token of op.issued) expect(visible).not.toContain(token);
    for (const request of op.tokenRequests) expect(visible).not.toContain(request.params.code);
  });
});

describe('ID token checks (PB_SSO_ID_TOKEN_INVALID names the check)', () => {
  it.each<[string, () => void]>([
    ['signature', () => (op.forgeSignature = true)],
    ['iss', () => (op.idTokenClaims = { iss: 'http://127.0.0.1:1/someone-else' })],
    ['aud', () => (op.idTokenClaims = { aud: 'another-client' })],
    ['exp', () => (op.idTokenClaims = { exp: nowSeconds() - 120 })],
    ['iat', () => (op.idTokenClaims = { iat: nowSeconds() + 120 })],
    ['nonce', () => (op.idTokenClaims = { nonce: 'a-nonce-from-another-flow' })],
  ])('%s', async (check, tamper) => {
    const t = oidcApp();
    tamper();
    const res = await signIn(new Browser(t.app));
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({
      code: 'PB_SSO_ID_TOKEN_INVALID',
      reason: 'id_token_invalid',
      check,
    });
    expect(t.errors[0]?.check).toBe(check);
    expect(t.successes).toHaveLength(0);
  });

  it('tolerates 60 s of clock difference on exp and iat', async () => {
    const t = oidcApp();
    op.idTokenClaims = { exp: nowSeconds() - 30, iat: nowSeconds() + 30 };
    const res = await signIn(new Browser(t.app));
    expect(res.status).toBe(200);
  });
});

describe('JWKS', () => {
  it('uses its cached keys, and fetches them again when the provider rotates its key', async () => {
    const t = oidcApp();
    expect((await signIn(new Browser(t.app))).status).toBe(200);
    expect((await signIn(new Browser(t.app))).status).toBe(200);
    expect(op.counts.jwks).toBe(1);

    // Within the same minute: openid-client alone would not refetch yet.
    await op.rotateKey();
    const afterRotation = await signIn(new Browser(t.app));
    expect(afterRotation.status).toBe(200);
    expect(op.counts.jwks).toBe(2);

    expect((await signIn(new Browser(t.app))).status).toBe(200);
    expect(op.counts.jwks).toBe(2);
    expect(op.counts.discovery).toBe(1);
  });
});

describe('configuration and reachability', () => {
  it('refuses an http:// issuer unless allowInsecureHttp is set (local testing only)', async () => {
    const provider = new OidcProvider();
    const config = { issuer: op.issuer, clientId: 'a', clientSecret: 'b' };
    expect(await provider.validateConfig(config)).toEqual([
      'issuer must be an https:// URL (http:// only with allowInsecureHttp: true, for local testing)',
    ]);
    expect(() => provider.configure(config)).toThrow(
      expect.objectContaining({ code: 'PB_SSO_CONFIG_INVALID' }),
    );
    expect(await provider.validateConfig({ ...config, allowInsecureHttp: true })).toEqual([]);
  });

  it('needs the openid scope and a secret for confidential clients', async () => {
    const provider = new OidcProvider();
    expect(
      await provider.validateConfig({
        issuer: 'https://idp.example.com',
        clientId: 'a',
        scopes: 'email',
      }),
    ).toEqual([
      'scopes must include openid',
      'clientSecret is required with tokenAuthMethod client_secret_basic',
    ]);
  });

  it('answers PB_SSO_IDP_UNAVAILABLE when the provider cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const t = oidcApp({ issuer: `http://127.0.0.1:${port}` });
    const res = await new Browser(t.app).get('/auth/login/corp');
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('PB_SSO_IDP_UNAVAILABLE');
    // The flow ended where it started: the browser keeps no flow cookie.
    expect(setCookies(res).map((c) => [c.name, c.value])).toEqual([['pb_sso_flow', '']]);
  });

  it('answers PB_SSO_CONFIG_INVALID when the issuer has no discovery document', async () => {
    const t = oidcApp({ issuer: `${op.issuer}/no-such-realm` });
    const res = await new Browser(t.app).get('/auth/login/corp');
    expect(res.status).toBe(500);
    expect(res.body.code).toBe('PB_SSO_CONFIG_INVALID');
    expect(t.errors[0]?.message).toContain('HTTP 404');
  });

  it('answers PB_SSO_CONFIG_INVALID when the discovery document names another issuer', async () => {
    op.advertisedIssuer = `${op.issuer}/realms/other`;
    const t = oidcApp();
    const res = await new Browser(t.app).get('/auth/login/corp');
    expect(res.body.code).toBe('PB_SSO_CONFIG_INVALID');
  });
});
