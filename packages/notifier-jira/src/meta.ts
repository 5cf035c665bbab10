/**
 * JIRA create-metadata, normalised. JIRA answers in three shapes (the legacy
 * all-in-one `createmeta?expand=projects.issuetypes.fields` keyed by field id,
 * the paged Data Center 9 / Cloud `createmeta/{project}/issuetypes/{id}` list,
 * and Cloud's `{fields: [...]}` page); everything past the client works on
 * this one shape.
 */

/** A field's `schema` as JIRA sends it. */
export interface FieldSchema {
  type: string;
  items?: string;
  custom?: string;
  system?: string;
  customId?: number;
}

export interface FieldMeta {
  /** The field id: `summary`, `duedate`, `customfield_10045`. */
  id: string;
  name: string;
  required: boolean;
  hasDefaultValue: boolean;
  /** Missing when JIRA did not say (old servers, trimmed answers). */
  schema?: FieldSchema;
  /** `set`, `add`, `remove`, ...; missing when JIRA did not say. */
  operations?: string[];
  allowedValues?: unknown[];
}

export interface IssueTypeRef {
  id: string;
  name: string;
  subtask?: boolean;
}

export interface CreateMeta {
  projectKey: string;
  issueType: IssueTypeRef;
  fields: FieldMeta[];
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function readSchema(value: unknown): FieldSchema | undefined {
  if (!isRecord(value) || typeof value.type !== 'string') return undefined;
  const schema: FieldSchema = { type: value.type };
  if (typeof value.items === 'string') schema.items = value.items;
  if (typeof value.custom === 'string') schema.custom = value.custom;
  if (typeof value.system === 'string') schema.system = value.system;
  if (typeof value.customId === 'number') schema.customId = value.customId;
  return schema;
}

/** One field entry of any shape; `fallbackId` is its key in a by-id map. */
export function readField(raw: unknown, fallbackId?: string): FieldMeta | undefined {
  if (!isRecord(raw)) return undefined;
  const id = str(raw.fieldId) ?? str(raw.key) ?? fallbackId;
  if (!id) return undefined;
  const field: FieldMeta = {
    id,
    name: str(raw.name) ?? id,
    required: raw.required === true,
    hasDefaultValue: raw.hasDefaultValue === true,
  };
  const schema = readSchema(raw.schema);
  if (schema) field.schema = schema;
  if (Array.isArray(raw.operations)) {
    field.operations = raw.operations.filter((o): o is string => typeof o === 'string');
  }
  if (Array.isArray(raw.allowedValues)) field.allowedValues = raw.allowedValues;
  return field;
}

/** Fields from a by-id map (legacy createmeta, Cloud field maps) or a list (paged endpoints). */
export function readFields(raw: unknown): FieldMeta[] {
  const out: FieldMeta[] = [];
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const field = readField(entry);
      if (field) out.push(field);
    }
  } else if (isRecord(raw)) {
    for (const [id, entry] of Object.entries(raw)) {
      const field = readField(entry, id);
      if (field) out.push(field);
    }
  }
  return out;
}

export function readIssueType(raw: unknown): IssueTypeRef | undefined {
  if (!isRecord(raw)) return undefined;
  const id = str(raw.id);
  const name = str(raw.name);
  if (!id || !name) return undefined;
  return { id, name, ...(typeof raw.subtask === 'boolean' ? { subtask: raw.subtask } : {}) };
}

/**
 * The issue type a setting names: by id first (ids are stable, names are
 * renamed and translated), then by name, case-insensitively.
 */
export function pickIssueType(types: IssueTypeRef[], wanted: string): IssueTypeRef | undefined {
  const w = wanted.trim();
  return (
    types.find((t) => t.id === w) ?? types.find((t) => t.name.toLowerCase() === w.toLowerCase())
  );
}

/**
 * The legacy answer `{projects: [{key, issuetypes: [{id, name, fields}]}]}`,
 * for one project and issue type; undefined when either is missing.
 */
export function readLegacyCreateMeta(
  raw: unknown,
  projectKey: string,
  issueType: string,
): CreateMeta | { missing: 'project' | 'issuetype'; issueTypes: IssueTypeRef[] } {
  const projects = isRecord(raw) && Array.isArray(raw.projects) ? raw.projects : [];
  const project = projects.find(
    (p): p is Json =>
      isRecord(p) &&
      (str(p.key)?.toLowerCase() === projectKey.toLowerCase() || p.id === projectKey),
  );
  if (!project) return { missing: 'project', issueTypes: [] };
  const rawTypes = Array.isArray(project.issuetypes) ? project.issuetypes : [];
  const types = rawTypes.map((t) => readIssueType(t)).filter((t): t is IssueTypeRef => !!t);
  const picked = pickIssueType(types, issueType);
  if (!picked) return { missing: 'issuetype', issueTypes: types };
  const rawType = rawTypes.find((t) => isRecord(t) && str(t.id) === picked.id) as Json | undefined;
  return {
    projectKey: str(project.key) ?? projectKey,
    issueType: picked,
    fields: readFields(rawType?.fields),
  };
}

/** A short text form of an allowed value: its `value`, `name`, `label`, `key` or `id`. */
export function allowedLabel(value: unknown): string {
  if (!isRecord(value)) return String(value);
  return (
    str(value.value) ??
    str(value.name) ??
    str(value.label) ??
    str(value.key) ??
    str(value.id) ??
    JSON.stringify(value)
  );
}

/** `type`, or `array<items>`, plus the custom type's short name. */
export function describeType(field: FieldMeta): string {
  const s = field.schema;
  if (!s) return 'unknown';
  const base = s.type === 'array' ? `array<${s.items ?? 'unknown'}>` : s.type;
  const custom = s.custom ? ` (${s.custom.split(':').pop()})` : '';
  return base + custom;
}

/**
 * A table an operator reads to write the `fields` setting: id, name, type,
 * required, settable, and the allowed values where JIRA lists them.
 */
export function describeFields(meta: CreateMeta | FieldMeta[]): string {
  const fields = Array.isArray(meta) ? meta : meta.fields;
  const rows = [...fields]
    .sort((a, b) => Number(b.required) - Number(a.required) || a.id.localeCompare(b.id))
    .map((f) => {
      const allowed = f.allowedValues?.length
        ? f.allowedValues
            .slice(0, 20)
            .map((v) => {
              const children =
                isRecord(v) && Array.isArray(v.children) && v.children.length > 0
                  ? ` > ${v.children.map(allowedLabel).join(' | ')}`
                  : '';
              return allowedLabel(v) + children;
            })
            .join(', ') + (f.allowedValues.length > 20 ? `, … (${f.allowedValues.length})` : '')
        : '';
      const settable = !f.operations || f.operations.includes('set') ? '' : ' (read-only)';
      return [
        f.id,
        f.name,
        describeType(f),
        (f.required ? (f.hasDefaultValue ? 'required (has default)' : 'required') : 'optional') +
          settable,
        allowed,
      ];
    });
  const header = ['id', 'name', 'type', 'required', 'allowed values'];
  const widths = header.map((h, i) =>
    Math.min(48, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))),
  );
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const title = Array.isArray(meta)
    ? ''
    : `${meta.projectKey} / ${meta.issueType.name} (issue type id ${meta.issueType.id})\n`;
  return title + [line(header), ...rows.map(line)].join('\n') + '\n';
}
