import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

// The image's layer order: dependencies are installed from the manifests
// alone, before the sources are copied, so that editing a source does not run
// either `npm ci` (minutes each: the second compiles better-sqlite3) again.
// The container suite (test/containers) builds the image; this runs anywhere.

const REPO = resolve(__dirname, '..', '..', '..');
const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const lines = dockerfile.split('\n');
const workspaces = (
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { workspaces: string[] }
).workspaces;

/** Line index of the first line matching, after `from` (throws when there is none). */
function find(pattern: RegExp, from = 0): number {
  const i = lines.findIndex((line, n) => n >= from && pattern.test(line));
  if (i < 0) throw new Error(`no line of the Dockerfile matches ${String(pattern)}`);
  return i;
}

describe('Dockerfile', () => {
  const build = find(/^FROM \S+ AS build$/);
  const prod = find(/^FROM \S+ AS prod$/);
  const install = find(/^RUN npm ci --ignore-scripts/, build);

  it('copies every workspace manifest (and bin scripts) before the build stage installs', () => {
    for (const ws of workspaces) {
      expect(find(new RegExp(`^COPY ${ws}/package\\.json ${ws}/$`), build)).toBeLessThan(install);
      const manifest = JSON.parse(readFileSync(join(REPO, ws, 'package.json'), 'utf8')) as {
        bin?: Record<string, string>;
      };
      if (manifest.bin) {
        expect(find(new RegExp(`^COPY ${ws}/bin/ ${ws}/bin/$`), build)).toBeLessThan(install);
      }
    }
  });

  it('copies the sources only after the install, in both stages', () => {
    expect(find(/^COPY packages\/ packages\/$/, build)).toBeGreaterThan(install);
    const sourcesBefore = lines
      .slice(build, install)
      .filter((l) => /^COPY /.test(l) && !/package(-lock)?\.json|\/bin\/ |tsconfig/.test(l));
    expect(sourcesBefore).toEqual([]);

    const prodInstall = find(/^RUN npm ci --omit=dev/, prod);
    expect(find(/^COPY --from=build \/manifests\/ \.\/$/, prod)).toBeLessThan(prodInstall);
    expect(find(/^COPY --from=build \/out\/ \.\/$/, prod)).toBeGreaterThan(prodInstall);
  });
});
