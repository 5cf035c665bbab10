import type { Notification } from '@plugboard/sdk';
import { bulletList, codeBlock, doc, docFromText, link, paragraph, strong, text } from './adf';
import type { AdfBlock, AdfDoc, AdfInline } from './adf';
import type { ApiVersion } from './convert';
import { cut, inert, noformatText, oneLine, wikiText } from './markup';

/** How many frames of the crashing thread to show, innermost first. */
const TOP_FRAMES = 5;
/**
 * Characters of one value at most: JIRA refuses a description over 32,767
 * characters, and an event's text has no limit of its own.
 */
export const MAX_VALUE_CHARS = 4_000;
const MAX_DETAIL_CHARS = 500;

interface Frame {
  filename?: unknown;
  abs_path?: unknown;
  module?: unknown;
  function?: unknown;
  lineno?: unknown;
  colno?: unknown;
  in_app?: unknown;
}

/** `function (file:line:col)` for the innermost frames of the last exception, if any. */
export function topFrames(n: Notification, limit = TOP_FRAMES): string[] {
  const raw = n.event?.raw as { exception?: { values?: unknown } } | undefined;
  const values = raw?.exception?.values;
  if (!Array.isArray(values) || values.length === 0) return [];
  const last = values[values.length - 1] as { stacktrace?: { frames?: unknown } } | undefined;
  const frames = last?.stacktrace?.frames;
  if (!Array.isArray(frames)) return [];
  // Sentry lists frames outermost first; the crash is at the end.
  const all = (frames as Frame[]).slice().reverse();
  const inApp = all.filter((f) => f.in_app === true);
  return (inApp.length > 0 ? inApp : all).slice(0, limit).map((f) => {
    const file = str(f.filename) ?? str(f.abs_path) ?? str(f.module) ?? '?';
    const where = [file, num(f.lineno), num(f.colno)].filter(Boolean).join(':');
    return cut(`${str(f.function) ?? '?'} (${where})`, MAX_DETAIL_CHARS);
  });
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
function num(v: unknown): string | undefined {
  return typeof v === 'number' ? String(v) : undefined;
}

interface Detail {
  label: string;
  value: string;
}

function details(n: Notification): Detail[] {
  const g = n.group;
  const out: Array<[string, string | number | undefined]> = [
    ['Culprit', g?.culprit ?? n.event?.culprit],
    ['Level', n.level ?? g?.level],
    ['Environment', n.environment],
    ['Release', n.release],
    ['Project', n.project ? n.project.slug : undefined],
    ['First seen', g?.firstSeen],
    ['Last seen', g?.lastSeen],
    ['Events', g?.count],
    ['Alert rules', n.triggeringRules.length ? n.triggeringRules.join(', ') : undefined],
    [
      'Metric alert',
      n.metricAlert ? `${n.metricAlert.title} (${n.metricAlert.status})` : undefined,
    ],
  ];
  return out
    .filter((e): e is [string, string | number] => e[1] !== undefined && e[1] !== '')
    .map(([label, value]) => ({ label, value: cut(oneLine(String(value)), MAX_DETAIL_CHARS) }));
}

function linkLabel(n: Notification): string {
  return n.group?.shortId ?? (n.metricAlert ? `Alert ${n.metricAlert.id}` : 'Open in Sentry');
}

/**
 * The issue description: the operator's text, then what Sentry knows. `intro`
 * is the rendered `description` template, its values already escaped for
 * `apiVersion` (see `render`). Every other value is escaped here; the Sentry
 * link is the only link.
 */
export function buildDescription(
  n: Notification,
  intro: string,
  apiVersion: ApiVersion,
): string | AdfDoc {
  const url = n.url;
  const frames = topFrames(n);
  const rows = details(n);
  if (apiVersion === 2) {
    const lines: string[] = [];
    if (intro.trim()) lines.push(intro.trim(), '');
    if (url) lines.push(`*Sentry:* [${wikiText(oneLine(linkLabel(n)))}|${url}]`);
    for (const r of rows) lines.push(`*${r.label}:* ${wikiText(r.value)}`);
    if (frames.length > 0) {
      lines.push('', '*Top frames:*', '{noformat}', ...frames.map(noformatText), '{noformat}');
    }
    return lines.join('\n');
  }
  const blocks: AdfBlock[] = [];
  if (intro.trim()) blocks.push(...docFromText(intro.trim()).content);
  if (url) blocks.push(paragraph(strong('Sentry: '), link(inert(linkLabel(n)), url)));
  if (rows.length > 0) {
    blocks.push(
      bulletList(rows.map((r): AdfInline[] => [strong(`${r.label}: `), text(inert(r.value))])),
    );
  }
  if (frames.length > 0) {
    blocks.push(paragraph(strong('Top frames:')), codeBlock(frames.map(noformatText).join('\n')));
  }
  return doc(blocks);
}

/** A comment for a repeated alert: what fired, how often, when last. */
export function buildComment(n: Notification, apiVersion: ApiVersion): string | AdfDoc {
  const g = n.group;
  const what = n.metricAlert
    ? `Sentry metric alert is ${n.metricAlert.status}`
    : n.kind === 'issue.resolved'
      ? 'Sentry issue was resolved'
      : n.kind === 'issue.ignored' || n.kind === 'issue.archived'
        ? 'Sentry issue was archived'
        : n.kind === 'issue.assigned'
          ? `Sentry issue was assigned${n.assignee ? ` to ${n.assignee.name}` : ''}`
          : `Sentry alerted again (${n.kind})`;
  const facts = [
    g?.count !== undefined ? `events: ${g.count}` : undefined,
    g?.lastSeen ? `last seen: ${g.lastSeen}` : undefined,
    n.triggeringRules.length ? `rules: ${n.triggeringRules.join(', ')}` : undefined,
  ].filter((f): f is string => f !== undefined);
  const line = cut(oneLine(`${what}${facts.length ? ` — ${facts.join(', ')}` : ''}.`), 1_000);
  if (apiVersion === 2) {
    return n.url ? `${wikiText(line)} [Open in Sentry|${n.url}]` : wikiText(line);
  }
  return doc([
    paragraph(text(`${inert(line)} `), ...(n.url ? [link('Open in Sentry', n.url)] : [])),
  ]);
}
