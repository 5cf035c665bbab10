import { docFromText, isAdfDoc } from './adf';
import { allowedLabel } from './meta';
import type { FieldMeta, FieldSchema } from './meta';

export type Deployment = 'cloud' | 'server';
export type ApiVersion = 2 | 3;

export interface ConvertOptions {
  deployment: Deployment;
  apiVersion: ApiVersion;
  /** For relative dates (`+7d`); injectable for tests. */
  now?: () => Date;
}

export type Converted = { ok: true; value: unknown } | { ok: false; problem: string };

/**
 * What a field's value must look like in a create request. Decided by the
 * field's schema only, never by its name: the seed sent every value it did
 * not special-case as `{"id": v}`, so a date went out as
 * `{"duedate": {"id": "2015-07-31"}}` and JIRA refused it.
 */
export type ValueKind =
  | 'string'
  | 'rich-text'
  | 'number'
  | 'date'
  | 'datetime'
  | 'option'
  | 'option-with-child'
  | 'option[]'
  | 'string[]'
  | 'user'
  | 'user[]'
  | 'group'
  | 'group[]'
  | 'named'
  | 'named[]'
  | 'project'
  | 'issuelink'
  | 'sprint'
  | 'epic-link'
  | 'unknown';

const SPRINT = 'com.pyxis.greenhopper.jira:gh-sprint';
const EPIC_LINK = 'com.pyxis.greenhopper.jira:gh-epic-link';
const TEXTAREA = 'com.atlassian.jira.plugin.system.customfieldtypes:textarea';

/** Schema types set by `{"id": …}` or `{"name": …}`. */
const NAMED_TYPES = new Set([
  'priority',
  'version',
  'component',
  'issuetype',
  'resolution',
  'securitylevel',
]);

/** The kind of value a field takes, from its schema (`type`, `items`, `custom`, `system`). */
export function kindOf(schema: FieldSchema | undefined, apiVersion: ApiVersion = 2): ValueKind {
  if (!schema) return 'unknown';
  // Custom types first: Sprint says `array<json>` and Epic Link says `any`.
  if (schema.custom === SPRINT) return 'sprint';
  if (schema.custom === EPIC_LINK) return 'epic-link';
  switch (schema.type) {
    case 'string': {
      const rich =
        schema.custom === TEXTAREA ||
        schema.system === 'description' ||
        schema.system === 'environment';
      return rich && apiVersion === 3 ? 'rich-text' : 'string';
    }
    case 'number':
      return 'number';
    case 'date':
      return 'date';
    case 'datetime':
      return 'datetime';
    case 'option':
      return 'option';
    case 'option-with-child':
      return 'option-with-child';
    case 'user':
      return 'user';
    case 'group':
      return 'group';
    case 'project':
      return 'project';
    case 'issuelink':
      return 'issuelink';
    case 'array':
      switch (schema.items) {
        case 'string':
          return 'string[]';
        case 'option':
          return 'option[]';
        case 'user':
          return 'user[]';
        case 'group':
          return 'group[]';
        case 'version':
        case 'component':
          return 'named[]';
        default:
          return 'unknown';
      }
    default:
      return NAMED_TYPES.has(schema.type) ? 'named' : 'unknown';
  }
}

type Converter = (input: unknown, field: FieldMeta, options: ConvertOptions) => Converted;

const ok = (value: unknown): Converted => ({ ok: true, value });
const fail = (problem: string): Converted => ({ ok: false, problem });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  const s = typeof value === 'string' ? `"${value}"` : JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}…` : s;
}

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** A list from an array, or from a comma-separated string (how one writes it in YAML). */
function listOf(input: unknown): unknown[] {
  if (Array.isArray(input)) return input;
  if (typeof input === 'string') {
    return input
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }
  return [input];
}

function each(input: unknown, one: (item: unknown) => Converted): Converted {
  const out: unknown[] = [];
  for (const item of listOf(input)) {
    const converted = one(item);
    if (!converted.ok) return converted;
    out.push(converted.value);
  }
  return ok(out);
}

const NUMERIC = /^\d+$/;
const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function isoDay(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** `+7d` / `-1d`: days from now, for due dates written in a config. */
function relativeDays(text: string, options: ConvertOptions): Date | undefined {
  const m = /^([+-])(\d{1,4})d$/.exec(text);
  if (!m) return undefined;
  const now = (options.now ?? (() => new Date()))();
  const days = Number(m[2]) * (m[1] === '-' ? -1 : 1);
  return new Date(now.getTime() + days * 86_400_000);
}

function validDay(y: number, mo: number, d: number): boolean {
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

const DATE_PREFIX = /^(\d{4})-(\d{2})-(\d{2})(?:$|[T ])/;
const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/;

const toDate: Converter = (input, field, options) => {
  const refuse = (): Converted =>
    fail(`expects a date (YYYY-MM-DD, an ISO date-time, or +Nd), got ${show(input)}`);
  if (typeof input === 'number') {
    const d = new Date(input);
    return Number.isFinite(input) && !Number.isNaN(d.getTime()) ? ok(isoDay(d)) : refuse();
  }
  if (input instanceof Date) return Number.isNaN(input.getTime()) ? refuse() : ok(isoDay(input));
  if (typeof input !== 'string') return refuse();
  const text = input.trim();
  const relative = relativeDays(text, options);
  if (relative) return ok(isoDay(relative));
  // The calendar day as written: converting "2015-07-31T23:00:00-05:00" to
  // UTC would move a due date to the next day.
  const m = DATE_PREFIX.exec(text);
  if (!m || !DATETIME.test(text)) return refuse();
  if (!validDay(Number(m[1]), Number(m[2]), Number(m[3]))) return refuse();
  return ok(`${m[1]}-${m[2]}-${m[3]}`);
};

/** JIRA's `2011-10-19T10:29:29.908+1100`; the offset as written, UTC when none is. */
const toDateTime: Converter = (input, _field, options) => {
  const refuse = (): Converted =>
    fail(`expects a date-time (ISO 8601, e.g. 2011-10-19T10:29:29.908+11:00), got ${show(input)}`);
  const fromDate = (d: Date): string =>
    `${isoDay(d)}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}+0000`;
  if (typeof input === 'number') {
    const d = new Date(input);
    return Number.isNaN(d.getTime()) ? refuse() : ok(fromDate(d));
  }
  if (input instanceof Date) return Number.isNaN(input.getTime()) ? refuse() : ok(fromDate(input));
  if (typeof input !== 'string') return refuse();
  const text = input.trim();
  const relative = relativeDays(text, options);
  if (relative) return ok(fromDate(relative));
  const m = DATETIME.exec(text);
  if (!m) return refuse();
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  if (!validDay(Number(y), Number(mo), Number(d))) return refuse();
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return refuse();
  const ms = (frac + '000').slice(0, 3);
  const offset = zone === 'Z' ? '+0000' : zone.replace(':', '');
  if (Number(offset.slice(1, 3)) > 14 || Number(offset.slice(3)) > 59) return refuse();
  return ok(`${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}${offset}`);
};

const toString: Converter = (input) => {
  if (typeof input === 'string') return ok(input);
  if (typeof input === 'number' || typeof input === 'boolean') return ok(String(input));
  return fail(`expects text, got ${show(input)}`);
};

const toRichText: Converter = (input) => {
  if (isAdfDoc(input)) return ok(input);
  const t = toString(input, undefined as never, undefined as never);
  return t.ok ? ok(docFromText(t.value as string)) : t;
};

const toNumber: Converter = (input) => {
  const n =
    typeof input === 'number'
      ? input
      : typeof input === 'string' && input.trim()
        ? Number(input)
        : NaN;
  return Number.isFinite(n) ? ok(n) : fail(`expects a number, got ${show(input)}`);
};

function allowedList(field: FieldMeta): string {
  const values = (field.allowedValues ?? []).map(allowedLabel);
  const shown = values.slice(0, 30).join(', ');
  return values.length > 30 ? `${shown}, … (${values.length} in all)` : shown;
}

/**
 * One option, by value (or name/label) or id, checked against the allowed
 * values when JIRA lists them. Sends `{"value": v}`, or `{"id": id}` when
 * given an id (or when the option has no value text, as icon selects).
 */
function matchOption(field: FieldMeta, input: unknown, allowed?: unknown[]): Converted {
  const list = allowed ?? field.allowedValues;
  if (isRecord(input)) {
    const given = scalarText(input.id) ?? scalarText(input.value);
    if (given === undefined) return fail(`expects an option value or {id}, got ${show(input)}`);
    if (list && list.length > 0) {
      const found = list.some(
        (a) => isRecord(a) && (scalarText(a.id) === given || scalarText(a.value) === given),
      );
      if (!found)
        return fail(
          `${show(given)} is not an allowed value (allowed: ${allowedList({ ...field, allowedValues: list })})`,
        );
    }
    return ok(input.id !== undefined ? { id: scalarText(input.id) } : { value: given });
  }
  const text = scalarText(input);
  if (text === undefined || text === '') return fail(`expects an option value, got ${show(input)}`);
  if (!list || list.length === 0) return ok({ value: text });
  const byText = (exact: boolean): Record<string, unknown> | undefined =>
    list.find(
      (a): a is Record<string, unknown> =>
        isRecord(a) &&
        [a.value, a.name, a.label].some((v) => {
          const s = scalarText(v);
          return s !== undefined && (exact ? s === text : s.toLowerCase() === text.toLowerCase());
        }),
    );
  const hit = byText(true) ?? byText(false);
  if (hit) {
    const value = scalarText(hit.value);
    return value !== undefined ? ok({ value }) : ok({ id: scalarText(hit.id) });
  }
  const byId = list.find((a) => isRecord(a) && scalarText(a.id) === text);
  if (byId) return ok({ id: text });
  return fail(
    `${show(text)} is not an allowed value (allowed: ${allowedList({ ...field, allowedValues: list })})`,
  );
}

const toOption: Converter = (input, field) => matchOption(field, input);

/** Cascading select: "parent > child", {parent, child}, or JIRA's own shape. */
const toOptionWithChild: Converter = (input, field) => {
  let parent: unknown;
  let child: unknown;
  if (typeof input === 'string') {
    const parts = input.split('>').map((s) => s.trim());
    if (parts.length > 2) return fail(`expects "parent > child", got ${show(input)}`);
    [parent, child] = parts;
  } else if (isRecord(input)) {
    parent = input.parent ?? input.value ?? (input.id !== undefined ? { id: input.id } : undefined);
    child = isRecord(input.child) ? (input.child.value ?? { id: input.child.id }) : input.child;
  } else return fail(`expects "parent > child" or {parent, child}, got ${show(input)}`);
  const p = matchOption(field, parent);
  if (!p.ok) return p;
  if (child === undefined || child === '') return ok(p.value);
  const parentEntry = (field.allowedValues ?? []).find((a) => {
    const v = p.value as { value?: string; id?: string };
    return isRecord(a) && (scalarText(a.value) === v.value || scalarText(a.id) === v.id);
  });
  const children =
    isRecord(parentEntry) && Array.isArray(parentEntry.children) ? parentEntry.children : undefined;
  if (field.allowedValues && field.allowedValues.length > 0 && !children?.length) {
    return fail(`${show(allowedLabel(p.value))} has no child options, got child ${show(child)}`);
  }
  const c = matchOption(field, child, children);
  if (!c.ok) return fail(`child of ${show(allowedLabel(p.value))}: ${c.problem}`);
  return ok({ ...(p.value as object), child: c.value });
};

const toStrings: Converter = (input, field) =>
  each(input, (item) => {
    const text = scalarText(item);
    if (text === undefined || text === '') return fail(`expects a list of text, got ${show(item)}`);
    const labels = field.schema?.system === 'labels' || field.schema?.custom?.endsWith(':labels');
    if (labels && /\s/.test(text)) return fail(`label ${show(text)} must not contain spaces`);
    return ok(text);
  });

const toUser: Converter = (input, _field, options) => {
  if (isRecord(input) && (input.accountId ?? input.name ?? input.key) !== undefined)
    return ok(input);
  const text = scalarText(input);
  if (!text)
    return fail(
      `expects a user (${options.deployment === 'cloud' ? 'account id' : 'user name'}), got ${show(input)}`,
    );
  return ok(options.deployment === 'cloud' ? { accountId: text } : { name: text });
};

const toGroup: Converter = (input) => {
  if (isRecord(input) && (input.name ?? input.groupId) !== undefined) return ok(input);
  const text = scalarText(input);
  return text ? ok({ name: text }) : fail(`expects a group name, got ${show(input)}`);
};

/** Priority, version, component, ...: `{"id"}` when numeric, else `{"name"}`. */
const toNamed: Converter = (input, field) => {
  let out: Record<string, string>;
  if (isRecord(input) && (input.id ?? input.name) !== undefined) {
    out = input.id !== undefined ? { id: String(input.id) } : { name: String(input.name) };
  } else {
    const text = scalarText(input);
    if (!text) return fail(`expects an id or a name, got ${show(input)}`);
    out = NUMERIC.test(text) ? { id: text } : { name: text };
  }
  const list = field.allowedValues;
  if (list && list.length > 0) {
    const found = list.some(
      (a) =>
        isRecord(a) &&
        (out.id !== undefined
          ? scalarText(a.id) === out.id
          : scalarText(a.name)?.toLowerCase() === out.name?.toLowerCase()),
    );
    if (!found) {
      return fail(
        `${show(out.id ?? out.name)} is not an allowed value (allowed: ${allowedList(field)})`,
      );
    }
  }
  return ok(out);
};

/** Projects are named by id or key (JIRA does not take a project name). */
const toProject: Converter = (input) => {
  if (isRecord(input) && (input.id ?? input.key) !== undefined) return ok(input);
  const text = scalarText(input);
  if (!text) return fail(`expects a project id or key, got ${show(input)}`);
  return ok(NUMERIC.test(text) ? { id: text } : { key: text });
};

const ISSUE_KEY = /^[A-Za-z][A-Za-z0-9_]*-\d+$/;

const toIssueLink: Converter = (input) => {
  if (isRecord(input) && (input.id ?? input.key) !== undefined) return ok(input);
  const text = scalarText(input);
  if (text && NUMERIC.test(text)) return ok({ id: text });
  if (text && ISSUE_KEY.test(text)) return ok({ key: text });
  return fail(`expects an issue key (ABC-123) or id, got ${show(input)}`);
};

/** Sprint takes the sprint's numeric id, not an object. */
const toSprint: Converter = (input) => {
  const n = toNumber(
    Array.isArray(input) && input.length === 1 ? input[0] : input,
    undefined as never,
    undefined as never,
  );
  return n.ok && Number.isInteger(n.value)
    ? n
    : fail(`expects a sprint id (a number), got ${show(input)}`);
};

/** Epic Link takes the epic's key as a plain string. */
const toEpicLink: Converter = (input) => {
  const text = scalarText(input);
  return text && ISSUE_KEY.test(text)
    ? ok(text)
    : fail(`expects an epic key (ABC-123), got ${show(input)}`);
};

/** Unknown types go out unchanged: guessing a shape is how the seed broke dates. */
const passThrough: Converter = (input) => ok(input);

export const CONVERTERS: Readonly<Record<ValueKind, Converter>> = {
  string: toString,
  'rich-text': toRichText,
  number: toNumber,
  date: toDate,
  datetime: toDateTime,
  option: toOption,
  'option-with-child': toOptionWithChild,
  'option[]': (input, field, options) => each(input, (item) => toOption(item, field, options)),
  'string[]': toStrings,
  user: toUser,
  'user[]': (input, field, options) => each(input, (item) => toUser(item, field, options)),
  group: toGroup,
  'group[]': (input, field, options) => each(input, (item) => toGroup(item, field, options)),
  named: toNamed,
  'named[]': (input, field, options) => each(input, (item) => toNamed(item, field, options)),
  project: toProject,
  issuelink: toIssueLink,
  sprint: toSprint,
  'epic-link': toEpicLink,
  unknown: passThrough,
};

/** The value a create request carries for `field`, or why `input` cannot be one. */
export function convertValue(field: FieldMeta, input: unknown, options: ConvertOptions): Converted {
  return CONVERTERS[kindOf(field.schema, options.apiVersion)](input, field, options);
}

/** Read-only fields (JIRA lists operations and `set` is not one) cannot be given a value. */
export function isSettable(field: FieldMeta): boolean {
  return !field.operations || field.operations.includes('set');
}
