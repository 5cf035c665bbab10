import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nock from 'nock';

export const BASE = 'https://jira.example.test';
export const TOKEN = 'tok-SECRET-0123456789';
export const EMAIL = 'ops@example.com';

export const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(join(__dirname, 'fixtures', name), 'utf8')) as unknown;

/** The Sentry legacy fixture's Bug fields as the paged endpoints list them, plus a due date. */
export function bugFieldList(): Array<Record<string, unknown>> {
  const legacy = fixture('sentry_createmeta_response.json') as {
    projects: Array<{ issuetypes: Array<{ fields: Record<string, Record<string, unknown>> }> }>;
  };
  const fields = legacy.projects[0]!.issuetypes[0]!.fields;
  return [
    ...Object.entries(fields).map(([id, f]) => ({ ...f, fieldId: id })),
    {
      fieldId: 'duedate',
      key: 'duedate',
      name: 'Due Date',
      required: false,
      hasDefaultValue: false,
      operations: ['set'],
      schema: { type: 'date', system: 'duedate' },
    },
  ];
}

export const ISSUE_TYPES = [
  { id: '10001', name: 'Epic', subtask: false },
  { id: '1', name: 'Bug', subtask: false },
];

/**
 * Create-metadata for project EX / Bug in the Server/DC paged shape, any
 * number of times; `extraFields` are listed after the Bug fields.
 */
export function nockMeta(
  apiVersion: 2 | 3 = 2,
  base = BASE,
  extraFields: Array<Record<string, unknown>> = [],
): nock.Scope {
  const values = [...bugFieldList(), ...extraFields];
  return nock(base)
    .persist()
    .get(`/rest/api/${apiVersion}/issue/createmeta/EX/issuetypes`)
    .query(true)
    .reply(200, { startAt: 0, maxResults: 50, total: 2, isLast: true, values: ISSUE_TYPES })
    .get(`/rest/api/${apiVersion}/issue/createmeta/EX/issuetypes/1`)
    .query(true)
    .reply(200, { startAt: 0, maxResults: 50, total: values.length, isLast: true, values });
}

export function serverConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    baseUrl: BASE,
    deployment: 'server',
    token: TOKEN,
    projectKey: 'EX',
    issueType: 'Bug',
    ...extra,
  };
}

export function cloudConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...serverConfig(), deployment: 'cloud', email: EMAIL, ...extra };
}
