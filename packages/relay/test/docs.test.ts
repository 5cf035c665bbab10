import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ENV_SETTINGS } from '../src/config/load';
import { configSchema, instanceSchema, routeSchema } from '../src/config/schema';

// docs/configuration.md is the operator's reference: it must name every
// setting and environment variable, and the defaults it states must be the
// ones the code applies.

const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'configuration.md'), 'utf8');

/** Peel `.default()` / `.optional()` off a schema. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/** Dotted paths of every setting that is not itself an object of settings. */
function leafPaths(schema: z.ZodType, prefix = ''): string[] {
  const inner = unwrap(schema);
  if (!(inner instanceof z.ZodObject)) return [prefix];
  const shape = inner.shape as Record<string, z.ZodType>;
  return Object.entries(shape).flatMap(([key, child]) =>
    leafPaths(child, prefix ? `${prefix}.${key}` : key),
  );
}

/** Dotted paths of every key, objects included (`dispatch`, `dispatch.backoff`, ...). */
function allPaths(schema: z.ZodType, prefix = ''): string[] {
  const inner = unwrap(schema);
  if (!(inner instanceof z.ZodObject)) return [];
  const shape = inner.shape as Record<string, z.ZodType>;
  return Object.entries(shape).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...allPaths(child, path)];
  });
}

/** The table rows between `<!-- <name>:start -->` and `<!-- <name>:end -->`, as cells. */
function tableRows(name: string): string[][] {
  const start = doc.indexOf(`<!-- ${name}:start -->`);
  const end = doc.indexOf(`<!-- ${name}:end -->`);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`docs/configuration.md has no ${name} markers`);
  }
  return doc
    .slice(start, end)
    .split('\n')
    .filter((line) => line.trim().startsWith('|'))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim()),
    )
    .filter((cells) => !cells.every((cell) => /^:?-+:?$/.test(cell)))
    .slice(1); // the header row
}

/** `` `x` `` → `x`; anything else → undefined. */
function code(cell: string | undefined): string | undefined {
  return /^`([^`]+)`$/.exec(cell ?? '')?.[1];
}

/** A default cell: `(none)`, or a backticked value read as JSON when it parses. */
function defaultValue(cell: string): unknown {
  if (cell.startsWith('(none)')) return undefined;
  const text = /`([^`]*)`/.exec(cell)?.[1];
  if (text === undefined) throw new Error(`default cell without a value: ${cell}`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function valueAt(obj: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>(
      (cur, key) =>
        typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[key] : undefined,
      obj,
    );
}

describe('docs/configuration.md', () => {
  const defaults = configSchema.parse({});
  const rows = tableRows('defaults-table');
  const documented = new Map(rows.map((cells) => [code(cells[0]), cells[1] ?? '']));

  it('mentions every setting, nested ones included', () => {
    const missing = allPaths(configSchema).filter((path) => !doc.includes(`\`${path}\``));
    expect(missing).toEqual([]);
  });

  it('has one defaults-table row per setting, and no row for a setting that does not exist', () => {
    const keys = rows.map((cells) => code(cells[0]));
    expect([...keys].sort()).toEqual(leafPaths(configSchema).sort());
  });

  it.each(leafPaths(configSchema).map((path) => [path]))(
    'states the default of %s as the code applies it',
    (path) => {
      const cell = documented.get(path);
      expect(cell).toBeDefined();
      expect(defaultValue(cell as string)).toEqual(valueAt(defaults, path));
    },
  );

  it('states the same numeric defaults in its prose as in the table and the code', () => {
    // "`maxAttempts` times (default 12)", "(`dispatch.concurrency`, default 4)"
    const prose = doc.replace(
      /<!-- defaults-table:start -->[\s\S]*<!-- defaults-table:end -->/,
      '',
    );
    const mentions = [
      ...prose.matchAll(/`([A-Za-z][\w.]*)`[^`()\n]{0,30}\((?:`([\w.]+)`,\s*)?default (\d+)\)/g),
    ].map((m) => ({ key: (m[2] ?? m[1])!, stated: Number(m[3]) }));
    expect(mentions.map((m) => m.key)).toEqual(
      expect.arrayContaining([
        'maxAttempts',
        'dispatch.concurrency',
        'dispatch.pauseAfterFailures',
      ]),
    );
    const leaves = leafPaths(configSchema);
    for (const { key, stated } of mentions) {
      const candidates = leaves.filter((p) => p === key || p.endsWith(`.${key}`));
      expect([key, candidates]).toEqual([key, [expect.any(String)]]);
      expect([key, stated]).toEqual([key, valueAt(defaults, candidates[0]!)]);
    }
  });

  it('describes every key of a route, its match and its instances', () => {
    const routeKeys = allPaths(routeSchema);
    const instanceKeys = allPaths(instanceSchema);
    const missing = [...routeKeys, ...instanceKeys].filter((key) => !doc.includes(`\`${key}\``));
    expect(missing).toEqual([]);
  });

  it('maps every environment variable to the setting it sets', () => {
    const envRows = new Map(
      tableRows('env-table').map((cells) => [code(cells[0]), code(cells[1]) ?? cells[1]]),
    );
    for (const [name, setting] of Object.entries(ENV_SETTINGS)) {
      expect([name, envRows.get(name)]).toEqual([name, setting]);
    }
    expect(envRows.has('PLUGBOARD_CONFIG')).toBe(true);
    const extra = [...envRows.keys()].filter(
      (name) => name !== 'PLUGBOARD_CONFIG' && !((name ?? '') in ENV_SETTINGS),
    );
    expect(extra).toEqual([]);
  });

  it('names no PLUGBOARD_ variable the relay does not read, except the Kubernetes ones it explains', () => {
    const read = new Set<string>([...Object.keys(ENV_SETTINGS), 'PLUGBOARD_CONFIG']);
    const mentioned = new Set(doc.match(/\bPLUGBOARD_[A-Z0-9_]+/g) ?? []);
    const unknown = [...mentioned].filter(
      (name) => !read.has(name) && !/^PLUGBOARD_(PORT|SERVICE_)/.test(name),
    );
    expect(unknown).toEqual([]);
    // ...and the reason there is no PLUGBOARD_PORT stays documented.
    expect(doc).toMatch(/no `PLUGBOARD_PORT`/);
    expect(doc).toContain('enableServiceLinks');
  });

  it('documents the config-file lookup order', () => {
    const order = ['`--config <file>`', '`PLUGBOARD_CONFIG`', '`./plugboard.yaml`'].map((s) =>
      doc.indexOf(s),
    );
    expect(order.every((i) => i !== -1)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });
});

describe('packages/relay/README.md', () => {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  // The built-in `log`, and one notifier per @plugboard/notifier-* dependency.
  const shipped = [
    'log',
    ...Object.keys(manifest.dependencies)
      .filter((name) => name.startsWith('@plugboard/notifier-'))
      .map((name) => name.slice('@plugboard/notifier-'.length)),
  ];

  it('says how many notifiers the relay ships, and names each', () => {
    const words = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    const count = /ships (\w+) notifiers/.exec(readme)?.[1];
    expect(count).toBe(words[shipped.length]);
    for (const slug of shipped) expect(readme).toContain(`\`${slug}\``);
  });
});
