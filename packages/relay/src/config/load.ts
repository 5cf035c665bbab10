import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from '@plugboard/sdk';
import { configSchema, type RelayConfig } from './schema';

/** Environment variables the relay reads, and the setting each one sets. */
export const ENV_SETTINGS = {
  PLUGBOARD_LISTEN: 'listen',
  PLUGBOARD_DATA_DIR: 'dataDir',
  PLUGBOARD_SENTRY_CLIENT_SECRET: 'sentry.clientSecret',
  PLUGBOARD_LEGACY_TOKEN: 'legacy.token',
  PLUGBOARD_API_TOKEN: 'api.token',
  PLUGBOARD_LOG_LEVEL: 'log.level',
  SENTRY_DSN: 'sentryDsn',
  PLUGBOARD_DATABASE_URL: 'databaseUrl',
  PLUGBOARD_SESSION_SECRET: 'sso.sessionSecret',
} as const;

/** Read from the working directory when neither --config nor PLUGBOARD_CONFIG is given. */
export const DEFAULT_CONFIG_FILE = 'plugboard.yaml';

/** Settings whose values are never shown in full. */
const SECRET_PATHS = new Set([
  'sentry.clientSecret',
  'legacy.token',
  'api.token',
  'sentryDsn',
  'databaseUrl',
  'sso.sessionSecret',
]);

export interface ListenAddress {
  host: string;
  port: number;
}

export interface LoadedConfig {
  config: RelayConfig;
  listen: ListenAddress;
  /** Absolute path of the file read, if any. */
  file?: string;
  /** Where each overridden setting came from (`PLUGBOARD_LISTEN`, the file). */
  origins: Record<string, string>;
  /** Every secret value, so logs and errors can redact them. */
  secrets: Set<string>;
}

export interface LoadOptions {
  /** Config file; falls back to `PLUGBOARD_CONFIG`, then `./plugboard.yaml` if present. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Replace `${...}` references that cannot be resolved with a placeholder
   * instead of failing: for commands that only list things (`plugboard
   * plugins`) and must work without the relay's secrets.
   */
  lenientReferences?: boolean;
}

const UNRESOLVED_PLACEHOLDER = 'unresolved-reference-placeholder';

/** `abcd…` style masking: enough to recognise, never enough to use. */
export function maskValue(value: string): string {
  if (value.length <= 4) return '****';
  return `${value.slice(0, 2)}****(${value.length} chars)`;
}

const REF = /\$\{(env|file):([^}]+)\}/g;

/**
 * Parse `host:port`, `:port` or `port`. Kubernetes injects
 * `<SERVICE>_PORT=tcp://10.0.0.12:8080` for a Service named like the app,
 * which is why the relay never reads `PLUGBOARD_PORT`; a value of that shape
 * gets a hint instead of a puzzling parse error.
 */
export function parseListen(value: string, source: string): ListenAddress {
  const fail = (expected: string, hint?: string): never => {
    throw new ConfigError(
      'PB_CONFIG_INVALID',
      // An environment variable is named as such; anything else is the
      // `listen` setting, with the file it came from.
      (/^[A-Z][A-Z0-9_]*$/.test(source)
        ? `Invalid ${source}=${JSON.stringify(value)}`
        : `Invalid listen=${JSON.stringify(value)} (from ${source})`) +
        `: expected ${expected}` +
        (hint ? `. Hint: ${hint}` : ''),
      { source, path: 'listen', value, expected, ...(hint ? { hint } : {}) },
    );
  };
  const expected = 'a port (8080) or host:port (0.0.0.0:8080, [::]:8080)';
  const trimmed = value.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    fail(
      expected,
      'this looks like a Kubernetes service link variable (<SERVICE>_PORT=tcp://ip:port), ' +
        "injected because a Service shares the relay's name; set PLUGBOARD_LISTEN (or listen) to a port " +
        'such as 0.0.0.0:8080, and set enableServiceLinks: false in the pod spec',
    );
  }
  let host = '127.0.0.1';
  let portText = trimmed;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(trimmed);
  if (m) {
    host = m[1] ?? (m[2] || '0.0.0.0');
    portText = m[3]!;
  }
  if (!/^\d+$/.test(portText)) fail(expected);
  const port = Number(portText);
  if (port < 0 || port > 65535) fail(`${expected}, with a port from 0 to 65535`);
  return { host, port };
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function getPath(obj: unknown, path: (string | number | symbol)[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string | number, unknown>)[p as string];
  }
  return cur;
}

/**
 * Replace `${env:NAME}` and `${file:path}` in every string of the tree.
 * Resolved values are recorded as secrets: references exist to keep secrets
 * out of the file.
 */
function resolveRefs(
  value: unknown,
  path: string,
  ctx: { env: NodeJS.ProcessEnv; baseDir: string; secrets: Set<string>; lenient: boolean },
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    return value.replace(REF, (_all, kind: string, name: string) => {
      let resolved: string | undefined;
      if (ctx.lenient) {
        const v = kind === 'env' ? ctx.env[name] : undefined;
        if (v === undefined || v === '') return UNRESOLVED_PLACEHOLDER;
      }
      if (kind === 'env') {
        resolved = ctx.env[name];
        if (resolved === undefined || resolved === '') {
          throw new ConfigError(
            'PB_CONFIG_SECRET_UNRESOLVED',
            `${path}: \${env:${name}} is not set in the environment`,
            { path, expected: `environment variable ${name}` },
          );
        }
      } else {
        const file = isAbsolute(name) ? name : resolve(ctx.baseDir, name);
        try {
          resolved = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
        } catch (err) {
          throw new ConfigError(
            'PB_CONFIG_SECRET_UNRESOLVED',
            `${path}: \${file:${name}} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
            { path, expected: `a readable file at ${name}` },
            { cause: err },
          );
        }
      }
      if (resolved.length > 0) ctx.secrets.add(resolved);
      return resolved;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveRefs(v, `${path}[${i}]`, ctx));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = resolveRefs(v, path ? `${path}.${k}` : k, ctx);
    }
    return out;
  }
  return value;
}

function formatPath(path: (string | number | symbol)[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/** Read the YAML file (if any), apply environment variables, validate. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  // `./plugboard.yaml` is picked up when nothing else names a file, so CLI
  // commands run next to the relay's config need no flag.
  const fileArg =
    options.file ??
    (env.PLUGBOARD_CONFIG || undefined) ??
    (existsSync(resolve(cwd, DEFAULT_CONFIG_FILE)) ? DEFAULT_CONFIG_FILE : undefined);
  const origins: Record<string, string> = {};
  const secrets = new Set<string>();
  let raw: Record<string, unknown> = {};
  let file: string | undefined;
  if (fileArg) {
    file = resolve(cwd, fileArg);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        'PB_CONFIG_FILE_UNREADABLE',
        `cannot read config file ${fileArg}${options.file ? '' : ' (from PLUGBOARD_CONFIG)'}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { source: options.file ? '--config' : 'PLUGBOARD_CONFIG', value: fileArg },
        { cause: err },
      );
    }
    const doc = parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      throw new ConfigError(
        'PB_CONFIG_FILE_UNREADABLE',
        `config file ${fileArg} is not valid YAML: ${first.message}`,
        { source: fileArg },
        { cause: first },
      );
    }
    const parsed: unknown = doc.toJS();
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new ConfigError(
          'PB_CONFIG_INVALID',
          `config file ${fileArg} must hold a mapping of settings at the top level`,
          { source: fileArg },
        );
      }
      raw = parsed as Record<string, unknown>;
    }
    for (const key of Object.keys(raw)) origins[key] = fileArg;
  }
  const baseDir = file ? resolve(file, '..') : cwd;
  raw = resolveRefs(raw, '', {
    env,
    baseDir,
    secrets,
    lenient: options.lenientReferences === true,
  }) as Record<string, unknown>;

  for (const [name, path] of Object.entries(ENV_SETTINGS)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, path, value);
    origins[path] = name;
    if (SECRET_PATHS.has(path)) secrets.add(value);
  }
  for (const path of SECRET_PATHS) {
    const v = getPath(raw, path.split('.'));
    if (typeof v === 'string') {
      secrets.add(v);
      // A URL's password can surface on its own (driver errors).
      const password = /^[a-z]+:\/\/[^:/@]*:([^@/]+)@/i.exec(v)?.[1];
      if (password) secrets.add(decodeURIComponent(password));
    }
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string') secrets.add(s);
  }

  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const path = formatPath(issue.path);
      const origin = origins[path] ?? fileArg ?? 'defaults';
      const value = getPath(raw, issue.path);
      const shown =
        value === undefined
          ? ''
          : SECRET_PATHS.has(path) || (typeof value === 'string' && secrets.has(value))
            ? ` (value ${maskValue(String(value))})`
            : typeof value === 'object'
              ? ''
              : ` (value ${JSON.stringify(value)})`;
      return `${path || '(top level)'} from ${origin}: ${issue.message}${shown}`;
    });
    const first = result.error.issues[0]!;
    throw new ConfigError(
      'PB_CONFIG_INVALID',
      `invalid configuration:\n  ${lines.join('\n  ')}`,
      {
        path: formatPath(first.path),
        source: origins[formatPath(first.path)] ?? fileArg ?? 'defaults',
      },
      // No `cause`: the message already lists every issue, one per line.
    );
  }
  const config = result.data;
  const listen = parseListen(config.listen, origins.listen ?? 'the default');
  config.dataDir = resolve(cwd, config.dataDir);

  const names = new Set<string>();
  for (const [i, route] of config.routes.entries()) {
    if (names.has(route.name)) {
      throw new ConfigError(
        'PB_CONFIG_INVALID',
        `routes[${i}].name: duplicate route name "${route.name}"`,
        {
          path: `routes[${i}].name`,
          value: route.name,
        },
      );
    }
    names.add(route.name);
    const instanceNames = new Set<string>();
    for (const [j, inst] of route.instances.entries()) {
      const name = inst.name ?? inst.plugin;
      if (instanceNames.has(name)) {
        throw new ConfigError(
          'PB_CONFIG_INVALID',
          `routes[${i}] (${route.name}) instances[${j}]: duplicate instance name "${name}"; give each instance of the same plugin a distinct "name"`,
          { path: `routes[${i}].instances[${j}].name`, value: name },
        );
      }
      instanceNames.add(name);
    }
  }
  const loaded: LoadedConfig = { config, listen, origins, secrets };
  if (file) loaded.file = file;
  return loaded;
}
