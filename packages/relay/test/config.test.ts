import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginRegistry } from '@plugboard/sdk';
import { loadConfig, parseListen } from '../src/config/load';
import { builtinPlugins, resolveInstances } from '../src/relay';
import { RecordingNotifier } from './helpers/relay';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'pb-config-'));
}

function withFile(yaml: string, env: NodeJS.ProcessEnv = {}) {
  const dir = tmp();
  const file = join(dir, 'plugboard.yaml');
  writeFileSync(file, yaml);
  try {
    return loadConfig({ file, env, cwd: dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function errorOf(fn: () => unknown): Error & { code?: string; details?: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('loadConfig', () => {
  it('runs on defaults with no file and no variables', () => {
    const dir = tmp();
    const loaded = loadConfig({ env: {}, cwd: dir });
    expect(loaded.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(loaded.config.dataDir).toBe(join(dir, '.plugboard-data'));
    expect(loaded.config.dispatch.maxAttempts).toBe(8);
    expect(loaded.file).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
  });

  it('picks up ./plugboard.yaml, and environment variables override the file', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'plugboard.yaml'), 'listen: 127.0.0.1:9000\nlog: { level: debug }\n');
    const loaded = loadConfig({
      env: { PLUGBOARD_LISTEN: '0.0.0.0:8181', PLUGBOARD_SENTRY_CLIENT_SECRET: 'from-env-secret' },
      cwd: dir,
    });
    expect(loaded.file).toBe(join(dir, 'plugboard.yaml'));
    expect(loaded.listen).toEqual({ host: '0.0.0.0', port: 8181 });
    expect(loaded.origins.listen).toBe('PLUGBOARD_LISTEN');
    expect(loaded.config.log.level).toBe('debug');
    expect(loaded.config.sentry.clientSecret).toBe('from-env-secret');
    expect(loaded.secrets.has('from-env-secret')).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('resolves ${env:NAME} and ${file:path} references and treats them as secrets', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'token.txt'), 'file-held-token-0123456789\n');
    writeFileSync(
      join(dir, 'plugboard.yaml'),
      'sentry:\n  clientSecret: ${env:MY_SENTRY_SECRET}\nlegacy:\n  token: ${file:token.txt}\n',
    );
    const loaded = loadConfig({ env: { MY_SENTRY_SECRET: 'env-held-secret' }, cwd: dir });
    expect(loaded.config.sentry.clientSecret).toBe('env-held-secret');
    expect(loaded.config.legacy.token).toBe('file-held-token-0123456789');
    expect(loaded.secrets).toEqual(new Set(['env-held-secret', 'file-held-token-0123456789']));
    rmSync(dir, { recursive: true, force: true });
  });

  it('names a missing ${env:...} variable', () => {
    const err = errorOf(() => withFile('sentry:\n  clientSecret: ${env:NOT_SET_ANYWHERE}\n'));
    expect(err.code).toBe('PB_CONFIG_SECRET_UNRESOLVED');
    expect(err.message).toContain('sentry.clientSecret');
    expect(err.message).toContain('NOT_SET_ANYWHERE');
  });

  it('names the setting, its source and what was expected, masking secrets', () => {
    const err = errorOf(() =>
      withFile('dispatch:\n  concurrency: lots\n', { PLUGBOARD_LEGACY_TOKEN: 'short-secret' }),
    );
    expect(err.code).toBe('PB_CONFIG_INVALID');
    expect(err.message).toMatch(/dispatch\.concurrency from .*plugboard\.yaml/);
    expect(err.message).toMatch(/legacy\.token from PLUGBOARD_LEGACY_TOKEN: .*16 characters/);
    expect(err.message).not.toContain('short-secret');
    expect(err.message).toContain('sh****(12 chars)');
  });

  it('refuses unknown settings by name', () => {
    const err = errorOf(() => withFile('listne: 8080\n'));
    expect(err.message).toMatch(/listne/);
  });

  it('reports YAML syntax errors with the file', () => {
    const err = errorOf(() => withFile('routes: [\n'));
    expect(err.code).toBe('PB_CONFIG_FILE_UNREADABLE');
    expect(err.message).toMatch(/not valid YAML/);
  });

  it('reports a missing config file with where its name came from', () => {
    const err = errorOf(() => loadConfig({ env: { PLUGBOARD_CONFIG: 'nope.yaml' }, cwd: tmp() }));
    expect(err.code).toBe('PB_CONFIG_FILE_UNREADABLE');
    expect(err.message).toMatch(/nope\.yaml \(from PLUGBOARD_CONFIG\)/);
  });

  it('refuses duplicate route and instance names', () => {
    const routes = (names: string[]) =>
      'routes:\n' + names.map((n) => `  - name: ${n}\n    instances: [{ plugin: log }]\n`).join('');
    expect(errorOf(() => withFile(routes(['a', 'a']))).message).toMatch(/duplicate route name "a"/);
    const err = errorOf(() =>
      withFile('routes:\n  - name: a\n    instances: [{ plugin: log }, { plugin: log }]\n'),
    );
    expect(err.message).toMatch(/duplicate instance name "log"/);
  });
});

describe('parseListen', () => {
  it.each([
    ['8080', { host: '127.0.0.1', port: 8080 }],
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    ['[::]:8080', { host: '::', port: 8080 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('parses %s', (value, expected) => {
    expect(parseListen(value, 'PLUGBOARD_LISTEN')).toEqual(expected);
  });

  it('explains a Kubernetes service variable', () => {
    const err = errorOf(() => parseListen('tcp://10.0.0.12:8080', 'PLUGBOARD_LISTEN'));
    expect(err.code).toBe('PB_CONFIG_INVALID');
    expect(err.message).toContain('PLUGBOARD_LISTEN="tcp://10.0.0.12:8080"');
    expect(err.message).toMatch(/Kubernetes service/);
    expect(err.message).toMatch(/enableServiceLinks: false/);
  });

  it.each(['http', '99999', 'host:port', ''])('refuses %j', (value) => {
    expect(errorOf(() => parseListen(value, 'listen')).message).toMatch(/expected a port/);
  });
});

describe('resolveInstances', () => {
  function registryWith(...plugins: RecordingNotifier[]): PluginRegistry {
    const dir = tmp();
    writeFileSync(join(dir, 'package.json'), '{"name":"app","version":"1.0.0"}');
    const r = new PluginRegistry({ appRoot: dir, builtins: builtinPlugins() });
    r.discover();
    for (const p of plugins) r.register(p);
    return r;
  }

  it('names the route, the instance and the field of a bad plugin setting', async () => {
    const loaded = withFile(
      'routes:\n  - name: ops\n    instances:\n      - name: hooks\n        plugin: webhook\n        config: { urls: "not a url", format: xml }\n',
    );
    await expect(resolveInstances(loaded, registryWith())).rejects.toThrow(
      /routes\[0\] \(ops\) instances\[0\] \(hooks\): config\.format must be one of/,
    );
    await expect(resolveInstances(loaded, registryWith())).rejects.toMatchObject({
      code: 'PB_CONFIG_FIELD_INVALID',
    });
    const urlsOnly = withFile(
      'routes:\n  - name: ops\n    instances:\n      - name: hooks\n        plugin: webhook\n        config: { urls: "not a url" }\n',
    );
    await expect(resolveInstances(urlsOnly, registryWith())).rejects.toThrow(
      /routes\[0\] \(ops\) instances\[0\] \(hooks\): .*not a url/,
    );
  });

  it('names an unknown plugin and lists the known ones', async () => {
    const loaded = withFile('routes:\n  - name: ops\n    instances: [{ plugin: slack }]\n');
    await expect(resolveInstances(loaded, registryWith())).rejects.toMatchObject({
      code: 'PB_CONFIG_PLUGIN_UNKNOWN',
      message: expect.stringMatching(
        /no plugin "slack".*known: log, webhook, jira, im, dingtalk, feishu/,
      ),
    });
  });

  it('applies field defaults and per-instance dispatch settings', async () => {
    const loaded = withFile(
      'dispatch: { concurrency: 3 }\nroutes:\n  - name: ops\n    instances:\n      - { plugin: log, timeoutMs: 2500 }\n',
    );
    const { instances } = await resolveInstances(loaded, registryWith());
    expect(instances[0]).toMatchObject({
      instanceId: 'ops/log',
      concurrency: 3,
      timeoutMs: 2500,
      config: { prefix: 'ALERT', stream: 'log' },
    });
  });
});
