import { Silences } from '../src/noise/silences';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { stringify } from 'yaml';
import type { DiscoveredPlugin } from '@plugboard/sdk';
import {
  SsoProvider,
  type AuthView,
  type Identity,
  type PipelineHelper,
  type PipelineRequest,
  type PipelineState,
  type ViewOutcome,
} from '@plugboard/sso';
import { AuditLog } from '../src/auth/audit';
import { loadConfig } from '../src/config/load';
import { RelayMetrics } from '../src/metrics';
import { storeUserSettings } from '../src/server/api';
import { createApp } from '../src/server/app';
import { createPagesRouter } from '../src/server/pages';
import { SqliteStore } from '../src/store/sqlite';
import { memoryLogger, startRelay, type TestRelay } from './helpers/relay';

// App tier: the relay's pages through its real request listener, with
// supertest's cookie-keeping agent standing in for a browser. A test
// provider returns the identity the test asks for (`/auth/login/test?who=`),
// through one redirect to the real SSO callback.

const SESSION_SECRET = 'pages-session-secret-0123456789abcdef';
const API_TOKEN = 'pages-api-token-0123456789';
const PUBLIC_URL = 'http://127.0.0.1:8080';

const PEOPLE: Record<string, Identity> = {
  ann: {
    id: 'ann-1',
    email: 'Ann@Example.com',
    emailVerified: true,
    name: 'Ann',
    data: { groups: ['ops'] },
  },
  annOther: { id: 'ann-gh', email: 'ann@example.com', emailVerified: true, data: {} },
  annUnsure: { id: 'ann-x', email: 'ann@example.com', data: {} },
  root: {
    id: 'root-1',
    email: 'root@example.com',
    emailVerified: true,
    data: { groups: ['ops', 'relay-admins'] },
  },
  eve: { id: 'eve-1', email: 'eve@example.com', emailVerified: false, data: {} },
  mallory: { id: 'm-1', email: 'mallory@elsewhere.test', emailVerified: true, data: {} },
};

/** Start: remember who, send the browser to the callback with the state. Callback: done. */
class ImpersonationView implements AuthView {
  readonly name = 'test.login';
  async dispatch(request: PipelineRequest, helper: PipelineHelper): Promise<ViewOutcome> {
    if (request.phase === 'start') {
      helper.bindState('who', request.query.get('who') ?? '');
      const to = new URL(helper.callbackUrl);
      to.searchParams.set('state', helper.state);
      return helper.redirect(to);
    }
    return helper.nextStep();
  }
}

class TestProvider extends SsoProvider {
  readonly slug = 'test';
  readonly title = 'Test IdP';
  readonly version = '1.0.0';
  getAuthPipeline(): AuthView[] {
    return [new ImpersonationView()];
  }
  async buildIdentity(state: PipelineState): Promise<Identity> {
    return PEOPLE[String(state.who)] as Identity;
  }
}

interface Harness {
  app: RequestListener;
  store: SqliteStore;
  logs: () => string[];
  clock: { advance(ms: number): void };
  close(): Promise<void>;
}

const PLUGINS: DiscoveredPlugin[] = [
  {
    group: 'plugboard.notifiers',
    name: 'im',
    packageName: '@plugboard/notifier-im',
    packageVersion: '0.1.0',
    entry: '(builtin)',
    status: 'loaded',
  },
  {
    group: 'plugboard.notifiers',
    name: 'broken',
    packageName: 'plugboard-notifier-broken',
    packageVersion: '1.2.3',
    entry: './index.js:BrokenNotifier',
    status: 'failed',
    error: {
      name: 'PluginError',
      code: 'PB_PLUGIN_IMPORT_FAILED',
      message: 'broken plugin failed on import #1',
      retryable: true,
      chain: '[PB_PLUGIN_IMPORT_FAILED] broken plugin failed on import #1',
    },
  },
];

const harnesses: Harness[] = [];

async function harness(
  sso: Record<string, unknown> = {},
  top: Record<string, unknown> = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'pb-pages-'));
  const file = join(dir, 'plugboard.yaml');
  writeFileSync(
    file,
    stringify({
      dataDir: join(dir, 'data'),
      api: { token: API_TOKEN },
      sso: {
        publicUrl: PUBLIC_URL,
        sessionSecret: SESSION_SECRET,
        sessionTtl: '1h',
        admins: { emails: [], groups: ['relay-admins'] },
        providers: [{ id: 'test', type: 'test', config: {} }],
        ...sso,
      },
      routes: [
        {
          name: 'alerts',
          match: { projects: ['front-end', 'api'] },
          instances: [{ plugin: 'im' }],
        },
      ],
      ...top,
    }),
  );
  const { config } = loadConfig({ file, env: {}, cwd: dir });
  const store = new SqliteStore({ dataDir: config.dataDir });
  const mem = memoryLogger();
  let offset = 0;
  const app = createApp({
    config,
    store,
    logger: mem.logger,
    metrics: new RelayMetrics(store),
    onJobs: () => undefined,
    ready: async () => ({ ready: true, checks: {} }),
    onUnexpectedError: () => undefined,
    pages: createPagesRouter({
      config,
      store,
      logger: mem.logger,
      providers: [{ id: 'test', label: 'Test IdP', provider: new TestProvider().configure({}) }],
      plugins: () => PLUGINS,
      now: () => Date.now() + offset,
    }),
  });
  const h: Harness = {
    app,
    store,
    logs: mem.lines,
    clock: { advance: (ms) => (offset += ms) },
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  harnesses.push(h);
  return h;
}

afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

type Agent = ReturnType<typeof request.agent>;

/** Click "Sign in" as `who`: the login redirect, then the callback. */
async function signIn(agent: Agent, who: string, returnTo?: string): Promise<request.Response> {
  const query = new URLSearchParams({ who, ...(returnTo ? { returnTo } : {}) });
  const start = await agent.get(`/auth/login/test?${query.toString()}`);
  expect(start.status).toBe(303);
  const callback = new URL(String(start.headers.location));
  expect(callback.origin + callback.pathname).toBe(`${PUBLIC_URL}/auth/callback`);
  return agent.get(callback.pathname + callback.search);
}

function setCookies(res: request.Response): string[] {
  const raw = res.headers['set-cookie'] as unknown;
  return Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
}

function sessionCookie(res: request.Response): string | undefined {
  return setCookies(res)
    .find((c) => c.startsWith('plugboard_session=') && !c.startsWith('plugboard_session=;'))
    ?.split(';')[0];
}

function csrfOf(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF token on the page');
  return m[1] as string;
}

function selected(html: string, name: string): string | undefined {
  const select = new RegExp(`<select name="${name}"[^>]*>(.*?)</select>`, 's').exec(html)?.[1];
  return select ? /<option value="(\w+)"\s+selected\s*>/.exec(select)?.[1] : undefined;
}

async function auditJson(h: Harness): Promise<Array<Record<string, unknown>>> {
  const admin = request.agent(h.app);
  await signIn(admin, 'root');
  const res = await admin.get('/admin/audit.json');
  expect(res.status).toBe(200);
  return (res.body as { entries: Array<Record<string, unknown>> }).entries;
}

describe('pages off', () => {
  let t: TestRelay;
  afterEach(() => t.close());

  it('answers 404 saying why while sso.providers is empty, and the relay works as before', async () => {
    t = await startRelay({});
    const page = await request(t.relay.app).get('/login').set('accept', 'text/html');
    expect(page.status).toBe(404);
    expect(page.text).toContain('no sign-in is configured');
    expect(page.text).toContain('sso.providers');
    const json = await request(t.relay.app)
      .get('/me/notifications')
      .set('accept', 'application/json');
    expect(json.status).toBe(404);
    expect(json.body.error).toMatchObject({ code: 'PB_NOT_FOUND' });
    expect(json.body.error.message).toMatch(/pages are off.*sso\.providers/);
    expect((await request(t.relay.app).get('/auth/login/x')).status).toBe(404);
    expect((await request(t.relay.app).get('/healthz')).status).toBe(200);
  });
});

describe('the dummy provider through the real relay', () => {
  let t: TestRelay | undefined;
  afterEach(() => t?.close());

  const sso = (allowDummy: boolean) => ({
    sso: {
      publicUrl: PUBLIC_URL,
      sessionSecret: SESSION_SECRET,
      allowDummy,
      providers: [{ id: 'dev', type: 'dummy', label: 'Developer' }],
    },
  });

  it('refuses to start with a dummy provider unless sso.allowDummy', async () => {
    await expect(startRelay(sso(false))).rejects.toMatchObject({
      code: 'PB_CONFIG_INVALID',
      message: expect.stringMatching(/sso\.providers\[0\] \(dev\): the dummy provider/),
    });
  });

  it('signs in through the dummy page when allowed, one button for the one provider', async () => {
    t = await startRelay(sso(true));
    const agent = request.agent(t.relay.app);
    const login = await agent.get('/login');
    expect(login.status).toBe(200);
    expect(login.text).toContain('Sign in with Developer');
    expect(login.text).toContain('href="/auth/login/dev"');
    const form = await agent.get('/auth/login/dev');
    expect(form.status).toBe(200);
    const state = /name="state" value="([^"]+)"/.exec(form.text)?.[1];
    const done = await agent
      .post('/auth/callback')
      .type('form')
      .send({ state, email: 'dev@example.com', name: 'Dev' });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe('/me/notifications');
    const me = await agent.get('/me/notifications');
    expect(me.status).toBe(200);
    expect(me.text).toContain('dev@example.com (member)');
  });
});

describe('signing in', () => {
  it('sends a signed-out person to /login and back to the page they asked for', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    const page = await agent.get('/admin/deliveries?state=dead');
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/login?returnTo=%2Fadmin%2Fdeliveries%3Fstate%3Ddead');
    const login = await agent.get(String(page.headers.location));
    expect(login.text).toContain(
      'href="/auth/login/test?returnTo=%2Fadmin%2Fdeliveries%3Fstate%3Ddead"',
    );
    const done = await signIn(agent, 'root', '/admin/deliveries?state=dead');
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe('/admin/deliveries?state=dead');
    const cookie = setCookies(done).find((c) => c.startsWith('plugboard_session='));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).toMatch(/Max-Age=3600/);
    // publicUrl is http on 127.0.0.1: no Secure (the browser would drop it elsewhere).
    expect(cookie).not.toMatch(/Secure/);
    expect((await agent.get('/admin/deliveries?state=dead')).status).toBe(200);
    // Back to /login while signed in: straight home.
    const again = await agent.get('/login');
    expect(again.status).toBe(303);
    expect(again.headers.location).toBe('/me/notifications');
  });

  it('answers a script without a session with 401 PB_SSO_SESSION_INVALID', async () => {
    const h = await harness();
    const res = await request(h.app).get('/admin/audit.json').set('accept', 'application/json');
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ code: 'PB_SSO_SESSION_INVALID' });
  });

  it('ignores a returnTo that leaves the relay', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    const done = await signIn(agent, 'ann', '//evil.example/steal');
    expect(done.headers.location).toBe('/me/notifications');
  });

  it('refuses a forged state and a replayed callback, with no session', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    const start = await agent.get('/auth/login/test?who=ann');
    const callback = new URL(String(start.headers.location));
    const flowCookie = setCookies(start)
      .find((c) => c.startsWith('pb_sso_flow='))
      ?.split(';')[0] as string;
    const forged = await agent.get('/auth/callback?state=forged-state-value-0123456789');
    expect(forged.status).toBe(400);
    expect(forged.text).toContain('id="error-code">PB_SSO_STATE_MISMATCH');
    expect(forged.text).toContain('id="error-reason">state_mismatch');
    expect(sessionCookie(forged)).toBeUndefined();
    // The real answer still works: a stray callback does not cancel the flow.
    const done = await agent.get(callback.pathname + callback.search);
    expect(done.status).toBe(303);
    // The answer replayed, even with the flow cookie it came with.
    const replay = await request(h.app)
      .get(callback.pathname + callback.search)
      .set('cookie', flowCookie);
    expect(replay.status).toBe(400);
    expect(replay.text).toContain('PB_SSO_STATE_REPLAYED');
    expect(replay.text).not.toContain(callback.searchParams.get('state') as string);
    expect(sessionCookie(replay)).toBeUndefined();
    const entries = await auditJson(h);
    expect(entries.filter((e) => e.event === 'sign_in_refused').map((e) => e.reason)).toEqual(
      expect.arrayContaining(['state_mismatch', 'state_replayed']),
    );
  });

  it('refuses an e-mail domain outside allowedDomains, and records it', async () => {
    const h = await harness({ allowedDomains: ['example.com'] });
    const agent = request.agent(h.app);
    const res = await signIn(agent, 'mallory');
    expect(res.status).toBe(403);
    expect(res.text).toContain('PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED');
    expect(res.text).toContain('email_domain_not_allowed');
    expect(res.text).toContain('not in a domain allowed');
    expect(sessionCookie(res)).toBeUndefined();
    expect((await agent.get('/me/notifications')).status).toBe(303);
    const entries = await auditJson(h);
    expect(entries).toContainEqual(
      expect.objectContaining({
        event: 'sign_in_refused',
        outcome: 'refused',
        provider: 'test',
        email: 'mallory@elsewhere.test',
        code: 'PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED',
      }),
    );
  });

  it('refuses an unverified e-mail, even at the first sign-in', async () => {
    const h = await harness();
    const res = await signIn(request.agent(h.app), 'eve');
    expect(res.status).toBe(403);
    expect(res.text).toContain('PB_SSO_EMAIL_UNVERIFIED');
    expect(sessionCookie(res)).toBeUndefined();
  });

  it('links a second verified identity, refuses an unverified one, and records both', async () => {
    const h = await harness();
    expect((await signIn(request.agent(h.app), 'ann')).status).toBe(303);
    expect((await signIn(request.agent(h.app), 'annOther')).status).toBe(303);
    const refused = await signIn(request.agent(h.app), 'annUnsure');
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('PB_SSO_ACCOUNT_LINK_REFUSED');
    expect(refused.text).toContain('email_not_verified');

    const admin = request.agent(h.app);
    await signIn(admin, 'root');
    const users = await admin.get('/admin/users');
    const annRow = /<tr data-email="ann@example.com">(.*?)<\/tr>/s.exec(users.text)?.[1] ?? '';
    expect(annRow).toContain('<code>test</code>: ann-1');
    expect(annRow).toContain('<code>test</code>: ann-gh');
    expect(annRow).not.toContain('ann-x');
    const entries = (await admin.get('/admin/audit.json')).body.entries as Array<
      Record<string, unknown>
    >;
    const ann = entries.filter((e) => e.email === 'ann@example.com').map((e) => e.event);
    expect(ann).toEqual([
      'sign_in_refused',
      'sign_in',
      'identity_linked',
      'sign_in',
      'account_created',
    ]);
  });
});

/**
 * The sign-in limit counts per clock minute, the audit log collapses per
 * hour: a test that counts starts well inside both.
 */
async function awayFromWindowEdges(): Promise<void> {
  for (const windowMs of [3_600_000, 60_000]) {
    const left = windowMs - (Date.now() % windowMs);
    if (left < 15_000) await new Promise((resolve) => setTimeout(resolve, left + 50));
  }
}

describe('unauthenticated requests', () => {
  /** Rows of a store namespace (audit entries, flows), whatever their key. */
  const rows = (h: Harness, ns: string) => h.store.kvList(ns);

  it('cannot fill the audit log: refusals collapse into one counted entry, then 429', async () => {
    await awayFromWindowEdges();
    const h = await harness();
    const statuses: number[] = [];
    let limited: request.Response | undefined;
    for (let i = 0; i < 300; i++) {
      const res = await request(h.app).get('/auth/callback?code=x&state=y');
      statuses.push(res.status);
      if (res.status === 429) limited ??= res;
    }
    expect(statuses.filter((s) => s === 400)).toHaveLength(60);
    expect(statuses.filter((s) => s === 429)).toHaveLength(240);
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited?.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(limited?.text).toContain('id="error-code">PB_SSO_RATE_LIMITED');
    expect(limited?.text).toContain('Too many sign-in attempts');
    const json = await request(h.app)
      .post('/auth/callback')
      .set('accept', 'application/json')
      .type('form')
      .send({ state: 'y' });
    expect(json.status).toBe(429);
    expect(json.headers['retry-after']).toMatch(/^\d+$/);
    expect(json.body.error.code).toBe('PB_SSO_RATE_LIMITED');

    const audit = await rows(h, 'sso-audit');
    expect(audit).toHaveLength(1);
    expect(audit[0]?.value).toMatchObject({
      event: 'sign_in_refused',
      reason: 'state_mismatch',
      address: '127.0.0.1',
      count: 60,
    });
    expect(h.logs().filter((l) => l.includes('sign-in rate limit reached'))).toHaveLength(1);
  });

  it('starts at most perMinute flows per address, one row each, none once limited', async () => {
    await awayFromWindowEdges();
    const h = await harness({ rateLimit: { perMinute: 20 } });
    const statuses: number[] = [];
    for (let i = 0; i < 300; i++) {
      statuses.push((await request(h.app).get('/auth/login/test?who=ann')).status);
    }
    expect(statuses.filter((s) => s === 303)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(280);
    expect(await rows(h, 'sso-flows')).toHaveLength(20);
    // An unknown provider is a refusal like any other: counted, then limited.
    expect((await request(h.app).get('/auth/login/nope')).status).toBe(429);
    expect(await rows(h, 'sso-audit')).toHaveLength(0);
  });

  it('limits per client address behind trusted proxies; others still sign in and are recorded', async () => {
    await awayFromWindowEdges();
    const h = await harness({ rateLimit: { perMinute: 10 } }, { trustProxy: ['loopback'] });
    const from = (ip: string) => request.agent(h.app).set('x-forwarded-for', ip);
    for (let i = 0; i < 30; i++) await from('203.0.113.9').get('/auth/callback?state=y');
    expect((await from('203.0.113.9').get('/auth/login/test?who=ann')).status).toBe(429);
    // A real sign-in from another address is not held back by the flood.
    const ann = from('198.51.100.7');
    expect((await signIn(ann, 'ann')).status).toBe(303);
    expect((await ann.get('/me/notifications')).status).toBe(200);
    await from('198.51.100.8').get('/auth/callback?state=z');
    const entries = await auditJson(h);
    const refusals = entries.filter((e) => e.event === 'sign_in_refused');
    expect(refusals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ address: '203.0.113.9', count: 10 }),
        expect.objectContaining({ address: '198.51.100.8', count: 1 }),
      ]),
    );
    expect(refusals).toHaveLength(2);
    expect(entries).toContainEqual(
      expect.objectContaining({ event: 'sign_in', address: '198.51.100.7' }),
    );
  });

  it('ignores X-Forwarded-For unless trustProxy names the proxy', async () => {
    await awayFromWindowEdges();
    const h = await harness({ rateLimit: { perMinute: 5 } });
    for (let i = 0; i < 5; i++) {
      await request(h.app).get('/auth/callback?state=y').set('x-forwarded-for', `10.0.0.${i}`);
    }
    const res = await request(h.app)
      .get('/auth/callback?state=y')
      .set('x-forwarded-for', '10.9.9.9');
    expect(res.status).toBe(429);
    const audit = await rows(h, 'sso-audit');
    expect(audit.map((r) => (r.value as { address?: string }).address)).toEqual(['127.0.0.1']);
  });
});

describe('sessions', () => {
  it('ends at sign-out: the same cookie replayed is refused', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    const done = await signIn(agent, 'ann');
    const cookie = sessionCookie(done) as string;
    const me = await agent.get('/me/notifications');
    const out = await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfOf(me.text) });
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/login?signedOut=1');
    expect(setCookies(out).some((c) => /^plugboard_session=;/.test(c))).toBe(true);
    expect((await agent.get('/login?signedOut=1')).text).toContain('You are signed out.');
    const replay = await request(h.app).get('/me/notifications').set('cookie', cookie);
    expect(replay.status).toBe(303);
    expect(replay.headers.location).toBe('/login?returnTo=%2Fme%2Fnotifications&ended=1');
    expect(setCookies(replay).some((c) => /^plugboard_session=;/.test(c))).toBe(true);
    expect(h.logs().join('\n')).not.toContain(cookie.split('=')[1] as string);
  });

  it('expires after sessionTtl (injected clock)', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    await signIn(agent, 'ann');
    h.clock.advance(59 * 60_000);
    expect((await agent.get('/me/notifications')).status).toBe(200);
    h.clock.advance(2 * 60_000);
    const expired = await agent.get('/me/notifications');
    expect(expired.status).toBe(303);
    expect(expired.headers.location).toContain('ended=1');
  });

  it('refuses a tampered cookie', async () => {
    const h = await harness();
    const cookie = sessionCookie(await signIn(request.agent(h.app), 'ann')) as string;
    const [name, token] = cookie.split('=') as [string, string];
    const [head, payload, sig] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'root@example.com' })).toString(
      'base64url',
    );
    const res = await request(h.app)
      .get('/admin/users')
      .set('cookie', `${name}=${head}.${forged}.${sig}`);
    expect(res.status).toBe(303);
    expect(res.headers.location).toMatch(/^\/login\?/);
  });

  it('lets an admin end all sessions of a user', async () => {
    const h = await harness();
    const ann1 = request.agent(h.app);
    const ann2 = request.agent(h.app);
    await signIn(ann1, 'ann');
    await signIn(ann2, 'ann');
    const admin = request.agent(h.app);
    await signIn(admin, 'root');
    const users = await admin.get('/admin/users');
    const ended = await admin
      .post('/admin/users/end-sessions')
      .type('form')
      .send({ _csrf: csrfOf(users.text), email: 'ann@example.com' });
    expect(ended.status).toBe(303);
    expect((await admin.get(String(ended.headers.location))).text).toContain(
      'Ended 2 session(s) of ann@example.com',
    );
    expect((await ann1.get('/me/notifications')).status).toBe(303);
    expect((await ann2.get('/me/notifications')).status).toBe(303);
    const entries = (await admin.get('/admin/audit.json')).body.entries as Array<
      Record<string, unknown>
    >;
    expect(entries[0]).toMatchObject({
      event: 'sessions_ended',
      email: 'ann@example.com',
      actor: 'root@example.com',
      count: 2,
    });
  });
});

describe('CSRF on the relay forms', () => {
  it('refuses a POST without the token, with a wrong one, or from another origin; accepts the right one', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    await signIn(agent, 'ann');
    const token = csrfOf((await agent.get('/me/notifications')).text);
    const none = await agent.post('/me/notifications').type('form').send({ global: 'off' });
    expect(none.status).toBe(403);
    expect(none.text).toContain('id="error-code">PB_SSO_CSRF_INVALID');
    expect(none.text).toContain('token_missing');
    const wrong = await agent
      .post('/me/notifications')
      .type('form')
      .send({ _csrf: `${token.slice(0, -2)}xx`, global: 'off' });
    expect(wrong.status).toBe(403);
    expect(wrong.text).toContain('token_mismatch');
    const other = await agent
      .post('/me/notifications')
      .set('origin', 'http://evil.example')
      .type('form')
      .send({ _csrf: token, global: 'off' });
    expect(other.status).toBe(403);
    // Another session's token is not this session's.
    const bob = request.agent(h.app);
    await signIn(bob, 'root');
    const foreign = await agent
      .post('/me/notifications')
      .type('form')
      .send({ _csrf: csrfOf((await bob.get('/me/notifications')).text), global: 'off' });
    expect(foreign.status).toBe(403);
    expect(await storeUserSettings(h.store).isNotificationEnabled('ann@example.com')).toBe(true);
    const ok = await agent
      .post('/me/notifications')
      .set('origin', PUBLIC_URL)
      .type('form')
      .send({ _csrf: token, global: 'off' });
    expect(ok.status).toBe(303);
    expect(await storeUserSettings(h.store).isNotificationEnabled('ann@example.com')).toBe(false);
    expect(h.logs().join('\n')).not.toContain(token);
  });
});

describe('My notifications', () => {
  it('round-trips global and per-project settings into what the IM notifier reads', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    await signIn(agent, 'ann');
    const page = await agent.get('/me/notifications');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['cache-control']).toBe('no-store');
    // The inline stylesheet is the one the policy allows, byte for byte.
    const css = /<style>(.*?)<\/style>/s.exec(page.text)?.[1] ?? '';
    const hash = createHash('sha256').update(css).digest('base64');
    expect(page.headers['content-security-policy']).toContain(`style-src 'sha256-${hash}'`);
    expect(page.text).toContain('data-project="api"');
    expect(page.text).toContain('data-project="front-end"');
    expect(selected(page.text, 'global')).toBe('default');

    const saved = await agent
      .post('/me/notifications')
      .type('form')
      .send({
        _csrf: csrfOf(page.text),
        global: 'on',
        'project:front-end': 'off',
        'project:api': 'default',
        addProject: 'backend',
        addProjectState: 'off',
      });
    expect(saved.status).toBe(303);
    const after = await agent.get(String(saved.headers.location));
    expect(after.text).toContain('Saved.');
    expect(selected(after.text, 'global')).toBe('on');
    expect(selected(after.text, 'project:front-end')).toBe('off');
    expect(selected(after.text, 'project:api')).toBe('default');
    expect(selected(after.text, 'project:backend')).toBe('off');

    const users = storeUserSettings(h.store);
    expect(await users.isNotificationEnabled('ann@example.com', 'front-end')).toBe(false);
    expect(await users.isNotificationEnabled('ann@example.com', 'backend')).toBe(false);
    expect(await users.isNotificationEnabled('ANN@example.com', 'api')).toBe(true);
    // The JSON API sees the same settings.
    const api = await request(h.app)
      .get('/api/users/ann%40example.com/notifications')
      .set('authorization', `Bearer ${API_TOKEN}`);
    expect(api.body).toEqual({
      email: 'ann@example.com',
      global: true,
      projects: { 'front-end': false, backend: false },
    });

    const bad = await agent
      .post('/me/notifications')
      .type('form')
      .send({ _csrf: csrfOf(after.text), global: 'on', addProject: '../etc' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Not saved');
    expect(bad.text).toContain('is not a project slug');
  });

  it('escapes what it shows', async () => {
    const h = await harness();
    await h.store.kvSet('users', 'ann@example.com', {
      global: null,
      projects: { 'x<script>': false },
    });
    const agent = request.agent(h.app);
    await signIn(agent, 'ann');
    const page = await agent.get('/me/notifications');
    expect(page.text).not.toContain('x<script>');
    expect(page.text).toContain('x&lt;script&gt;');
  });
});

describe('admin pages', () => {
  const ADMIN_PAGES = [
    '/admin/deliveries',
    '/admin/plugins',
    '/admin/silences',
    '/admin/users',
    '/admin/audit',
    '/admin/audit.json',
  ];

  it('are 403 for members and open for admins (by group)', async () => {
    const h = await harness();
    const member = request.agent(h.app);
    await signIn(member, 'ann');
    for (const path of ADMIN_PAGES) {
      const res = await member.get(path);
      expect([path, res.status]).toEqual([path, 403]);
      expect(res.text).toContain('This page is for the relay');
    }
    const member403 = await member.get('/me/notifications');
    expect(member403.text).not.toContain('href="/admin/deliveries"');
    const admin = request.agent(h.app);
    await signIn(admin, 'root');
    for (const path of ADMIN_PAGES) {
      expect([path, (await admin.get(path)).status]).toEqual([path, 200]);
    }
    expect((await admin.get('/me/notifications')).text).toContain('href="/admin/deliveries"');
  });

  it('show deliveries with status and attempts, filtered by state and instance', async () => {
    const h = await harness();
    const { jobIds } = await h.store.ingest({
      webhook: {
        source: 'sentry',
        resource: 'issue',
        action: 'created',
        dedupKey: 'issue:1',
        body: Buffer.from('{}'),
        receivedAt: Date.now(),
      },
      jobs: [
        {
          routeName: 'alerts',
          instanceId: 'alerts/im',
          pluginSlug: 'im',
          maxAttempts: 3,
          project: 'front-end',
        },
      ],
      dedupWindowMs: 0,
    });
    const [leased] = await h.store.lease('alerts/im', 1, 'test', 60_000);
    await h.store.settle(
      leased!,
      {
        attempt: 1,
        startedAt: Date.now() - 20,
        finishedAt: Date.now(),
        outcome: 'failed',
        error: {
          name: 'DeliveryError',
          code: 'PB_DELIVERY_FAILED',
          message: 'IM server answered HTTP 502',
          retryable: true,
        },
      },
      { state: 'pending', runAt: Date.now() + 60_000 },
    );
    const admin = request.agent(h.app);
    await signIn(admin, 'root');
    const list = await admin.get('/admin/deliveries?state=pending&instance=alerts%2Fim');
    expect(list.text).toContain(`href="/admin/deliveries/${jobIds[0]}"`);
    expect(list.text).toContain('1 / 3');
    expect(list.text).toContain('<code>PB_DELIVERY_FAILED</code> IM server answered HTTP 502');
    const dead = await admin.get('/admin/deliveries?state=dead');
    expect(dead.text).toContain('No deliveries.');
    const badFilter = await admin.get('/admin/deliveries?state=bogus');
    expect(badFilter.status).toBe(400);
    expect(badFilter.text).toContain('state: must be one of');
    const one = await admin.get(`/admin/deliveries/${jobIds[0]}`);
    expect(one.text).toContain('issue.created');
    expect(one.text).toMatch(/<td>1<\/td>\s*<td>0<\/td>.*failed/s);
    expect((await admin.get('/admin/deliveries/999')).status).toBe(404);
  });

  it('show every plugin with its status and first error', async () => {
    const h = await harness();
    const admin = request.agent(h.app);
    await signIn(admin, 'root');
    const page = await admin.get('/admin/plugins');
    expect(page.text).toContain('@plugboard/notifier-im@0.1.0');
    expect(page.text).toMatch(
      /data-status="failed".*PB_PLUGIN_IMPORT_FAILED.*broken plugin failed on import #1/s,
    );
  });

  it('list the silences, active ones by default and expired ones on request, escaped', async () => {
    const h = await harness();
    const silences = new Silences({ store: h.store });
    const live = await silences.create({
      matchers: ['project="front-end"'],
      duration: '2h',
      createdBy: 'ops@example.com',
      comment: 'deploy <b>window</b>',
    });
    const old = await silences.create({
      matchers: ['level="info"'],
      duration: '2h',
      createdBy: 'ops@example.com',
      comment: 'old',
    });
    await silences.expire(old.id);
    const admin = request.agent(h.app);
    await signIn(admin, 'root');
    const page = await admin.get('/admin/silences');
    expect(page.text).toContain(live.id);
    expect(page.text).toContain('deploy &lt;b&gt;window&lt;/b&gt;');
    expect(page.text).not.toContain(old.id);
    expect((await admin.get('/admin/silences?all=1')).text).toContain(old.id);
  });

  it('page the audit log and show how often a refusal repeated', async () => {
    await awayFromWindowEdges();
    const h = await harness();
    const audit = new AuditLog(h.store);
    for (let i = 0; i < 120; i++) {
      await audit.record({ event: 'sign_out', outcome: 'success', email: `u${i}@example.com` });
    }
    for (let i = 0; i < 7; i++) await request(h.app).get('/auth/callback?state=y');
    const admin = request.agent(h.app);
    await signIn(admin, 'root');
    const first = await admin.get('/admin/audit');
    expect(first.text).toContain('id="audit-page">Page 1');
    expect(first.text).toContain('href="/admin/audit?page=2"');
    expect(first.text).not.toContain('id="audit-newer"');
    expect(first.text.match(/<tr\s+data-event=/g)).toHaveLength(50);
    const flood = /data-event="sign_in_refused"\s+data-count="7"\s*>(.*?)<\/tr>/s.exec(first.text);
    expect(flood?.[1]).toContain('127.0.0.1');
    expect(flood?.[1]).toContain('7 times, the last at');

    const second = await admin.get('/admin/audit?page=2');
    expect(second.status).toBe(200);
    expect(second.text).toContain('id="audit-page">Page 2');
    expect(second.text).toContain('href="/admin/audit?page=1"');
    expect(second.text).toContain('href="/admin/audit?page=3"');
    expect(second.text.match(/<tr\s+data-event=/g)).toHaveLength(50);
    const third = await admin.get('/admin/audit?page=3');
    expect(third.text).not.toContain('id="audit-older"');
    // 120 sign-outs, the refusals' entry, root's account and sign-in.
    expect(third.text.match(/<tr\s+data-event=/g)).toHaveLength(23);
    expect((await admin.get('/admin/audit?page=junk')).text).toContain('Page 1');

    const json = await admin.get('/admin/audit.json?limit=100');
    expect(json.body.entries).toHaveLength(100);
    expect(json.body.page).toBe(1);
    expect(json.body.next).toBe('/admin/audit.json?page=2&limit=100');
    const last = await admin.get(json.body.next as string);
    expect(last.body).toMatchObject({ page: 2, next: null });
    expect(last.body.entries).toHaveLength(23);
  });

  it('keep tokens and cookies out of the audit log', async () => {
    const h = await harness();
    const agent = request.agent(h.app);
    const done = await signIn(agent, 'ann');
    const token = (sessionCookie(done) as string).split('=')[1] as string;
    const me = await agent.get('/me/notifications');
    await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfOf(me.text) });
    const entries = await auditJson(h);
    const text = JSON.stringify(entries);
    expect(entries.map((e) => e.event)).toEqual(
      expect.arrayContaining(['account_created', 'sign_in', 'sign_out']),
    );
    expect(text).not.toContain(token);
    expect(text).not.toContain(csrfOf(me.text));
    expect(h.logs().join('\n')).not.toContain(token);
    expect(h.logs().join('\n')).not.toContain(SESSION_SECRET);
  });
});
