import { defang, type Notification } from '@plugboard/sdk';

/** The seed's message: project name, event message, issue URL; the short id leads the link line. */
export const DEFAULT_TEMPLATE = '[{{project}}] {{title}}\n{{message}}\n{{shortId}} {{url}}';

/** Longest message sent (characters); IM APIs cap text length, and a stack trace in `message` can be long. */
export const MAX_LENGTH = 4000;

const ELLIPSIS = '…';

/**
 * Event text as inert plain text (the SDK's `defang`, as the `none` escape
 * of @plugboard/templates): no URL, `www.`, word-initial `@` or tag an IM
 * client would turn into a link, a mention or markup.
 */
export function plainValue(text: string): string {
  return defang(text).replace(/<(?=[a-z/!?])/gi, '\uff1c');
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The issue link, when it is an http(s) URL: the only link a message carries. */
function trustedUrl(url: string | undefined): string {
  if (!url) return '';
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : '';
  } catch {
    return '';
  }
}

/** Placeholder values, least important first: the order they are shortened in. */
const CUT_ORDER = ['message', 'title', 'environment', 'level', 'project', 'projectSlug'] as const;

function cut(text: string, max: number): string {
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  return max <= 0 ? '' : `${chars.slice(0, max - 1).join('')}${ELLIPSIS}`;
}

function substitute(template: string, values: Readonly<Record<string, string>>): string {
  return (
    template
      .split('\n')
      .map((line) =>
        /\{\{\s*\w+\s*\}\}/.test(line)
          ? line
              .replace(/\{\{\s*(\w+)\s*\}\}/g, (_whole, name: string) => values[name] ?? '')
              .trim()
          : line,
      )
      // A placeholder with nothing to show (no URL, no message) leaves no empty line.
      .filter((line) => line.trim() !== '')
      .join('\n')
  );
}

const length = (text: string): number => Array.from(text).length;

/**
 * Render `{{name}}` placeholders with the notification's values, each made
 * inert plain text (see `plainValue`), in at most {@link MAX_LENGTH}
 * characters: the message is shortened first, then the title and the other
 * values; the link and the short id are never cut. Only if the template's own
 * text is too long is the end cut.
 */
export function renderMessage(template: string | undefined, n: Notification): string {
  const values: Record<string, string> = {
    project: oneLine(plainValue(n.project?.name ?? n.project?.slug ?? '')),
    projectSlug: oneLine(plainValue(n.project?.slug ?? '')),
    title: oneLine(plainValue(n.title)),
    message: plainValue(n.event?.message || n.message || '').trim(),
    url: trustedUrl(n.url),
    level: oneLine(plainValue(n.level ?? '')),
    environment: oneLine(plainValue(n.environment ?? '')),
    shortId: oneLine(plainValue(n.group?.shortId ?? '')),
  };
  const source = template || DEFAULT_TEMPLATE;
  let text = substitute(source, values);
  for (const name of CUT_ORDER) {
    const over = length(text) - MAX_LENGTH;
    if (over <= 0) return text;
    values[name] = cut(values[name] ?? '', length(values[name] ?? '') - over);
    text = substitute(source, values);
  }
  return length(text) <= MAX_LENGTH ? text : cut(text, MAX_LENGTH);
}
