import { describeDigest, type Notification } from '@plugboard/sdk';
import { escapeFor, safeUrl } from './escape';
import type { EscapeMode } from './escape';

/**
 * Character limits applied to the raw values before they are escaped, so a
 * cut never splits an escape. `frames` and `tags` count entries.
 */
export interface ViewLimits {
  title?: number;
  message?: number;
  culprit?: number;
  frames?: number;
  tags?: number;
  /**
   * Each short value: environment, release, rule names, tag keys and values,
   * names of people. Default {@link DEFAULT_FIELD_CHARS}.
   */
  fields?: number;
}

/** What a template sees. Every string is already escaped for the target. */
export interface TemplateView {
  kind: string;
  resource: string;
  action: string;
  /** What happened, in words: "New issue", "Alert rule fired", ... */
  headline: string;
  title: string;
  message: string;
  culprit: string;
  level: string;
  environment: string;
  release: string;
  shortId: string;
  status: string;
  project: { name: string; slug: string };
  /** http(s) only, safe inside `[…](…)`; empty when there is no usable link. */
  url: string;
  links: { issue: string; event: string; alert: string };
  count: string;
  userCount: string;
  rules: string[];
  tags: Array<{ key: string; value: string }>;
  /** Most recent stack frame first, one line each. */
  frames: string[];
  metricAlert: { title: string; description: string; status: string; ruleName: string };
  comment: string;
  actor: string;
  assignee: string;
  /**
   * Empty unless the message stands for several notifications (a group
   * digest, or a rate-limited backlog): the one-line summary, e.g.
   * "FRONT-END-9: 1,204 new events in the last 5 minutes, last seen …".
   */
  digest: string;
  /** Folded backlog: the notifications it stands for (newest first). */
  digestItems: Array<{ title: string; project: string; url: string }>;
}

const HEADLINES: Readonly<Record<string, string>> = {
  'issue.created': 'New issue',
  'issue.unresolved': 'Regression',
  'issue.resolved': 'Resolved',
  'issue.assigned': 'Assigned',
  'issue.ignored': 'Ignored',
  'issue.archived': 'Archived',
  'event_alert.triggered': 'Alert rule fired',
  'error.created': 'New error',
  'metric_alert.critical': 'Metric alert: critical',
  'metric_alert.warning': 'Metric alert: warning',
  'metric_alert.resolved': 'Metric alert: resolved',
  'comment.created': 'New comment',
  'comment.updated': 'Comment edited',
  'comment.deleted': 'Comment deleted',
  'installation.created': 'Integration installed',
  'installation.deleted': 'Integration uninstalled',
  'legacy_webhook.triggered': 'Sentry alert',
};

export function headlineFor(kind: string): string {
  return HEADLINES[kind] ?? kind;
}

/** Raw (unescaped) values, limits applied: what `buildView` escapes. */
function rawFrames(notification: Notification): string[] {
  const raw = notification.event?.raw as Record<string, unknown> | undefined;
  const exception = raw?.exception as { values?: unknown } | undefined;
  const values = Array.isArray(exception?.values) ? (exception.values as unknown[]) : [];
  const last = values[values.length - 1] as { stacktrace?: { frames?: unknown } } | undefined;
  const frames = Array.isArray(last?.stacktrace?.frames)
    ? (last.stacktrace.frames as Array<Record<string, unknown>>)
    : [];
  return frames
    .slice()
    .reverse()
    .map((frame) => {
      const fn = typeof frame.function === 'string' && frame.function ? frame.function : '?';
      const file =
        (typeof frame.filename === 'string' && frame.filename) ||
        (typeof frame.module === 'string' && frame.module) ||
        (typeof frame.abs_path === 'string' && frame.abs_path) ||
        '?';
      const line = typeof frame.lineno === 'number' ? `:${frame.lineno}` : '';
      const col = typeof frame.colno === 'number' ? `:${frame.colno}` : '';
      return `at ${fn} (${file}${line}${col})`;
    });
}

function cut(text: string, max: number | undefined): string {
  if (max === undefined) return text;
  const chars = Array.from(text);
  if (chars.length <= max) return text;
  return max <= 0 ? '' : `${chars.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/** One line: a title or a tag must not break the layout. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n\u0085\u2028\u2029]+\s*/g, ' ').trim();
}

/** How many stack frames and tags a default message shows at most. */
export const DEFAULT_FRAMES = 10;
export const DEFAULT_TAGS = 10;
/** Characters of a short value at most (Sentry caps tag values at 200). */
export const DEFAULT_FIELD_CHARS = 200;

/** Build the escaped view of `notification` that templates render. */
export function buildView(
  notification: Notification,
  mode: EscapeMode,
  limits: ViewLimits = {},
): TemplateView {
  const e = (text: string | number | undefined | null): string =>
    text === undefined || text === null ? '' : escapeFor(mode, String(text));
  const link = (url: string | undefined): string => safeUrl(url, mode) ?? '';
  const n = notification;
  const metric = n.metricAlert;
  const message = n.message ?? '';
  const culprit = n.group?.culprit ?? n.event?.culprit ?? '';
  const frames = rawFrames(n).slice(0, limits.frames ?? DEFAULT_FRAMES);
  const tags = Object.entries(n.tags ?? {}).slice(0, limits.tags ?? DEFAULT_TAGS);
  // A short value is one line, and a long one must not push the link out.
  const short = (text: string | number | undefined | null): string =>
    text === undefined || text === null
      ? ''
      : e(cut(oneLine(String(text)), limits.fields ?? DEFAULT_FIELD_CHARS));
  return {
    kind: e(n.kind),
    resource: e(n.resource),
    action: e(n.action),
    headline: e(headlineFor(n.kind)),
    title: e(cut(oneLine(n.title ?? ''), limits.title)),
    message: e(cut(message === culprit ? '' : message, limits.message)),
    culprit: e(cut(oneLine(culprit), limits.culprit)),
    level: short(n.level ?? n.group?.level ?? n.event?.level),
    environment: short(n.environment ?? n.event?.environment),
    release: short(n.release ?? n.event?.release),
    shortId: e(n.group?.shortId),
    status: e(n.group?.status ?? metric?.status),
    project: { name: short(n.project?.name ?? n.project?.slug), slug: short(n.project?.slug) },
    url: link(n.url),
    links: { issue: link(n.links.issue), event: link(n.links.event), alert: link(n.links.alert) },
    count: e(n.group?.count),
    userCount: e(n.group?.userCount),
    rules: n.triggeringRules.map(short),
    tags: tags.map(([key, value]) => ({ key: short(key), value: short(value) })),
    frames: frames.map((f) => e(cut(f, 200))),
    metricAlert: {
      title: short(metric?.title),
      description: e(cut(metric?.description ?? '', limits.message)),
      status: short(metric?.status),
      ruleName: short(metric?.alertRuleName),
    },
    comment: e(cut(n.comment?.text ?? '', limits.message)),
    actor: short(n.actor?.name),
    assignee: short(n.assignee ? (n.assignee.email ?? n.assignee.name) : undefined),
    // It names the issue by its title when there is no short id: cut with it.
    digest: e(
      cut(
        oneLine(describeDigest(n) ?? ''),
        limits.title === undefined ? undefined : limits.title + 120,
      ),
    ),
    digestItems: (n.digest?.items ?? []).map((i) => ({
      title: e(cut(oneLine(i.title), limits.title)),
      project: short(i.project),
      url: link(i.url),
    })),
  };
}
