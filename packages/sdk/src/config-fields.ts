import type { ConfigField, PluginConfig } from './plugin';

export interface FieldProblem {
  /** Field name (`name` of the ConfigField), or the unknown key. */
  field: string;
  problem: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function choiceValues(field: ConfigField): string[] {
  return (field.choices ?? []).map((c) => (typeof c === 'string' ? c : c.value));
}

/**
 * Check instance values against a plugin's fields: required values present,
 * each value of its field's type, no unknown keys. Applies defaults and
 * coerces strings from YAML/env (`"5"` → 5, `"true"` → true).
 */
export function validatePluginConfig(
  fields: readonly ConfigField[],
  input: PluginConfig | undefined,
): { config: PluginConfig; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const config: PluginConfig = {};
  const raw = input ?? {};
  const known = new Set(fields.map((f) => f.name));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) {
      problems.push({
        field: key,
        problem: `unknown setting (known: ${[...known].join(', ') || 'none'})`,
      });
    }
  }
  for (const field of fields) {
    let value = raw[field.name];
    if (value === undefined || value === null || value === '') {
      if (field.default !== undefined) value = field.default;
      else {
        if (field.required !== false) problems.push({ field: field.name, problem: 'is required' });
        continue;
      }
    }
    const checked = checkValue(field, value);
    if (typeof checked === 'string') problems.push({ field: field.name, problem: checked });
    else config[field.name] = checked.value;
  }
  return { config, problems };
}

function checkValue(field: ConfigField, value: unknown): { value: unknown } | string {
  switch (field.type) {
    case 'number': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n))
        return `must be a number, got ${describe(value)}`;
      return { value: n };
    }
    case 'bool': {
      if (typeof value === 'boolean') return { value };
      if (value === 'true' || value === '1') return { value: true };
      if (value === 'false' || value === '0') return { value: false };
      return `must be true or false, got ${describe(value)}`;
    }
    case 'url': {
      if (typeof value !== 'string') return `must be a URL string, got ${describe(value)}`;
      try {
        const u = new URL(value);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') {
          return `must be an http(s) URL, got protocol ${u.protocol}`;
        }
      } catch {
        return `must be an absolute URL, got ${describe(value)}`;
      }
      return { value };
    }
    case 'email':
      if (typeof value !== 'string' || !EMAIL.test(value)) {
        return `must be an e-mail address, got ${describe(value)}`;
      }
      return { value };
    case 'select': {
      const allowed = choiceValues(field);
      const v = typeof value === 'number' ? String(value) : value;
      if (typeof v !== 'string' || !allowed.includes(v)) {
        return `must be one of ${allowed.join(', ')}, got ${describe(value)}`;
      }
      return { value: v };
    }
    case 'secret':
      // Never echo a secret back, even in a validation message.
      if (typeof value !== 'string') return 'must be a string (value hidden)';
      return { value };
    case 'text':
    case 'textarea':
    default:
      if (typeof value === 'number' || typeof value === 'boolean') return { value: String(value) };
      if (typeof value !== 'string') return `must be text, got ${describe(value)}`;
      return { value };
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

/**
 * A copy of the config with every `secret` field replaced by a marker, for
 * logs and API answers (`{ hasSavedValue: true }` style).
 */
export function maskSecrets(
  fields: readonly ConfigField[],
  config: PluginConfig,
): Record<string, unknown> {
  const secrets = new Set(fields.filter((f) => f.type === 'secret').map((f) => f.name));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    out[k] = secrets.has(k) ? { hasSavedValue: v !== undefined && v !== null && v !== '' } : v;
  }
  return out;
}
