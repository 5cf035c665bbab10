import { DummyProvider, SsoError } from '@plugboard/sso';
import { testApp } from './helpers/app';
import { Browser } from './helpers/browser';

function thrown(fn: () => unknown): SsoError {
  try {
    fn();
  } catch (err) {
    return err as SsoError;
  }
  throw new Error('did not throw');
}

function stateOf(html: string): string {
  const match = /name="state" value="([^"]+)"/.exec(html);
  if (match?.[1] === undefined) throw new Error('no state field');
  return match[1];
}

describe('the dummy provider', () => {
  it('refuses to be configured unless explicitly allowed', async () => {
    for (const config of [{}, { allow: false }, { allow: 'no' }]) {
      const err = thrown(() => new DummyProvider().configure(config));
      expect(err).toBeInstanceOf(SsoError);
      expect(err.code).toBe('PB_SSO_PROVIDER_NOT_ALLOWED');
      expect(err.reason).toBe('provider_not_allowed');
    }
    expect(await new DummyProvider().validateConfig({})).toEqual([
      'allow must be true: the dummy provider signs in anyone, for development and tests only',
    ]);
    // From YAML or the environment, true may arrive as text.
    expect(new DummyProvider().configure({ allow: 'true' }).isConfigured).toBe(true);
  });

  it('signs in whoever types an address, through its one page', async () => {
    const t = testApp([
      { id: 'dev', label: 'Dev', provider: new DummyProvider().configure({ allow: true }) },
    ]);
    const browser = new Browser(t.app);
    const page = await browser.get('/auth/login/dev');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('action="http://127.0.0.1:8080/auth/callback"');
    expect(page.text).toContain('Never use it in production');

    const res = await browser.post('/auth/callback', {
      state: stateOf(page.text),
      email: 'Ada@Example.com',
      name: 'Ada',
    });
    expect(res.status).toBe(200);
    expect(res.body.signedIn).toEqual({
      id: 'ada@example.com',
      email: 'Ada@Example.com',
      name: 'Ada',
      emailVerified: true,
      data: {},
    });
  });

  it('shows the form again, escaped, for an address it cannot use', async () => {
    const t = testApp([
      {
        id: 'dev',
        label: 'Dev',
        provider: new DummyProvider().configure({ allow: true, emailVerified: false }),
      },
    ]);
    const browser = new Browser(t.app);
    const state = stateOf((await browser.get('/auth/login/dev')).text);
    const bad = await browser.post('/auth/callback', {
      state,
      email: '"><script>alert(1)</script>',
      name: '<b>Eve</b>',
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Enter an e-mail address.');
    expect(bad.text).not.toContain('<script>alert(1)</script>');
    expect(bad.text).toContain('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(bad.text).toContain('value="&lt;b&gt;Eve&lt;/b&gt;"');

    const good = await browser.post('/auth/callback', { state, email: 'eve@example.com' });
    expect(good.status).toBe(200);
    expect(good.body.signedIn).toMatchObject({ email: 'eve@example.com', emailVerified: false });
  });
});
