import { isAbsolute, posix, relative, resolve, sep, win32 } from 'node:path';
import { validRange } from 'semver';
import { ENTRY_POINT_GROUPS, MANIFEST_FIELD, type EntryPointGroup } from './types';

/** One declared entry point, checked without importing anything. */
export interface ManifestEntry {
  group: EntryPointGroup;
  name: string;
  /** As declared, e.g. `./dist/index.js:WebhookNotifier`. */
  entry: string;
  /** Absolute path to `require()`; set when `problem` is not. */
  file?: string;
  /** Set when `problem` is not. */
  exportName?: string;
  /** What is wrong with this entry; the entry fails without being imported. */
  problem?: string;
}

/** A problem no single entry can carry (the field or a group is not an object...). */
export interface ManifestProblem {
  group?: EntryPointGroup;
  problem: string;
}

export interface ParsedManifest {
  /** The SDK range every entry of the package is checked against on load. */
  sdkRange?: string;
  /** Set when the package has no usable SDK range: every entry fails. */
  rangeProblem?: string;
  entries: ManifestEntry[];
  problems: ManifestProblem[];
}

const SDK_PACKAGE = '@plugboard/sdk';
// The export is read as a property; keeping it an identifier makes typos like
// `index.js:Foo.Bar` or `index.js: Foo` a manifest error instead of a confusing
// "export missing" at load time.
const EXPORT_NAME = /^[A-Za-z_$][\w$]*$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string ${JSON.stringify(value)}` : `a ${typeof value}`;
}

function isGroup(key: string): key is EntryPointGroup {
  return (ENTRY_POINT_GROUPS as readonly string[]).includes(key);
}

/** Code-unit order: the same on every machine, whatever the locale. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parseRange(pkg: Record<string, unknown>, field: Record<string, unknown>) {
  let range: unknown;
  let where: string;
  if (field.sdk !== undefined) {
    range = field.sdk;
    where = `${MANIFEST_FIELD}.sdk`;
  } else {
    const peers = pkg.peerDependencies;
    range = isPlainObject(peers) ? peers[SDK_PACKAGE] : undefined;
    where = `peerDependencies["${SDK_PACKAGE}"]`;
    if (range === undefined) {
      return {
        rangeProblem: `declares no SDK range: set "${MANIFEST_FIELD}.sdk" or peerDependencies["${SDK_PACKAGE}"]`,
      };
    }
  }
  // validRange('') is '*': an empty string is almost certainly a mistake.
  if (typeof range !== 'string' || range.trim() === '' || validRange(range) === null) {
    return { rangeProblem: `${where} must be a semver range, got ${describe(range)}` };
  }
  return { sdkRange: range };
}

/** Splits `<relative module path>[:<export name>]` and keeps it inside the package. */
export function parseEntry(
  entry: string,
  pkgDir: string,
): { file: string; exportName: string } | { problem: string } {
  const colon = entry.lastIndexOf(':');
  const modulePath = colon === -1 ? entry : entry.slice(0, colon);
  const exportName = colon === -1 ? 'default' : entry.slice(colon + 1);
  if (modulePath.trim() === '') return { problem: 'has no module path' };
  if (posix.isAbsolute(modulePath) || win32.isAbsolute(modulePath)) {
    return { problem: `module path ${JSON.stringify(modulePath)} must be relative to the package` };
  }
  const file = resolve(pkgDir, modulePath);
  const rel = relative(pkgDir, file);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    return { problem: `module path ${JSON.stringify(modulePath)} points outside the package` };
  }
  if (!EXPORT_NAME.test(exportName)) {
    return { problem: `export name ${JSON.stringify(exportName)} is not an identifier` };
  }
  return { file, exportName };
}

/**
 * Checks a package's `plugboard` field and lists its entry points, sorted by
 * group (in ENTRY_POINT_GROUPS order) then name. Problems are collected, not
 * thrown, so one bad entry does not hide the package's good ones.
 */
export function parseManifest(
  pkg: Record<string, unknown>,
  pkgDir: string,
  field: unknown,
): ParsedManifest {
  if (!isPlainObject(field)) {
    return {
      entries: [],
      problems: [{ problem: `"${MANIFEST_FIELD}" must be an object, got ${describe(field)}` }],
    };
  }
  const out: ParsedManifest = { ...parseRange(pkg, field), entries: [], problems: [] };
  const entryPoints = field.entryPoints;
  if (!isPlainObject(entryPoints)) {
    out.problems.push({
      problem:
        entryPoints === undefined
          ? `"${MANIFEST_FIELD}.entryPoints" is missing`
          : `"${MANIFEST_FIELD}.entryPoints" must be an object, got ${describe(entryPoints)}`,
    });
    return out;
  }
  for (const key of Object.keys(entryPoints).sort(compareNames)) {
    if (!isGroup(key)) {
      out.problems.push({
        problem: `unknown entry-point group ${JSON.stringify(key)} (known: ${ENTRY_POINT_GROUPS.join(', ')})`,
      });
    }
  }
  for (const group of ENTRY_POINT_GROUPS) {
    const declared = entryPoints[group];
    if (declared === undefined) continue;
    if (!isPlainObject(declared)) {
      out.problems.push({
        group,
        problem: `"${MANIFEST_FIELD}.entryPoints.${group}" must be an object of name → entry, got ${describe(declared)}`,
      });
      continue;
    }
    for (const name of Object.keys(declared).sort(compareNames)) {
      const entry = declared[name];
      if (!/^\S+$/.test(name)) {
        out.entries.push({
          group,
          name,
          entry: typeof entry === 'string' ? entry : '',
          problem: `entry-point name ${JSON.stringify(name)} must be a non-empty slug without spaces`,
        });
        continue;
      }
      if (typeof entry !== 'string') {
        out.entries.push({
          group,
          name,
          entry: '',
          problem: `entry must be a string "<module path>:<export>", got ${describe(entry)}`,
        });
        continue;
      }
      const parsed = parseEntry(entry, pkgDir);
      out.entries.push(
        'problem' in parsed
          ? { group, name, entry, problem: `entry ${JSON.stringify(entry)} ${parsed.problem}` }
          : { group, name, entry, ...parsed },
      );
    }
  }
  if (out.entries.length === 0 && out.problems.length === 0) {
    out.problems.push({ problem: `"${MANIFEST_FIELD}.entryPoints" declares no entry points` });
  }
  return out;
}
