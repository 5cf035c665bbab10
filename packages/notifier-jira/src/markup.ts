/**
 * Event text (titles, messages, culprits, tags, frames) is written by
 * whoever can make the monitored app throw. In a JIRA issue it stays data:
 * never a link, a mention, markup or a line of its own. Only the notifier's
 * own Sentry link is a link.
 */

/** C0/C1 controls but tab and newline, and bidi overrides. */
// eslint-disable-next-line no-control-regex -- control characters are what it removes
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** The rules of `defang` in @plugboard/templates, for a package that does not depend on it. */
const INERT_RULES: ReadonlyArray<readonly [RegExp, string]> = [
  [/\r\n?|[\u0085\u2028\u2029]/g, '\n'],
  [CONTROLS, ''],
  // `https[:]//evil.example` and `www[.]evil.example` read the same but are no links.
  [/\b([a-z][a-z0-9+.-]*):\/\//gi, '$1[:]//'],
  [/\bwww\./gi, 'www[.]'],
  [/(^|[^\w.@+-])@(?=\w)/g, '$1\uff20'],
];

/** Plain text that no JIRA renderer turns into a link or a mention (ADF text, summaries). */
export function inert(value: string): string {
  return INERT_RULES.reduce((text, [pattern, to]) => text.replace(pattern, to), value);
}

/** At most `max` characters (code points), `…` marking a cut. */
export function cut(value: string, max: number): string {
  const chars = Array.from(value);
  return chars.length <= max ? value : `${chars.slice(0, max - 1).join('')}…`;
}

export function oneLine(value: string): string {
  return value.replace(/\s+/g, ' ').trim();
}

/**
 * Event text for wiki markup (REST API v2): inert, and then nothing in it
 * opens markup. Links `[x|url]`, mentions `[~id]`, macros `{color}`, images
 * `!x!`, tables `|` and citations `??` are escaped wherever they are; text
 * effects (`*bold*`, `-deleted-`, `_em_`, `+ins+`, `^sup^`, `~sub~`) where
 * they could open one, after a non-word character, so `front-end` and dates
 * stay as they are. A backslash becomes an entity (`\\` is a line break),
 * and a line break in the value a forced break (`\\`), so no value starts a
 * line but at its very beginning, where `h1.` and `bq.` are escaped too:
 * headings, lists, quotes and rules stay text.
 */
export function wikiText(value: string): string {
  return inert(value)
    .replace(/[\\{}[\]|!#]|\?\?|(?<=^|\W)[-+*_^~]/g, (c) =>
      c === '\\' ? '&#92;' : c.replace(/./g, '\\$&'),
    )
    .replace(/^(h[1-6]|bq)\./i, '$1\\.')
    .replace(/[ \t]*\n[ \t]*/g, ' \\\\ ');
}

/** Text inside `{noformat}`: escapes do not work there, but the block must not end early. */
export function noformatText(value: string): string {
  return oneLine(inert(value)).replace(/\{(noformat|code)/gi, '{ $1');
}
