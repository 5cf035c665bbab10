import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// Read at run time so src (tests) and dist (published) report the same version.
const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
  version: string;
};

/** Version of `@plugboard/notifier-im`, sent in the User-Agent. */
export const IM_NOTIFIER_VERSION: string = pkg.version;
