import Handlebars from 'handlebars';
import type { Notification } from '@plugboard/sdk';
import { defaultTemplate } from './defaults';
import { cutEscaped, escapeFor, escapePlain } from './escape';
import type { EscapeMode } from './escape';
import { DEFAULT_TRUNCATION_NOTE, hardCut, largestFitting, utf8Bytes } from './fit';
import { buildView, DEFAULT_FIELD_CHARS, DEFAULT_FRAMES, DEFAULT_TAGS, headlineFor } from './view';
import type { TemplateView, ViewLimits } from './view';

export interface RenderOptions {
  /** How values are escaped: `markdown` (default), `html` or `none`. */
  escape?: EscapeMode;
  limits?: ViewLimits;
}

/** A template that does not parse or does not render. */
export class TemplateError extends Error {
  readonly code = 'PB_TEMPLATE_INVALID';
}

/** One Handlebars environment, with our helpers, shared by every notifier. */
const hbs = Handlebars.create();

function str(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

hbs.registerHelper('default', (value: unknown, fallback: unknown) => {
  const text = str(value);
  return text === '' ? str(fallback) : text;
});
hbs.registerHelper('truncate', (value: unknown, max: unknown) => {
  const text = str(value);
  const n = typeof max === 'number' ? Math.floor(max) : Number.parseInt(str(max), 10);
  if (!Number.isFinite(n) || n < 1 || Array.from(text).length <= n) return text;
  return `${cutEscaped(text, n - 1)}…`;
});
hbs.registerHelper('join', (value: unknown, separator: unknown) =>
  Array.isArray(value)
    ? value.map(str).join(typeof separator === 'string' ? separator : ', ')
    : str(value),
);
hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
hbs.registerHelper('upper', (value: unknown) => str(value).toUpperCase());
hbs.registerHelper('lower', (value: unknown) => str(value).toLowerCase());

type Compiled = (view: TemplateView) => string;
const cache = new Map<string, Compiled>();
const CACHE_SIZE = 200;

function compile(template: string): Compiled {
  const hit = cache.get(template);
  if (hit) return hit;
  let fn: Compiled;
  try {
    // Values are escaped for the target when the view is built, so
    // Handlebars' own (HTML) escaping stays off: `{{x}}` and `{{{x}}}` agree.
    hbs.parse(template);
    fn = hbs.compile<TemplateView>(template, { noEscape: true, strict: false });
  } catch (err) {
    throw new TemplateError(`template does not parse: ${(err as Error).message}`);
  }
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(template, fn);
  return fn;
}

function run(fn: Compiled, view: TemplateView): string {
  try {
    return fn(view)
      .replace(/\n{3,}/g, '\n\n')
      .trim();
  } catch (err) {
    throw new TemplateError(`template does not render: ${(err as Error).message}`);
  }
}

/** Render `template` (Handlebars) for `notification`, values escaped for the target. */
export function renderTemplate(
  template: string,
  notification: Notification,
  options: RenderOptions = {},
): string {
  return run(
    compile(template),
    buildView(notification, options.escape ?? 'markdown', options.limits),
  );
}

/** Render the default template of the notification's kind. */
export function renderDefault(notification: Notification, options: RenderOptions = {}): string {
  return renderTemplate(defaultTemplate(notification.kind), notification, options);
}

/**
 * A one-line plain title (`New issue: TypeError: …`) for previews and card
 * headers: plain text made inert like every value (see `escapePlain`).
 */
export function plainTitle(notification: Notification, max = 100): string {
  const text = escapePlain(`${headlineFor(notification.kind)}: ${notification.title}`)
    .replace(/\s+/g, ' ')
    .trim();
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** Problems with an operator's template: undefined when it parses and renders. */
export function checkTemplate(template: string): string | undefined {
  const probe: Notification = {
    resource: 'issue',
    action: 'created',
    kind: 'issue.created',
    triggeringRules: [],
    tags: {},
    title: 'probe',
    message: '',
    links: {},
    dedupKey: 'probe',
    raw: {},
  };
  try {
    renderTemplate(template, probe, { escape: 'none' });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export interface RenderFittedOptions extends RenderOptions {
  /** The limit, as `measure` counts. */
  maxBytes: number;
  /** Size of a candidate text; default UTF-8 bytes. Pass the serialised body's size here. */
  measure?: (text: string) => number;
  /** Appended when something was cut; escaped for the target. */
  note?: string;
}

export interface RenderFittedResult {
  text: string;
  truncated: boolean;
}

/**
 * Render, then keep the result under `maxBytes`: shorten the least important
 * values first (stack frames, then tags, then the message and culprit, then
 * short values such as environment and release, then the title), re-rendering the template each time, so project, short id and
 * link survive. Anything cut is announced by `note` at the end. If the
 * template alone is still too big, the text is cut at the end.
 */
export function renderFitted(
  template: string | undefined,
  notification: Notification,
  options: RenderFittedOptions,
): RenderFittedResult {
  const mode = options.escape ?? 'markdown';
  const fn = compile(template ?? defaultTemplate(notification.kind));
  const measure = options.measure ?? utf8Bytes;
  const note = escapeFor(mode, options.note ?? DEFAULT_TRUNCATION_NOTE);
  const limits: ViewLimits = { ...options.limits };
  const render = (withNote: boolean): string => {
    const text = run(fn, buildView(notification, mode, limits));
    return withNote ? `${text}\n\n${note}` : text;
  };
  const full = render(false);
  if (measure(full) <= options.maxBytes) return { text: full, truncated: false };

  const longest = Math.max(
    Array.from(notification.title ?? '').length,
    Array.from(notification.message ?? '').length,
    Array.from(notification.comment?.text ?? '').length,
    Array.from(notification.metricAlert?.description ?? '').length,
    Array.from(notification.group?.culprit ?? notification.event?.culprit ?? '').length,
  );
  const steps: Array<[keyof ViewLimits, number, number]> = [
    ['frames', limits.frames ?? DEFAULT_FRAMES, 0],
    ['tags', limits.tags ?? DEFAULT_TAGS, 0],
    ['message', limits.message ?? longest, 0],
    ['culprit', limits.culprit ?? longest, 0],
    ['fields', limits.fields ?? DEFAULT_FIELD_CHARS, Math.min(20, limits.fields ?? 20)],
    ['title', limits.title ?? longest, Math.min(40, limits.title ?? 40)],
  ];
  for (const [key, start, floor] of steps) {
    const best = largestFitting(Math.max(0, start - floor), (v) => {
      limits[key] = floor + v;
      return measure(render(true)) <= options.maxBytes;
    });
    limits[key] = floor + (best ?? 0);
    if (best !== undefined) return { text: render(true), truncated: true };
  }
  return { text: hardCut(render(true), note, options.maxBytes, measure), truncated: true };
}
