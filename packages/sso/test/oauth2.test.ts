import { OAuth2Provider } from '@plugboard/sso';
import { testApp, type TestApp } from './helpers/app';
import { Browser, location } from './helpers/browser';
import { FakeOp, type FakeUser } from './helpers/fake-op';

// A generic OAuth 2.0 server (the same fake, without openid scope) whose user
// API looks like GitHub's: a numeric id and its own field names.

let op: FakeOp;
beforeEach(async () => {
  op = await FakeOp.start();
});
afterEach(async () => {
  await op.close();
});

const grace: FakeUser = {
  sub: 'grace',
  email: 'grace@example.com',
  email_verified: true,
  name: 'Grace Hopper',
  groups: ['ops'],
};

function oauth2App(config: Record<string, unknown> = {}): TestApp {
  const provider = new OAuth2Provider().configure({
    authorizeUrl: `${op.issuer}/authorize`,
    tokenUrl: `${op.issuer}/token`,
    userinfoUrl: `${op.issuer}/api/user`,
    clientId: op.clientId,
    clientSecret: op.clientSecret,
    scopes: 'read:user user:email',
    idClaim: 'id',
    emailClaim: 'profile.email',
    nameClaim: 'profile.display_name',
    emailVerifiedClaim: 'verified',
    groupsClaim: 'teams',
    allowInsecureHttp: true,
    ...config,
  });
  return testApp([{ id: 'git', label: 'Git forge', provider }]);
}

async function signIn(t: TestApp) {
  const browser = new Browser(t.app);
  const start = await browser.get('/auth/login/git');
  expect(start.status).toBe(303);
  const authorize = location(start);
  const res = await browser.get(`/auth/callback?${op.authorize(authorize, grace)}`);
  return { authorize, res };
}

describe('OAuth2 sign-in', () => {
  it('signs in with PKCE and maps the user API’s claims to the identity', async () => {
    const { authorize, res } = await signIn(oauth2App());
    const p = authorize.searchParams;
    expect(p.get('scope')).toBe('read:user user:email');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.has('nonce')).toBe(false);

    expect(res.status).toBe(200);
    expect(res.body.signedIn).toEqual({
      id: '4242',
      email: 'grace@example.com',
      name: 'Grace Hopper',
      emailVerified: true,
      data: { groups: ['ops'] },
    });
    expect(op.tokenRequests[0]?.params.code_verifier).toBeDefined();
    expect(op.counts).toMatchObject({ discovery: 0, token: 1, api: 1, jwks: 0 });
  });

  it('works without PKCE when it is switched off', async () => {
    const { authorize, res } = await signIn(oauth2App({ pkce: false }));
    expect(authorize.searchParams.has('code_challenge')).toBe(false);
    expect(res.status).toBe(200);
    expect(op.tokenRequests[0]?.params.code_verifier).toBeUndefined();
  });

  it('sends the client secret in the body with client_secret_post', async () => {
    const { res } = await signIn(oauth2App({ tokenAuthMethod: 'client_secret_post' }));
    expect(res.status).toBe(200);
    expect(op.tokenRequests[0]?.params.client_secret).toBe(op.clientSecret);
    expect(op.tokenRequests[0]?.authorization).toBeUndefined();
  });

  it('reports the server’s error= answer as PB_SSO_IDP_ERROR', async () => {
    const t = oauth2App();
    const browser = new Browser(t.app);
    const start = await browser.get('/auth/login/git');
    const res = await browser.get(
      `/auth/callback?${op.deny(location(start), 'unauthorized_client')}`,
    );
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('PB_SSO_IDP_ERROR');
    expect(t.errors[0]?.message).toContain('"unauthorized_client"');
  });

  it('reports a failing user API as PB_SSO_RESPONSE_INVALID (check userinfo)', async () => {
    const { res } = await signIn(oauth2App({ userinfoUrl: `${op.issuer}/api/nothing-here` }));
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 'PB_SSO_RESPONSE_INVALID', check: 'userinfo' });
  });

  it('names the missing claim when the mapping finds no e-mail address', async () => {
    const t = oauth2App({ emailClaim: 'mail' });
    const { res } = await signIn(t);
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('PB_SSO_IDENTITY_INVALID');
    expect(t.errors[0]?.message).toContain('"mail" (emailClaim)');
  });
});

describe('OAuth2 configuration', () => {
  it('refuses http:// endpoints unless allowInsecureHttp is set', async () => {
    const problems = await new OAuth2Provider().validateConfig({
      authorizeUrl: 'http://git.example.com/authorize',
      tokenUrl: 'https://git.example.com/token',
      userinfoUrl: 'http://git.example.com/api/user',
      clientId: 'a',
      clientSecret: 'b',
    });
    expect(problems).toEqual([
      'authorizeUrl must be an https:// URL (http:// only with allowInsecureHttp: true, for local testing)',
      'userinfoUrl must be an https:// URL (http:// only with allowInsecureHttp: true, for local testing)',
    ]);
  });

  it('refuses a public client without PKCE', async () => {
    const problems = await new OAuth2Provider().validateConfig({
      authorizeUrl: 'https://git.example.com/authorize',
      tokenUrl: 'https://git.example.com/token',
      userinfoUrl: 'https://git.example.com/api/user',
      clientId: 'a',
      tokenAuthMethod: 'none',
      pkce: false,
    });
    expect(problems).toEqual(['a public client (tokenAuthMethod none) needs pkce: true']);
  });
});
