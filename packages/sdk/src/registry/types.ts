import type { SerializedError } from '../errors';

// The registry's data types live apart from the class so the helper modules
// (manifest parsing, package resolution, validation) can share them without
// importing registry.ts, which imports them.

/** The `package.json` field a plugin package declares its entry points in. */
export const MANIFEST_FIELD = 'plugboard';

/** Entry-point groups, like Sentry's `sentry.plugins` / `sentry.apps`. */
export const ENTRY_POINT_GROUPS = ['plugboard.notifiers', 'plugboard.sso'] as const;
export type EntryPointGroup = (typeof ENTRY_POINT_GROUPS)[number];

/**
 * `package.json`:
 * ```json
 * "plugboard": {
 *   "sdk": "^0.1.0",
 *   "entryPoints": { "plugboard.notifiers": { "webhook": "./dist/index.js:WebhookNotifier" } }
 * }
 * ```
 */
export interface PluginManifest {
  /** SDK versions the package supports; defaults to its peerDependencies['@plugboard/sdk']. */
  sdk?: string;
  entryPoints: Partial<Record<EntryPointGroup, Record<string, string>>>;
}

/** A plugin compiled into the host, listed like a discovered one. */
export interface BuiltinPlugin {
  group: EntryPointGroup;
  name: string;
  packageName: string;
  packageVersion: string;
  load: () => unknown;
}

export interface RegistryOptions {
  /** Directory whose package.json lists the app's dependencies. */
  appRoot: string;
  /** Extra package names to look at besides the declared dependencies. */
  packages?: readonly string[];
  /** Only these entry-point names (slugs), when set. */
  include?: readonly string[];
  /** Never these entry-point names (slugs). */
  exclude?: readonly string[];
  /** Throw on the first plugin that fails to load instead of reporting it. */
  strict?: boolean;
  builtins?: readonly BuiltinPlugin[];
  /** Host SDK version to check ranges against; defaults to SDK_VERSION. */
  sdkVersion?: string;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export type PluginStatus = 'discovered' | 'loaded' | 'failed' | 'excluded';

export interface DiscoveredPlugin {
  group: EntryPointGroup;
  /** Entry-point name; must equal the plugin's slug. */
  name: string;
  packageName: string;
  packageVersion: string;
  /** `./dist/index.js:Export` as declared. */
  entry: string;
  status: PluginStatus;
  /** The first error, with its cause chain, when status is `failed`. */
  error?: SerializedError & { chain: string };
  /**
   * `'package'` when the record stands for a whole package that produced no
   * usable entry point (not installed, unreadable or malformed manifest). Such
   * a record is always `failed`; its `name` is the package name, `entry` is
   * empty and `group` is the group the problem was found in (the notifiers
   * group when it is not about one group). It never answers a slug lookup.
   */
  scope?: 'package';
}

/** Where a plugin handed to {@link PluginRegistry.register} comes from. */
export interface RegisterMeta {
  /** Defaults to `plugboard.notifiers`. */
  group?: EntryPointGroup;
  /** Entry-point name; defaults to the plugin's slug (and must equal it). */
  name?: string;
  /** Defaults to `(registered)`. */
  packageName?: string;
  /** Defaults to the plugin's `version`. */
  packageVersion?: string;
}
