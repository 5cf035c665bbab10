import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import express from 'express';
import request from 'supertest';
import { PluginRegistry } from '@plugboard/sdk';
import {
  createSsoRouter,
  MemoryFlowStore,
  SsoProvider,
  type SsoError,
  type SsoSuccess,
} from '@plugboard/sso';
import { AcmeSsoProvider, signAssertion, type AcmeAssertion } from '../src';

const PACKAGE_DIR = resolve(__dirname, '..');
const SECRET = 'acme-shared-secret-for-tests-0123456789';
const CONFIG = { loginUrl: 'https://login.acme.example/sso', sharedSecret: SECRET };

/** A relay-like app: the router at /auth, answers that show what happened. */
function relay(provider: SsoProvider) {
  const successes: SsoSuccess[] = [];
  const errors: SsoError[] = [];
  const app = express();
  app.use(
    '/auth',
    createSsoRouter({
      providers: [{ id: 'acme', label: 'ACME', provider }],
      flowStore: new MemoryFlowStore(),
      publicUrl: 'https://relay.acme.example',
      onSuccess: async (result, _req, res) => {
        successes.push(result);
        res.json(result.identity);
      },
      onError: (error, _req, res) => {
        errors.push(error);
        res.status(error.status).json({ code: error.code, check: error.check ?? null });
      },
    }),
  );
  return { app, successes, errors };
}

/** Starts a sign-in; returns the flow cookie and what the login page was sent. */
async function start(app: express.Express) {
  const res = await request(app).get('/auth/login/acme');
  expect(res.status).toBe(303);
  const login = new URL(res.headers.location as string);
  const setCookie = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? '';
  return {
    login,
    setCookie,
    cookie: setCookie.split(';')[0] ?? '',
    state: login.searchParams.get('state') ?? '',
    nonce: login.searchParams.get('nonce') ?? '',
  };
}

function assertion(nonce: string, extra: Partial<AcmeAssertion> = {}, secret = SECRET): string {
  return signAssertion(
    {
      sub: 'e-1001',
      email: 'wile.e@acme.example',
      name: 'Wile E. Coyote',
      groups: ['rocketry', 'ops'],
      iat: Math.floor(Date.now() / 1000),
      nonce,
      aud: 'plugboard',
      ...extra,
    },
    secret,
  );
}

/** The company login POSTing its answer back, cross-site, with the flow cookie. */
function postBack(app: express.Express, cookie: string, form: Record<string, string>) {
  return request(app).post('/auth/callback').set('Cookie', cookie).type('form').send(form);
}

describe('AcmeSsoProvider', () => {
  it('is discovered by the SDK registry through its package.json entry point', async () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      plugboard: { entryPoints: Record<string, Record<string, string>> };
    };
    expect(pkg.plugboard.entryPoints['plugboard.sso']).toEqual({
      acme: './dist/index.js:AcmeSsoProvider',
    });
    if (!existsSync(join(PACKAGE_DIR, 'dist', 'index.js'))) {
      throw new Error('build the example first (npm run build): discovery loads dist/index.js');
    }
    // An app that depends on the package, the way a relay installation does.
    const appRoot = mkdtempSync(join(tmpdir(), 'plugboard-acme-app-'));
    try {
      writeFileSync(
        join(appRoot, 'package.json'),
        JSON.stringify({
          name: 'relay-app',
          private: true,
          dependencies: { [pkg.name]: pkg.version },
        }),
      );
      mkdirSync(join(appRoot, 'node_modules'));
      symlinkSync(PACKAGE_DIR, join(appRoot, 'node_modules', pkg.name), 'dir');

      const registry = new PluginRegistry({ appRoot });
      expect(registry.discover()).toEqual([
        {
          group: 'plugboard.sso',
          name: 'acme',
          packageName: 'plugboard-sso-acme',
          packageVersion: pkg.version,
          entry: './dist/index.js:AcmeSsoProvider',
          status: 'discovered',
        },
      ]);
      const provider = (await registry.getPlugin('plugboard.sso', 'acme')) as SsoProvider;
      expect(provider).toBeInstanceOf(SsoProvider);
      expect(provider.slug).toBe('acme');
      expect(provider.version).toBe(pkg.version);
      expect(registry.list()[0]?.status).toBe('loaded');

      // The discovered class signs people in like the source does.
      const { app } = relay(provider.configure(CONFIG));
      const flow = await start(app);
      const res = await postBack(app, flow.cookie, {
        state: flow.state,
        assertion: assertion(flow.nonce),
      });
      expect(res.status).toBe(200);
    } finally {
      rmSync(appRoot, { recursive: true, force: true });
    }
  });

  it('sends the browser to the company login, then accepts its signed POST', async () => {
    const { app, successes } = relay(new AcmeSsoProvider().configure(CONFIG));
    const flow = await start(app);
    expect(`${flow.login.origin}${flow.login.pathname}`).toBe('https://login.acme.example/sso');
    expect(flow.login.searchParams.get('return_to')).toBe(
      'https://relay.acme.example/auth/callback',
    );
    expect(flow.login.searchParams.get('audience')).toBe('plugboard');
    // A cross-site POST only carries a SameSite=None cookie.
    expect(flow.setCookie).toMatch(/SameSite=None/);
    expect(flow.setCookie).toMatch(/Secure/);
    expect(flow.setCookie).toMatch(/HttpOnly/);

    const res = await postBack(app, flow.cookie, {
      state: flow.state,
      assertion: assertion(flow.nonce),
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: 'e-1001',
      email: 'wile.e@acme.example',
      name: 'Wile E. Coyote',
      emailVerified: true,
      data: { groups: ['rocketry', 'ops'] },
    });
    expect(successes).toHaveLength(1);
  });

  it.each<[string, string, (nonce: string) => string]>([
    [
      'signed with another secret',
      'signature',
      (nonce) => assertion(nonce, {}, 'a-forger-who-guessed-wrong-0123456789'),
    ],
    [
      'changed after signing',
      'signature',
      (nonce) => {
        // The payload changed after signing (another employee's address).
        const [, signature] = assertion(nonce).split('.');
        const payload = Buffer.from(
          JSON.stringify({
            sub: 'e-1',
            email: 'boss@acme.example',
            iat: Math.floor(Date.now() / 1000),
            nonce,
            aud: 'plugboard',
          }),
        ).toString('base64url');
        return `${payload}.${signature}`;
      },
    ],
    [
      'ten minutes old',
      'iat',
      (nonce) => assertion(nonce, { iat: Math.floor(Date.now() / 1000) - 600 }),
    ],
    [
      'issued in the future',
      'iat',
      (nonce) => assertion(nonce, { iat: Math.floor(Date.now() / 1000) + 600 }),
    ],
    ['of another sign-in', 'nonce', () => assertion('a-nonce-of-another-sign-in')],
    ['for another application', 'aud', (nonce) => assertion(nonce, { aud: 'another-app' })],
    ['that is not one', 'format', () => 'not-an-assertion'],
  ])('refuses an assertion %s (check %s)', async (_what, check, make) => {
    const { app, successes, errors } = relay(new AcmeSsoProvider().configure(CONFIG));
    const flow = await start(app);
    const res = await postBack(app, flow.cookie, {
      state: flow.state,
      assertion: make(flow.nonce),
    });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ code: 'PB_SSO_RESPONSE_INVALID', check });
    expect(errors[0]?.message).not.toContain(SECRET);
    expect(successes).toHaveLength(0);
  });

  it('reports the login’s error answer as PB_SSO_IDP_ERROR', async () => {
    const { app } = relay(new AcmeSsoProvider().configure(CONFIG));
    const flow = await start(app);
    const res = await postBack(app, flow.cookie, { state: flow.state, error: 'access_denied' });
    expect(res.body.code).toBe('PB_SSO_IDP_ERROR');
  });

  it('refuses a valid assertion posted into another browser’s flow', async () => {
    const { app } = relay(new AcmeSsoProvider().configure(CONFIG));
    const victim = await start(app);
    const attacker = await start(app);
    // The attacker's own valid assertion, delivered with the victim's cookie.
    const res = await postBack(app, victim.cookie, {
      state: attacker.state,
      assertion: assertion(attacker.nonce),
    });
    expect(res.body.code).toBe('PB_SSO_STATE_MISMATCH');
  });

  it('refuses a weak secret and an http login URL', async () => {
    expect(
      await new AcmeSsoProvider().validateConfig({
        loginUrl: 'http://login.acme.example/',
        sharedSecret: 'short',
      }),
    ).toEqual([
      'loginUrl must be an https:// URL',
      'sharedSecret must have at least 32 characters',
    ]);
  });
});
