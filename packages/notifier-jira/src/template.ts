import type { Notification } from '@plugboard/sdk';

/**
 * `{{path}}` substitution over a notification, nothing more: a template
 * engine would be a dependency and a sandbox to keep safe for one line of
 * text. Unknown paths render as empty text; the config check reports them.
 */

/** The roots a template may read, documented in docs/notifiers/jira.md. */
export const TEMPLATE_ROOTS: readonly string[] = [
  'kind',
  'resource',
  'action',
  'title',
  'message',
  'url',
  'level',
  'environment',
  'release',
  'project',
  'group',
  'event',
  'metricAlert',
  'tags',
  'links',
  'triggeringRules',
];

const VARIABLE = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

/** The notification a template sees: the raw payloads stay out (size, personal data). */
function view(n: Notification): Record<string, unknown> {
  const event = n.event ? { ...n.event, raw: undefined } : undefined;
  return {
    kind: n.kind,
    resource: n.resource,
    action: n.action,
    title: n.title,
    message: n.message,
    url: n.url,
    level: n.level,
    environment: n.environment,
    release: n.release,
    project: n.project,
    group: n.group,
    event,
    metricAlert: n.metricAlert,
    tags: n.tags,
    links: n.links,
    triggeringRules: n.triggeringRules.join(', '),
  };
}

function lookup(root: Record<string, unknown>, path: string): unknown {
  let current: unknown = root;
  for (const part of path.split('.')) {
    if (typeof current !== 'object' || current === null) return undefined;
    if (!Object.prototype.hasOwnProperty.call(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/**
 * `template` with each `{{path}}` replaced by its value, passed through
 * `escape` (for the markup of the field the text goes to; event text must
 * never become markup there). Without `escape` values are inserted as they
 * are: only for plain-text fields.
 */
export function render(
  template: string,
  notification: Notification,
  escape: (value: string) => string = (value) => value,
): string {
  const data = view(notification);
  return template.replace(VARIABLE, (_all, path: string) => {
    const value = lookup(data, path);
    if (value === undefined || value === null) return '';
    return escape(typeof value === 'object' ? JSON.stringify(value) : String(value));
  });
}

export function hasVariables(template: string): boolean {
  VARIABLE.lastIndex = 0;
  return VARIABLE.test(template);
}

/** Variables whose root is not one a template can read. */
export function unknownVariables(template: string): string[] {
  const out: string[] = [];
  for (const m of template.matchAll(VARIABLE)) {
    const path = m[1] ?? '';
    const root = path.split('.')[0] ?? '';
    if (!TEMPLATE_ROOTS.includes(root)) out.push(path);
  }
  return out;
}
