import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page, type Response } from 'playwright-core';
import {
  CLIENT_SECRET,
  childEnv,
  cleanup,
  issueCreated,
  postSentry,
  requireBuiltRelay,
  startRelay,
  tempDir,
  waitFor,
  writeConfig,
  type RelayProcess,
} from '../integration/helpers';

// End to end, all real processes on 127.0.0.1: an OpenID Provider
// (panva/oidc-provider, op.mjs) with its own login and consent pages, the
// BUILT relay, a fake IM server, and Debian's Chromium driven by
// playwright-core. A person signs in through the provider in both response
// modes, switches IM off for a project on "My notifications", and the next
// alert of that project reaches the other recipient only.
//
// The provider's issuer is http://localhost:<port> and the relay is
// http://127.0.0.1:<port>: two different sites to the browser, so the
// form_post answer is a genuinely cross-site POST.
//
// Run: npm run build && npx jest packages/relay/test/e2e
// Needs /usr/bin/chromium (apt-get install chromium); skipped with a loud
// message without it, except under CI, where it fails.

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const SESSION_SECRET = randomBytes(32).toString('base64url');
const OIDC_CLIENT_SECRET = randomBytes(24).toString('base64url');
const OP_ADMIN_TOKEN = randomBytes(16).toString('hex');
const API_TOKEN = randomBytes(16).toString('hex');
const IM_SECRET = 'im-client-secret-0123456789';

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const message = `Chromium is missing at ${CHROMIUM} (apt-get install chromium): the relay's browser test (SSO sign-in end to end) cannot run`;
  if (process.env.CI) {
    describe('SSO in a real browser', () => {
      it('needs Chromium under CI', () => {
        throw new Error(message);
      });
    });
  } else {
    console.warn(`\n!!! SKIPPED: ${message} !!!\n`);
  }
}
const suite = haveChromium ? describe : describe.skip;

/** An OS-chosen free port, for a relay whose URL must be known before it starts. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Op {
  child: ChildProcess;
  issuer: string;
  admin(path: string, method?: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function startOp(redirectUri: string): Promise<Op> {
  const child = spawn(process.execPath, [join(__dirname, 'op.mjs')], {
    env: childEnv({
      OP_SETTINGS: JSON.stringify({
        host: 'localhost',
        adminToken: OP_ADMIN_TOKEN,
        clients: ['relay-query', 'relay-form'].map((id) => ({
          client_id: id,
          client_secret: OIDC_CLIENT_SECRET,
          redirect_uris: [redirectUri],
        })),
      }),
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const line = await Promise.race([
    waitFor(
      () => out.split('\n').find((l) => l.includes('"listening"')),
      () => `the OpenID Provider to listen\n${out}\n${err}`,
      15_000,
    ),
    exited.then(() => {
      throw new Error(`the OpenID Provider exited:\n${out}\n${err}`);
    }),
  ]);
  const issuer = (JSON.parse(line) as { issuer: string }).issuer;
  return {
    child,
    issuer,
    async admin(path, method = 'GET') {
      const res = await fetch(`${issuer}${path}`, {
        method,
        headers: { 'x-op-admin': OP_ADMIN_TOKEN },
      });
      return (await res.json()) as Record<string, unknown>;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

interface ImServer {
  url: string;
  to: string[];
  close(): Promise<void>;
}

async function startImServer(): Promise<ImServer> {
  const to: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        to.push((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { to: string }).to);
      } catch {
        to.push('(unreadable)');
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    to,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** What the test reads in the page (the repository's TypeScript has no DOM types). */
interface InPage {
  getComputedStyle(element: unknown): { backgroundColor: string };
}

/** `name=value; Path=…` lines of a response's Set-Cookie headers. */
async function setCookies(response: Response): Promise<string[]> {
  return (await response.headersArray())
    .filter((h) => h.name.toLowerCase() === 'set-cookie')
    .flatMap((h) => h.value.split('\n'));
}

suite('SSO in a real browser: OpenID Provider, relay, Chromium', () => {
  let op: Op;
  let im: ImServer;
  let relay: RelayProcess;
  let context: BrowserContext;
  let page: Page;
  let relayUrl: string;

  beforeAll(async () => {
    requireBuiltRelay();
    const port = await freePort();
    relayUrl = `http://127.0.0.1:${port}`;
    op = await startOp(`${relayUrl}/auth/callback`);
    im = await startImServer();
    const cwd = tempDir('pb-e2e-sso-');
    const oidc = (clientId: string, responseMode: string) => ({
      issuer: op.issuer,
      clientId,
      clientSecret: OIDC_CLIENT_SECRET,
      scopes: 'openid email profile groups',
      responseMode,
      // The test provider is plain http on this machine.
      allowInsecureHttp: true,
    });
    const config = writeConfig(cwd, {
      listen: `127.0.0.1:${port}`,
      dataDir: join(cwd, 'data'),
      sentry: { clientSecret: CLIENT_SECRET },
      api: { token: API_TOKEN },
      dispatch: { pollIntervalMs: 100 },
      sso: {
        publicUrl: relayUrl,
        sessionSecret: SESSION_SECRET,
        admins: { groups: ['plugboard-admins'] },
        providers: [
          { id: 'op-query', type: 'oidc', label: 'Test OP', config: oidc('relay-query', 'query') },
          {
            id: 'op-form',
            type: 'oidc',
            label: 'Test OP (form_post)',
            config: oidc('relay-form', 'form_post'),
          },
        ],
      },
      routes: [
        {
          name: 'alerts',
          match: { projects: ['front-end'] },
          instances: [
            {
              plugin: 'im',
              config: {
                apiUrl: `${im.url}/open/api`,
                clientId: 'sentry-relay',
                clientSecret: IM_SECRET,
                sender: 'sentry-bot',
                recipientSource: 'static',
                recipients: 'ann@example.com\nbob.lee@example.com',
              },
            },
          ],
        },
      ],
    });
    relay = await startRelay({ config, cwd });
    context = await chromium.launchPersistentContext(tempDir('pb-e2e-chromium-'), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    // Nothing but the two local servers, whatever a page asks for.
    await context.route('**/*', (route) => {
      const { protocol, hostname } = new URL(route.request().url());
      const local = protocol === 'http:' && (hostname === '127.0.0.1' || hostname === 'localhost');
      return local ? route.continue() : route.abort('blockedbyclient');
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await op?.stop();
    await im?.close();
    await cleanup({ removeTemp: true });
  });

  /** A new browser session: no cookies at the relay or the provider. */
  async function freshBrowser(): Promise<void> {
    await context.clearCookies();
  }

  /** Through the provider's own pages: its login form, then its consent page when it asks. */
  async function signInAtProvider(login: string, password: string): Promise<void> {
    const opHost = new URL(op.issuer).host;
    const relayHost = new URL(relayUrl).host;
    await page.waitForURL((u) => u.host === opHost);
    await page.getByLabel('Login').fill(login);
    await page.getByLabel('Password').fill(password);
    await page.click('#op-sign-in');
    // A new provider session asks for consent; either way the browser ends at the relay.
    const consent = page.locator('#op-allow');
    await Promise.race([
      consent.waitFor().catch(() => undefined),
      page.waitForURL((u) => u.host === relayHost).catch(() => undefined),
    ]);
    if (new URL(page.url()).host === opHost && (await consent.count()) > 0) await consent.click();
    await page.waitForURL((u) => u.host === relayHost);
  }

  async function relayCookies(): Promise<Array<{ name: string; value: string }>> {
    // The flow cookie lives under /auth, the session cookie under /.
    return (await context.cookies([relayUrl, `${relayUrl}/auth/callback`])).map((c) => ({
      name: c.name,
      value: c.value,
    }));
  }

  it('signs in with response_mode=query and keeps a project switched off', async () => {
    await freshBrowser();
    await page.goto(`${relayUrl}/me/notifications`);
    expect(new URL(page.url()).pathname).toBe('/login');
    const started = page.waitForResponse((r) => r.url().includes('/auth/login/op-query'));
    await page.click('#sign-in-op-query');
    const flowCookie = (await setCookies(await started)).find((c) => c.startsWith('pb_sso_flow='));
    expect(flowCookie).toMatch(/HttpOnly/i);
    expect(flowCookie).toMatch(/SameSite=Lax/i);
    expect(flowCookie).toMatch(/Path=\/auth/);
    await signInAtProvider('ann', 'ann-password');
    await page.waitForURL(`${relayUrl}/me/notifications`);
    await expect(page.locator('h1').textContent()).resolves.toBe('My notifications');
    // The page's stylesheet passed its own Content-Security-Policy.
    await expect(
      page
        .locator('header')
        .evaluate((e) => (globalThis as unknown as InPage).getComputedStyle(e).backgroundColor),
    ).resolves.toBe('rgb(29, 35, 39)');
    await expect(page.locator('header .who span').textContent()).resolves.toBe(
      'ann@example.com (member)',
    );
    const session = (await context.cookies(relayUrl)).find((c) => c.name === 'plugboard_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    // The flow is over: its cookie is gone.
    expect((await relayCookies()).map((c) => c.name)).not.toContain('pb_sso_flow');

    await page.selectOption('select[name="project:front-end"]', 'off');
    await page.click('button[type="submit"]:has-text("Save")');
    await page.waitForURL(`${relayUrl}/me/notifications?saved=1`);
    await page.reload();
    expect(await page.inputValue('select[name="project:front-end"]')).toBe('off');
    expect(await page.locator('tr[data-project="front-end"] .effective').textContent()).toBe('off');
  });

  it('delivers the next alert of that project to the other recipient only', async () => {
    const { resource, body } = issueCreated('9101');
    expect((await postSentry(relay.url, resource, body)).status).toBe(202);
    // Done when the delivery is: then every message it was going to send is sent.
    await waitFor(async () => {
      const res = await fetch(`${relay.url}/api/deliveries?state=succeeded`, {
        headers: { authorization: `Bearer ${API_TOKEN}` },
      });
      const { deliveries } = (await res.json()) as { deliveries: unknown[] };
      return deliveries.length === 1;
    }, 'the IM delivery to succeed');
    expect(im.to).toEqual(['bob.lee']);
  });

  it('signs out for real: the session cookie replayed afterwards is refused', async () => {
    const before = (await relayCookies()).find((c) => c.name === 'plugboard_session')!;
    await page.goto(`${relayUrl}/me/notifications`);
    await page.click('header button:has-text("Sign out")');
    await page.waitForURL(`${relayUrl}/login?signedOut=1`);
    expect(await page.locator('#signed-out').textContent()).toBe('You are signed out.');
    await context.addCookies([
      { name: 'plugboard_session', value: before.value, url: relayUrl, httpOnly: true },
    ]);
    await page.goto(`${relayUrl}/me/notifications`);
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(await page.locator('#session-ended').count()).toBe(1);
  });

  it('signs in with response_mode=form_post: a cross-site POST carrying a SameSite=None flow cookie', async () => {
    await freshBrowser();
    await page.goto(`${relayUrl}/login`);
    const started = page.waitForResponse((r) => r.url().includes('/auth/login/op-form'));
    const callback = page.waitForRequest((r) => r.url().startsWith(`${relayUrl}/auth/callback`));
    await page.click('#sign-in-op-form');
    const flowCookie = (await setCookies(await started)).find((c) => c.startsWith('pb_sso_flow='));
    expect(flowCookie).toMatch(/SameSite=None/i);
    expect(flowCookie).toMatch(/Secure/i);
    expect(flowCookie).toMatch(/HttpOnly/i);
    await signInAtProvider('root', 'root-password');
    const post = await callback;
    expect(post.method()).toBe('POST');
    const headers = await post.allHeaders();
    // Posted by the provider's page (localhost) to the relay (127.0.0.1): another
    // site, so only a SameSite=None cookie comes along, and it did.
    expect(headers.origin).toBe(new URL(op.issuer).origin);
    expect(new URL(op.issuer).hostname).not.toBe(new URL(relayUrl).hostname);
    expect(headers.cookie ?? '').toContain('pb_sso_flow=');
    await page.waitForURL(`${relayUrl}/me/notifications`);
    await expect(page.locator('header .who span').textContent()).resolves.toBe(
      'root@example.com (admin)',
    );
    // An admin sees the delivery of the alert sent above.
    await page.click('header a:has-text("Deliveries")');
    await expect(page.locator('tr[data-state="succeeded"]').count()).resolves.toBe(1);
    await page.click('header a:has-text("Audit log")');
    const events = await page
      .locator('tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event')));
    expect(events).toEqual(expect.arrayContaining(['sign_in', 'account_created', 'sign_out']));
  });

  it('ends a forged state on the error page, with no session', async () => {
    await freshBrowser();
    // A sign-in in progress in this browser (its flow cookie set), then an
    // answer that is not its own.
    const start = await context.request.get(`${relayUrl}/auth/login/op-query`, { maxRedirects: 0 });
    expect(start.status()).toBe(303);
    expect((await relayCookies()).map((c) => c.name)).toContain('pb_sso_flow');
    const forged = new URL(`${relayUrl}/auth/callback`);
    forged.searchParams.set('code', randomBytes(16).toString('base64url'));
    forged.searchParams.set('state', randomBytes(32).toString('base64url'));
    const res = await page.goto(forged.toString());
    expect(res?.status()).toBe(400);
    expect(await page.locator('#error-code').textContent()).toBe('PB_SSO_STATE_MISMATCH');
    expect(await page.locator('#error-reason').textContent()).toBe('state_mismatch');
    expect((await relayCookies()).map((c) => c.name)).not.toContain('plugboard_session');
    expect(await page.content()).not.toContain(forged.searchParams.get('code') as string);
  });

  let flowCookieValue = '';

  it('ends a replayed callback on the error page, with no session', async () => {
    await freshBrowser();
    const started = page.waitForResponse((r) => r.url().includes('/auth/login/op-query'));
    const callback = page.waitForRequest((r) => r.url().startsWith(`${relayUrl}/auth/callback`));
    await page.goto(`${relayUrl}/auth/login/op-query`);
    flowCookieValue = (await setCookies(await started))
      .find((c) => c.startsWith('pb_sso_flow='))!
      .split(';')[0]!
      .slice('pb_sso_flow='.length);
    await signInAtProvider('ann', 'ann-password');
    const answer = (await callback).url();
    await page.waitForURL(`${relayUrl}/me/notifications`);
    await page.click('header button:has-text("Sign out")');
    await page.waitForURL(`${relayUrl}/login?signedOut=1`);

    // The answer of that finished sign-in, replayed with the very flow cookie it came with.
    await freshBrowser();
    await context.addCookies([
      { name: 'pb_sso_flow', value: flowCookieValue, url: `${relayUrl}/auth`, httpOnly: true },
    ]);
    const res = await page.goto(answer);
    expect(res?.status()).toBe(400);
    expect(await page.locator('#error-code').textContent()).toBe('PB_SSO_STATE_REPLAYED');
    expect(await page.locator('#error-reason').textContent()).toBe('state_replayed');
    expect((await relayCookies()).map((c) => c.name)).not.toContain('plugboard_session');
  });

  it('refuses an unverified e-mail address on the error page', async () => {
    await freshBrowser();
    await page.goto(`${relayUrl}/auth/login/op-query`);
    await signInAtProvider('eve', 'eve-password');
    expect(new URL(page.url()).pathname).toBe('/auth/callback');
    expect(await page.locator('#error-code').textContent()).toBe('PB_SSO_EMAIL_UNVERIFIED');
    expect((await relayCookies()).map((c) => c.name)).not.toContain('plugboard_session');
  });

  it('keeps signing people in after the provider rotates its signing key', async () => {
    const before = await op.admin('/__admin/state');
    const rotated = await op.admin('/__admin/rotate', 'POST');
    expect(rotated.kid).not.toBe(before.kid);
    const jwks = (await (await fetch(`${op.issuer}/jwks`)).json()) as {
      keys: Array<{ kid: string }>;
    };
    expect(jwks.keys.map((k) => k.kid)).toEqual([rotated.kid]);
    await freshBrowser();
    await page.goto(`${relayUrl}/auth/login/op-query`);
    await signInAtProvider('ann', 'ann-password');
    await page.waitForURL(`${relayUrl}/me/notifications`);
    await expect(page.locator('header .who span').textContent()).resolves.toBe(
      'ann@example.com (member)',
    );
    // The setting made before survives every sign-in.
    expect(await page.inputValue('select[name="project:front-end"]')).toBe('off');
    // Nothing secret reached the relay's log.
    const log = relay.stdout();
    for (const secret of [SESSION_SECRET, OIDC_CLIENT_SECRET, flowCookieValue]) {
      expect(log).not.toContain(secret);
    }
  });
});
