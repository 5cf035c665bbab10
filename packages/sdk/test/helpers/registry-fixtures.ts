import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/**
 * Fixture apps for the registry tests, written to a temp dir at test time so
 * that no node_modules directory is ever committed.
 *
 * Plugin modules written here are plain CommonJS. The ones that extend the
 * SDK `require()` its TypeScript sources by absolute path: the registry loads
 * them through jest's `require`, which transforms the .ts file and hands back
 * the very module instance the tests import as `@plugboard/sdk`.
 */

/** Where the SDK sources are; computed at run time, only ever written to temp files. */
export const SDK_SOURCE = resolve(__dirname, '..', '..', 'src', 'index.ts');

/** Side effects the fixture modules leave, to prove what was imported or constructed. */
export interface FixtureProbe {
  imports: Record<string, number>;
  constructed: Record<string, number>;
}

const PROBE = '__plugboardRegistryProbe';

export function resetProbe(): FixtureProbe {
  const probe: FixtureProbe = { imports: {}, constructed: {} };
  (globalThis as Record<string, unknown>)[PROBE] = probe;
  return probe;
}

export function probe(): FixtureProbe {
  return (globalThis as Record<string, unknown>)[PROBE] as FixtureProbe;
}

/** First lines of every fixture module: counts its import under `key`. */
function countImport(key: string): string {
  return [
    `const probe = globalThis[${JSON.stringify(PROBE)}];`,
    `probe.imports[${JSON.stringify(key)}] = (probe.imports[${JSON.stringify(key)}] || 0) + 1;`,
  ].join('\n');
}

function countConstruct(key: string): string {
  return `probe.constructed[${JSON.stringify(key)}] = (probe.constructed[${JSON.stringify(key)}] || 0) + 1;`;
}

export interface NotifierSource {
  /** Probe key; defaults to the slug. */
  key?: string;
  slug: string;
  className?: string;
  /** `exports.<name> = Class`; `module.exports = Class` when omitted. */
  exportName?: string;
  /** Overrides notify()/notifyUsers(); `none` inherits the SDK defaults only. */
  implement?: 'notify' | 'notifyUsers' | 'none';
}

/** A notifier extending this repository's SDK (src/index.ts). */
export function sdkNotifierModule(spec: NotifierSource): string {
  const key = spec.key ?? spec.slug;
  const className = spec.className ?? 'FixtureNotifier';
  const implement = spec.implement ?? 'notify';
  const method =
    implement === 'notify'
      ? `  async notify(notification) { this.sent.push(notification); }`
      : implement === 'notifyUsers'
        ? `  async notifyUsers(group, event, rules, ctx, notification) { this.sent.push(notification); }`
        : '';
  return [
    countImport(key),
    `const { NotificationPlugin } = require(${JSON.stringify(SDK_SOURCE)});`,
    `class ${className} extends NotificationPlugin {`,
    `  slug = ${JSON.stringify(spec.slug)};`,
    `  title = ${JSON.stringify(`${spec.slug} title`)};`,
    `  version = '1.0.0';`,
    `  sent = [];`,
    `  constructor() { super(); ${countConstruct(key)} }`,
    method,
    `}`,
    spec.exportName === undefined
      ? `module.exports = ${className};`
      : `exports.${spec.exportName} = ${className};`,
    '',
  ].join('\n');
}

/**
 * A notifier that bundles its own copy of the SDK: base classes that are not
 * this repository's, recognised only by the `Symbol.for` brand.
 */
export function bundledNotifierModule(spec: NotifierSource): string {
  const key = spec.key ?? spec.slug;
  const implement = spec.implement ?? 'notifyUsers';
  const method =
    implement === 'notify'
      ? `  async notify(notification) { this.sent.push(notification); }`
      : implement === 'notifyUsers'
        ? `  async notifyUsers(group, event, rules, ctx, notification) { this.sent.push(notification); }`
        : '';
  return [
    countImport(key),
    `const BRAND = Symbol.for('plugboard.plugin');`,
    `// A stripped-down copy of the SDK, as a bundler would inline it.`,
    `class Plugin { static [BRAND] = { kind: 'notifier', sdkVersion: '0.1.0' }; }`,
    `class NotificationPlugin extends Plugin {`,
    `  static [BRAND] = { kind: 'notifier', sdkVersion: '0.1.0' };`,
    `  async notify(n, ctx) { return this.notifyUsers(n.group, n.event, [], ctx, n); }`,
    `  async notifyUsers() { throw new Error('implement notify() or notifyUsers()'); }`,
    `}`,
    `class BundledNotifier extends NotificationPlugin {`,
    `  slug = ${JSON.stringify(spec.slug)}; title = 'Bundled'; version = '3.0.0'; sent = [];`,
    `  constructor() { super(); ${countConstruct(key)} }`,
    method,
    `}`,
    `exports.${spec.exportName ?? 'BundledNotifier'} = BundledNotifier;`,
    '',
  ].join('\n');
}

/** A module whose body throws a new message each time it runs (`boom #1`, `boom #2`...). */
export function throwingModule(key: string): string {
  return [
    countImport(key),
    `const cause = new Error('disk on fire');`,
    `throw new Error('boom #' + probe.imports[${JSON.stringify(key)}], { cause });`,
    '',
  ].join('\n');
}

export interface FixturePackage {
  version?: string;
  plugboard?: unknown;
  peerDependencies?: Record<string, string>;
  exports?: unknown;
  main?: string;
  /** Relative path → file contents. */
  files?: Record<string, string>;
}

export interface AppManifest {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const created: string[] = [];

/** An app directory with a package.json and fake installed packages. */
export class FixtureApp {
  readonly root: string;

  constructor(manifest: AppManifest | null = {}) {
    this.root = mkdtempSync(join(tmpdir(), 'plugboard-registry-'));
    created.push(this.root);
    if (manifest !== null) {
      this.write(
        'package.json',
        JSON.stringify({ name: 'fixture-app', private: true, ...manifest }),
      );
    }
  }

  write(relativePath: string, contents: string): void {
    const file = join(this.root, relativePath);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, contents);
  }

  /** Installs `<root>/node_modules/<name>` (not declared: the app manifest decides that). */
  install(name: string, pkg: FixturePackage): this {
    const dir = join('node_modules', name);
    const { files = {}, version = '1.0.0', ...fields } = pkg;
    this.write(join(dir, 'package.json'), JSON.stringify({ name, version, ...fields }, null, 2));
    for (const [path, contents] of Object.entries(files)) this.write(join(dir, path), contents);
    return this;
  }
}

/** Removes every fixture app made so far. */
export function removeFixtureApps(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}
