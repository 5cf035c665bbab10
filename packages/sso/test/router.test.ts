import request from 'supertest';
import {
  createSsoRouter,
  MemoryFlowStore,
  SsoError,
  type AuthView,
  type FlowStore,
} from '@plugboard/sso';
import { testApp } from './helpers/app';
import { Browser, setCookies } from './helpers/browser';
import {
  ChangedStepsProvider,
  configured,
  NoEmailProvider,
  PostingStepsProvider,
  StepsProvider,
} from './helpers/providers';

const steps = () => ({ id: 'steps', label: 'Steps', provider: configured(new StepsProvider()) });

/** The `state` the test provider's form carries (a hidden field). */
function formState(html: string): string {
  const match = /name="state" value="([^"]+)"/.exec(html);
  if (match?.[1] === undefined) throw new Error(`no state in the page: ${html}`);
  return match[1];
}

/** Starts a flow in `browser` and returns the state its form carries. */
async function startFlow(browser: Browser, path = '/auth/login/steps'): Promise<string> {
  const res = await browser.get(path);
  expect(res.status).toBe(200);
  return formState(res.text);
}

/** A FlowStore that remembers every key and value written, to look for secrets. */
class RecordingStore extends MemoryFlowStore {
  readonly written: string[] = [];
  override async set(id: string, value: unknown, ttl: number): Promise<void> {
    this.written.push(id, JSON.stringify(value));
    return super.set(id, value, ttl);
  }
  override async setIfAbsent(id: string, value: unknown, ttl: number): Promise<boolean> {
    this.written.push(id, JSON.stringify(value));
    return super.setIfAbsent(id, value, ttl);
  }
}

/** A store that can hold the next reads until that many have arrived. */
class GateStore extends MemoryFlowStore {
  private gate: { waiting: number; open: () => void; opened: Promise<void> } | undefined;

  holdReads(count: number): void {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.gate = { waiting: count, open, opened };
  }

  override async get(id: string): Promise<unknown | undefined> {
    const value = await super.get(id);
    const gate = this.gate;
    if (gate !== undefined && gate.waiting > 0) {
      gate.waiting -= 1;
      if (gate.waiting === 0) gate.open();
      await gate.opened;
    }
    return value;
  }
}

describe('the pipeline', () => {
  it('runs the views in order, binding state, and hands the identity to onSuccess', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(
      browser,
      '/auth/login/steps?returnTo=%2Fdeliveries%3Fstatus%3Ddead',
    );
    expect(browser.flowCookie).toBeDefined();

    const res = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      signedIn: {
        id: 'ada',
        email: 'ada@example.com',
        data: { order: ['form', 'check'], visits: 0 },
      },
      returnTo: '/deliveries?status=dead',
    });
    expect(t.successes).toHaveLength(1);
    expect(t.successes[0]?.providerId).toBe('steps');
    // The flow is over: its cookie is cleared.
    expect(browser.flowCookie).toBeUndefined();
  });

  it('keeps the step when a view answers, and goes on from there', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const again = await browser.post('/auth/callback', { state, again: '1' });
    expect(again.status).toBe(200);
    expect(formState(again.text)).toBe(state);
    const redirect = await browser.post('/auth/callback', { state });
    expect(redirect.status).toBe(303);
    expect(redirect.headers.location).toBe('https://idp.example.test/login');

    const done = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(done.status).toBe(200);
    expect(done.body.signedIn.data).toEqual({ order: ['form', 'check'], visits: 1 });
  });

  it('accepts the callback as a GET with the answer in the query', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const res = await browser.get(`/auth/callback?state=${encodeURIComponent(state)}&user=grace`);
    expect(res.status).toBe(200);
    expect(res.body.signedIn.email).toBe('grace@example.com');
  });

  it('ends the flow with the view’s message when a view reports an error', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const cookie = browser.flowCookie!;
    const res = await browser.post('/auth/callback', { state, fail: '1' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      code: 'PB_SSO_PIPELINE_ERROR',
      reason: 'pipeline_error',
      userMessage: 'The test view said no.',
    });
    expect(browser.flowCookie).toBeUndefined();
    // The flow is gone: going on with it is a replay.
    browser.cookies.set('pb_sso_flow', cookie);
    const later = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(later.body.code).toBe('PB_SSO_STATE_REPLAYED');
    expect(t.successes).toHaveLength(0);
  });

  it('reports a view that throws as an internal error, without its message', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const res = await browser.post('/auth/callback', { state, throw: '1' });
    expect(res.status).toBe(500);
    expect(res.body.code).toBe('PB_SSO_INTERNAL');
    expect(res.body.userMessage).not.toContain('a bug in the view');
    expect(t.errors[0]?.message).toContain('a bug in the view');
    expect(t.logs.some((l) => l.level === 'error' && l.msg === 'sso.flow.failed')).toBe(true);
  });

  it('refuses an outcome outside the closed set', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const res = await browser.post('/auth/callback', { state, bogus: '1' });
    expect(res.body.code).toBe('PB_SSO_INTERNAL');
    expect(t.errors[0]?.message).toMatch(/returned no outcome/);
  });

  it('refuses an identity without an e-mail address', async () => {
    const t = testApp([
      { id: 'steps', label: 'Steps', provider: configured(new NoEmailProvider()) },
    ]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const res = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(res.status).toBe(502);
    expect(res.body.code).toBe('PB_SSO_IDENTITY_INVALID');
    expect(t.successes).toHaveLength(0);
  });

  it('passes an SsoError thrown by onSuccess to onError', async () => {
    const t = testApp([steps()], {
      onSuccess: async () => {
        throw new SsoError('PB_SSO_EMAIL_DOMAIN_NOT_ALLOWED', {
          message: 'example.com not allowed',
        });
      },
    });
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const res = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(res.status).toBe(403);
    expect(res.body.reason).toBe('email_domain_not_allowed');
  });

  it('answers an unknown provider with PB_SSO_PROVIDER_UNKNOWN and starts nothing', async () => {
    const t = testApp([steps()]);
    const res = await request(t.app).get('/auth/login/nope');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('PB_SSO_PROVIDER_UNKNOWN');
    expect(setCookies(res)).toEqual([]);
  });
});

describe('flow state', () => {
  it('stores one row for a started flow, and none for a start that ends at once', async () => {
    const store = new MemoryFlowStore();
    const refusing = class extends StepsProvider {
      override getAuthPipeline(): AuthView[] {
        return [{ name: 'refuse', dispatch: async (_r, h) => h.error('not today') }];
      }
    };
    const t = testApp(
      [steps(), { id: 'refusing', label: 'Refusing', provider: configured(new refusing()) }],
      { store },
    );
    await startFlow(new Browser(t.app));
    await startFlow(new Browser(t.app));
    expect(store.size).toBe(2);
    const refused = await request(t.app).get('/auth/login/refusing');
    expect(refused.status).toBe(400);
    expect(store.size).toBe(2);
  });

  it('refuses the same callback twice (a replay after success)', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const cookie = browser.flowCookie!;
    expect((await browser.post('/auth/callback', { state, user: 'ada' })).status).toBe(200);

    const replay = new Browser(t.app);
    replay.cookies.set('pb_sso_flow', cookie);
    const res = await replay.post('/auth/callback', { state, user: 'ada' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'PB_SSO_STATE_REPLAYED', reason: 'state_replayed' });
    expect(t.successes).toHaveLength(1);
  });

  it('lets only one of two simultaneous identical callbacks through', async () => {
    const store = new GateStore();
    const t = testApp([steps()], { store });
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    // Both callbacks read the flow before either goes on: a real race.
    store.holdReads(2);
    const cookie = `pb_sso_flow=${browser.flowCookie!}`;
    const send = () =>
      request(t.app)
        .post('/auth/callback')
        .set('Cookie', cookie)
        .type('form')
        .send({ state, user: 'ada' });
    const results = await Promise.all([send(), send()]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
    expect(results.find((r) => r.status === 400)?.body.code).toBe('PB_SSO_STATE_REPLAYED');
    expect(t.successes).toHaveLength(1);
  });

  it('treats a tampered flow cookie as an unknown flow', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const cookie = browser.flowCookie!;
    browser.cookies.set('pb_sso_flow', (cookie[0] === 'A' ? 'B' : 'A') + cookie.slice(1));
    const res = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('PB_SSO_STATE_EXPIRED');
  });

  it('refuses a callback without the flow cookie and leaves the real flow alone', async () => {
    const t = testApp([steps()]);
    const victim = new Browser(t.app);
    const state = await startFlow(victim);

    const other = new Browser(t.app);
    const res = await other.post('/auth/callback', { state, user: 'mallory' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'PB_SSO_STATE_MISMATCH', reason: 'state_mismatch' });

    const real = await victim.post('/auth/callback', { state, user: 'ada' });
    expect(real.status).toBe(200);
    expect(real.body.signedIn.id).toBe('ada');
  });

  it("refuses a callback carrying another browser's state", async () => {
    const t = testApp([steps()]);
    const alice = new Browser(t.app);
    const bob = new Browser(t.app);
    const aliceState = await startFlow(alice);
    const bobState = await startFlow(bob);

    // Login CSRF: Bob's browser is made to deliver Alice's answer.
    const forged = await bob.post('/auth/callback', { state: aliceState, user: 'alice' });
    expect(forged.status).toBe(400);
    expect(forged.body.code).toBe('PB_SSO_STATE_MISMATCH');
    const noState = await bob.post('/auth/callback', { user: 'alice' });
    expect(noState.body.code).toBe('PB_SSO_STATE_MISMATCH');

    // Neither flow was consumed by the forgery.
    expect(
      (await bob.post('/auth/callback', { state: bobState, user: 'bob' })).body.signedIn.id,
    ).toBe('bob');
    expect(
      (await alice.post('/auth/callback', { state: aliceState, user: 'alice' })).body.signedIn.id,
    ).toBe('alice');
  });

  it('expires a flow after flowTtlMs on the injected clock', async () => {
    let now = 1_700_000_000_000;
    const store = new MemoryFlowStore({ now: () => now });
    const t = testApp([steps()], { now: () => now, store, flowTtlMs: 60_000 });
    const browser = new Browser(t.app);

    const early = await startFlow(browser);
    now += 59_000;
    expect((await browser.post('/auth/callback', { state: early, user: 'ada' })).status).toBe(200);

    const late = await startFlow(browser);
    now += 60_000;
    const res = await browser.post('/auth/callback', { state: late, user: 'ada' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('PB_SSO_STATE_EXPIRED');
    expect(browser.flowCookie).toBeUndefined();
  });

  it('checks expiry itself, even when the store still holds the flow', async () => {
    let now = 1_700_000_000_000;
    // A store whose clock does not move: only the router's expiry applies.
    const t = testApp([steps()], {
      now: () => now,
      store: new MemoryFlowStore(),
      flowTtlMs: 60_000,
    });
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    now += 60_000;
    const res = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(res.body.code).toBe('PB_SSO_STATE_EXPIRED');
  });

  it('refuses a flow whose pipeline changed since it started', async () => {
    const store = new MemoryFlowStore();
    const before = testApp([steps()], { store });
    const after = testApp(
      [{ id: 'steps', label: 'Steps', provider: configured(new ChangedStepsProvider()) }],
      { store },
    );
    const browser = new Browser(before.app);
    const state = await startFlow(browser);

    const res = await request(after.app)
      .post('/auth/callback')
      .set('Cookie', `pb_sso_flow=${browser.flowCookie!}`)
      .type('form')
      .send({ state, user: 'ada' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'PB_SSO_PIPELINE_CHANGED', reason: 'pipeline_changed' });
    // The changed pipeline ended the flow: the old deployment will not finish it either.
    const retry = await browser.post('/auth/callback', { state, user: 'ada' });
    expect(retry.body.code).toBe('PB_SSO_STATE_REPLAYED');
  });

  it('never writes the flow cookie value to the store (only its hash)', async () => {
    const store = new RecordingStore();
    const t = testApp([steps()], { store });
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const cookie = browser.flowCookie!;
    await browser.post('/auth/callback', { state, user: 'ada' });
    expect(store.written.join('\n')).not.toContain(cookie);
  });

  it('never logs the cookie, the state or the callback parameters', async () => {
    const t = testApp([steps()]);
    const browser = new Browser(t.app);
    const state = await startFlow(browser);
    const cookie = browser.flowCookie!;
    await new Browser(t.app).post('/auth/callback', { state, user: 'x' });
    await browser.post('/auth/callback', { state: 'wrong', user: 'x' });
    await browser.post('/auth/callback', { state, user: 'secret-user-value' });
    const logged = JSON.stringify(t.logs);
    expect(t.logs.length).toBeGreaterThan(3);
    for (const secret of [cookie, state, 'secret-user-value']) expect(logged).not.toContain(secret);
  });
});

describe('cookies and headers', () => {
  it('sets an HttpOnly, SameSite=Lax flow cookie scoped to the mount path', async () => {
    const t = testApp([steps()]);
    const res = await request(t.app).get('/auth/login/steps');
    const [cookie] = setCookies(res);
    expect(cookie?.name).toBe('pb_sso_flow');
    expect(cookie?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(cookie?.attributes).toMatchObject({
      httponly: true,
      samesite: 'Lax',
      path: '/auth',
      'max-age': '600',
    });
    // publicUrl is http: no Secure unless asked for.
    expect(cookie?.attributes.secure).toBeUndefined();
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  it('marks the cookie Secure when secureCookies is set', async () => {
    const t = testApp([steps()], { secureCookies: true });
    const [cookie] = setCookies(await request(t.app).get('/auth/login/steps'));
    expect(cookie?.attributes).toMatchObject({ samesite: 'Lax', secure: true, httponly: true });
  });

  it('uses SameSite=None; Secure for a provider that POSTs back cross-site, even on http', async () => {
    const t = testApp([
      { id: 'posting', label: 'Posting', provider: configured(new PostingStepsProvider()) },
    ]);
    const res = await request(t.app).get('/auth/login/posting');
    const [cookie] = setCookies(res);
    expect(cookie?.attributes).toMatchObject({ samesite: 'None', secure: true, httponly: true });
    // …and clears it with the same attributes when the flow ends.
    const browser = new Browser(t.app);
    const state = formState((await browser.get('/auth/login/posting')).text);
    const done = await browser.post('/auth/callback', { state, user: 'ada' });
    const [cleared] = setCookies(done);
    expect(cleared?.attributes).toMatchObject({ samesite: 'None', secure: true, path: '/auth' });
    expect(new Date(String(cleared?.attributes.expires)).getTime()).toBeLessThan(Date.now());
  });

  it('keeps the cookie path under a publicUrl with a path prefix', async () => {
    const t = testApp([steps()], { publicUrl: 'https://ops.example.com/relay', mountPath: '/sso' });
    const res = await request(t.app).get('/auth/login/steps');
    const [cookie] = setCookies(res);
    expect(cookie?.attributes).toMatchObject({ path: '/relay/sso', secure: true });
    expect(res.text).toContain('action="https://ops.example.com/relay/sso/callback"');
  });

  it('keeps only same-origin paths as returnTo', async () => {
    const t = testApp([steps()]);
    for (const returnTo of [
      '//evil.example/x',
      'https://evil.example/',
      '/\\evil.example',
      'deliveries',
    ]) {
      const browser = new Browser(t.app);
      const state = await startFlow(
        browser,
        `/auth/login/steps?returnTo=${encodeURIComponent(returnTo)}`,
      );
      const res = await browser.post('/auth/callback', { state, user: 'ada' });
      expect(res.body.returnTo).toBeNull();
    }
    expect(t.logs.filter((l) => l.msg === 'sso.return_to.ignored')).toHaveLength(4);
  });

  it('does not start or consume flows on HEAD', async () => {
    const t = testApp([steps()]);
    const res = await request(t.app).head('/auth/login/steps');
    expect(res.status).toBe(405);
    expect(setCookies(res)).toEqual([]);
  });
});

describe('createSsoRouter options', () => {
  const base = {
    flowStore: new MemoryFlowStore() as FlowStore,
    publicUrl: 'https://relay.example.com',
    onSuccess: async () => undefined,
    onError: () => undefined,
  };

  it('refuses an unconfigured provider, a duplicate id and a bad publicUrl', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as SsoError).code;
      }
      return 'no error';
    };
    expect(
      code(() =>
        createSsoRouter({
          ...base,
          providers: [{ id: 'x', label: 'X', provider: new StepsProvider() }],
        }),
      ),
    ).toBe('PB_SSO_CONFIG_INVALID');
    expect(code(() => createSsoRouter({ ...base, providers: [steps(), steps()] }))).toBe(
      'PB_SSO_CONFIG_INVALID',
    );
    expect(
      code(() => createSsoRouter({ ...base, publicUrl: 'relay.example.com', providers: [] })),
    ).toBe('PB_SSO_CONFIG_INVALID');
    expect(code(() => createSsoRouter({ ...base, mountPath: 'auth/', providers: [] }))).toBe(
      'PB_SSO_CONFIG_INVALID',
    );
    expect(code(() => createSsoRouter({ ...base, providers: [steps()] }))).toBe('no error');
  });
});
