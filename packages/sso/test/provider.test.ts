import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ERROR_CODES,
  NotificationPlugin,
  PLUGIN_BRAND,
  PluginRegistry,
  readBrand,
  SDK_VERSION,
} from '@plugboard/sdk';
import {
  BUILTIN_SSO_PROVIDERS,
  DummyProvider,
  isSsoErrorCode,
  OAuth2Provider,
  OidcProvider,
  SSO_VERSION,
  SsoError,
  SsoProvider,
} from '@plugboard/sso';

describe('SsoProvider', () => {
  it('carries the SDK brand with kind sso', () => {
    expect(readBrand(OidcProvider)).toEqual({ kind: 'sso', sdkVersion: SDK_VERSION });
    expect(readBrand(new DummyProvider())?.kind).toBe('sso');
  });

  it('ships the three providers unconfigured, frozen, with the package version', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(SSO_VERSION).toBe(pkg.version);
    expect(
      BUILTIN_SSO_PROVIDERS.map((p) => [p.slug, p.version, p.isConfigured, Object.isFrozen(p)]),
    ).toEqual([
      ['oidc', pkg.version, false, true],
      ['oauth2', pkg.version, false, true],
      ['dummy', pkg.version, false, true],
    ]);
  });

  it('configure() returns a new frozen instance and leaves the original alone', () => {
    const registryInstance = new OidcProvider();
    const config = {
      issuer: 'https://login.example.com',
      clientId: 'relay',
      clientSecret: 's3cr3t-value',
    };
    const a = registryInstance.configure(config);
    const b = registryInstance.configure({ ...config, responseMode: 'form_post' });
    expect(a).not.toBe(registryInstance);
    expect(a).toBeInstanceOf(OidcProvider);
    expect(Object.isFrozen(a)).toBe(true);
    expect(registryInstance.isConfigured).toBe(false);
    expect([a.callbackMethod(), b.callbackMethod(), registryInstance.callbackMethod()]).toEqual([
      'query',
      'form_post',
      'query',
    ]);
    expect(() => registryInstance.getAuthPipeline()).toThrow(
      expect.objectContaining({ code: 'PB_SSO_CONFIG_INVALID' }),
    );
  });

  it('lists every field problem at once and never echoes a secret', () => {
    let error: SsoError | undefined;
    try {
      new OidcProvider().configure({
        issuer: 'not a url',
        clientSecret: { nested: 'hunter2-secret' },
        colour: 1,
      });
    } catch (err) {
      error = err as SsoError;
    }
    expect(error?.code).toBe('PB_SSO_CONFIG_INVALID');
    expect(error?.message).toContain('colour unknown setting');
    expect(error?.message).toContain('issuer must be an absolute URL');
    expect(error?.message).toContain('clientId is required');
    expect(error?.message).toContain('clientSecret must be a string (value hidden)');
    expect(error?.message).not.toContain('hunter2-secret');
  });
});

describe('SsoError', () => {
  it.each(ERROR_CODES.sso.map((code) => [code]))(
    '%s has a reason, a status and a user message',
    (code) => {
      const err = new SsoError(code, { message: 'operator detail: kid abc123' });
      expect(isSsoErrorCode(err.code)).toBe(true);
      expect(err.reason).toBe(code.replace(/^PB_SSO_/, '').toLowerCase());
      expect(err.status).toBeGreaterThanOrEqual(400);
      expect(err.status).toBeLessThan(600);
      expect(err.userMessage.length).toBeGreaterThan(20);
      expect(err.userMessage).not.toContain('operator detail');
      expect(err.name).toBe('SsoError');
    },
  );
});

describe('registry contract for plugboard.sso', () => {
  const registry = () =>
    new PluginRegistry({
      appRoot: join(__dirname, 'no-such-app'),
      builtins: [OidcProvider, OAuth2Provider, DummyProvider].map((Provider) => ({
        group: 'plugboard.sso' as const,
        name: new Provider().slug,
        packageName: '@plugboard/sso',
        packageVersion: SSO_VERSION,
        load: () => Provider,
      })),
    });

  it('loads the built-in providers as sso plugins', async () => {
    const r = registry();
    const list = await r.loadAll();
    expect(list.map((p) => [p.group, p.name, p.status])).toEqual([
      ['plugboard.sso', 'oidc', 'loaded'],
      ['plugboard.sso', 'oauth2', 'loaded'],
      ['plugboard.sso', 'dummy', 'loaded'],
    ]);
    const oidc = (await r.getPlugin('plugboard.sso', 'oidc')) as SsoProvider;
    expect(oidc).toBeInstanceOf(OidcProvider);
    expect(oidc.isConfigured).toBe(false);
  });

  it('refuses a branded sso export that lacks the pipeline methods', () => {
    class Half {
      static readonly [PLUGIN_BRAND] = { kind: 'sso', sdkVersion: SDK_VERSION };
      readonly slug = 'half';
      readonly title = 'Half';
      readonly version = '1.0.0';
      getAuthPipeline() {
        return [];
      }
    }
    let error: { code?: string; message?: string } = {};
    try {
      registry().register(Half, { group: 'plugboard.sso' });
    } catch (err) {
      error = err as typeof error;
    }
    expect(error.code).toBe('PB_PLUGIN_CONTRACT_INVALID');
    expect(error.message).toContain('it must implement buildIdentity()');
    expect(error.message).toContain('it must implement configure()');
    expect(error.message).not.toContain('getAuthPipeline');
  });

  it('refuses a notifier declared as an SSO provider', () => {
    class Notifier extends NotificationPlugin {
      readonly slug = 'chat';
      readonly title = 'Chat';
      readonly version = '1.0.0';
      override async notify(): Promise<void> {}
    }
    expect(() => registry().register(Notifier, { group: 'plugboard.sso' })).toThrow(
      /it is a notifier plugin, plugboard.sso needs a sso/,
    );
  });
});
