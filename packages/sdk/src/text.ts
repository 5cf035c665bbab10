/**
 * Control characters a chat or terminal could act on: C0 and C1 controls
 * (ANSI escapes start with ESC) except tab and newline, and the bidi
 * overrides that reorder what a reader sees.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it removes
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Event text as inert data, whatever the target. Sentry's titles, messages,
 * culprits and tags are written by whoever can make the monitored app throw:
 * one kind of line break (`\n`), no control characters, and nothing a chat
 * client or issue tracker turns into a link or a mention by itself. A URL
 * keeps its text but loses `://` (`https[:]//evil.example`), `www.` becomes
 * `www[.]`, and an `@` that starts a word (`@all`, `@13800000000`) becomes
 * the full-width `＠`; e-mail addresses keep theirs. Links and mentions are
 * made by templates and notifiers from trusted values only. A target's own
 * markup (Markdown, HTML, JIRA wiki) still needs escaping on top.
 */
export function defang(text: string): string {
  return text
    .replace(/\r\n?|[\u0085\u2028\u2029]/g, '\n')
    .replace(CONTROLS, '')
    .replace(/\b([a-z][a-z0-9+.-]*):\/\//gi, '$1[:]//')
    .replace(/\bwww\./gi, 'www[.]')
    .replace(/(^|[^\w.@+-])@(?=\w)/g, '$1\uff20');
}
