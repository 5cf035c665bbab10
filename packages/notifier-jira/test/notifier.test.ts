import nock from 'nock';
import { clearMetadataCache, JiraNotifier } from '@plugboard/notifier-jira';
import type { JiraConfig } from '@plugboard/notifier-jira';
import { buildNotification, MemoryStore, runNotifier } from '@plugboard/sdk/testing';
import { BASE, cloudConfig, nockMeta, serverConfig, TOKEN } from './helpers';

beforeEach(() => clearMetadataCache());
afterEach(() => nock.cleanAll());

const issueCreated = buildNotification('issue.created');
const groupId = issueCreated.group!.id;

interface Recorded {
  path: string;
  body: Record<string, unknown>;
}

/** Records every POST to /issue, /comment and /remotelink. */
function recordPosts(
  apiVersion: 2 | 3,
  create: () => [number, unknown] = () => [201, { id: '10001', key: 'EX-1' }],
) {
  const posts: Recorded[] = [];
  const scope = nock(BASE)
    .persist()
    .post(`/rest/api/${apiVersion}/issue`)
    .reply((path, body) => {
      posts.push({ path, body: body as Record<string, unknown> });
      return create();
    })
    .post(/\/comment$/)
    .reply((path, body) => {
      posts.push({ path, body: body as Record<string, unknown> });
      return [201, { id: '1' }];
    })
    .post(/\/remotelink$/)
    .reply((path, body) => {
      posts.push({ path, body: body as Record<string, unknown> });
      return [201, {}];
    });
  return { posts, scope, creates: () => posts.filter((p) => p.path.endsWith('/issue')) };
}

describe('creating the issue', () => {
  it('creates one issue with shaped fields, a label and a Sentry link (Server, v2)', async () => {
    nockMeta(2);
    const rec = recordPosts(2);
    const result = await runNotifier(new JiraNotifier(), issueCreated, {
      config: serverConfig({
        fields: 'duedate: 2015-07-31\nFeature: Feature 2\nlabels: sentry, {{project.slug}}',
      }),
    });
    expect(result.error).toBeUndefined();
    expect(result.notified).toBe(true);
    const [create] = rec.creates();
    const fields = (create!.body as { fields: Record<string, unknown> }).fields;
    expect(JSON.stringify(create!.body)).toContain('"duedate":"2015-07-31"');
    expect(fields).toMatchObject({
      project: { key: 'EX' },
      issuetype: { id: '1' },
      summary: `[front-end] ${issueCreated.title}`,
      customfield_10300: [{ value: 'Feature 2' }],
      labels: ['sentry', 'front-end', `sentry-${groupId}`],
    });
    expect(String(fields.description)).toContain('*Culprit:* ?(runner)');
    // The remote link is sent when the notification has a URL.
    expect(rec.posts.filter((p) => p.path.endsWith('/remotelink')).length).toBe(
      issueCreated.url ? 1 : 0,
    );
    expect(result.context.store.get(`issue:${BASE}:EX:${groupId}`)).resolves.toEqual({
      key: 'EX-1',
      id: '10001',
    });
  });

  it('sends ADF with the top stack frames on Cloud v3', async () => {
    nockMeta(3);
    const rec = recordPosts(3);
    const alert = buildNotification('event_alert.triggered');
    const result = await runNotifier(new JiraNotifier(), alert, { config: cloudConfig() });
    expect(result.error).toBeUndefined();
    const description = (rec.creates()[0]!.body as { fields: { description: unknown } }).fields
      .description as { type: string; content: Array<{ type: string }> };
    expect(description.type).toBe('doc');
    expect(description.content.map((b) => b.type)).toContain('codeBlock');
    expect(JSON.stringify(description)).toContain('runner-4.1.7.min.js');
  });

  it('does not fail the delivery when the remote link fails', async () => {
    nockMeta(2);
    const posts: string[] = [];
    nock(BASE)
      .post('/rest/api/2/issue')
      .reply(() => {
        posts.push('create');
        return [201, { id: '1', key: 'EX-1' }];
      })
      .post(/remotelink/)
      .reply(403, { errorMessages: ['no remote links'] });
    const alert = buildNotification('event_alert.triggered');
    const result = await runNotifier(new JiraNotifier(), alert, { config: serverConfig() });
    expect(result.error).toBeUndefined();
    expect(result.logs.map((l) => l.msg)).toContain('jira.remote_link_failed');
  });

  it('turns a 400 into an unrecoverable error naming the field, without the token', async () => {
    nockMeta(2);
    recordPosts(2, () => [400, { errors: { duedate: 'Operation value must be a string' } }]);
    const result = await runNotifier(new JiraNotifier(), issueCreated, {
      config: serverConfig({ fields: 'duedate: 2015-07-31' }),
    });
    expect(result.error?.code).toBe('PB_DELIVERY_UNRECOVERABLE');
    expect(result.error?.message).toContain('duedate (Due Date): Operation value must be a string');
    const kept = [result.error, result.logs, (result.context.store as MemoryStore).snapshot()];
    expect(JSON.stringify(kept)).not.toContain(TOKEN);
  });
});

describe('one JIRA issue per Sentry issue', () => {
  it('comments on a repeated alert instead of creating a second issue', async () => {
    nockMeta(2);
    const rec = recordPosts(2);
    const store = new MemoryStore();
    const plugin = new JiraNotifier();
    await runNotifier(plugin, issueCreated, { config: serverConfig(), store });
    const again = buildNotification('event_alert.triggered', {
      group: { ...issueCreated.group!, count: 5, lastSeen: '2019-08-20T10:00:00Z' },
    });
    const second = await runNotifier(plugin, again, {
      config: serverConfig(),
      store,
      idempotencyKey: 'other',
    });
    expect(second.error).toBeUndefined();
    expect(rec.creates()).toHaveLength(1);
    const comments = rec.posts.filter((p) => p.path.endsWith('/comment'));
    expect(comments.map((c) => c.path)).toEqual(['/rest/api/2/issue/EX-1/comment']);
    expect(String(comments[0]!.body.body)).toContain('events: 5, last seen: 2019-08-20T10:00:00Z');
  });

  it('does nothing on a repeat with onRepeat: nothing', async () => {
    nockMeta(2);
    const rec = recordPosts(2);
    const store = new MemoryStore();
    const config = serverConfig({ onRepeat: 'nothing' });
    await runNotifier(new JiraNotifier(), issueCreated, { config, store });
    await runNotifier(new JiraNotifier(), issueCreated, { config, store, idempotencyKey: 'b' });
    expect(rec.creates()).toHaveLength(1);
    expect(rec.posts.filter((p) => p.path.endsWith('/comment'))).toHaveLength(0);
  });

  it.each([
    [
      '502 after JIRA created it',
      (): nock.Interceptor => nock(BASE).post('/rest/api/2/issue'),
      'reply502',
    ],
    [
      'a timeout after JIRA created it',
      (): nock.Interceptor => nock(BASE).post('/rest/api/2/issue'),
      'timeout',
    ],
  ] as const)(
    'on %s, the retry finds the issue by label and creates no second one',
    async (_n, post, mode) => {
      nockMeta(2);
      const store = new MemoryStore();
      let creates = 0;
      const first = post();
      if (mode === 'reply502') {
        first.reply(() => {
          creates++;
          return [502, 'bad gateway'];
        });
      } else {
        first.delay(300).reply(() => {
          creates++;
          return [201, { key: 'EX-7' }];
        });
      }
      const config = serverConfig({ timeoutMs: 100 });
      const one = await runNotifier(new JiraNotifier(), issueCreated, { config, store });
      expect(one.error?.retryable).toBe(true);

      let jql = '';
      nock(BASE)
        .get('/rest/api/2/search')
        .query((q) => {
          jql = String(q.jql);
          return true;
        })
        .reply(200, { issues: [{ key: 'EX-7' }] });
      nock(BASE)
        .post('/rest/api/2/issue')
        .reply(() => {
          creates++;
          return [201, { key: 'EX-8' }];
        });
      const two = await runNotifier(new JiraNotifier(), issueCreated, {
        config,
        store,
        attempt: 2,
      });
      expect(two.error).toBeUndefined();
      expect(jql).toBe(`project = "EX" AND labels = "sentry-${groupId}" ORDER BY created ASC`);
      expect(creates).toBe(1);
      expect(await store.get(`issue:${BASE}:EX:${groupId}`)).toEqual({ key: 'EX-7' });
    },
  );

  it('a concurrent delivery for the same issue waits instead of creating', async () => {
    nockMeta(2);
    const store = new MemoryStore();
    await store.set(`creating:issue:${BASE}:EX:${groupId}`, 'someone-else');
    const rec = recordPosts(2);
    const result = await runNotifier(new JiraNotifier(), issueCreated, {
      config: serverConfig(),
      store,
    });
    expect(result.error?.code).toBe('PB_DELIVERY_FAILED');
    expect(rec.creates()).toHaveLength(0);
  });
});

describe('other notifications', () => {
  it('skips comments and installations; keys metric alerts on the incident', async () => {
    const plugin = new JiraNotifier();
    nockMeta(2);
    const rec = recordPosts(2);
    for (const kind of ['comment.created', 'installation.created']) {
      const r = await runNotifier(plugin, buildNotification(kind), { config: serverConfig() });
      expect(r.notified).toBe(false);
      expect(r.error).toBeUndefined();
    }
    expect(rec.posts).toHaveLength(0);
    const store = new MemoryStore();
    const metric = buildNotification('metric_alert.critical');
    await runNotifier(plugin, metric, { config: serverConfig(), store });
    const labels = (rec.creates()[0]!.body as { fields: { labels: string[] } }).fields.labels;
    expect(labels).toEqual([`sentry-incident-${metric.metricAlert!.id}`]);
    await runNotifier(plugin, buildNotification('metric_alert.resolved'), {
      config: serverConfig(),
      store,
      idempotencyKey: 'resolved',
    });
    expect(rec.creates()).toHaveLength(1);
    expect(rec.posts.filter((p) => p.path.endsWith('/comment'))).toHaveLength(1);
  });
});

describe('validateConfig against real metadata', () => {
  const validate = (config: Record<string, unknown>): Promise<string[]> =>
    new JiraNotifier().validateConfig({
      summary: '{{title}}',
      description: '{{message}}',
      onRepeat: 'comment',
      timeoutMs: 500,
      strictCheck: false,
      ...config,
    } as JiraConfig);

  it('reports unknown fields, bad options and unknown variables, naming the allowed values', async () => {
    nockMeta(2);
    const problems = await validate(
      serverConfig({ fields: 'Nope: 1\nFeature: Feature 9\nduedate: tomorrow-ish' }),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^fields\.Nope: no field "Nope" on EX \/ Bug/),
      expect.stringMatching(
        /^fields\.Feature: customfield_10300 \(Feature\) \[array<option> \(multiselect\)\]: "Feature 9" is not an allowed value \(allowed: Feature 1, Feature 2\)/,
      ),
      expect.stringMatching(/^fields\.duedate: duedate \(Due Date\) \[date\]: expects a date/),
    ]);
    expect(await validate(serverConfig({ summary: '{{nope.x}}' }))).toEqual([
      'summary: unknown template variable(s) {{nope.x}}',
    ]);
  });

  it('tolerates an unreachable JIRA unless strictCheck, and never hangs', async () => {
    const config = serverConfig({ baseUrl: 'http://127.0.0.1:9' });
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      expect(await validate(config)).toEqual([]);
      expect(warn).toHaveBeenCalled();
      const strict = await validate({ ...config, strictCheck: true });
      expect(strict[0]).toMatch(/^JIRA could not be reached to check the fields/);
    } finally {
      warn.mockRestore();
    }
  });

  it('reports bad credentials as a problem', async () => {
    nock(BASE)
      .get(/createmeta/)
      .query(true)
      .reply(401, {});
    const problems = await validate(cloudConfig());
    expect(problems[0]).toMatch(/did not accept the credentials: check `email` and `token`/);
  });
});
