import type { Notification } from '@plugboard/sdk';
import { parseFields } from './config';
import { convertValue, isSettable } from './convert';
import type { ConvertOptions } from './convert';
import { allowedLabel, describeType } from './meta';
import type { CreateMeta, FieldMeta } from './meta';
import { inert, wikiText } from './markup';
import { hasVariables, render } from './template';

/** Fields the notifier fills itself; JIRA defaults the reporter to the token's account. */
export const NOTIFIER_FILLED = new Set([
  'summary',
  'description',
  'project',
  'issuetype',
  'reporter',
]);

export interface ResolvedFields {
  /** Field id → value for the create request. */
  values: Record<string, unknown>;
  problems: string[];
}

function label(field: FieldMeta): string {
  return field.name && field.name !== field.id ? `${field.id} (${field.name})` : field.id;
}

function allowedHint(field: FieldMeta): string {
  const values = (field.allowedValues ?? []).map(allowedLabel);
  if (values.length === 0) return '';
  return ` (allowed: ${values.slice(0, 30).join(', ')}${values.length > 30 ? ', …' : ''})`;
}

/** A configured name → the field: by id first, then by name, case-insensitively. */
export function findField(
  meta: CreateMeta,
  name: string,
): { field: FieldMeta } | { problem: string } {
  const byId = meta.fields.find((f) => f.id === name);
  if (byId) return { field: byId };
  const lower = name.toLowerCase();
  const byName = meta.fields.filter(
    (f) => f.name.toLowerCase() === lower || f.id.toLowerCase() === lower,
  );
  if (byName.length === 1 && byName[0]) return { field: byName[0] };
  if (byName.length > 1) {
    return {
      problem: `"${name}" names ${byName.length} fields (${byName.map((f) => f.id).join(', ')}): use the field id`,
    };
  }
  return {
    problem:
      `no field "${name}" on ${meta.projectKey} / ${meta.issueType.name} ` +
      `(it has: ${meta.fields.map(label).join(', ')}; run \`plugboard-jira fields\` to list them)`,
  };
}

/**
 * The configured `fields`, checked against the metadata and shaped by each
 * field's schema. Without a notification (start-up check) values holding
 * `{{variables}}` are only checked for existence and settability.
 */
export function resolveFields(
  meta: CreateMeta,
  fieldsSetting: string | undefined,
  options: ConvertOptions,
  notification?: Notification,
): ResolvedFields {
  const parsed = parseFields(fieldsSetting);
  const out: ResolvedFields = { values: {}, problems: [...parsed.problems] };
  for (const { name, value } of parsed.values) {
    const found = findField(meta, name);
    if ('problem' in found) {
      out.problems.push(`fields.${name}: ${found.problem}`);
      continue;
    }
    const field = found.field;
    if (!isSettable(field)) {
      out.problems.push(
        `fields.${name}: ${label(field)} is read-only for ${meta.issueType.name} (operations: ${(field.operations ?? []).join(', ') || 'none'})`,
      );
      continue;
    }
    if (field.id === 'project' || field.id === 'issuetype') {
      out.problems.push(`fields.${name}: set by \`projectKey\` / \`issueType\`, not in \`fields\``);
      continue;
    }
    let input: unknown = value;
    if (typeof value === 'string' && hasVariables(value)) {
      if (!notification) {
        out.values[field.id] = undefined;
        continue;
      }
      // Event text in a text field is data: escaped for wiki markup (v2, where
      // the field renders it) or inert (v3 and plain values). Other types
      // (options, labels, numbers, dates) are matched, never rendered.
      const escape =
        field.schema?.type !== 'string' ? undefined : options.apiVersion === 2 ? wikiText : inert;
      input = render(value, notification, escape);
    }
    // A template that rendered empty leaves the field to JIRA's default.
    if (input === '' || input === null || input === undefined) {
      if (!notification) out.values[field.id] = undefined;
      continue;
    }
    const converted = convertValue(field, input, options);
    if (!converted.ok) {
      out.problems.push(
        `fields.${name}: ${label(field)} [${describeType(field)}]: ${converted.problem}`,
      );
      continue;
    }
    out.values[field.id] = converted.value;
  }
  for (const field of meta.fields) {
    if (!field.required || field.hasDefaultValue || NOTIFIER_FILLED.has(field.id)) continue;
    if (field.id in out.values) continue;
    out.problems.push(
      `${label(field)} is required for ${meta.projectKey} / ${meta.issueType.name} and has no value: add it to \`fields\`${allowedHint(field)}`,
    );
  }
  return out;
}
