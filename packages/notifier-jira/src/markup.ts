import { defang } from '@plugboard/sdk';

/**
 * Event text (titles, messages, culprits, tags, frames) is written by
 * whoever can make the monitored app throw. In a JIRA issue it stays data:
 * never a link, a mention, markup or a line of its own. Only the notifier's
 * own Sentry link is a link.
 */

/** Plain text that no JIRA renderer turns into a link or a mention (ADF text, summaries). */
export function inert(value: string): string {
  return defang(value);
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
