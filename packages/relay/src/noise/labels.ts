import type { Notification } from '@plugboard/sdk';

/**
 * The label set of a notification: what route matchers, silences and
 * inhibition rules see, and what group keys are built from. Label names are
 * part of the configuration language, so they never change meaning; new ones
 * may be added. Documented in docs/noise-control.md ("Labels").
 *
 * Every fixed label is always present; a value the notification does not
 * carry is the empty string, as in Alertmanager: `environment=""` matches a
 * notification without an environment, and so does `environment!="prod"`.
 */
export const LABEL_NAMES = [
  'kind',
  'resource',
  'action',
  'project',
  'project_id',
  'environment',
  'level',
  'release',
  'rule',
  'issue',
  'issue_short_id',
  'alert',
  'title',
  'culprit',
  'status',
] as const;

export type LabelName = (typeof LABEL_NAMES)[number];

/** Prefix of the event-tag labels: `tags.browser`, `tags.sentry:user`. */
export const TAG_PREFIX = 'tags.';

/**
 * Labels a delivery adds to its notification's: which route took it and
 * which instance (`route/name`) it is for. Silences can match them.
 */
export const DELIVERY_LABEL_NAMES = ['route', 'instance'] as const;

/** How several rule names are shown in the single-valued `rule` label. */
export const RULE_SEPARATOR = ', ';

/**
 * A label set as matchers read it: one value per label, plus every value of
 * the labels a notification can have several of (a metric alert watching
 * several projects, a legacy body naming several rules). A positive matcher
 * (`=`, `=~`) matches when the single value or any one of these does.
 */
export interface LabelSet {
  readonly labels: Readonly<Record<string, string>>;
  readonly multi: Readonly<Record<string, readonly string[]>>;
}

/** The value of one label; unknown and missing labels are `""`. */
export function labelValue(labels: Readonly<Record<string, string>>, name: string): string {
  return Object.hasOwn(labels, name) ? (labels[name] ?? '') : '';
}

function metricAlertProjects(n: Notification): string[] {
  if (n.resource !== 'metric_alert') return [];
  const data = n.raw as {
    metric_alert?: { projects?: unknown; alert_rule?: { projects?: unknown } };
  };
  const read = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string' && s !== '') : [];
  const own = read(data?.metric_alert?.projects);
  return own.length > 0 ? own : read(data?.metric_alert?.alert_rule?.projects);
}

/**
 * Alert rule names: the triggered rule of an `event_alert`, the rule of a
 * metric alert, the `triggering_rules` of a legacy body (possibly several).
 */
export function ruleNames(n: Notification): string[] {
  if (n.triggeringRules.length > 0) return [...n.triggeringRules];
  const metric = n.metricAlert?.alertRuleName;
  return metric ? [metric] : [];
}

/** Every project slug the notification is about (metric alerts may name several). */
export function projectSlugs(n: Notification): string[] {
  const all = metricAlertProjects(n);
  const first = n.project?.slug;
  if (first && !all.includes(first)) all.unshift(first);
  return all;
}

/**
 * The labels of a notification. `project` is the project slug (for a metric
 * alert, the first of its projects; every one of them matches, see
 * `notificationLabelSet`); `rule` is the alert rule name (several are joined
 * with ", "); `issue` is Sentry's issue (group) id, `alert` a metric alert's
 * incident id; `tags.<key>` is one label per event tag.
 */
export function notificationLabels(n: Notification): Record<string, string> {
  const labels: Record<string, string> = {
    kind: n.kind,
    resource: n.resource,
    action: n.action,
    project: n.project?.slug ?? projectSlugs(n)[0] ?? '',
    project_id: n.project?.id ?? '',
    environment: n.environment ?? '',
    level: n.level ?? '',
    release: n.release ?? '',
    rule: ruleNames(n).join(RULE_SEPARATOR),
    issue: n.group?.id ?? n.comment?.issueId ?? '',
    issue_short_id: n.group?.shortId ?? '',
    alert: n.metricAlert?.id ?? '',
    title: n.title,
    culprit: n.group?.culprit ?? n.event?.culprit ?? '',
    status: n.group?.status ?? n.metricAlert?.status ?? '',
  };
  // The prefix keeps a tag from ever naming `__proto__` or a fixed label.
  for (const [key, value] of Object.entries(n.tags)) labels[`${TAG_PREFIX}${key}`] = value;
  return labels;
}

/**
 * The label set matchers evaluate: `notificationLabels(n)`, `extra` labels
 * (`route`, `instance` for a delivery), and the several values of `project`
 * and `rule` when there are several.
 */
export function notificationLabelSet(n: Notification, extra?: Record<string, string>): LabelSet {
  const labels = notificationLabels(n);
  if (extra) for (const [k, v] of Object.entries(extra)) labels[k] = v;
  const multi: Record<string, readonly string[]> = {};
  const projects = projectSlugs(n);
  if (projects.length > 1) multi.project = projects;
  const rules = ruleNames(n);
  if (rules.length > 1) multi.rule = rules;
  return { labels, multi };
}

/** A label set with extra labels, sharing the notification's several values. */
export function withLabels(set: LabelSet, extra: Record<string, string>): LabelSet {
  return { labels: { ...set.labels, ...extra }, multi: set.multi };
}

/** Every value of a label: the single one, then the several ones. */
export function labelValues(set: LabelSet, name: string): readonly string[] {
  const many = Object.hasOwn(set.multi, name) ? set.multi[name] : undefined;
  const one = labelValue(set.labels, name);
  return many && many.length > 0 ? [one, ...many.filter((v) => v !== one)] : [one];
}
