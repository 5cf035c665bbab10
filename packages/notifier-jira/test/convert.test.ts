import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  convertValue,
  describeFields,
  kindOf,
  readFields,
  readLegacyCreateMeta,
  resolveFields,
} from '@plugboard/notifier-jira';
import type { ConvertOptions, CreateMeta, FieldMeta, ValueKind } from '@plugboard/notifier-jira';

const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8')) as unknown;

const CLOUD: ConvertOptions = { deployment: 'cloud', apiVersion: 2 };
const SERVER: ConvertOptions = { deployment: 'server', apiVersion: 2 };

const sentryLegacy = readLegacyCreateMeta(
  fixture('sentry_createmeta_response.json'),
  'EX',
  'Bug',
) as CreateMeta;
const deskproFields = readFields(fixture('deskpro_cloud_v3_createmeta_fields_map.json'));

function field(meta: FieldMeta[], id: string): FieldMeta {
  const f = meta.find((x) => x.id === id);
  if (!f) throw new Error(`fixture has no ${id}`);
  return f;
}

/** A sample input per kind, and what a create request must carry for it. */
function sampleFor(
  kind: ValueKind,
  f: FieldMeta,
  o: ConvertOptions,
): { input: unknown; expected: unknown } {
  const firstAllowed = (f.allowedValues ?? [])[0] as Record<string, unknown> | undefined;
  switch (kind) {
    case 'string':
      return { input: 'text', expected: 'text' };
    case 'rich-text':
      return {
        input: 'text',
        expected: {
          type: 'doc',
          version: 1,
          content: [{ type: 'paragraph', content: [{ type: 'text', text: 'text' }] }],
        },
      };
    case 'number':
      return { input: '42.5', expected: 42.5 };
    case 'date':
      return { input: '2015-07-31', expected: '2015-07-31' };
    case 'datetime':
      return { input: '2011-10-19T10:29:29.908+11:00', expected: '2011-10-19T10:29:29.908+1100' };
    case 'option':
    case 'option[]': {
      const one = firstAllowed
        ? firstAllowed.value !== undefined
          ? { value: firstAllowed.value }
          : { id: String(firstAllowed.id) }
        : { value: 'x' };
      const text = firstAllowed
        ? String(firstAllowed.value ?? firstAllowed.label ?? firstAllowed.id)
        : 'x';
      return kind === 'option'
        ? { input: text, expected: one }
        : { input: [text], expected: [one] };
    }
    case 'option-with-child': {
      const parent = firstAllowed as { value: string; children?: Array<{ value: string }> };
      const child = parent.children?.[0];
      return child
        ? {
            input: `${parent.value} > ${child.value}`,
            expected: { value: parent.value, child: { value: child.value } },
          }
        : { input: parent.value, expected: { value: parent.value } };
    }
    case 'string[]':
      return { input: 'a, b', expected: ['a', 'b'] };
    case 'user':
      return {
        input: 'u1',
        expected: o.deployment === 'cloud' ? { accountId: 'u1' } : { name: 'u1' },
      };
    case 'user[]':
      return {
        input: ['u1'],
        expected: o.deployment === 'cloud' ? [{ accountId: 'u1' }] : [{ name: 'u1' }],
      };
    case 'group':
      return { input: 'devs', expected: { name: 'devs' } };
    case 'group[]':
      return { input: ['devs'], expected: [{ name: 'devs' }] };
    case 'named':
    case 'named[]': {
      const id = firstAllowed ? String(firstAllowed.id) : '10000';
      return kind === 'named'
        ? { input: id, expected: { id } }
        : { input: [id], expected: [{ id }] };
    }
    case 'project':
      return { input: 'EX', expected: { key: 'EX' } };
    case 'issuelink':
      return { input: 'EX-1', expected: { key: 'EX-1' } };
    case 'sprint':
      return { input: '7', expected: 7 };
    case 'epic-link':
      return { input: 'EX-1', expected: 'EX-1' };
    case 'unknown':
      return { input: { team: 'abc' }, expected: { team: 'abc' } };
  }
}

const FIXTURE_FIELDS: Array<[string, FieldMeta, ConvertOptions]> = [
  ...sentryLegacy.fields.map((f): [string, FieldMeta, ConvertOptions] => [
    'sentry legacy (v2)',
    f,
    CLOUD,
  ]),
  ...sentryLegacy.fields.map((f): [string, FieldMeta, ConvertOptions] => [
    'sentry legacy as server',
    f,
    SERVER,
  ]),
  ...deskproFields.map((f): [string, FieldMeta, ConvertOptions] => [
    'deskpro cloud v3',
    f,
    { deployment: 'cloud', apiVersion: 3 },
  ]),
];

describe('every field of the fixtures', () => {
  it.each(FIXTURE_FIELDS)('%s: %s', (_src, f, o) => {
    const kind = kindOf(f.schema, o.apiVersion);
    const { input, expected } = sampleFor(kind, f, o);
    expect(convertValue(f, input, o)).toEqual({ ok: true, value: expected });
  });

  it('covers the kinds that matter', () => {
    const kinds = new Set(FIXTURE_FIELDS.map(([, f, o]) => kindOf(f.schema, o.apiVersion)));
    for (const k of [
      'string',
      'rich-text',
      'date',
      'datetime',
      'option',
      'option-with-child',
      'option[]',
      'string[]',
      'user',
      'user[]',
      'group',
      'group[]',
      'named',
      'named[]',
      'project',
      'sprint',
      'epic-link',
      'issuelink',
      'unknown',
    ]) {
      expect(kinds).toContain(k);
    }
  });

  it('reads the paged Server/DC issue types and the trimmed legacy envelope', () => {
    const trimmed = readLegacyCreateMeta(
      fixture('jira-cli_createmeta_legacy_issuetypes.json'),
      'TEST',
      'epic',
    ) as CreateMeta;
    expect(trimmed.issueType).toEqual({ id: '10001', name: 'Epic', subtask: false });
    // No schema: every value passes through unchanged, never wrapped in {id}.
    expect(trimmed.fields.map((f) => kindOf(f.schema))).toEqual(['unknown', 'unknown', 'unknown']);
    expect(convertValue(field(trimmed.fields, 'priority'), 'High', CLOUD)).toEqual({
      ok: true,
      value: 'High',
    });
  });
});

const s = (type: string, extra: Partial<FieldMeta['schema']> = {}): FieldMeta => ({
  id: 'f',
  name: 'F',
  required: false,
  hasDefaultValue: false,
  schema: { type, ...extra },
});

// The brief's value table, row by row.
const ROWS: Array<[string, FieldMeta, ConvertOptions, unknown, unknown]> = [
  ['string', s('string'), CLOUD, 'text', 'text'],
  ['number from string', s('number'), CLOUD, '3', 3],
  ['number', s('number'), CLOUD, 2.5, 2.5],
  ['date', s('date', { system: 'duedate' }), CLOUD, '2011-10-03', '2011-10-03'],
  ['date from date-time', s('date'), CLOUD, '2015-07-31T23:30:00-05:00', '2015-07-31'],
  [
    'datetime with offset',
    s('datetime'),
    CLOUD,
    '2011-10-19T10:29:29.908+1100',
    '2011-10-19T10:29:29.908+1100',
  ],
  ['datetime UTC', s('datetime'), CLOUD, '2011-10-19T10:29:29Z', '2011-10-19T10:29:29.000+0000'],
  ['option', s('option'), CLOUD, 'High', { value: 'High' }],
  ['option by id', s('option'), CLOUD, { id: '10100' }, { id: '10100' }],
  [
    'option-with-child',
    s('option-with-child'),
    CLOUD,
    { parent: 'A', child: 'B' },
    { value: 'A', child: { value: 'B' } },
  ],
  ['array of option', s('array', { items: 'option' }), CLOUD, 'x', [{ value: 'x' }]],
  ['labels', s('array', { items: 'string', system: 'labels' }), CLOUD, ['a', 'b'], ['a', 'b']],
  [
    'user cloud',
    s('user'),
    CLOUD,
    '5b10ac8d82e05b22cc7d4ef5',
    { accountId: '5b10ac8d82e05b22cc7d4ef5' },
  ],
  ['user server', s('user'), SERVER, 'jsmith', { name: 'jsmith' }],
  ['group', s('group'), CLOUD, 'jira-users', { name: 'jira-users' }],
  ['priority by id', s('priority', { system: 'priority' }), CLOUD, '3', { id: '3' }],
  ['priority by name', s('priority', { system: 'priority' }), CLOUD, 'High', { name: 'High' }],
  ['version', s('version'), CLOUD, '1.2', { name: '1.2' }],
  [
    'components',
    s('array', { items: 'component', system: 'components' }),
    CLOUD,
    ['10000', 'API'],
    [{ id: '10000' }, { name: 'API' }],
  ],
  [
    'versions',
    s('array', { items: 'version', system: 'fixVersions' }),
    CLOUD,
    '10001',
    [{ id: '10001' }],
  ],
  ['issuetype', s('issuetype'), CLOUD, 'Bug', { name: 'Bug' }],
  ['project', s('project'), CLOUD, '10000', { id: '10000' }],
  [
    'sprint',
    s('array', { items: 'json', custom: 'com.pyxis.greenhopper.jira:gh-sprint' }),
    CLOUD,
    '12',
    12,
  ],
  [
    'epic link',
    s('any', { custom: 'com.pyxis.greenhopper.jira:gh-epic-link' }),
    CLOUD,
    'KEY-1',
    'KEY-1',
  ],
  ['unknown', s('team'), CLOUD, 'abc', 'abc'],
  ['unknown object', s('sd-customerrequesttype'), CLOUD, { x: 1 }, { x: 1 }],
];

describe('the value table', () => {
  it.each(ROWS)('%s', (_name, f, o, input, expected) => {
    expect(convertValue(f, input, o)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['number NaN', s('number'), 'abc'],
    ['number empty', s('number'), ' '],
    ['date garbage', s('date'), 'next tuesday'],
    ['date impossible', s('date'), '2015-02-30'],
    ['date number-ish string', s('date'), '1'],
    ['datetime garbage', s('datetime'), 'soon'],
    [
      'sprint NaN',
      s('array', { items: 'json', custom: 'com.pyxis.greenhopper.jira:gh-sprint' }),
      'current',
    ],
    [
      'epic link not a key',
      s('any', { custom: 'com.pyxis.greenhopper.jira:gh-epic-link' }),
      'my epic',
    ],
    ['label with space', s('array', { items: 'string', system: 'labels' }), ['a b']],
  ])('refuses %s', (_name, f, input) => {
    expect(convertValue(f, input, CLOUD).ok).toBe(false);
  });

  it('relative due dates', () => {
    const o = { ...CLOUD, now: () => new Date('2024-02-27T12:00:00Z') };
    expect(convertValue(s('date'), '+3d', o)).toEqual({ ok: true, value: '2024-03-01' });
  });

  it('checks options against the allowed values and names them', () => {
    const select = field(deskproFields, 'customfield_10070');
    const r = convertValue(select, 'Nope', CLOUD);
    expect(r.ok).toBe(false);
    const allowed = (select.allowedValues as Array<{ value: string }>).map((v) => v.value);
    for (const v of allowed) expect((r as { problem: string }).problem).toContain(v);
    // An allowed id goes out as {id}.
    const id = String((select.allowedValues as Array<{ id: string }>)[0]?.id);
    expect(convertValue(select, id, CLOUD)).toEqual({ ok: true, value: { id } });
  });

  it('checks a cascading child against its parent', () => {
    const cascade = field(deskproFields, 'customfield_10068');
    const parent = (cascade.allowedValues as Array<{ value: string }>)[0]!.value;
    const r = convertValue(cascade, `${parent} > no-such-child`, CLOUD);
    expect(r.ok).toBe(false);
  });
});

describe('the due-date fix (seed system 6)', () => {
  const meta: CreateMeta = {
    projectKey: 'EX',
    issueType: { id: '1', name: 'Bug' },
    fields: [
      ...sentryLegacy.fields,
      {
        id: 'duedate',
        name: 'Due Date',
        required: false,
        hasDefaultValue: false,
        operations: ['set'],
        schema: { type: 'date', system: 'duedate' },
      },
    ],
  };

  it('sends the due date as a plain "YYYY-MM-DD" string, never {"id": …}', () => {
    const r = resolveFields(meta, 'duedate: 2015-07-31', CLOUD);
    expect(r.problems).toEqual([]);
    expect(JSON.stringify({ fields: r.values })).toContain('"duedate":"2015-07-31"');
    expect(JSON.stringify(r.values)).not.toContain('{"id":"2015-07-31"}');
  });

  it('finds fields by name and reports unknown, read-only and missing required ones', () => {
    const withReadOnly: CreateMeta = {
      ...meta,
      fields: [
        ...meta.fields,
        {
          id: 'customfield_1',
          name: 'Computed',
          required: false,
          hasDefaultValue: false,
          operations: [],
          schema: { type: 'string' },
        },
        {
          id: 'customfield_2',
          name: 'Must',
          required: true,
          hasDefaultValue: false,
          operations: ['set'],
          schema: { type: 'option' },
          allowedValues: [{ value: 'one' }, { value: 'two' }],
        },
      ],
    };
    const r = resolveFields(
      withReadOnly,
      '{"Due Date": "2015-07-31", "Nope": 1, "Computed": "x"}',
      CLOUD,
    );
    expect(r.values.duedate).toBe('2015-07-31');
    expect(r.problems.join('\n')).toMatch(/fields\.Nope: no field "Nope"/);
    expect(r.problems.join('\n')).toMatch(/customfield_1 \(Computed\) is read-only/);
    expect(r.problems.join('\n')).toMatch(
      /customfield_2 \(Must\) is required .* \(allowed: one, two\)/,
    );
  });

  it('describes fields for operators', () => {
    const text = describeFields(sentryLegacy);
    expect(text).toContain('EX / Bug');
    expect(text).toMatch(
      /customfield_10300\s+Feature\s+array<option> \(multiselect\)\s+optional\s+Feature 1, Feature 2/,
    );
  });
});
