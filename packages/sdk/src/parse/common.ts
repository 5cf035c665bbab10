import { createHash } from 'node:crypto';
import type {
  Notification,
  NotificationActor,
  NotificationProject,
  ParseResult,
  SentryResource,
} from '../model';

// Readers for untrusted JSON. Payloads come from the network: every field may
// be absent, null or of another type, and the parser must never throw on them.

export type JsonObject = Record<string, unknown>;
export type ParseFailure = Extract<ParseResult, { ok: false }>;

export function isRecord(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function record(value: unknown): JsonObject | undefined {
  return isRecord(value) ? value : undefined;
}

/** A non-blank string. Sentry sends `""` and `null` for "no value"; both read as absent. */
export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

/** An identifier: Sentry sends ids as strings in some payloads and as numbers in others. */
export function ident(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** A non-negative integer; issue counts arrive as strings (`"count": "1"`). */
export function count(value: unknown): number | undefined {
  if (typeof value === 'number')
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value === 'string' && /^\d{1,15}$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

export function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => text(v) !== undefined) : [];
}

/** Drop keys whose value is undefined, so optional fields are absent rather than present-and-undefined. */
export function defined<T extends object>(obj: T): T {
  const target = obj as Record<string, unknown>;
  for (const key of Object.keys(target)) if (target[key] === undefined) delete target[key];
  return obj;
}

/** Short content hash for dedup keys where the content itself is long or free text. */
export function shortHash(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16);
}

export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

export function invalid(
  resource: string,
  action: string | undefined,
  detail: string,
): ParseFailure {
  return defined({
    ok: false as const,
    reason: 'invalid_payload' as const,
    detail,
    resource,
    action,
  });
}

export function unsupported(
  resource: string,
  action: string | undefined,
  detail: string,
): ParseFailure {
  return defined({
    ok: false as const,
    reason: 'unsupported_resource' as const,
    detail,
    resource,
    action,
  });
}

/** What every Integration Platform body carries next to `data`. */
export interface Envelope {
  resource: SentryResource;
  action: string;
  installationUuid?: string;
  actor?: NotificationActor;
}

/** One `Sentry-Hook-Resource`: the actions it accepts and how to read its `data`. */
export interface ResourceHandler {
  actions: readonly string[];
  parse(data: JsonObject, envelope: Envelope): ParseResult;
}

type Derived = 'resource' | 'action' | 'kind' | 'installationUuid' | 'actor';
type Defaulted = 'triggeringRules' | 'tags' | 'links' | 'message';
export type NotificationFields = Omit<Notification, Derived | Defaulted> &
  Partial<Pick<Notification, Defaulted>>;

export function success(envelope: Envelope, fields: NotificationFields): ParseResult {
  const notification: Notification = {
    resource: envelope.resource,
    action: envelope.action,
    kind: `${envelope.resource}.${envelope.action}`,
    triggeringRules: [],
    tags: {},
    message: '',
    ...fields,
    links: defined({ ...fields.links }),
    installationUuid: envelope.installationUuid,
    actor: envelope.actor,
  };
  return { ok: true, notification: defined(notification) };
}

export function readActor(value: unknown): NotificationActor | undefined {
  const actor = record(value);
  const id = ident(actor?.id);
  if (!actor || id === undefined) return undefined;
  return { id, name: text(actor.name) ?? id, type: text(actor.type) ?? 'user' };
}

/** `{id, name, slug, platform}` as in a serialised issue. */
export function readProject(value: unknown): NotificationProject | undefined {
  const project = record(value);
  const slug = text(project?.slug);
  if (!project || slug === undefined) return undefined;
  return defined({
    id: ident(project.id),
    slug,
    name: text(project.name) ?? slug,
    platform: text(project.platform),
  });
}

/** Payloads that name a project only by slug (comments, metric alerts, events). */
export function projectFromSlug(
  slug: string | undefined,
  id?: string,
): NotificationProject | undefined {
  return slug === undefined ? undefined : defined({ id, slug, name: slug });
}

/**
 * Sentry event tags as a flat map. Events carry `[[key, value], ...]`; the
 * event API's `[{key, value}]` and SDK-style `{key: value}` are read too.
 * `Object.fromEntries` keeps a tag named `__proto__` as a plain key.
 */
export function flattenTags(value: unknown): Record<string, string> {
  const entries: [string, string][] = [];
  const push = (key: unknown, val: unknown): void => {
    if (typeof key !== 'string' || key === '') return;
    if (typeof val === 'string') entries.push([key, val]);
    else if (typeof val === 'number' || typeof val === 'boolean') entries.push([key, String(val)]);
  };
  if (Array.isArray(value)) {
    for (const item of value) {
      if (Array.isArray(item)) push(item[0], item[1]);
      else if (isRecord(item)) push(item.key, item.value);
    }
  } else if (isRecord(value)) {
    for (const [key, val] of Object.entries(value)) push(key, val);
  }
  return Object.fromEntries(entries);
}
