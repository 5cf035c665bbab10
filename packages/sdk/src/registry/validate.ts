import { satisfies } from 'semver';
import { PluginError, type PluginErrorCode, type PluginErrorDetails } from '../errors';
import { NotificationPlugin, PLUGIN_BRAND, readBrand, type PluginKind } from '../plugin';
import type { EntryPointGroup } from './types';

/** What the registry knows about one entry point before loading it. */
export interface LoadTarget {
  group: EntryPointGroup;
  /** Entry-point name; the plugin's slug must equal it. Unset: take the slug (register). */
  name?: string;
  packageName: string;
  packageVersion: string;
  entry: string;
  /** Returns the module (or, when `exportName` is unset, the export itself). */
  load: () => unknown;
  exportName?: string;
  /** Checked against the host SDK version; unset for code compiled into the host. */
  sdkRange?: string;
}

const KIND_OF_GROUP: Record<EntryPointGroup, PluginKind> = {
  'plugboard.notifiers': 'notifier',
  'plugboard.sso': 'sso',
};

/** What the router and the relay call on every SSO provider. */
const SSO_PROVIDER_METHODS = [
  'configFields',
  'validateConfig',
  'configure',
  'callbackMethod',
  'getAuthPipeline',
  'buildIdentity',
] as const;

function hasOwn(value: object, key: PropertyKey): boolean {
  return Object.prototype.hasOwnProperty.call(value, key);
}

function detailsOf(target: LoadTarget): PluginErrorDetails {
  return {
    packageName: target.packageName,
    packageVersion: target.packageVersion,
    group: target.group,
    entry: target.entry,
    ...(target.name === undefined ? {} : { slug: target.name }),
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `pkg@1.0.0 plugboard.notifiers/webhook`: how every message names the plugin. */
export function describeTarget(target: {
  packageName: string;
  packageVersion: string;
  group: string;
  name?: string;
}): string {
  const version = target.packageVersion === '' ? '' : `@${target.packageVersion}`;
  return `${target.packageName}${version} ${target.group}/${target.name ?? '(unnamed)'}`;
}

function fail(
  code: PluginErrorCode,
  target: LoadTarget,
  what: string,
  cause?: unknown,
): PluginError {
  return new PluginError(
    code,
    `${describeTarget(target)}: ${what}`,
    detailsOf(target),
    cause === undefined ? undefined : { cause },
  );
}

function pickExport(mod: unknown, exportName: string): unknown {
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) return undefined;
  const record = mod as Record<string, unknown>;
  if (exportName in record) return record[exportName];
  // `module.exports = WebhookNotifier` has no `default`: a plain CommonJS
  // module IS its default export, as Node's ESM interop treats it. Not so for
  // transpiled ESM (`__esModule`) or a real ES module namespace (require(esm)).
  const isEsm = '__esModule' in record || Object.prototype.toString.call(mod) === '[object Module]';
  return exportName === 'default' && !isEsm ? mod : undefined;
}

function exportNames(mod: unknown): string {
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) return 'none';
  let keys: string[];
  try {
    keys = Object.keys(mod).filter((k) => k !== '__esModule');
  } catch {
    return 'unknown';
  }
  if (keys.length === 0) return 'none';
  return keys.length > 10 ? `${keys.slice(0, 10).join(', ')}, ...` : keys.join(', ');
}

/**
 * The prototype holding the SDK's default `notify`/`notifyUsers` pair, in
 * this SDK copy or another one a plugin bundles. A copy is recognised by its
 * shape, not identity: `NotificationPlugin` brands itself (an own static
 * brand) and extends `Plugin`, which brands itself too. A hand-written plugin
 * that carries the brand without extending the SDK has no such prototype.
 */
function sdkNotifierBase(instance: object): Record<string, unknown> | undefined {
  for (
    let proto: unknown = Object.getPrototypeOf(instance);
    typeof proto === 'object' && proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    if (proto === NotificationPlugin.prototype) return proto as Record<string, unknown>;
    const ctor: unknown = hasOwn(proto, 'constructor')
      ? (proto as { constructor: unknown }).constructor
      : undefined;
    if (typeof ctor !== 'function') continue;
    const parent: unknown = Object.getPrototypeOf(ctor);
    if (
      hasOwn(proto, 'notify') &&
      hasOwn(proto, 'notifyUsers') &&
      hasOwn(ctor, PLUGIN_BRAND) &&
      typeof parent === 'function' &&
      hasOwn(parent, PLUGIN_BRAND)
    ) {
      return proto as Record<string, unknown>;
    }
  }
  return undefined;
}

/**
 * `notify` must be callable and not be the SDK default left alone with the
 * default `notifyUsers` (which only throws "implement notify() or
 * notifyUsers()"): that plugin would fail every delivery.
 */
function implementsNotifier(instance: object): boolean {
  const self = instance as { notify?: unknown; notifyUsers?: unknown };
  if (typeof self.notify !== 'function') return false;
  const base = sdkNotifierBase(instance);
  if (base === undefined) return true;
  return (
    self.notify !== base.notify ||
    (typeof self.notifyUsers === 'function' && self.notifyUsers !== base.notifyUsers)
  );
}

/** Checks an export the same way for discovered, builtin and registered plugins. */
export function validateExport(
  exported: unknown,
  target: LoadTarget,
  hostSdkVersion: string,
): object {
  const brand = readBrand(exported);
  if (brand === undefined) {
    throw fail(
      'PB_PLUGIN_BRAND_INVALID',
      target,
      `export is not a Plugboard plugin: it must extend NotificationPlugin or SsoProvider (or carry the ` +
        `Symbol.for('plugboard.plugin') brand), got ${typeof exported}`,
    );
  }
  if (
    target.sdkRange !== undefined &&
    !satisfies(hostSdkVersion, target.sdkRange, { includePrerelease: true })
  ) {
    throw fail(
      'PB_PLUGIN_SDK_INCOMPATIBLE',
      target,
      `requires @plugboard/sdk ${target.sdkRange}, but the host runs @plugboard/sdk ${hostSdkVersion}`,
    );
  }

  let instance: unknown = exported;
  if (typeof exported === 'function') {
    try {
      instance = new (exported as new () => unknown)();
    } catch (err) {
      throw fail(
        'PB_PLUGIN_CONTRACT_INVALID',
        target,
        `constructing the plugin class with no arguments threw: ${errorText(err)}`,
        err,
      );
    }
  }
  if (typeof instance !== 'object' || instance === null) {
    throw fail('PB_PLUGIN_CONTRACT_INVALID', target, `the plugin is not an object`);
  }

  const problems: string[] = [];
  try {
    const expectedKind = KIND_OF_GROUP[target.group];
    if (brand.kind !== expectedKind) {
      problems.push(`it is a ${brand.kind} plugin, ${target.group} needs a ${expectedKind}`);
    }
    const meta = instance as Record<string, unknown>;
    for (const key of ['slug', 'title', 'version'] as const) {
      if (typeof meta[key] !== 'string' || meta[key] === '') {
        problems.push(`${key} must be a non-empty string`);
      }
    }
    if (typeof meta.slug === 'string' && target.name !== undefined && meta.slug !== target.name) {
      problems.push(
        `slug ${JSON.stringify(meta.slug)} does not match the entry-point name ${JSON.stringify(target.name)}`,
      );
    }
    if (expectedKind === 'notifier' && !implementsNotifier(instance)) {
      problems.push('it must implement notify() or override notifyUsers()');
    }
    if (expectedKind === 'sso' && brand.kind === 'sso') {
      // The pipeline contract of @plugboard/sso's SsoProvider: checked by
      // shape, since a provider may bundle its own copy of that package.
      for (const method of SSO_PROVIDER_METHODS) {
        if (typeof meta[method] !== 'function') problems.push(`it must implement ${method}()`);
      }
    }
  } catch (err) {
    // A throwing getter (or a Proxy) is a broken contract too, not a crash.
    throw fail(
      'PB_PLUGIN_CONTRACT_INVALID',
      target,
      `reading the plugin threw: ${errorText(err)}`,
      err,
    );
  }
  if (problems.length > 0) {
    throw fail('PB_PLUGIN_CONTRACT_INVALID', target, problems.join('; '));
  }
  return instance;
}

/**
 * Imports one entry point and validates it, in this order: import, export,
 * brand, SDK range, contract. Throws only PluginErrors built here (the
 * plugin's own errors become their `cause`).
 */
export function loadTarget(target: LoadTarget, hostSdkVersion: string): object {
  let mod: unknown;
  try {
    mod = target.load();
  } catch (err) {
    throw fail(
      'PB_PLUGIN_IMPORT_FAILED',
      target,
      `importing ${target.entry || 'the plugin'} failed: ${errorText(err)}`,
      err,
    );
  }
  let exported = mod;
  if (target.exportName !== undefined) {
    try {
      exported = pickExport(mod, target.exportName);
    } catch {
      // A module namespace proxy that throws on access has no usable export.
      exported = undefined;
    }
    if (exported === undefined) {
      throw fail(
        'PB_PLUGIN_EXPORT_MISSING',
        target,
        `the module has no export ${JSON.stringify(target.exportName)} (exports: ${exportNames(mod)})`,
      );
    }
  } else if (exported === undefined || exported === null) {
    throw fail('PB_PLUGIN_EXPORT_MISSING', target, 'load() returned nothing');
  }
  return validateExport(exported, target, hostSdkVersion);
}
