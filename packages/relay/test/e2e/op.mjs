// A real OpenID Provider (panva/oidc-provider) for the relay's end-to-end
// test, run as its own process: oidc-provider is ES-module-only and jest's
// CommonJS loader cannot host it.
//
//   node op.mjs   with OP_SETTINGS='{"host":"localhost","adminToken":"…",
//                  "clients":[{"client_id":"…","client_secret":"…","redirect_uris":["…"]}]}'
//
// Listens on 127.0.0.1 (an OS-chosen port) and prints one JSON line
// {"event":"listening","issuer":"http://<host>:<port>","kid":"…"} on stdout.
// The issuer's host may differ from 127.0.0.1 (`localhost`), so that a
// browser sees the provider and the relay as two different sites.
//
// Its own small login and consent pages stand in for a company's: nothing on
// them loads from the network (the built-in development pages pull a web font).
//
// Test-only admin endpoints, guarded by the admin token:
//   POST /__admin/rotate  swap the signing key: the next id_token carries a new
//                         `kid`, and the old key is gone from the JWKS.
//   GET  /__admin/state   {"kid": "<current kid>", "rotations": n}

import { createServer } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { URL, URLSearchParams } from 'node:url';
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

const settings = JSON.parse(process.env.OP_SETTINGS ?? '{}');
const host = settings.host ?? 'localhost';
const adminToken = String(settings.adminToken ?? randomBytes(16).toString('hex'));

/** The test accounts: login name → password and claims. */
const ACCOUNTS = {
  ann: {
    password: 'ann-password',
    claims: {
      sub: 'ann-0001',
      email: 'Ann@Example.com',
      email_verified: true,
      name: 'Ann Example',
      groups: ['ops'],
    },
  },
  root: {
    password: 'root-password',
    claims: {
      sub: 'root-0001',
      email: 'root@example.com',
      email_verified: true,
      name: 'Root Admin',
      groups: ['ops', 'plugboard-admins'],
    },
  },
  eve: {
    password: 'eve-password',
    claims: {
      sub: 'eve-0001',
      email: 'ann@example.com',
      email_verified: false,
      name: 'Eve Unverified',
      groups: [],
    },
  },
};

const state = { kid: '', rotations: 0 };

async function signingKey() {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  state.kid = `op-key-${state.rotations}-${randomBytes(4).toString('hex')}`;
  return { ...jwk, kid: state.kid, alg: 'RS256', use: 'sig' };
}

const cookieKeys = [randomBytes(32).toString('hex')];

function makeProvider(issuer, jwk) {
  const provider = new Provider(issuer, {
    clients: (settings.clients ?? []).map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: cookieKeys },
    // Every client must send a PKCE challenge (S256 is the only method).
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    // The relay reads its claims from the id_token.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const account = Object.values(ACCOUNTS).find((a) => a.claims.sub === sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ ...account.claims }) };
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Provider error', `<pre id="op-error">${esc(JSON.stringify(out))}</pre>`);
    },
  });
  provider.proxy = false;
  return provider;
}

function esc(value) {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
}

function isAdmin(req) {
  const given = Buffer.from(String(req.headers['x-op-admin'] ?? ''));
  const want = Buffer.from(adminToken);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The provider's own login and consent pages. */
async function interaction(provider, req, res, url) {
  const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(url.pathname);
  if (!m) return send(res, 404, 'text/plain', 'not found');
  const details = await provider.interactionDetails(req, res);
  const uid = esc(m[1]);
  if (req.method === 'GET' && !m[2]) {
    if (details.prompt.name === 'login') {
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        page(
          'Sign in to the Test Identity Provider',
          `<form method="post" action="/interaction/${uid}/login">
            <label>Login <input name="login" autocomplete="off"></label>
            <label>Password <input name="password" type="password"></label>
            <button type="submit" id="op-sign-in">Sign in</button></form>`,
        ),
      );
    }
    return send(
      res,
      200,
      'text/html; charset=utf-8',
      page(
        'Allow Plugboard relay to know who you are?',
        `<p>Scopes: ${esc([...(details.prompt.details.missingOIDCScope ?? [])].join(' '))}</p>
        <form method="post" action="/interaction/${uid}/confirm">
          <button type="submit" id="op-allow">Allow</button></form>`,
      ),
    );
  }
  if (req.method === 'POST' && m[2] === 'login') {
    const form = await readForm(req);
    const account = ACCOUNTS[form.get('login') ?? ''];
    if (!account || account.password !== form.get('password')) {
      return send(res, 200, 'text/html; charset=utf-8', page('Wrong login or password', ''));
    }
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: account.claims.sub } },
      { mergeWithLastSubmission: false },
    );
  }
  if (req.method === 'POST' && m[2] === 'confirm') {
    await readForm(req);
    const { grantId, session, params, prompt } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) {
      grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    }
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    return provider.interactionFinished(
      req,
      res,
      { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true },
    );
  }
  return send(res, 405, 'text/plain', 'method not allowed');
}

async function main() {
  let provider;
  let issuer = '';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://op.invalid');
    const fail = (err) => {
      process.stderr.write(`op: ${err && err.stack ? err.stack : String(err)}\n`);
      if (!res.headersSent) send(res, 500, 'text/plain', 'op error');
    };
    if (url.pathname.startsWith('/__admin/')) {
      if (!isAdmin(req)) return send(res, 401, 'application/json', '{"error":"admin token"}');
      if (url.pathname === '/__admin/rotate' && req.method === 'POST') {
        state.rotations += 1;
        return signingKey()
          .then((jwk) => {
            // A new Provider with the new key only; grants, sessions and
            // interactions live in the module-level memory adapter and stay.
            provider = makeProvider(issuer, jwk);
            send(res, 200, 'application/json', JSON.stringify(state));
          })
          .catch(fail);
      }
      if (url.pathname === '/__admin/state') {
        return send(res, 200, 'application/json', JSON.stringify(state));
      }
      return send(res, 404, 'application/json', '{"error":"not found"}');
    }
    if (url.pathname.startsWith('/interaction/')) {
      return interaction(provider, req, res, url).catch(fail);
    }
    return provider.callback()(req, res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  issuer = `http://${host}:${port}`;
  provider = makeProvider(issuer, await signingKey());
  process.stdout.write(`${JSON.stringify({ event: 'listening', issuer, kid: state.kid })}\n`);
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`op: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
