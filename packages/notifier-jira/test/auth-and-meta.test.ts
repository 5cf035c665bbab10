import nock from 'nock';
import { clearMetadataCache, JiraNotifier, jiraCli } from '@plugboard/notifier-jira';
import { buildNotification, runNotifier } from '@plugboard/sdk/testing';
import { authProblems } from '../src/config';
import { BASE, ISSUE_TYPES, bugFieldList, serverConfig } from './helpers';

// JIRA Server/Data Center sites older than 8.14 have no personal access
// tokens: the notifier and `plugboard jira fields` sign in with basic auth.
// And `jira fields --project NOPE` on Data Center 9 reports the paged
// endpoint's 404, not the legacy endpoint's "Issue Does Not Exist".

const USER = 'sentry-bot';
const PASSWORD = 'pw-SECRET-basic-0123';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

beforeAll(() => nock.disableNetConnect());
beforeEach(() => clearMetadataCache());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

function basicConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const { token: _token, ...rest } = serverConfig();
  return { ...rest, username: USER, password: PASSWORD, ...extra };
}

describe('Server/Data Center basic auth', () => {
  it('sends Authorization: Basic user:password on every request', async () => {
    const auth: string[] = [];
    const seen = function (this: nock.ReplyFnContext): void {
      auth.push(String(this.req.headers.authorization));
    };
    nock(BASE)
      .persist()
      .get('/rest/api/2/issue/createmeta/EX/issuetypes')
      .query(true)
      .reply(function () {
        seen.call(this);
        return [200, { startAt: 0, total: 2, isLast: true, values: ISSUE_TYPES }];
      })
      .get('/rest/api/2/issue/createmeta/EX/issuetypes/1')
      .query(true)
      .reply(function () {
        seen.call(this);
        return [200, { startAt: 0, isLast: true, values: bugFieldList() }];
      })
      .post('/rest/api/2/issue')
      .reply(function () {
        seen.call(this);
        return [201, { id: '10001', key: 'EX-1' }];
      })
      .post(/\/remotelink$/)
      .reply(function () {
        seen.call(this);
        return [201, {}];
      });
    const result = await runNotifier(new JiraNotifier(), buildNotification('issue.created'), {
      config: basicConfig(),
    });
    expect(result.error).toBeUndefined();
    expect(result.notified).toBe(true);
    expect(auth.length).toBeGreaterThanOrEqual(3);
    expect(new Set(auth)).toEqual(new Set([BASIC]));
    expect(JSON.stringify(result.logs)).not.toContain(PASSWORD);
  });

  it('names the credentials to check on 401, without the password', async () => {
    nock(BASE)
      .get('/rest/api/2/issue/createmeta/EX/issuetypes')
      .query(true)
      .reply(401, { errorMessages: ['You are not authenticated'] });
    // The start-up check meets the 401 first and names what to check.
    const problems = await new JiraNotifier().validateConfig(
      basicConfig({ issueType: 'Bug', summary: 's', description: 'd', timeoutMs: 2000 }) as never,
    );
    expect(problems.join('\n')).toMatch(/HTTP 401.*check `username` and `password`/);
    expect(problems.join('\n')).not.toContain(PASSWORD);
  });

  it('declares the password a secret field', () => {
    const fields = new JiraNotifier().configFields();
    expect(fields.find((f) => f.name === 'password')?.type).toBe('secret');
    expect(fields.find((f) => f.name === 'token')?.required).toBe(false);
  });

  it.each([
    [
      { deployment: 'server' },
      /token: required on Server\/Data Center .*or give username and password/,
    ],
    [{ deployment: 'server', username: USER }, /password: required with username/],
    [{ deployment: 'server', password: PASSWORD }, /username: required with password/],
    [
      { deployment: 'server', token: 'pat', username: USER, password: PASSWORD },
      /give one, a personal access token \(token\) or basic auth/,
    ],
    [{ deployment: 'cloud', email: 'a@b.c' }, /token: required on Cloud/],
    [
      { deployment: 'cloud', email: 'a@b.c', token: 't', username: USER, password: PASSWORD },
      /username\/password: only for JIRA Server\/Data Center/,
    ],
  ] as const)('refuses %j with a clear message', (config, pattern) => {
    const problems = authProblems(config as Parameters<typeof authProblems>[0]);
    expect(problems.join('\n')).toMatch(pattern);
    expect(problems.join('\n')).not.toContain(PASSWORD);
  });

  it('accepts a token alone, or username and password alone, on Server', () => {
    expect(authProblems({ deployment: 'server', token: 'pat' })).toEqual([]);
    expect(authProblems({ deployment: 'server', username: USER, password: PASSWORD })).toEqual([]);
  });
});

describe('plugboard jira fields', () => {
  function io(env: NodeJS.ProcessEnv): {
    out: string[];
    err: string[];
    io: Parameters<typeof jiraCli>[1];
  } {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, io: { out: (t) => out.push(t), err: (t) => err.push(t), env } };
  }
  const args = (project: string, ...extra: string[]): string[] => [
    'fields',
    '--url',
    BASE,
    '--deployment',
    'server',
    '--project',
    project,
    '--issue-type',
    'Bug',
    ...extra,
  ];

  it('reports "project not found" from the paged endpoint on Data Center 9', async () => {
    nock(BASE)
      .get('/rest/api/2/issue/createmeta/NOPE/issuetypes')
      .query(true)
      .reply(404, { errorMessages: ['Project not found'], errors: {} })
      // The legacy endpoint is gone on Data Center 9; it must not be asked.
      .get('/rest/api/2/issue/createmeta')
      .query(true)
      .reply(404, { errorMessages: ['Issue Does Not Exist'], errors: {} });
    const run = io({ JIRA_TOKEN: 'pat-0123456789' });
    expect(await jiraCli(args('NOPE'), run.io)).toBe(1);
    const text = run.err.join('');
    expect(text).toContain('project NOPE was not found');
    expect(text).toContain('Project not found');
    expect(text).not.toContain('Issue Does Not Exist');
  });

  it('signs in with --username and JIRA_PASSWORD as basic auth', async () => {
    const auth: string[] = [];
    nock(BASE)
      .get('/rest/api/2/issue/createmeta/EX/issuetypes')
      .query(true)
      .reply(function () {
        auth.push(String(this.req.headers.authorization));
        return [200, { isLast: true, values: ISSUE_TYPES }];
      })
      .get('/rest/api/2/issue/createmeta/EX/issuetypes/1')
      .query(true)
      .reply(function () {
        auth.push(String(this.req.headers.authorization));
        return [200, { isLast: true, values: bugFieldList() }];
      });
    const run = io({ JIRA_PASSWORD: PASSWORD });
    expect(await jiraCli(args('EX', '--username', USER), run.io)).toBe(0);
    expect(auth).toEqual([BASIC, BASIC]);
    expect(run.out.join('')).toMatch(/duedate\s+Due Date/);
    expect(run.out.join('') + run.err.join('')).not.toContain(PASSWORD);

    const missing = io({});
    expect(await jiraCli(args('EX', '--username', USER), missing.io)).toBe(2);
    expect(missing.err.join('')).toContain('JIRA_PASSWORD');
  });
});
