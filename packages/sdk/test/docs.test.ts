import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_ERROR_CODES, ERROR_CODES } from '@plugboard/sdk';

// docs/errors.md is the user's reference for every code: it must list each
// code of ERROR_CODES, in its family's section, and mention no code that does
// not exist (a renamed or invented code would send readers looking for it).

const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'errors.md'), 'utf8');

/** The `## ` section whose text names `ERROR_CODES.<family>`. */
function familySection(family: string): string | undefined {
  return doc.split(/^## /m).find((section) => section.includes(`\`ERROR_CODES.${family}\``));
}

describe('docs/errors.md', () => {
  it.each(ALL_ERROR_CODES.map((code) => [code]))('documents %s', (code) => {
    expect(doc).toContain(`\`${code}\``);
  });

  it.each(Object.keys(ERROR_CODES).map((family) => [family]))(
    'lists every code of the %s family as a heading of its section',
    (family) => {
      const section = familySection(family);
      expect(section).toBeDefined();
      const codes = ERROR_CODES[family as keyof typeof ERROR_CODES] as readonly string[];
      for (const code of codes) expect(section).toContain(`### \`${code}\``);
    },
  );

  it('mentions no code that does not exist', () => {
    const known = new Set<string>(ALL_ERROR_CODES);
    const mentioned = new Set(doc.match(/\bPB_[A-Z0-9_]+/g) ?? []);
    const stale = [...mentioned].filter((code) => !known.has(code));
    expect(stale).toEqual([]);
  });

  it('says to decide on code and that retired codes are never reused', () => {
    expect(doc).toMatch(/decide on `code`, never on `message`/i);
    expect(doc).toMatch(/retired codes are never reused/i);
  });
});
