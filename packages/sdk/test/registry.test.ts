import {
  NotificationPlugin,
  PLUGIN_BRAND,
  PluginRegistry,
  SDK_VERSION,
  readBrand,
  type DiscoveredPlugin,
  type PlugboardError,
  type RegistryOptions,
} from '@plugboard/sdk';
import {
  FixtureApp,
  bundledNotifierModule,
  probe,
  removeFixtureApps,
  resetProbe,
  sdkNotifierModule,
  throwingModule,
} from './helpers/registry-fixtures';

interface LogLine {
  level: 'info' | 'warn';
  obj: object;
  msg: string | undefined;
}

function makeLogger(lines: LogLine[]): NonNullable<RegistryOptions['logger']> {
  return {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
  };
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<PlugboardError> {
  try {
    await promise;
  } catch (err) {
    return err as PlugboardError;
  }
  throw new Error('expected a rejection');
}

function thrown(fn: () => unknown): PlugboardError {
  try {
    fn();
  } catch (err) {
    return err as PlugboardError;
  }
  throw new Error('expected a throw');
}

function row(list: DiscoveredPlugin[], name: string, packageName?: string): DiscoveredPlugin {
  const found = list.find(
    (p) => p.name === name && (packageName === undefined || p.packageName === packageName),
  );
  if (found === undefined) throw new Error(`no row ${name} in ${JSON.stringify(list)}`);
  return found;
}

const SDK_RANGE = '^0.1.0';

function notifierPackage(slug: string, version = '1.0.0', key = slug) {
  return {
    version,
    plugboard: {
      sdk: SDK_RANGE,
      entryPoints: { 'plugboard.notifiers': { [slug]: './index.js:Notifier' } },
    },
    files: { 'index.js': sdkNotifierModule({ slug, key, exportName: 'Notifier' }) },
  };
}

beforeEach(() => {
  resetProbe();
});

afterAll(() => {
  removeFixtureApps();
});

describe('PluginRegistry discovery', () => {
  function app(): FixtureApp {
    return new FixtureApp({
      // Declared out of order on purpose: discovery sorts.
      dependencies: {
        'plugboard-notifier-beta': '^1.0.0',
        'left-pad': '^1.0.0',
        'plugboard-notifier-alpha': '^1.2.0',
      },
      devDependencies: { 'plugboard-notifier-devonly': '^1.0.0' },
    })
      .install('plugboard-notifier-alpha', notifierPackage('alpha', '1.2.3'))
      .install('plugboard-notifier-beta', {
        version: '1.0.0',
        // No `plugboard.sdk`: the range comes from peerDependencies, and with
        // no `:export` the entry is the module's default export.
        plugboard: { entryPoints: { 'plugboard.notifiers': { beta: './lib/beta.js' } } },
        peerDependencies: { '@plugboard/sdk': SDK_RANGE },
        files: { 'lib/beta.js': sdkNotifierModule({ slug: 'beta' }) },
      })
      .install('left-pad', {
        files: { 'index.js': "globalThis.__plugboardRegistryProbe.imports['left-pad'] = 1;\n" },
      })
      .install('plugboard-notifier-devonly', notifierPackage('devonly'));
  }

  it('lists builtins first, then declared dependencies sorted, without importing anything', () => {
    const lines: LogLine[] = [];
    let builtinLoads = 0;
    const registry = new PluginRegistry({
      appRoot: app().root,
      logger: makeLogger(lines),
      builtins: [
        {
          group: 'plugboard.notifiers',
          name: 'log',
          packageName: '@plugboard/relay',
          packageVersion: '0.1.0',
          load: () => {
            builtinLoads++;
            return class {};
          },
        },
      ],
    });

    const list = registry.discover();

    expect(list).toEqual([
      {
        group: 'plugboard.notifiers',
        name: 'log',
        packageName: '@plugboard/relay',
        packageVersion: '0.1.0',
        entry: '(builtin)',
        status: 'discovered',
      },
      {
        group: 'plugboard.notifiers',
        name: 'alpha',
        packageName: 'plugboard-notifier-alpha',
        packageVersion: '1.2.3',
        entry: './index.js:Notifier',
        status: 'discovered',
      },
      {
        group: 'plugboard.notifiers',
        name: 'beta',
        packageName: 'plugboard-notifier-beta',
        packageVersion: '1.0.0',
        entry: './lib/beta.js',
        status: 'discovered',
      },
    ]);
    // Nothing imported: not the plugins, not the package without a
    // `plugboard` field, not the devDependency, not the builtin.
    expect(probe().imports).toEqual({});
    expect(builtinLoads).toBe(0);
    expect(lines.filter((l) => l.level === 'info').map((l) => l.msg)).toEqual([
      'Detected: @plugboard/relay@0.1.0 plugboard.notifiers/log',
      'Detected: plugboard-notifier-alpha@1.2.3 plugboard.notifiers/alpha',
      'Detected: plugboard-notifier-beta@1.0.0 plugboard.notifiers/beta',
    ]);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
    // Discovery runs once; list() reports the same rows.
    expect(registry.discover()).toEqual(list);
    expect(registry.list()).toEqual(list);
  });

  it('loads lazily: getNotifier imports only the package it needs, once', async () => {
    const registry = new PluginRegistry({ appRoot: app().root });

    const alpha = await registry.getNotifier('alpha');

    // The fixture required the SDK sources and got the very module the test
    // imported, so the plugin is a real NotificationPlugin.
    expect(alpha).toBeInstanceOf(NotificationPlugin);
    expect(alpha.slug).toBe('alpha');
    expect(probe().imports).toEqual({ alpha: 1 });
    expect(row(registry.list(), 'alpha').status).toBe('loaded');
    expect(row(registry.list(), 'beta').status).toBe('discovered');

    expect(await registry.getNotifier('alpha')).toBe(alpha);
    const all = await registry.loadAll();
    expect(all.map((p) => [p.name, p.status])).toEqual([
      ['alpha', 'loaded'],
      ['beta', 'loaded'],
    ]);
    expect(await registry.getNotifier('alpha')).toBe(alpha);
    // One instance per slug: never constructed twice.
    expect(probe().constructed).toEqual({ alpha: 1, beta: 1 });
    expect(probe().imports).toEqual({ alpha: 1, beta: 1 });
  });

  it('ignores devDependencies and packages without a plugboard field, keeps optionalDependencies', () => {
    const fixture = new FixtureApp({
      dependencies: { 'left-pad': '^1.0.0', 'not-installed': '^1.0.0' },
      devDependencies: { 'plugboard-notifier-devonly': '^1.0.0' },
      optionalDependencies: {
        'plugboard-notifier-optional': '^1.0.0',
        'optional-missing': '^1.0.0',
      },
    })
      .install('left-pad', { files: { 'index.js': 'module.exports = 1;\n' } })
      .install('plugboard-notifier-devonly', notifierPackage('devonly'))
      .install('plugboard-notifier-optional', notifierPackage('optional'));
    const lines: LogLine[] = [];

    const list = new PluginRegistry({
      appRoot: fixture.root,
      logger: makeLogger(lines),
    }).discover();

    expect(list.map((p) => p.name)).toEqual(['optional']);
    // A declared dependency that is not installed is worth a warning, not a
    // failure (most dependencies are not plugins); a missing optional one is normal.
    expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'Dependency not-installed is not installed; skipped',
    ]);
  });

  it('finds a package whose exports map hides package.json', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-hidden': '^1.0.0' } });
    fixture.install('plugboard-notifier-hidden', {
      ...notifierPackage('hidden'),
      exports: { '.': './index.js' },
    });
    const registry = new PluginRegistry({ appRoot: fixture.root });

    expect(registry.discover().map((p) => [p.name, p.status])).toEqual([['hidden', 'discovered']]);
    expect((await registry.getNotifier('hidden')).slug).toBe('hidden');
  });

  it('resolves packages from the app root up through parent node_modules', () => {
    // A workspace-style layout: the app lives in a sub-directory and the
    // plugin is hoisted to the root's node_modules.
    const fixture = new FixtureApp(null);
    fixture.install('plugboard-notifier-hoisted', notifierPackage('hoisted'));
    fixture.write(
      'apps/relay/package.json',
      JSON.stringify({ dependencies: { 'plugboard-notifier-hoisted': '*' } }),
    );

    const list = new PluginRegistry({ appRoot: `${fixture.root}/apps/relay` }).discover();

    expect(list.map((p) => [p.packageName, p.name])).toEqual([
      ['plugboard-notifier-hoisted', 'hoisted'],
    ]);
  });

  it('includes an extra package that is not a declared dependency', async () => {
    const fixture = new FixtureApp({ dependencies: {} }).install(
      'plugboard-notifier-extra',
      notifierPackage('extra', '2.0.0'),
    );
    const registry = new PluginRegistry({
      appRoot: fixture.root,
      packages: ['plugboard-notifier-extra'],
    });

    expect(registry.discover().map((p) => [p.packageName, p.packageVersion, p.name])).toEqual([
      ['plugboard-notifier-extra', '2.0.0', 'extra'],
    ]);
    expect((await registry.getNotifier('extra')).slug).toBe('extra');
  });

  it('reports an extra package that is not installed, and lists known slugs on an unknown one', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-alpha': '*' } }).install(
      'plugboard-notifier-alpha',
      notifierPackage('alpha'),
    );
    const registry = new PluginRegistry({
      appRoot: fixture.root,
      packages: ['@plugboard-fixture/not-installed', '../escape'],
    });

    const list = registry.discover();

    const missing = row(list, '@plugboard-fixture/not-installed');
    expect(missing).toMatchObject({
      scope: 'package',
      status: 'failed',
      packageName: '@plugboard-fixture/not-installed',
      error: { code: 'PB_PLUGIN_NOT_FOUND' },
    });
    expect(missing.error?.message).toContain('@plugboard-fixture/not-installed is not installed');
    expect(row(list, '../escape').error).toMatchObject({
      code: 'PB_PLUGIN_NOT_FOUND',
      message: '"../escape" is not a valid package name',
    });
    expect(row(list, 'alpha').status).toBe('discovered');

    const err = await rejection(registry.getNotifier('nope'));
    expect(err.code).toBe('PB_PLUGIN_NOT_FOUND');
    expect(err.message).toContain('no plugboard.notifiers plugin "nope"; known: alpha');
    expect(err.message).toContain('@plugboard-fixture/not-installed (PB_PLUGIN_NOT_FOUND)');
    expect(err).toMatchObject({ details: { slug: 'nope' } });
    // A package-level row never answers a slug lookup.
    expect(
      (await rejection(registry.getNotifier('@plugboard-fixture/not-installed'))).message,
    ).toContain('no plugboard.notifiers plugin');
  });

  it('still discovers builtins and extra packages when the app has no package.json', () => {
    const fixture = new FixtureApp(null).install(
      'plugboard-notifier-extra',
      notifierPackage('extra'),
    );
    const lines: LogLine[] = [];

    const list = new PluginRegistry({
      appRoot: fixture.root,
      packages: ['plugboard-notifier-extra'],
      logger: makeLogger(lines),
    }).discover();

    expect(list.map((p) => p.name)).toEqual(['extra']);
    expect(lines.some((l) => l.level === 'warn' && /No package\.json/.test(l.msg ?? ''))).toBe(
      true,
    );
  });

  it('throws a coded error when the app package.json is not JSON', () => {
    const fixture = new FixtureApp(null);
    fixture.write('package.json', '{ nope');

    const err = thrown(() => new PluginRegistry({ appRoot: fixture.root }).discover());

    expect(err.code).toBe('PB_PLUGIN_MANIFEST_INVALID');
    expect(err.message).toContain('is not valid JSON');
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });
});

describe('PluginRegistry manifest validation', () => {
  it('fails malformed plugboard fields with the package and what is wrong', () => {
    const fixture = new FixtureApp({
      dependencies: {
        'pb-not-object': '*',
        'pb-no-entry-points': '*',
        'pb-bad-group': '*',
        'pb-bad-entries': '*',
        'pb-bad-sdk': '*',
        'pb-no-sdk': '*',
      },
    })
      .install('pb-not-object', { plugboard: 'yes please' })
      .install('pb-no-entry-points', { plugboard: { sdk: SDK_RANGE } })
      .install('pb-bad-group', {
        plugboard: {
          sdk: SDK_RANGE,
          entryPoints: {
            'plugboard.notifier': { typo: './index.js' },
            'plugboard.notifiers': { fine: './index.js:Fine' },
          },
        },
      })
      .install('pb-bad-entries', {
        plugboard: {
          sdk: SDK_RANGE,
          entryPoints: {
            'plugboard.notifiers': {
              absolute: '/etc/passwd:X',
              outside: '../other/index.js:X',
              number: 42,
              'bad export': './index.js:Not.An.Identifier',
              dotted: './index.js:Not.An.Identifier',
            },
          },
        },
      })
      .install('pb-bad-sdk', {
        plugboard: { sdk: 42, entryPoints: { 'plugboard.notifiers': { badsdk: './i.js' } } },
      })
      .install('pb-no-sdk', {
        plugboard: { entryPoints: { 'plugboard.notifiers': { nosdk: './i.js' } } },
      });

    const list = new PluginRegistry({ appRoot: fixture.root }).discover();
    const errorOf = (name: string, pkg?: string) => row(list, name, pkg).error;

    expect(probe().imports).toEqual({});
    for (const failed of list.filter((p) => p.name !== 'fine')) {
      expect(failed.status).toBe('failed');
      expect(failed.error?.code).toBe('PB_PLUGIN_MANIFEST_INVALID');
      expect(failed.error?.message).toContain(failed.packageName);
    }
    expect(errorOf('pb-not-object')?.message).toBe(
      'pb-not-object@1.0.0 has an invalid "plugboard" field: "plugboard" must be an object, got the string "yes please"',
    );
    expect(row(list, 'pb-not-object').scope).toBe('package');
    expect(errorOf('pb-no-entry-points')?.message).toContain('"plugboard.entryPoints" is missing');
    expect(errorOf('pb-bad-group')?.message).toContain(
      'unknown entry-point group "plugboard.notifier"',
    );
    // The good entry of the same package is still there.
    expect(row(list, 'fine').status).toBe('discovered');
    expect(errorOf('absolute')?.message).toContain('must be relative to the package');
    expect(errorOf('outside')?.message).toContain('points outside the package');
    expect(errorOf('number')?.message).toContain('entry must be a string');
    expect(errorOf('bad export')?.message).toContain('must be a non-empty slug without spaces');
    expect(errorOf('dotted')?.message).toContain('"Not.An.Identifier" is not an identifier');
    expect(errorOf('badsdk')?.message).toContain(
      'plugboard.sdk must be a semver range, got a number',
    );
    expect(errorOf('nosdk')?.message).toContain('declares no SDK range');
    expect(row(list, 'dotted')).toMatchObject({
      group: 'plugboard.notifiers',
      packageName: 'pb-bad-entries',
      packageVersion: '1.0.0',
      entry: './index.js:Not.An.Identifier',
    });
  });

  it('fails an extra package that has no plugboard field', () => {
    const fixture = new FixtureApp({}).install('left-pad', {});

    const list = new PluginRegistry({ appRoot: fixture.root, packages: ['left-pad'] }).discover();

    expect(row(list, 'left-pad').error).toMatchObject({
      code: 'PB_PLUGIN_MANIFEST_INVALID',
      message:
        'left-pad@1.0.0 is listed as a plugin package but its package.json has no "plugboard" field',
    });
  });

  it('fails the second package declaring a slug, naming both', async () => {
    const fixture = new FixtureApp({
      dependencies: { 'plugboard-notifier-echo-b': '*', 'plugboard-notifier-echo-a': '*' },
    })
      .install('plugboard-notifier-echo-a', notifierPackage('echo', '1.0.0', 'echo-a'))
      .install('plugboard-notifier-echo-b', notifierPackage('echo', '2.0.0', 'echo-b'));
    const registry = new PluginRegistry({ appRoot: fixture.root });

    const list = registry.discover();

    expect(row(list, 'echo', 'plugboard-notifier-echo-a').status).toBe('discovered');
    const second = row(list, 'echo', 'plugboard-notifier-echo-b');
    expect(second.status).toBe('failed');
    expect(second.error?.code).toBe('PB_PLUGIN_DUPLICATE_SLUG');
    expect(second.error?.message).toContain('plugboard-notifier-echo-a@1.0.0');
    expect(second.error?.message).toContain('plugboard-notifier-echo-b@2.0.0');
    // The first one is the one served.
    await registry.getNotifier('echo');
    expect(probe().imports).toEqual({ 'echo-a': 1 });
  });

  it('lets a builtin win a slug over an installed package', () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-log': '*' } }).install(
      'plugboard-notifier-log',
      notifierPackage('log'),
    );

    const list = new PluginRegistry({
      appRoot: fixture.root,
      builtins: [
        {
          group: 'plugboard.notifiers',
          name: 'log',
          packageName: '@plugboard/relay',
          packageVersion: '0.1.0',
          load: () => undefined,
        },
      ],
    }).discover();

    expect(list.map((p) => [p.packageName, p.status, p.error?.code])).toEqual([
      ['@plugboard/relay', 'discovered', undefined],
      ['plugboard-notifier-log', 'failed', 'PB_PLUGIN_DUPLICATE_SLUG'],
    ]);
  });
  it('lists a package once when a builtin already provides it', () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-webhook': '*' } }).install(
      'plugboard-notifier-webhook',
      notifierPackage('webhook', '0.2.0'),
    );

    const list = new PluginRegistry({
      appRoot: fixture.root,
      builtins: [
        {
          group: 'plugboard.notifiers',
          name: 'webhook',
          packageName: 'plugboard-notifier-webhook',
          packageVersion: '0.1.0',
          load: () => undefined,
        },
      ],
    }).discover();

    expect(list.map((p) => [p.packageVersion, p.entry, p.status])).toEqual([
      ['0.1.0', '(builtin)', 'discovered'],
    ]);
  });
});

describe('PluginRegistry loading', () => {
  function brokenApp(): FixtureApp {
    return new FixtureApp({
      dependencies: { 'plugboard-notifier-good': '*', 'plugboard-notifier-broken': '*' },
    })
      .install('plugboard-notifier-good', notifierPackage('good'))
      .install('plugboard-notifier-broken', {
        version: '0.3.0',
        plugboard: {
          sdk: SDK_RANGE,
          entryPoints: { 'plugboard.notifiers': { broken: './index.js:Broken' } },
        },
        files: { 'index.js': throwingModule('broken') },
      });
  }

  it('records a plugin that throws on import with its first error, and loads the others', async () => {
    const lines: LogLine[] = [];
    const registry = new PluginRegistry({ appRoot: brokenApp().root, logger: makeLogger(lines) });

    const list = await registry.loadAll();

    expect(row(list, 'good').status).toBe('loaded');
    const broken = row(list, 'broken');
    expect(broken.status).toBe('failed');
    expect(broken.error).toMatchObject({
      code: 'PB_PLUGIN_IMPORT_FAILED',
      cause: { message: 'boom #1', cause: { message: 'disk on fire' } },
    });
    expect(broken.error?.message).toContain('plugboard-notifier-broken@0.3.0');
    expect(broken.error?.message).toContain('boom #1');
    expect(broken.error?.chain).toBe(
      [
        '[PB_PLUGIN_IMPORT_FAILED] plugboard-notifier-broken@0.3.0 plugboard.notifiers/broken: importing ./index.js:Broken failed: boom #1',
        'caused by: boom #1',
        'caused by: disk on fire',
      ].join('\n'),
    );
    expect(lines.some((l) => l.level === 'warn' && /boom #1/.test(l.msg ?? ''))).toBe(true);

    // getNotifier rethrows the recorded error, with its details and cause.
    const err = await rejection(registry.getNotifier('broken'));
    expect(err).toMatchObject({
      code: 'PB_PLUGIN_IMPORT_FAILED',
      details: {
        packageName: 'plugboard-notifier-broken',
        packageVersion: '0.3.0',
        group: 'plugboard.notifiers',
        entry: './index.js:Broken',
        slug: 'broken',
      },
    });
    expect((err.cause as Error).message).toBe('boom #1');
    expect(await rejection(registry.getNotifier('broken'))).toBe(err);

    // No retry overwrites the first error (the module would now say boom #2).
    await registry.loadAll();
    expect(row(registry.list(), 'broken').error?.cause?.message).toBe('boom #1');
    expect(probe().imports.broken).toBe(1);
  });

  it('keeps the first error when the broken plugin is asked for before loadAll', async () => {
    const registry = new PluginRegistry({ appRoot: brokenApp().root });

    const first = await rejection(registry.getNotifier('broken'));
    await registry.loadAll();

    expect(first.message).toContain('boom #1');
    expect(row(registry.list(), 'broken').error?.message).toBe(first.message);
    expect(probe().imports).toEqual({ broken: 1, good: 1 });
  });

  it('strict: loadAll throws the first failure and tries nothing after it', async () => {
    const registry = new PluginRegistry({ appRoot: brokenApp().root, strict: true });

    const err = await rejection(registry.loadAll());

    expect(err.code).toBe('PB_PLUGIN_IMPORT_FAILED');
    expect(err.message).toContain('boom #1');
    // `-broken` sorts before `-good`, which was never imported.
    expect(probe().imports).toEqual({ broken: 1 });
    expect(row(registry.list(), 'good').status).toBe('discovered');
  });

  it('strict: a failure found by discovery throws too', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-good': '*' } }).install(
      'plugboard-notifier-good',
      notifierPackage('good'),
    );
    const registry = new PluginRegistry({
      appRoot: fixture.root,
      strict: true,
      packages: ['@plugboard-fixture/not-installed'],
    });

    expect((await rejection(registry.loadAll())).code).toBe('PB_PLUGIN_NOT_FOUND');
    expect(probe().imports).toEqual({});
  });

  it('rejects exports without the brand', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-unbranded': '*' } });
    fixture.install('plugboard-notifier-unbranded', {
      plugboard: {
        sdk: SDK_RANGE,
        entryPoints: {
          'plugboard.notifiers': {
            plainclass: './index.js:PlainClass',
            plainobject: './index.js:plainObject',
            fakebrand: './index.js:FakeBrand',
          },
        },
      },
      files: {
        'index.js': [
          `exports.PlainClass = class { slug = 'plainclass'; title = 'T'; version = '1'; async notify() {} };`,
          `exports.plainObject = { slug: 'plainobject', title: 'T', version: '1', async notify() {} };`,
          `// Looks like a brand, but under a string key instead of the registered symbol.`,
          `exports.FakeBrand = class { static ['plugboard.plugin'] = { kind: 'notifier', sdkVersion: '0.1.0' }; slug = 'fakebrand'; title = 'T'; version = '1'; async notify() {} };`,
        ].join('\n'),
      },
    });
    const registry = new PluginRegistry({ appRoot: fixture.root });

    const list = await registry.loadAll();

    for (const name of ['plainclass', 'plainobject', 'fakebrand']) {
      expect(row(list, name).error?.code).toBe('PB_PLUGIN_BRAND_INVALID');
    }
    expect((await rejection(registry.getNotifier('plainobject'))).code).toBe(
      'PB_PLUGIN_BRAND_INVALID',
    );
  });

  it('rejects a missing export, naming what the module exports', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-typo': '*' } });
    fixture.install('plugboard-notifier-typo', {
      plugboard: {
        sdk: SDK_RANGE,
        entryPoints: { 'plugboard.notifiers': { typo: './index.js:Notifer' } },
      },
      files: { 'index.js': sdkNotifierModule({ slug: 'typo', exportName: 'Notifier' }) },
    });

    const err = await rejection(new PluginRegistry({ appRoot: fixture.root }).getNotifier('typo'));

    expect(err.code).toBe('PB_PLUGIN_EXPORT_MISSING');
    expect(err.message).toContain('no export "Notifer" (exports: Notifier)');
  });

  it('checks the SDK range against the host version, prereleases included', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-future': '*' } });
    fixture.install('plugboard-notifier-future', {
      version: '5.0.0',
      plugboard: {
        sdk: '>=2.0.0',
        entryPoints: { 'plugboard.notifiers': { future: './index.js:Notifier' } },
      },
      files: { 'index.js': sdkNotifierModule({ slug: 'future', exportName: 'Notifier' }) },
    });

    const err = await rejection(
      new PluginRegistry({ appRoot: fixture.root }).getNotifier('future'),
    );
    expect(err.code).toBe('PB_PLUGIN_SDK_INCOMPATIBLE');
    expect(err.message).toBe(
      `plugboard-notifier-future@5.0.0 plugboard.notifiers/future: requires @plugboard/sdk >=2.0.0, but the host runs @plugboard/sdk ${SDK_VERSION}`,
    );

    // A prerelease host satisfies a plain range (semver's includePrerelease),
    // so release candidates of the relay can be tried with real plugins.
    const newer = new PluginRegistry({ appRoot: fixture.root, sdkVersion: '2.1.0-rc.1' });
    expect((await newer.getNotifier('future')).slug).toBe('future');
  });

  it('checks the contract: kind, metadata, slug and an implemented notify', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-contracts': '*' } });
    const brand = `static [Symbol.for('plugboard.plugin')] = { kind: 'notifier', sdkVersion: '0.1.0' };`;
    fixture.install('plugboard-notifier-contracts', {
      plugboard: {
        sdk: SDK_RANGE,
        entryPoints: {
          'plugboard.notifiers': {
            mismatch: './mismatch.js',
            lazy: './lazy.js',
            users: './users.js',
            sso: './index.js:Sso',
            nometa: './index.js:NoMeta',
            ctorthrows: './index.js:CtorThrows',
            instance: './index.js:instance',
          },
        },
      },
      files: {
        'mismatch.js': sdkNotifierModule({ slug: 'other-slug', key: 'mismatch' }),
        // Extends the SDK but implements neither notify nor notifyUsers.
        'lazy.js': sdkNotifierModule({ slug: 'lazy', implement: 'none' }),
        // Implements only notifyUsers: fine, the SDK's notify calls it.
        'users.js': sdkNotifierModule({ slug: 'users', implement: 'notifyUsers' }),
        'index.js': [
          `const BRAND = Symbol.for('plugboard.plugin');`,
          `exports.Sso = class { static [BRAND] = { kind: 'sso', sdkVersion: '0.1.0' }; slug = 'sso'; title = 'T'; version = '1'; async notify() {} };`,
          `exports.NoMeta = class { ${brand} slug = 'nometa'; async notify() {} };`,
          `exports.CtorThrows = class { ${brand} constructor() { throw new Error('needs options'); } };`,
          `class Instance { ${brand} slug = 'instance'; title = 'T'; version = '1'; async notify() {} }`,
          `exports.instance = new Instance();`,
        ].join('\n'),
      },
    });
    const registry = new PluginRegistry({ appRoot: fixture.root });

    const list = await registry.loadAll();
    const messageOf = (name: string) => {
      const r = row(list, name);
      expect(r.error?.code).toBe('PB_PLUGIN_CONTRACT_INVALID');
      return r.error?.message;
    };

    expect(messageOf('mismatch')).toContain(
      'slug "other-slug" does not match the entry-point name "mismatch"',
    );
    expect(messageOf('lazy')).toContain('it must implement notify() or override notifyUsers()');
    expect(messageOf('sso')).toContain('it is a sso plugin, plugboard.notifiers needs a notifier');
    expect(messageOf('nometa')).toContain(
      'title must be a non-empty string; version must be a non-empty string',
    );
    expect(messageOf('ctorthrows')).toContain(
      'constructing the plugin class with no arguments threw: needs options',
    );
    expect(row(list, 'ctorthrows').error?.cause?.message).toBe('needs options');
    expect(row(list, 'users').status).toBe('loaded');
    // An exported instance is used as is.
    expect(row(list, 'instance').status).toBe('loaded');
    expect((await registry.getNotifier('instance')).slug).toBe('instance');
  });

  it('accepts a plugin that bundles its own SDK copy (brand via Symbol.for)', async () => {
    const fixture = new FixtureApp({ dependencies: { 'plugboard-notifier-bundled': '*' } });
    fixture.install('plugboard-notifier-bundled', {
      version: '3.0.0',
      plugboard: {
        sdk: SDK_RANGE,
        entryPoints: {
          'plugboard.notifiers': {
            bundled: './dist/index.js:BundledNotifier',
            // Same bundled SDK, no override: the copy's default notify is recognised.
            'bundled-lazy': './dist/lazy.js:BundledNotifier',
          },
        },
      },
      files: {
        'dist/index.js': bundledNotifierModule({ slug: 'bundled' }),
        'dist/lazy.js': bundledNotifierModule({ slug: 'bundled-lazy', implement: 'none' }),
      },
    });
    const registry = new PluginRegistry({ appRoot: fixture.root });

    const plugin = await registry.getNotifier('bundled');

    expect(plugin).not.toBeInstanceOf(NotificationPlugin);
    expect(readBrand(plugin)).toEqual({ kind: 'notifier', sdkVersion: '0.1.0' });
    expect(plugin.version).toBe('3.0.0');
    expect((await rejection(registry.getNotifier('bundled-lazy'))).code).toBe(
      'PB_PLUGIN_CONTRACT_INVALID',
    );
  });

  it('include/exclude filter by entry-point name and excluded plugins are never imported', async () => {
    const fixture = new FixtureApp({
      dependencies: {
        'plugboard-notifier-alpha': '*',
        'plugboard-notifier-beta': '*',
        'plugboard-notifier-broken': '*',
      },
    })
      .install('plugboard-notifier-alpha', notifierPackage('alpha'))
      .install('plugboard-notifier-beta', notifierPackage('beta'))
      .install('plugboard-notifier-broken', {
        plugboard: {
          sdk: SDK_RANGE,
          entryPoints: { 'plugboard.notifiers': { broken: './index.js' } },
        },
        files: { 'index.js': throwingModule('broken') },
      });

    // Excluding a broken plugin is how an operator gets a strict relay to start.
    const excluding = new PluginRegistry({
      appRoot: fixture.root,
      exclude: ['beta', 'broken'],
      strict: true,
    });
    expect((await excluding.loadAll()).map((p) => [p.name, p.status])).toEqual([
      ['alpha', 'loaded'],
      ['beta', 'excluded'],
      ['broken', 'excluded'],
    ]);
    expect(probe().imports).toEqual({ alpha: 1 });
    const err = await rejection(excluding.getNotifier('beta'));
    expect(err.code).toBe('PB_PLUGIN_NOT_FOUND');
    expect(err.message).toContain('excluded by the include/exclude settings');

    const including = new PluginRegistry({ appRoot: fixture.root, include: ['beta'] });
    expect(including.discover().map((p) => [p.name, p.status])).toEqual([
      ['alpha', 'excluded'],
      ['beta', 'discovered'],
      ['broken', 'excluded'],
    ]);
    expect((await rejection(including.getNotifier('nope'))).message).toContain('known: beta');
  });

  it('loads builtins lazily through their load()', async () => {
    const fixture = new FixtureApp({});
    class LogNotifier extends NotificationPlugin {
      slug = 'log';
      title = 'Log';
      version = '0.1.0';
      override async notify(): Promise<void> {}
    }
    let loads = 0;
    const registry = new PluginRegistry({
      appRoot: fixture.root,
      builtins: [
        {
          group: 'plugboard.notifiers',
          name: 'log',
          packageName: '@plugboard/relay',
          packageVersion: '0.1.0',
          load: () => {
            loads++;
            return LogNotifier;
          },
        },
        {
          group: 'plugboard.notifiers',
          name: 'crashy',
          packageName: '@plugboard/relay',
          packageVersion: '0.1.0',
          load: () => {
            throw new Error('builtin exploded');
          },
        },
      ],
    });

    expect(loads).toBe(0);
    const log = await registry.getNotifier('log');
    expect(log).toBeInstanceOf(LogNotifier);
    expect(await registry.getNotifier('log')).toBe(log);
    expect(loads).toBe(1);
    const err = await rejection(registry.getNotifier('crashy'));
    expect(err.code).toBe('PB_PLUGIN_IMPORT_FAILED');
    expect((err.cause as Error).message).toBe('builtin exploded');
  });
});

describe('PluginRegistry.register', () => {
  class CodeNotifier extends NotificationPlugin {
    slug = 'code';
    title = 'Code';
    version = '4.5.6';
    override async notify(): Promise<void> {}
  }

  function appWithAlpha(): string {
    return new FixtureApp({ dependencies: { 'plugboard-notifier-alpha': '*' } }).install(
      'plugboard-notifier-alpha',
      notifierPackage('alpha'),
    ).root;
  }

  it('registers an instance or a class, after the discovered plugins', async () => {
    const registry = new PluginRegistry({ appRoot: appWithAlpha() });
    const instance = new CodeNotifier();

    expect(registry.register(instance)).toEqual({
      group: 'plugboard.notifiers',
      name: 'code',
      packageName: '(registered)',
      packageVersion: '4.5.6',
      entry: '(registered)',
      status: 'loaded',
    });
    class Other extends CodeNotifier {
      override slug = 'other';
    }
    registry.register(Other, { packageName: 'host-app', packageVersion: '1.0.0' });

    expect(await registry.getNotifier('code')).toBe(instance);
    expect(await registry.getNotifier('other')).toBeInstanceOf(Other);
    expect(registry.list().map((p) => [p.name, p.status])).toEqual([
      ['alpha', 'discovered'],
      ['code', 'loaded'],
      ['other', 'loaded'],
    ]);
    expect(probe().imports).toEqual({});
  });

  it('validates brand, contract and duplicate slugs, and throws', () => {
    const registry = new PluginRegistry({ appRoot: appWithAlpha() });

    expect(thrown(() => registry.register({ slug: 'x', notify() {} })).code).toBe(
      'PB_PLUGIN_BRAND_INVALID',
    );
    class Nameless extends NotificationPlugin {
      slug = '';
      title = 'T';
      version = '1';
    }
    const contract = thrown(() => registry.register(Nameless));
    expect(contract.code).toBe('PB_PLUGIN_CONTRACT_INVALID');
    expect(contract.message).toContain('slug must be a non-empty string');
    expect(contract.message).toContain('it must implement notify() or override notifyUsers()');
    expect(
      thrown(() => registry.register(new CodeNotifier(), { name: 'not-code' })).message,
    ).toContain('slug "code" does not match the entry-point name "not-code"');

    class Alpha extends CodeNotifier {
      override slug = 'alpha';
    }
    const duplicate = thrown(() => registry.register(Alpha, { packageName: 'host-app' }));
    expect(duplicate.code).toBe('PB_PLUGIN_DUPLICATE_SLUG');
    expect(duplicate.message).toContain('plugboard-notifier-alpha@1.0.0');
    expect(duplicate.message).toContain('host-app');
    // Nothing was added by the failed registrations.
    expect(registry.list().map((p) => p.name)).toEqual(['alpha']);
  });

  it('honours include/exclude', () => {
    const registry = new PluginRegistry({ appRoot: appWithAlpha(), exclude: ['code'] });

    expect(registry.register(new CodeNotifier()).status).toBe('excluded');
  });

  it('brands the SDK base classes with the shared symbol', () => {
    // What makes bundled SDK copies interoperate: the brand key is global.
    expect(PLUGIN_BRAND).toBe(Symbol.for('plugboard.plugin'));
    expect(readBrand(CodeNotifier)?.kind).toBe('notifier');
  });
});
