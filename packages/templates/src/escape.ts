/** How values from Sentry are made safe for the target before they enter a template. */
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

/** Escape `text` for `mode`. */
export function escapeFor(mode: EscapeMode, text: string): string {
  switch (mode) {
    case 'markdown':
      return escapeMarkdown(text);
    case 'html':
      return escapeHtml(text);
    default:
      return text;
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
