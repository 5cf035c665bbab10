import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describeErrorChain, PluginError, serializeError, type PluginErrorCode } from '../errors';
import type { NotificationPlugin } from '../plugin';
import { SDK_VERSION } from '../version';
import { compareNames, parseManifest } from './manifest';
import { isValidPackageName, resolvePackageJson } from './resolve';
import {
  ENTRY_POINT_GROUPS,
  MANIFEST_FIELD,
  type BuiltinPlugin,
  type DiscoveredPlugin,
  type EntryPointGroup,
  type RegisterMeta,
  type RegistryOptions,
} from './types';
import { describeTarget, loadTarget, validateExport, type LoadTarget } from './validate';

export { MANIFEST_FIELD, ENTRY_POINT_GROUPS } from './types';
export type {
  PluginManifest,
  EntryPointGroup,
  BuiltinPlugin,
  RegistryOptions,
  PluginStatus,
  DiscoveredPlugin,
  RegisterMeta,
} from './types';

/** `entry` of plugins that come from code rather than a package.json. */
export const BUILTIN_ENTRY = '(builtin)';
export const REGISTERED_ENTRY = '(registered)';

/** One row of the registry: what `list()` shows, plus how to load it. */
interface Slot {
  record: DiscoveredPlugin;
  /** How to load it; unset when it can never load (excluded, failed on discovery). */
  target?: LoadTarget;
  instance?: object;
  /** The FIRST error; kept as thrown so `getNotifier` can rethrow it. */
  error?: PluginError;
}

/** Why a package is looked at: a missing declared dependency is not worth an error. */
type PackageSource = 'dependency' | 'optional' | 'extra';

type RecordBase = Omit<DiscoveredPlugin, 'status' | 'error' | 'scope'>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Finds plugins the way Sentry's `iter_entry_points('sentry.plugins')` does:
 * from the `plugboard.entryPoints` field of the packages the app depends on,
 * without importing anything until a plugin is asked for.
 *
 * Failures are data by default (a broken plugin must not take the relay
 * down with it); `strict` turns the first one into a thrown error.
 */
export class PluginRegistry {
  private readonly options: RegistryOptions;
  private readonly appRoot: string;
  private readonly hostSdkVersion: string;
  private readonly include: ReadonlySet<string> | undefined;
  private readonly exclude: ReadonlySet<string>;
  private slots: Slot[] | undefined;
  /** `group\0name` → the record that declared it first. */
  private readonly claimed = new Map<string, DiscoveredPlugin>();

  constructor(options: RegistryOptions) {
    this.options = options;
    this.appRoot = resolve(options.appRoot);
    this.hostSdkVersion = options.sdkVersion ?? SDK_VERSION;
    this.include = options.include ? new Set(options.include) : undefined;
    this.exclude = new Set(options.exclude ?? []);
  }

  /**
   * Lists every entry point of the builtins and the app's plugin packages,
   * importing nothing. Scans once; later calls return the current statuses.
   */
  discover(): DiscoveredPlugin[] {
    this.ensureDiscovered();
    return this.list();
  }

  /** Current statuses. Discovers first if needed, never loads. */
  list(): DiscoveredPlugin[] {
    return this.ensureDiscovered().map((slot) => structuredClone(slot.record));
  }

  /**
   * Loads every entry point that is not excluded and returns the statuses.
   * A plugin that failed before is not retried: its first error stays.
   */
  async loadAll(): Promise<DiscoveredPlugin[]> {
    for (const slot of this.ensureDiscovered()) {
      if (slot.record.status === 'excluded') continue;
      if (slot.error !== undefined) {
        if (this.options.strict) throw slot.error;
        continue;
      }
      try {
        this.load(slot);
      } catch (err) {
        if (this.options.strict) throw err;
      }
    }
    return this.list();
  }

  /** The notifier whose slug is `slug`, loading only its package. */
  async getNotifier(slug: string): Promise<NotificationPlugin> {
    // validateExport checked the notifier contract; the class itself may come
    // from another SDK copy, hence the structural cast.
    return (await this.getPlugin('plugboard.notifiers', slug)) as NotificationPlugin;
  }

  /** Any plugin by group and slug (SSO providers have no typed getter yet). */
  async getPlugin(group: EntryPointGroup, slug: string): Promise<object> {
    const slots = this.ensureDiscovered();
    const slot = slots.find(
      (s) => s.record.scope === undefined && s.record.group === group && s.record.name === slug,
    );
    if (slot === undefined) throw this.unknownSlug(group, slug);
    if (slot.record.status === 'excluded') {
      throw new PluginError(
        'PB_PLUGIN_NOT_FOUND',
        `${describeTarget(slot.record)}: plugin "${slug}" is installed but excluded by the include/exclude settings`,
        this.details(slot.record),
      );
    }
    return this.load(slot);
  }

  /**
   * Adds a plugin from code (a class or an instance), checked like a
   * discovered one: brand, contract and slug uniqueness. Throws instead of
   * recording a failure: a bad registration is a bug in the host.
   */
  register(plugin: unknown, meta: RegisterMeta = {}): DiscoveredPlugin {
    const slots = this.ensureDiscovered();
    const group = meta.group ?? 'plugboard.notifiers';
    const packageName = meta.packageName ?? REGISTERED_ENTRY;
    const target: LoadTarget = {
      group,
      packageName,
      packageVersion: meta.packageVersion ?? '',
      entry: REGISTERED_ENTRY,
      load: () => plugin,
      ...(meta.name === undefined ? {} : { name: meta.name }),
    };
    if (!ENTRY_POINT_GROUPS.includes(group)) {
      throw new PluginError(
        'PB_PLUGIN_MANIFEST_INVALID',
        `${describeTarget(target)}: unknown entry-point group ${JSON.stringify(group)}`,
        this.details(target),
      );
    }
    const instance = validateExport(plugin, target, this.hostSdkVersion);
    const { slug, version } = instance as { slug: string; version: string };
    const record: DiscoveredPlugin = {
      group,
      name: meta.name ?? slug,
      packageName,
      packageVersion: meta.packageVersion ?? version,
      entry: REGISTERED_ENTRY,
      status: 'loaded',
    };
    if (this.isExcluded(record.name)) {
      record.status = 'excluded';
      slots.push({ record });
      this.options.logger?.info(this.details(record), `Excluded: ${describeTarget(record)}`);
      return structuredClone(record);
    }
    const duplicate = this.duplicateOf(record);
    if (duplicate !== undefined) throw duplicate;
    this.claimed.set(`${record.group}\0${record.name}`, record);
    slots.push({ record, instance });
    this.options.logger?.info(this.details(record), `Registered: ${describeTarget(record)}`);
    return structuredClone(record);
  }

  // ---------------------------------------------------------------- discovery

  private ensureDiscovered(): Slot[] {
    if (this.slots === undefined) {
      // Read the app first: if that throws, nothing is half-discovered.
      const packages = this.packageNames();
      this.slots = [];
      for (const builtin of this.options.builtins ?? []) this.addBuiltin(builtin);
      for (const [name, source] of packages) this.scanPackage(name, source);
    }
    return this.slots;
  }

  /** Declared dependencies, optional dependencies and extra packages, sorted. */
  private packageNames(): Array<[string, PackageSource]> {
    const app = this.readAppPackage();
    const sources = new Map<string, PackageSource>();
    // Later sets win: an extra package must exist even when it is also declared.
    const optional = app.optionalDependencies;
    for (const name of isPlainObject(optional) ? Object.keys(optional) : []) {
      sources.set(name, 'optional');
    }
    const deps = app.dependencies;
    for (const name of isPlainObject(deps) ? Object.keys(deps) : [])
      sources.set(name, 'dependency');
    for (const name of this.options.packages ?? []) sources.set(name, 'extra');
    return [...sources].sort(([a], [b]) => compareNames(a, b));
  }

  private readAppPackage(): Record<string, unknown> {
    const file = join(this.appRoot, 'package.json');
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      // An app run from a directory without package.json still has its
      // builtins and extra packages; say so rather than fail.
      if ((err as { code?: unknown }).code === 'ENOENT') {
        this.options.logger?.warn(
          { appRoot: this.appRoot },
          'No package.json in the app root: only builtins and extra packages are discovered',
        );
        return {};
      }
      throw new PluginError(
        'PB_PLUGIN_MANIFEST_INVALID',
        `cannot read the app's package.json (${file}): ${errorText(err)}`,
        {},
        { cause: err },
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new PluginError(
        'PB_PLUGIN_MANIFEST_INVALID',
        `the app's package.json (${file}) is not valid JSON: ${errorText(err)}`,
        {},
        { cause: err },
      );
    }
    if (!isPlainObject(parsed)) {
      throw new PluginError(
        'PB_PLUGIN_MANIFEST_INVALID',
        `the app's package.json (${file}) is not a JSON object`,
      );
    }
    return parsed;
  }

  private addBuiltin(builtin: BuiltinPlugin): void {
    const base: RecordBase = {
      group: builtin.group,
      name: builtin.name,
      packageName: builtin.packageName,
      packageVersion: builtin.packageVersion,
      entry: BUILTIN_ENTRY,
    };
    if (!ENTRY_POINT_GROUPS.includes(builtin.group)) {
      this.addEntry(
        { ...base, group: 'plugboard.notifiers' },
        undefined,
        new PluginError(
          'PB_PLUGIN_MANIFEST_INVALID',
          `${describeTarget(base)}: unknown entry-point group ${JSON.stringify(builtin.group)}`,
          this.details(base),
        ),
      );
      return;
    }
    // Compiled into the host: same SDK, so no range to check.
    this.addEntry(base, { ...base, load: builtin.load });
  }

  private scanPackage(name: string, source: PackageSource): void {
    if (!isValidPackageName(name)) {
      if (source === 'extra') {
        this.addPackageFailure(
          { packageName: name, packageVersion: '' },
          'PB_PLUGIN_NOT_FOUND',
          `${JSON.stringify(name)} is not a valid package name`,
        );
      }
      return;
    }
    const pkgJsonPath = resolvePackageJson(name, this.appRoot);
    if (pkgJsonPath === undefined) {
      if (source === 'extra') {
        this.addPackageFailure(
          { packageName: name, packageVersion: '' },
          'PB_PLUGIN_NOT_FOUND',
          `plugin package ${name} is not installed: it cannot be resolved from ${this.appRoot}`,
        );
      } else if (source === 'dependency') {
        // Most dependencies are not plugins; one that is missing breaks the
        // app anyway, so a warning is enough here.
        this.options.logger?.warn(
          { packageName: name },
          `Dependency ${name} is not installed; skipped`,
        );
      }
      return;
    }

    let pkg: unknown;
    try {
      pkg = JSON.parse(readFileSync(pkgJsonPath, 'utf8'));
    } catch (err) {
      this.addPackageFailure(
        { packageName: name, packageVersion: '' },
        'PB_PLUGIN_MANIFEST_INVALID',
        `cannot read ${name}/package.json: ${errorText(err)}`,
        err,
      );
      return;
    }
    if (!isPlainObject(pkg)) {
      this.addPackageFailure(
        { packageName: name, packageVersion: '' },
        'PB_PLUGIN_MANIFEST_INVALID',
        `${name}/package.json is not a JSON object`,
      );
      return;
    }
    const packageVersion = typeof pkg.version === 'string' ? pkg.version : '0.0.0';
    const field = pkg[MANIFEST_FIELD];
    if (field === undefined) {
      if (source === 'extra') {
        this.addPackageFailure(
          { packageName: name, packageVersion },
          'PB_PLUGIN_MANIFEST_INVALID',
          `${name}@${packageVersion} is listed as a plugin package but its package.json has no "${MANIFEST_FIELD}" field`,
        );
      }
      return;
    }

    const manifest = parseManifest(pkg, dirname(pkgJsonPath), field);
    for (const { group, problem } of manifest.problems) {
      this.addPackageFailure(
        { packageName: name, packageVersion, ...(group === undefined ? {} : { group }) },
        'PB_PLUGIN_MANIFEST_INVALID',
        `${name}@${packageVersion} has an invalid "${MANIFEST_FIELD}" field: ${problem}`,
      );
    }
    for (const entry of manifest.entries) {
      const base: RecordBase = {
        group: entry.group,
        name: entry.name,
        packageName: name,
        packageVersion,
        entry: entry.entry,
      };
      const problem = entry.problem ?? manifest.rangeProblem;
      const { file, exportName } = entry;
      if (problem !== undefined || file === undefined || exportName === undefined) {
        this.addEntry(
          base,
          undefined,
          new PluginError(
            'PB_PLUGIN_MANIFEST_INVALID',
            `${describeTarget(base)}: invalid "${MANIFEST_FIELD}" field: ${problem ?? 'unusable entry'}`,
            this.details(base),
          ),
        );
        continue;
      }
      this.addEntry(base, {
        ...base,
        // The real require: the relay runs as CommonJS, and Node >= 20.19
        // requires ES modules too. Only this one file is imported, on demand.
        load: () => require(file) as unknown,
        exportName,
        ...(manifest.sdkRange === undefined ? {} : { sdkRange: manifest.sdkRange }),
      });
    }
  }

  /**
   * Adds one entry point: excluded by name, else failed as a duplicate or
   * with its manifest problem, else discovered.
   */
  private addEntry(base: RecordBase, target: LoadTarget | undefined, problem?: PluginError): void {
    const first = this.claimed.get(`${base.group}\0${base.name}`);
    if (first !== undefined && first.packageName === base.packageName) {
      // The same package twice is no conflict: a host that bundles a plugin
      // as a builtin (the relay and its webhook notifier) while the app also
      // declares it. The builtin, listed first, is the one used.
      this.options.logger?.info(
        this.details(base),
        `Detected: ${describeTarget(base)} (already provided by ${describeTarget(first)})`,
      );
      return;
    }
    const slot: Slot = { record: { ...base, status: 'discovered' } };
    if (target !== undefined) slot.target = target;
    this.requireSlots().push(slot);
    this.options.logger?.info(this.details(base), `Detected: ${describeTarget(base)}`);
    if (this.isExcluded(base.name)) {
      // Exclusion wins over every problem: it is how an operator switches a
      // broken plugin off.
      slot.record.status = 'excluded';
      this.options.logger?.info(this.details(base), `Excluded: ${describeTarget(base)}`);
      return;
    }
    const duplicate = this.duplicateOf(base);
    if (duplicate !== undefined) {
      this.fail(slot, duplicate);
      return;
    }
    this.claimed.set(`${base.group}\0${base.name}`, slot.record);
    if (problem !== undefined) this.fail(slot, problem);
  }

  private addPackageFailure(
    where: { packageName: string; packageVersion: string; group?: EntryPointGroup },
    code: PluginErrorCode,
    message: string,
    cause?: unknown,
  ): void {
    const record: DiscoveredPlugin = {
      group: where.group ?? 'plugboard.notifiers',
      name: where.packageName,
      packageName: where.packageName,
      packageVersion: where.packageVersion,
      entry: '',
      status: 'failed',
      scope: 'package',
    };
    const slot: Slot = { record };
    this.requireSlots().push(slot);
    const details = {
      packageName: where.packageName,
      ...(where.packageVersion === '' ? {} : { packageVersion: where.packageVersion }),
      ...(where.group === undefined ? {} : { group: where.group }),
    };
    this.fail(
      slot,
      new PluginError(code, message, details, cause === undefined ? undefined : { cause }),
    );
  }

  private duplicateOf(base: RecordBase): PluginError | undefined {
    const first = this.claimed.get(`${base.group}\0${base.name}`);
    if (first === undefined) return undefined;
    return new PluginError(
      'PB_PLUGIN_DUPLICATE_SLUG',
      `${describeTarget(base)}: ${base.group}/${base.name} is declared by both ` +
        `${first.packageName}@${first.packageVersion} and ${base.packageName}@${base.packageVersion}; ` +
        `the first one (${first.packageName}) is kept`,
      this.details(base),
    );
  }

  private isExcluded(name: string): boolean {
    return this.exclude.has(name) || (this.include !== undefined && !this.include.has(name));
  }

  // ------------------------------------------------------------------ loading

  /** Loads a slot once; later calls return the same instance or the first error. */
  private load(slot: Slot): object {
    if (slot.instance !== undefined) return slot.instance;
    if (slot.error !== undefined) throw slot.error;
    const target = slot.target;
    if (target === undefined) {
      // Only excluded records have neither a target nor an error.
      throw new PluginError(
        'PB_PLUGIN_NOT_FOUND',
        `${describeTarget(slot.record)}: excluded, not loaded`,
        this.details(slot.record),
      );
    }
    try {
      const instance = loadTarget(target, this.hostSdkVersion);
      slot.instance = instance;
      slot.record.status = 'loaded';
      this.options.logger?.info(
        this.details(slot.record),
        `Loaded: ${describeTarget(slot.record)}`,
      );
      return instance;
    } catch (err) {
      // loadTarget throws only PluginErrors it built with this module's class,
      // so instanceof is exact here; anything else is a bug, wrapped anyway.
      throw this.fail(
        slot,
        err instanceof PluginError
          ? err
          : new PluginError(
              'PB_PLUGIN_IMPORT_FAILED',
              `${describeTarget(slot.record)}: ${errorText(err)}`,
              this.details(slot.record),
              { cause: err },
            ),
      );
    }
  }

  /** Records `err` unless an earlier error is recorded; returns the recorded one. */
  private fail(slot: Slot, err: PluginError): PluginError {
    if (slot.error !== undefined) return slot.error;
    slot.error = err;
    slot.record.status = 'failed';
    slot.record.error = { ...serializeError(err), chain: describeErrorChain(err) };
    this.options.logger?.warn(
      { ...err.details, code: err.code, err: slot.record.error },
      `Plugin failed: ${err.message}`,
    );
    return err;
  }

  private unknownSlug(group: EntryPointGroup, slug: string): PluginError {
    const slots = this.requireSlots();
    const known = [
      ...new Set(
        slots
          .filter(
            (s) =>
              s.record.scope === undefined &&
              s.record.group === group &&
              s.record.status !== 'excluded',
          )
          .map((s) => s.record.name),
      ),
    ];
    const brokenPackages = slots
      .filter((s) => s.record.scope === 'package')
      .map((s) => `${s.record.packageName} (${s.error?.code ?? 'failed'})`);
    return new PluginError(
      'PB_PLUGIN_NOT_FOUND',
      `no ${group} plugin "${slug}"; known: ${known.length > 0 ? known.join(', ') : 'none'}` +
        (brokenPackages.length > 0
          ? `; packages that could not be read: ${brokenPackages.join(', ')}`
          : ''),
      { group, slug },
    );
  }

  private requireSlots(): Slot[] {
    if (this.slots === undefined) this.slots = [];
    return this.slots;
  }

  private details(base: {
    packageName: string;
    packageVersion: string;
    group: string;
    entry: string;
    name?: string;
  }) {
    return {
      packageName: base.packageName,
      packageVersion: base.packageVersion,
      group: base.group,
      entry: base.entry,
      ...(base.name === undefined ? {} : { slug: base.name }),
    };
  }
}
