import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

// npm's rule for package names (validate-npm-package-name), upper case allowed
// for old packages. Checked before a name is joined into a path so that a
// configured `../x` cannot point the registry outside node_modules.
const PACKAGE_NAME = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/i;

export function isValidPackageName(name: string): boolean {
  return name.length <= 214 && PACKAGE_NAME.test(name);
}

/**
 * The real path of `<name>/package.json` as the app at `appRoot` would see
 * it, or undefined when the package is not installed there.
 *
 * Resolution starts FROM THE APP, not from this SDK copy: the SDK may be
 * installed (or linked) elsewhere, and what matters is what the app would get
 * from `require(name)`.
 */
export function resolvePackageJson(name: string, appRoot: string): string | undefined {
  try {
    return realpathSync(require.resolve(`${name}/package.json`, { paths: [appRoot] }));
  } catch {
    // A package whose `exports` map does not list `./package.json` makes
    // require.resolve throw (ERR_PACKAGE_PATH_NOT_EXPORTED) although the file
    // is installed; look where Node's lookup would have found it. Any other
    // failure ends up here too and the walk simply finds nothing.
  }
  for (let dir = appRoot; ;) {
    // Node never looks in `node_modules/node_modules`.
    if (basename(dir) !== 'node_modules') {
      const candidate = join(dir, 'node_modules', name, 'package.json');
      if (existsSync(candidate)) return realpathSync(candidate);
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
