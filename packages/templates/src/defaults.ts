/**
 * Default templates, one per Sentry resource and action. They are written
 * in the small Markdown subset every chat target renders (heading, bold,
 * list, link) and read fine as plain text too. Every value is escaped for
 * the target before it reaches the template (see `buildView`).
 */

const FIELDS =
  '- Project: {{default project.name "-"}}\n' +
  '- Level: {{default level "-"}}\n' +
  '- Environment: {{default environment "-"}}\n' +
  '- Issue: {{default shortId "-"}}\n' +
  '{{#if release}}- Release: {{release}}\n{{/if}}';

const RULES = '{{#if rules.length}}- Rule: {{join rules ", "}}\n{{/if}}';

const TAGS =
  '{{#if tags.length}}\n**Tags:** {{#each tags}}{{key}}={{value}}{{#unless @last}}, {{/unless}}{{/each}}\n{{/if}}';

const FRAMES =
  '{{#if frames.length}}\n**Stack** (most recent call first):\n\n{{#each frames}}- {{this}}\n{{/each}}{{/if}}';

const MESSAGE = '{{#if message}}\n{{message}}\n{{/if}}';

const LINK = '\n{{#if url}}\n[View in Sentry]({{url}})\n{{/if}}';

// A digest says first how many notifications the message stands for.
const DIGEST =
  '{{#if digest}}**{{digest}}**\n\n{{/if}}' +
  '{{#if digestItems.length}}{{#each digestItems}}- {{#if url}}[{{title}}]({{url}}){{else}}{{title}}{{/if}}{{#if project}} ({{project}}){{/if}}\n{{/each}}\n{{/if}}';

const HEAD = `### {{headline}}: {{title}}\n\n${DIGEST}{{#if culprit}}{{culprit}}\n\n{{/if}}`;

const EVENT_BODY = `${HEAD}${FIELDS}${RULES}${MESSAGE}${TAGS}${FRAMES}${LINK}`;

const METRIC_BODY =
  '### {{title}}\n\n' +
  DIGEST +
  '**{{headline}}**\n\n' +
  '{{#if metricAlert.description}}{{metricAlert.description}}\n\n{{/if}}' +
  '- Project: {{default project.name "-"}}\n' +
  '- Status: {{default metricAlert.status "-"}}\n' +
  '- Level: {{default level "-"}}\n' +
  '{{#if metricAlert.ruleName}}- Rule: {{metricAlert.ruleName}}\n{{/if}}' +
  '- Environment: {{default environment "-"}}\n' +
  LINK;

export const DEFAULT_TEMPLATES: Readonly<Record<string, string>> = {
  'issue.created': EVENT_BODY,
  'event_alert.triggered': EVENT_BODY,
  'error.created': EVENT_BODY,
  'legacy_webhook.triggered': EVENT_BODY,
  'issue.unresolved': `${HEAD}The issue came back after it was resolved.\n\n${FIELDS}${LINK}`,
  'issue.resolved': `${HEAD}${FIELDS}{{#if actor}}- Resolved by: {{actor}}\n{{/if}}${LINK}`,
  'issue.assigned': `${HEAD}${FIELDS}{{#if assignee}}- Assigned to: {{assignee}}\n{{/if}}${LINK}`,
  'issue.ignored': `${HEAD}${FIELDS}{{#if actor}}- Ignored by: {{actor}}\n{{/if}}${LINK}`,
  'metric_alert.critical': METRIC_BODY,
  'metric_alert.warning': METRIC_BODY,
  'metric_alert.resolved': METRIC_BODY,
  'comment.created':
    '### {{headline}}: {{title}}\n\n' +
    DIGEST +
    '{{#if comment}}{{comment}}\n\n{{/if}}' +
    '- Project: {{default project.name "-"}}\n' +
    '- Issue: {{default shortId "-"}}\n' +
    '{{#if actor}}- By: {{actor}}\n{{/if}}' +
    LINK,
};

/** Anything without its own template (installation.*, new actions). */
export const FALLBACK_TEMPLATE = `${HEAD}${FIELDS}${MESSAGE}${LINK}`;

/** The default template for a notification kind (`issue.created`, ...). */
export function defaultTemplate(kind: string): string {
  return (
    DEFAULT_TEMPLATES[kind] ??
    (kind.startsWith('comment.') ? DEFAULT_TEMPLATES['comment.created'] : undefined) ??
    FALLBACK_TEMPLATE
  );
}
