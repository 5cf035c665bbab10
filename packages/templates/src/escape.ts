import { defang } from '@plugboard/sdk';

/**
 * How values from Sentry are made safe for the target before they enter a
 * template: `markdown`, `html`, or `none` for plain text (no markup escaped,
 * but still defanged: see `escapeFor`).
 */
export type EscapeMode = 'markdown' | 'html' | 'none';

export const ESCAPE_MODES: readonly EscapeMode[] = ['markdown', 'html', 'none'];

const HTML_ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Entity-encode the characters HTML gives a meaning to. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => HTML_ENTITIES[c] ?? c);
}

/**
 * Backslash-escape what CommonMark gives a meaning to, so text from an event
 * (an exception message, a tag, a title) cannot open a link
 * (`[x](javascript:…)`), an image, emphasis, code, a table cell or
 * strike-through anywhere, nor a heading, list or quote at the start of a
 * line. `<`, `>` and `&` become entities: raw HTML and tags such as Feishu's
 * `<at>` must not pass. Characters that only matter at the start of a line
 * (`#`, `-`, `+`, `=`, `1.`) are escaped only there, so `front-end` and
 * `v1.2` stay readable.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_[\]~|]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/^([ \t]*)([#+=-])/gm, '$1\\$2')
    .replace(/^([ \t]*\d+)([.)])/gm, '$1\\$2');
}

// The rules live in the SDK, so notifiers that do not use these templates
// (and third-party ones) defang event text the same way.
export { defang };

/**
 * Plain text (`none`): no markup to escape, but a tag (`<at id=all>`,
 * `<a href>`, `<script>`) must not reach a target that parses a few of them
 * in text, so `<` before a letter, `/`, `!` or `?` becomes the full-width
 * `＜`; and `](` gets a space, so no `[label](target)` of the event's is read
 * as a link where plain text is parsed for them (Feishu posts, or a Markdown
 * viewer that shows the output).
 */
export function escapePlain(text: string): string {
  return defang(text)
    .replace(/<(?=[a-z/!?])/gi, '\uff1c')
    .replace(/\]\(/g, '] (');
}

/**
 * Escape `text` for `mode`. Every mode defangs first (see `defang`): no mode
 * lets event text become a link, a mention, a tag or a line break of its own
 * kind.
 */
export function escapeFor(mode: EscapeMode, text: string): string {
  switch (mode) {
    case 'markdown':
      return escapeMarkdown(defang(text));
    case 'html':
      return escapeHtml(defang(text));
    default:
      return escapePlain(text);
  }
}

/**
 * A link target that is safe to put in `[label](…)` or `href="…"`: only
 * http(s) URLs pass (a `javascript:` or `data:` URL becomes undefined), and
 * characters that would end the link are percent-encoded.
 */
export function safeUrl(url: string | undefined, mode: EscapeMode = 'none'): string | undefined {
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  const encoded = parsed.href.replace(
    /[()<>[\]"'`\s\\]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
  return mode === 'html' ? escapeHtml(encoded) : encoded;
}

/**
 * Cut already-escaped text to at most `max` characters (code points) without
 * leaving half an escape behind: a dangling backslash or a partial `&…;`
 * entity is removed with the cut.
 */
export function cutEscaped(text: string, max: number): string {
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  let out = chars.slice(0, Math.max(0, max)).join('');
  out = out.replace(/&[#a-zA-Z0-9]{0,8}$/, '');
  const trailing = /\\+$/.exec(out);
  if (trailing && trailing[0].length % 2 === 1) out = out.slice(0, -1);
  return out;
}
