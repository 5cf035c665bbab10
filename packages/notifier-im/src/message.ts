import type { Notification } from '@plugboard/sdk';

/** The seed's message: project name, event message, issue URL. */
export const DEFAULT_TEMPLATE = '[{{project}}] {{title}}\n{{message}}\n{{url}}';

/** Longest message sent; IM APIs cap text length, and a stack trace in `message` can be long. */
const MAX_LENGTH = 4000;

/**
 * A small local renderer for `{{name}}` placeholders. Kept local until
 * `@plugboard/templates` is ready; the placeholder syntax is the same.
 */
export function renderMessage(template: string | undefined, n: Notification): string {
  const values: Record<string, string> = {
    project: n.project?.name ?? n.project?.slug ?? '',
    projectSlug: n.project?.slug ?? '',
    title: n.title,
    message: n.event?.message || n.message || '',
    url: n.url ?? '',
    level: n.level ?? '',
    environment: n.environment ?? '',
    shortId: n.group?.shortId ?? '',
  };
  const text = (template || DEFAULT_TEMPLATE)
    .replace(/\{\{\s*(\w+)\s*\}\}/g, (_whole, name: string) => values[name] ?? '')
    .split('\n')
    // A placeholder with nothing to show (no URL, no message) leaves no empty line.
    .filter((line) => line.trim() !== '')
    .join('\n');
  return text.length > MAX_LENGTH ? `${text.slice(0, MAX_LENGTH - 1)}…` : text;
}
