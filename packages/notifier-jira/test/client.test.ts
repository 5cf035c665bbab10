import nock from 'nock';
import { JiraClient } from '@plugboard/notifier-jira';
import type { ClientOptions } from '../src/client';
import { BASE, bugFieldList, EMAIL, fixture, ISSUE_TYPES, TOKEN } from './helpers';

afterEach(() => nock.cleanAll());

const client = (o: Partial<ClientOptions> = {}): JiraClient =>
  new JiraClient({
    baseUrl: BASE,
    deployment: 'server',
    token: TOKEN,
    apiVersion: 2,
    timeoutMs: 2000,
    ...o,
  });

async function rejection(p: Promise<unknown>): Promise<Record<string, unknown> & Error> {
  try {
    await p;
  } catch (err) {
    return err as Record<string, unknown> & Error;
  }
  throw new Error('expected a rejection');
}

describe('create-metadata', () => {
  it('follows Server/DC pages ({values, isLast, startAt})', async () => {
    const fields = bugFieldList();
    const scope = nock(BASE)
      .get('/rest/api/2/issue/createmeta/EX/issuetypes')
      .query({ startAt: 0, maxResults: 50 })
      .reply(200, { startAt: 0, maxResults: 1, isLast: false, values: [ISSUE_TYPES[0]] })
      .get('/rest/api/2/issue/createmeta/EX/issuetypes')
      .query({ startAt: 1, maxResults: 50 })
      .reply(200, { startAt: 1, maxResults: 1, isLast: true, values: [ISSUE_TYPES[1]] })
      .get('/rest/api/2/issue/createmeta/EX/issuetypes/1')
      .query({ startAt: 0, maxResults: 50 })
      .reply(200, { startAt: 0, maxResults: 5, isLast: false, values: fields.slice(0, 5) })
      .get('/rest/api/2/issue/createmeta/EX/issuetypes/1')
      .query({ startAt: 5, maxResults: 50 })
      .reply(200, { startAt: 5, maxResults: 50, isLast: true, values: fields.slice(5) });
    const meta = await client().createMeta('EX', 'bug');
    expect(meta.issueType).toEqual({ id: '1', name: 'Bug', subtask: false });
    expect(meta.fields.map((f) => f.id)).toEqual(fields.map((f) => f.fieldId));
    expect(scope.isDone()).toBe(true);
  });

  it('follows Cloud pages ({issueTypes | fields, total})', async () => {
    const fields = bugFieldList();
    const server = fixture('jira-cli_createmeta_v9_issuetypes_paginated.json') as {
      values: unknown[];
    };
    const scope = nock(BASE)
      .get('/rest/api/3/issue/createmeta/EX/issuetypes')
      .query({ startAt: 0, maxResults: 50 })
      .reply(200, { startAt: 0, maxResults: 3, total: 4, issueTypes: server.values })
      .get('/rest/api/3/issue/createmeta/EX/issuetypes')
      .query({ startAt: 3, maxResults: 50 })
      .reply(200, { startAt: 3, maxResults: 3, total: 4, issueTypes: [ISSUE_TYPES[1]] })
      .get('/rest/api/3/issue/createmeta/EX/issuetypes/10002')
      .query(true)
      .reply(200, { startAt: 0, maxResults: 3, total: fields.length, fields: fields.slice(0, 3) })
      .get('/rest/api/3/issue/createmeta/EX/issuetypes/10002')
      .query({ startAt: 3, maxResults: 50 })
      .reply(200, { startAt: 3, maxResults: 50, total: fields.length, fields: fields.slice(3) });
    const meta = await client({ deployment: 'cloud', email: EMAIL, apiVersion: 3 }).createMeta(
      'EX',
      'Task',
    );
    expect(meta.issueType.id).toBe('10002');
    expect(meta.fields).toHaveLength(fields.length);
    expect(scope.isDone()).toBe(true);
  });

  it('falls back to the legacy createmeta only on 404', async () => {
    const scope = nock(BASE)
      .get('/rest/api/2/issue/createmeta/EX/issuetypes')
      .query(true)
      .reply(404, { errorMessages: ['Not found'] })
      .get('/rest/api/2/issue/createmeta')
      .query({
        projectKeys: 'EX',
        issuetypeNames: 'Bug',
        expand: 'projects.issuetypes.fields',
      })
      .reply(200, fixture('sentry_createmeta_response.json') as object);
    const meta = await client().createMeta('EX', 'Bug');
    expect(meta.fields.find((f) => f.id === 'customfield_10300')?.schema?.items).toBe('option');
    expect(scope.isDone()).toBe(true);

    nock(BASE).get('/rest/api/2/issue/createmeta/EX/issuetypes').query(true).reply(500, 'boom');
    const err = await rejection(client().createMeta('EX', 'Bug'));
    expect(err.code).toBe('PB_DELIVERY_FAILED');
  });

  // Data Center 9: the paged endpoint says the project does not exist; the
  // legacy endpoint no longer exists and reads `createmeta` as an issue key.
  const ISSUE_DOES_NOT_EXIST = { errorMessages: ['Issue Does Not Exist'], errors: {} };

  it("reports the paged endpoint's 404 for a missing project, without the legacy fallback", async () => {
    const scope = nock(BASE)
      .get('/rest/api/2/issue/createmeta/NOPE/issuetypes')
      .query({ startAt: 0, maxResults: 50 })
      .reply(404, { errorMessages: ['Project not found'], errors: {} });
    const err = await rejection(client().createMeta('NOPE', 'Bug'));
    expect(scope.isDone()).toBe(true);
    expect(err.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(err.status).toBe(404);
    expect(err.message).toContain('project NOPE was not found');
    expect(err.message).toContain('Project not found');
    expect(err.message).not.toContain('Issue Does Not Exist');
  });

  it("reports the paged endpoint's 404 when the legacy endpoint answers 404 too", async () => {
    const scope = nock(BASE)
      .get('/rest/api/2/issue/createmeta/NOPE/issuetypes')
      .query(true)
      .reply(404, { errorMessages: ['The requested resource was not found'], errors: {} })
      .get('/rest/api/2/issue/createmeta')
      .query(true)
      .reply(404, ISSUE_DOES_NOT_EXIST);
    const err = await rejection(client().createMeta('NOPE', 'Bug'));
    expect(scope.isDone()).toBe(true);
    expect(err.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(err.message).toContain(
      'GET /rest/api/2/issue/createmeta/NOPE/issuetypes answered HTTP 404: The requested resource was not found',
    );
    expect(err.message).toContain('answered 404 as well');
    expect(err.message).not.toContain('Issue Does Not Exist');
  });

  it('names the issue types when the configured one does not exist', async () => {
    nock(BASE)
      .get('/rest/api/2/issue/createmeta/EX/issuetypes')
      .query(true)
      .reply(200, { isLast: true, values: ISSUE_TYPES });
    const err = await rejection(client().createMeta('EX', 'Story'));
    expect(err.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(err.message).toContain('Epic [10001], Bug [1]');
  });
});

describe('auth and errors', () => {
  it('sends basic auth on Cloud and a Bearer token on Server', async () => {
    const seen: string[] = [];
    nock(BASE)
      .get('/rest/api/3/search/jql')
      .query(true)
      .reply(function () {
        seen.push(String(this.req.headers.authorization));
        return [200, { issues: [] }];
      })
      .get('/rest/api/2/search')
      .query(true)
      .reply(function () {
        seen.push(String(this.req.headers.authorization));
        return [200, { issues: [{ key: 'EX-9' }] }];
      });
    await client({ deployment: 'cloud', email: EMAIL, apiVersion: 3 }).findByLabel('EX', 'l');
    expect(await client().findByLabel('EX', 'l')).toBe('EX-9');
    expect(seen).toEqual([
      `Basic ${Buffer.from(`${EMAIL}:${TOKEN}`).toString('base64')}`,
      `Bearer ${TOKEN}`,
    ]);
  });

  it('translates 400 into an unrecoverable error naming each field', async () => {
    nock(BASE)
      .post('/rest/api/2/issue')
      .reply(400, {
        errorMessages: [],
        errors: { duedate: 'Operation value must be a string', customfield_10300: 'bad option' },
      });
    const err = await rejection(
      client().createIssue({}, new Map([['customfield_10300', 'Feature']])),
    );
    expect(err.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(err.status).toBe(400);
    expect(err.message).toContain('duedate: Operation value must be a string');
    expect(err.message).toContain('customfield_10300 (Feature): bad option');
  });

  it.each([
    ['cloud', 401, /check `email` and `token`.*deployment` is cloud/],
    ['server', 401, /check `token` \(a Server\/Data Center personal access token/],
    ['server', 403, /lacks permission/],
  ] as const)('%s %i names the credential to check', async (deployment, status, pattern) => {
    nock(BASE)
      .post(/\/issue$/)
      .reply(status, { errorMessages: ['nope'] });
    const err = await rejection(
      client({ deployment, email: EMAIL, apiVersion: deployment === 'cloud' ? 3 : 2 }).createIssue(
        {},
        new Map(),
      ),
    );
    expect(err.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(err.message).toMatch(pattern);
    expect(err.message).not.toContain(TOKEN);
  });

  it('honours Retry-After on 429, retries 5xx and timeouts', async () => {
    nock(BASE).post('/rest/api/2/issue').reply(429, {}, { 'Retry-After': '120' });
    const limited = await rejection(client().createIssue({}, new Map()));
    expect(limited).toMatchObject({ code: 'PB_DELIVERY_RETRY_AFTER', retryAfterMs: 120_000 });

    nock(BASE).post('/rest/api/2/issue').reply(502, 'bad gateway');
    expect(await rejection(client().createIssue({}, new Map()))).toMatchObject({
      code: 'PB_DELIVERY_FAILED',
      status: 502,
    });

    nock(BASE).post('/rest/api/2/issue').delay(500).reply(201, { key: 'EX-1' });
    const slow = await rejection(client({ timeoutMs: 50 }).createIssue({}, new Map()));
    expect(slow.code).toBe('PB_DELIVERY_TIMEOUT');
    expect(slow.message).not.toContain(TOKEN);
  });

  it('404 on a project is an unrecoverable configuration error', async () => {
    nock(BASE)
      .get('/rest/api/2/issue/createmeta/NOPE/issuetypes')
      .query(true)
      .reply(404, {})
      .get('/rest/api/2/issue/createmeta')
      .query(true)
      .reply(200, { projects: [] });
    const err = await rejection(client().createMeta('NOPE', 'Bug'));
    expect(err.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(err.message).toContain('project NOPE was not found');
  });
});
