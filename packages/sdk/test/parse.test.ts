import type { Notification, ParseResult } from '../src/model';
import { parseLegacyWebhook, parseSentryWebhook, SUPPORTED_KINDS } from '../src/parse';
import { loadSample, SAMPLE_KINDS } from '../src/samples';

type Body = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function sampleBody(kind: string): Body {
  return loadSample(kind).body as Body;
}

function parseSample(kind: string, edit?: (body: Body) => void): Notification {
  const sample = loadSample(kind);
  const body = sample.body as Body;
  edit?.(body);
  return expectOk(parseSentryWebhook({ resource: sample.resource, body }));
}

function expectOk(result: ParseResult): Notification {
  if (!result.ok)
    throw new Error(`expected a notification, got ${result.reason}: ${result.detail}`);
  return result.notification;
}

function expectFailure(result: ParseResult) {
  if (result.ok) throw new Error(`expected a failure, got ${result.notification.kind}`);
  return result;
}

describe('every sample', () => {
  it.each(SAMPLE_KINDS.map((k) => [k]))('%s parses into a notification of that kind', (kind) => {
    const n = parseSample(kind);
    expect(n.kind).toBe(kind);
    expect(`${n.resource}.${n.action}`).toBe(kind);
    expect(SUPPORTED_KINDS).toContain(kind);
    expect(n.title.length).toBeGreaterThan(0);
    expect(n.dedupKey.length).toBeGreaterThan(0);
    // Notifications are stored and sent to other processes as JSON.
    expect(() => JSON.stringify(n)).not.toThrow();
  });

  it('gives every sample a different dedupKey', () => {
    const keys = SAMPLE_KINDS.map((kind) => parseSample(kind).dedupKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('SUPPORTED_KINDS', () => {
  it('lists every resource.action the parser accepts', () => {
    expect([...SUPPORTED_KINDS].sort()).toEqual(
      [
        'comment.created',
        'comment.deleted',
        'comment.updated',
        'error.created',
        'event_alert.triggered',
        'installation.created',
        'installation.deleted',
        'issue.archived',
        'issue.assigned',
        'issue.created',
        'issue.ignored',
        'issue.resolved',
        'issue.unresolved',
        'legacy_webhook.triggered',
        'metric_alert.critical',
        'metric_alert.resolved',
        'metric_alert.warning',
      ].sort(),
    );
  });
});

describe('issue.*', () => {
  it('issue.created: what a user sees', () => {
    const body = sampleBody('issue.created');
    const n = expectOk(parseSentryWebhook({ resource: 'issue', body }));
    expect(n).toMatchObject({
      resource: 'issue',
      action: 'created',
      kind: 'issue.created',
      title: 'ReferenceError: blooopy is not defined',
      message: '?(runner)',
      level: 'error',
      project: { id: '1', slug: 'front-end', name: 'front-end' },
      group: {
        id: '1170820242',
        shortId: 'FRONT-END-9',
        title: 'ReferenceError: blooopy is not defined',
        culprit: '?(runner)',
        level: 'error',
        status: 'unresolved',
        substatus: 'escalating',
        count: 1,
        userCount: 1,
        firstSeen: '2019-08-19T20:58:37.391000Z',
        platform: 'javascript',
        type: 'error',
        metadata: { type: 'ReferenceError', value: 'blooopy is not defined' },
      },
      triggeringRules: [],
      tags: {},
      links: {},
      installationUuid: 'a8e5d37a-696c-4c54-adb5-b3f28d64c7de',
      actor: { id: 'sentry', name: 'Sentry', type: 'application' },
      dedupKey: 'issue:created:1170820242',
    });
    // Sentry sends "" for an unknown project platform and null for a private permalink.
    expect(n.project?.platform).toBeUndefined();
    expect(n.url).toBeUndefined();
    expect(typeof n.group?.count).toBe('number');
    expect(n.raw).toBe(body.data);
  });

  it('issue.resolved: browser link and organisation from web_url', () => {
    const n = parseSample('issue.resolved');
    expect(n).toMatchObject({
      kind: 'issue.resolved',
      title: 'ReferenceError: blooopy is not defined',
      url: 'https://sentry.io/organizations/test-org/issues/1170820242/',
      links: { issue: 'https://sentry.io/organizations/test-org/issues/1170820242/' },
      organizationSlug: 'test-org',
      group: { shortId: 'FRONT-END-9', status: 'resolved', count: 24, userCount: 3 },
      actor: { id: '1', name: 'Meredith Heller', type: 'user' },
      dedupKey: 'issue:resolved:1170820242',
    });
    expect(n.group?.substatus).toBeUndefined();
  });

  it('issue.assigned: the new assignee', () => {
    const n = parseSample('issue.assigned');
    expect(n.assignee).toEqual({
      type: 'user',
      id: '2',
      name: 'Jules Okafor',
      email: 'jules@example.com',
    });
    expect(n.dedupKey).toBe('issue:assigned:1170820242');
  });

  it('issue.assigned: falls back to the issue assignedTo (teams too)', () => {
    const n = parseSample('issue.assigned', (body) => {
      delete body.data.assignee;
      body.data.issue.assignedTo = { type: 'team', id: '8', name: 'frontend' };
    });
    expect(n.assignee).toEqual({ type: 'team', id: '8', name: 'frontend' });
  });

  it('only issue.assigned carries an assignee', () => {
    expect(parseSample('issue.resolved').assignee).toBeUndefined();
  });

  it('issue.ignored: archived until escalating', () => {
    const n = parseSample('issue.ignored');
    expect(n).toMatchObject({
      kind: 'issue.ignored',
      title: 'Error: ResizeObserver loop limit exceeded',
      group: { shortId: 'FRONT-END-A', status: 'ignored', substatus: 'archived_until_escalating' },
      dedupKey: 'issue:ignored:1170820377',
    });
  });

  it('issue.archived (the docs name) parses and dedups with issue.ignored', () => {
    const archived = parseSample('issue.ignored', (body) => {
      body.action = 'archived';
    });
    expect(archived.kind).toBe('issue.archived');
    expect(archived.dedupKey).toBe(parseSample('issue.ignored').dedupKey);
  });

  it('issue.unresolved parses', () => {
    const n = parseSample('issue.created', (body) => {
      body.action = 'unresolved';
      body.data.issue.substatus = 'regressed';
    });
    expect(n.kind).toBe('issue.unresolved');
    expect(n.group?.substatus).toBe('regressed');
    expect(n.dedupKey).toBe('issue:unresolved:1170820242');
  });

  it('reads a numeric issue id and a customer-domain link', () => {
    const n = parseSample('issue.created', (body) => {
      body.data.issue.id = 1170820242;
      body.data.issue.web_url = 'https://acme.sentry.io/issues/1170820242/';
    });
    expect(n.group?.id).toBe('1170820242');
    expect(n.organizationSlug).toBe('acme');
    expect(n.url).toBe('https://acme.sentry.io/issues/1170820242/');
  });
});

describe('event_alert.triggered', () => {
  it('what a user sees', () => {
    const body = sampleBody('event_alert.triggered');
    const n = expectOk(parseSentryWebhook({ resource: 'event_alert', body }));
    expect(n).toMatchObject({
      kind: 'event_alert.triggered',
      title: 'ReferenceError: heck is not defined',
      message: '?(<anonymous>)',
      level: 'error',
      triggeringRules: ['Very Important Alert Rule!'],
      // The event names its project by numeric id only; the slug is in its API url.
      project: { id: '1', slug: 'front-end', name: 'front-end' },
      organizationSlug: 'test-org',
      group: {
        id: '1117540176',
        title: 'ReferenceError: heck is not defined',
        culprit: '?(<anonymous>)',
        level: 'error',
        url: 'https://sentry.io/organizations/test-org/issues/1117540176/',
      },
      url: 'https://sentry.io/organizations/test-org/issues/1117540176/',
      links: {
        issue: 'https://sentry.io/organizations/test-org/issues/1117540176/',
        event:
          'https://sentry.io/organizations/test-org/issues/1117540176/events/e4874d664c3540c1a32eab185f12c5ab/',
      },
      event: {
        eventId: 'e4874d664c3540c1a32eab185f12c5ab',
        title: 'ReferenceError: heck is not defined',
        platform: 'javascript',
        datetime: '2019-08-19T21:06:17.677000Z',
      },
      dedupKey: 'event_alert:triggered:e4874d664c3540c1a32eab185f12c5ab:Very Important Alert Rule!',
    });
    expect(n.tags).toEqual({
      browser: 'Chrome 75.0.3770',
      'browser.name': 'Chrome',
      handled: 'no',
      level: 'error',
      mechanism: 'onerror',
      os: 'Mac OS X 10.14.0',
      'os.name': 'Mac OS X',
      user: 'ip:162.217.75.90',
      url: 'https://null.jsbin.com/runner',
    });
    expect(n.event?.tags).toEqual(n.tags);
    expect(n.environment).toBeUndefined();
    expect(n.release).toBeUndefined();
    expect(n.event?.raw).toBe(body.data.event);
    expect(n.raw).toBe(body.data);
  });

  it('environment and release come from the event, else from its tags', () => {
    const fromTags = parseSample('event_alert.triggered', (body) => {
      body.data.event.tags.push(['environment', 'staging'], ['release', 'front-end@1.2.3']);
    });
    expect(fromTags.environment).toBe('staging');
    expect(fromTags.release).toBe('front-end@1.2.3');
    expect(fromTags.tags.environment).toBe('staging');

    const fromFields = parseSample('event_alert.triggered', (body) => {
      body.data.event.environment = 'production';
      body.data.event.release = 'front-end@1.2.4';
    });
    expect(fromFields.environment).toBe('production');
    expect(fromFields.event?.environment).toBe('production');
    expect(fromFields.release).toBe('front-end@1.2.4');
  });

  it('falls back to issue_alert.title when triggered_rule is absent', () => {
    const n = parseSample('event_alert.triggered', (body) => {
      delete body.data.triggered_rule;
    });
    expect(n.triggeringRules).toEqual(['Very Important Alert Rule!']);
  });

  it('keeps the event when its links are missing (no project slug to derive)', () => {
    const n = parseSample('event_alert.triggered', (body) => {
      delete body.data.event.url;
      delete body.data.event.web_url;
    });
    expect(n.project).toBeUndefined();
    expect(n.group?.id).toBe('1117540176');
    expect(n.url).toBeUndefined();
    expect(n.event?.eventId).toBe('e4874d664c3540c1a32eab185f12c5ab');
  });
});

describe('error.created', () => {
  it('what a user sees', () => {
    const n = parseSample('error.created');
    expect(n).toMatchObject({
      kind: 'error.created',
      title: 'ReferenceError: blooopy is not defined',
      message: '?(runner)',
      level: 'error',
      project: { slug: 'front-end' },
      organizationSlug: 'test-org',
      group: {
        id: '1170820242',
        url: 'https://sentry.io/organizations/test-org/issues/1170820242/',
      },
      url: 'https://sentry.io/organizations/test-org/issues/1170820242/',
      triggeringRules: [],
      event: { eventId: 'bb78c1407cea4519aa397afc059c793d' },
      dedupKey: 'error:created:bb78c1407cea4519aa397afc059c793d',
    });
    expect(n.tags['browser.name']).toBe('Chrome');
  });
});

describe('metric_alert.*', () => {
  it.each([
    ['metric_alert.critical', 'error', 'Critical: Too many errors', '1042'],
    ['metric_alert.warning', 'warning', 'Warning: Too many errors', '612'],
    ['metric_alert.resolved', 'info', 'Resolved: Too many errors', '87'],
  ])('%s: level %s', (kind, level, title, value) => {
    const n = parseSample(kind);
    const action = kind.split('.')[1];
    expect(n).toMatchObject({
      kind,
      level,
      title,
      message: `${value} events in the last 10 minutes\nFilter: level:error`,
      environment: 'production',
      project: { slug: 'front-end', name: 'front-end' },
      organizationSlug: 'test-org',
      url: 'https://sentry.io/organizations/test-org/alerts/12/',
      links: { alert: 'https://sentry.io/organizations/test-org/alerts/12/' },
      metricAlert: {
        id: '53',
        identifier: '12',
        title: 'Too many errors',
        status: action,
        alertRuleName: 'Too many errors',
        url: 'https://sentry.io/organizations/test-org/alerts/12/',
      },
      dedupKey: `metric_alert:${action}:53:2019-08-20T09:01:00.000000Z`,
    });
  });

  it('uses date_detected when date_started is absent, and no date when neither is', () => {
    const detected = parseSample('metric_alert.critical', (body) => {
      delete body.data.metric_alert.date_started;
      body.data.metric_alert.date_detected = '2019-08-20T09:00:30.000000Z';
    });
    expect(detected.dedupKey).toBe('metric_alert:critical:53:2019-08-20T09:00:30.000000Z');
    const neither = parseSample('metric_alert.critical', (body) => {
      delete body.data.metric_alert.date_started;
      delete body.data.metric_alert.date_detected;
    });
    expect(neither.dedupKey).toBe('metric_alert:critical:53');
  });
});

describe('comment.*', () => {
  it('comment.created: what a user sees', () => {
    const n = parseSample('comment.created');
    const text =
      'Reproduced in Safari too – the runner never defines `blooopy`. Fix goes out with the next deploy 👍';
    expect(n).toMatchObject({
      kind: 'comment.created',
      title: 'Meredith Heller commented on issue 1170820242',
      message: text,
      project: { slug: 'front-end' },
      comment: {
        id: '4711',
        issueId: '1170820242',
        text,
        timestamp: '2019-08-20T08:15:42.118160Z',
      },
      dedupKey: 'comment:created:4711',
    });
  });

  it('comment.updated: each edit is new content, a redelivered edit is not', () => {
    const edit = (text: string) =>
      parseSample('comment.created', (body) => {
        body.action = 'updated';
        body.data.comment = text;
      });
    expect(edit('first edit').title).toBe('Meredith Heller edited a comment on issue 1170820242');
    expect(edit('first edit').dedupKey).toMatch(/^comment:updated:4711:[0-9a-f]{16}$/);
    expect(edit('first edit').dedupKey).toBe(edit('first edit').dedupKey);
    expect(edit('first edit').dedupKey).not.toBe(edit('second edit').dedupKey);
  });

  it('comment.deleted parses', () => {
    const n = parseSample('comment.created', (body) => {
      body.action = 'deleted';
    });
    expect(n.dedupKey).toBe('comment:deleted:4711');
    expect(n.title).toBe('Meredith Heller deleted a comment on issue 1170820242');
  });
});

describe('installation.*', () => {
  const code = 'f3c71b491e3949b6b033ae45312a4fcb';

  it('installation.created: what a user sees', () => {
    const n = parseSample('installation.created');
    expect(n).toMatchObject({
      kind: 'installation.created',
      title: 'Sentry integration webhooks-galore installed in test-org',
      message: 'Installation status: pending',
      organizationSlug: 'test-org',
      installationUuid: 'a8e5d37a-696c-4c54-adb5-b3f28d64c7de',
      installation: {
        uuid: 'a8e5d37a-696c-4c54-adb5-b3f28d64c7de',
        status: 'pending',
        appSlug: 'webhooks-galore',
        appUuid: '2ebf071f-28df-4989-aca9-c37c763b278f',
      },
      actor: { id: '1', name: 'Meredith Heller', type: 'user' },
      dedupKey: 'installation:created:a8e5d37a-696c-4c54-adb5-b3f28d64c7de',
    });
  });

  it('never copies the one-time OAuth grant code, not even into raw', () => {
    const body = sampleBody('installation.created');
    expect(body.data.installation.code).toBe(code);
    const n = expectOk(parseSentryWebhook({ resource: 'installation', body }));
    const json = JSON.stringify(n);
    expect(json).not.toContain(code);
    expect(json).not.toContain('"code"');
    expect((n.raw as Body).installation).not.toHaveProperty('code');
    expect((n.raw as Body).installation.uuid).toBe('a8e5d37a-696c-4c54-adb5-b3f28d64c7de');
    // The caller's body is left as it was.
    expect(body.data.installation.code).toBe(code);
  });

  it('installation.deleted parses', () => {
    const n = parseSample('installation.created', (body) => {
      body.action = 'deleted';
      body.data.installation.status = 'installed';
    });
    expect(n.title).toBe('Sentry integration webhooks-galore uninstalled in test-org');
    expect(n.dedupKey).toBe('installation:deleted:a8e5d37a-696c-4c54-adb5-b3f28d64c7de');
  });
});

describe('legacy WebHooks plugin body', () => {
  const expected = {
    resource: 'legacy_webhook',
    action: 'triggered',
    kind: 'legacy_webhook.triggered',
    title: "KeyError: 'customer_id'",
    message: "KeyError: 'customer_id'",
    level: 'error',
    environment: 'production',
    release: 'backend@2.4.1',
    triggeringRules: ['Notify on-call for new production errors'],
    project: { id: '2', slug: 'backend', name: 'Backend' },
    organizationSlug: 'test-org',
    group: {
      id: '1170820510',
      culprit: 'orders.views in checkout',
      platform: 'python',
      url: 'https://sentry.io/organizations/test-org/issues/1170820510/?referrer=webhooks_plugin',
    },
    url: 'https://sentry.io/organizations/test-org/issues/1170820510/?referrer=webhooks_plugin',
    event: {
      eventId: '5d2f1a9c0b7e4e0f8c3a6b1d9e2f4a70',
      datetime: '2019-08-20T08:32:11.267Z',
    },
    dedupKey:
      'legacy_webhook:5d2f1a9c0b7e4e0f8c3a6b1d9e2f4a70:Notify on-call for new production errors',
  };

  it('parseLegacyWebhook: what a user sees', () => {
    const body = sampleBody('legacy_webhook.triggered');
    const n = expectOk(parseLegacyWebhook(body));
    expect(n).toMatchObject(expected);
    expect(n.tags).toMatchObject({ server_name: 'web-3', transaction: '/checkout/' });
    expect(n.raw).toBe(body);
    expect(n.installationUuid).toBeUndefined();
  });

  it('parseSentryWebhook routes resource legacy_webhook, or a body without the header', () => {
    const body = sampleBody('legacy_webhook.triggered');
    expect(expectOk(parseSentryWebhook({ resource: 'legacy_webhook', body }))).toMatchObject(
      expected,
    );
    expect(expectOk(parseSentryWebhook({ resource: '', body }))).toMatchObject(expected);
  });

  it('without an event id, keys on issue id and a hash of the message', () => {
    const keyFor = (message: string) => {
      const body = sampleBody('legacy_webhook.triggered');
      delete body.event;
      body.message = message;
      return expectOk(parseLegacyWebhook(body)).dedupKey;
    };
    expect(keyFor('a')).toMatch(
      /^legacy_webhook:1170820510:[0-9a-f]{16}:Notify on-call for new production errors$/,
    );
    expect(keyFor('a')).toBe(keyFor('a'));
    expect(keyFor('a')).not.toBe(keyFor('b'));
  });

  it('one event that fired two rules is two notifications', () => {
    const body = sampleBody('legacy_webhook.triggered');
    const first = expectOk(parseLegacyWebhook(body)).dedupKey;
    body.triggering_rules = ['Escalate checkout errors'];
    expect(expectOk(parseLegacyWebhook(body)).dedupKey).not.toBe(first);
  });
});

describe('dedupKey', () => {
  // A redelivery carries a new Request-ID and Sentry-Hook-Timestamp header,
  // and a body with the same content, possibly serialised afresh.
  function reversedKeys(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(reversedKeys);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value).reverse();
    return Object.fromEntries(entries.map(([k, v]) => [k, reversedKeys(v)]));
  }

  function redelivered(kind: string, edit?: (body: Body) => void): Notification {
    const sample = loadSample(kind);
    const body = reversedKeys(sample.body) as Body;
    expect(Object.keys(body)).toEqual(Object.keys(sample.body as Body).reverse());
    edit?.(body);
    return expectOk(parseSentryWebhook({ resource: sample.resource, body }));
  }

  it.each(SAMPLE_KINDS.map((k) => [k]))('%s: a redelivery has the same key', (kind) => {
    expect(redelivered(kind).dedupKey).toBe(parseSample(kind).dedupKey);
  });

  it('an issue re-serialised on retry (counts and lastSeen moved on) keeps its key', () => {
    const retry = redelivered('issue.created', (body) => {
      body.data.issue.count = '3';
      body.data.issue.userCount = 2;
      body.data.issue.lastSeen = '2019-08-19T21:04:00.000000Z';
      body.data.issue.hasSeen = true;
    });
    expect(retry.dedupKey).toBe(parseSample('issue.created').dedupKey);
  });

  it('different issues, events, rules, incidents and actions get different keys', () => {
    const base = parseSample('issue.created').dedupKey;
    const otherIssue = parseSample('issue.created', (b) => {
      b.data.issue.id = '1170820243';
    });
    expect(otherIssue.dedupKey).not.toBe(base);
    expect(parseSample('issue.resolved').dedupKey).not.toBe(base);

    const alert = parseSample('event_alert.triggered').dedupKey;
    const otherEvent = parseSample('event_alert.triggered', (b) => {
      b.data.event.event_id = 'f'.repeat(32);
    });
    const otherRule = parseSample('event_alert.triggered', (b) => {
      b.data.triggered_rule = 'Another rule';
    });
    expect(otherEvent.dedupKey).not.toBe(alert);
    expect(otherRule.dedupKey).not.toBe(alert);

    const incident = parseSample('metric_alert.critical').dedupKey;
    const otherIncident = parseSample('metric_alert.critical', (b) => {
      b.data.metric_alert.id = '54';
    });
    const restarted = parseSample('metric_alert.critical', (b) => {
      b.data.metric_alert.date_started = '2019-08-21T00:00:00.000000Z';
    });
    expect(otherIncident.dedupKey).not.toBe(incident);
    expect(restarted.dedupKey).not.toBe(incident);
  });
});

describe('payloads the parser does not understand', () => {
  it.each([
    ['null', null, 'body is null, not a JSON object'],
    ['an array', [{ action: 'created' }], 'body is an array, not a JSON object'],
    ['a string', '{"action":"created"}', 'body is a string, not a JSON object'],
    ['a number', 42, 'body is a number, not a JSON object'],
  ])('body %s → invalid_payload', (_what, body, detail) => {
    const failure = expectFailure(parseSentryWebhook({ resource: 'issue', body }));
    expect(failure).toEqual({ ok: false, reason: 'invalid_payload', detail, resource: 'issue' });
  });

  it('seer → unsupported_resource naming the resource', () => {
    const failure = expectFailure(
      parseSentryWebhook({
        resource: 'seer',
        body: { action: 'root_cause_completed', data: { run_id: 1 } },
      }),
    );
    expect(failure).toMatchObject({
      reason: 'unsupported_resource',
      resource: 'seer',
      action: 'root_cause_completed',
    });
    expect(failure.detail).toContain("resource 'seer' is not supported");
    expect(failure.detail).toContain('issue');
  });

  it.each(['preprod_artifact', 'activity_alert', 'constructor', '__proto__', 'toString'])(
    'unknown resource %s → unsupported_resource',
    (resource) => {
      const failure = expectFailure(
        parseSentryWebhook({ resource, body: sampleBody('issue.created') }),
      );
      expect(failure.reason).toBe('unsupported_resource');
      expect(failure.detail).toContain(resource.toLowerCase());
    },
  );

  it('unknown action for a known resource → unsupported_resource listing the known ones', () => {
    const body = { ...sampleBody('issue.created'), action: 'deleted' };
    const failure = expectFailure(parseSentryWebhook({ resource: 'issue', body }));
    expect(failure).toMatchObject({
      reason: 'unsupported_resource',
      resource: 'issue',
      action: 'deleted',
    });
    expect(failure.detail).toBe(
      "issue action 'deleted' is not supported (supported: created, resolved, assigned, ignored, archived, unresolved)",
    );
  });

  const broken: [string, string, (b: Body) => unknown, string][] = [
    [
      'issue.created',
      'without data.issue.id',
      (b) => delete b.data.issue.id,
      'data.issue.id missing',
    ],
    [
      'issue.created',
      'with a blank issue id',
      (b) => (b.data.issue.id = ''),
      'data.issue.id missing',
    ],
    ['issue.created', 'with data.issue null', (b) => (b.data.issue = null), 'data.issue missing'],
    ['issue.created', 'without data', (b) => delete b.data, 'data missing'],
    [
      'issue.created',
      'with data an array',
      (b) => (b.data = []),
      'data is an array, not an object',
    ],
    ['issue.created', 'without action', (b) => delete b.action, 'action missing'],
    [
      'event_alert.triggered',
      'without event_id',
      (b) => delete b.data.event.event_id,
      'data.event.event_id missing',
    ],
    [
      'event_alert.triggered',
      'without data.event',
      (b) => delete b.data.event,
      'data.event missing',
    ],
    [
      'error.created',
      'with data.error a string',
      (b) => (b.data.error = 'oops'),
      'data.error missing',
    ],
    [
      'metric_alert.critical',
      'without incident id',
      (b) => delete b.data.metric_alert.id,
      'data.metric_alert.id missing',
    ],
    [
      'comment.created',
      'without comment_id',
      (b) => delete b.data.comment_id,
      'data.comment_id missing',
    ],
    ['comment.created', 'without issue_id', (b) => delete b.data.issue_id, 'data.issue_id missing'],
    [
      'installation.created',
      'without data.installation',
      (b) => delete b.data.installation,
      'data.installation missing',
    ],
  ];
  it.each(broken)('%s %s → invalid_payload', (kind, _what, edit, detail) => {
    const sample = loadSample(kind);
    edit(sample.body as Body);
    const failure = expectFailure(
      parseSentryWebhook({ resource: sample.resource, body: sample.body }),
    );
    expect(failure.reason).toBe('invalid_payload');
    expect(failure.detail).toBe(detail);
    expect(failure.resource).toBe(sample.resource);
  });

  it('an Integration Platform body without Sentry-Hook-Resource → invalid_payload', () => {
    const failure = expectFailure(
      parseSentryWebhook({ resource: '', body: sampleBody('issue.created') }),
    );
    expect(failure).toMatchObject({
      reason: 'invalid_payload',
      action: 'created',
      detail: 'Sentry-Hook-Resource header missing',
    });
  });

  it('reads the header value case- and whitespace-insensitively', () => {
    const n = expectOk(
      parseSentryWebhook({ resource: ' Issue ', body: sampleBody('issue.created') }),
    );
    expect(n.kind).toBe('issue.created');
  });

  it.each([
    ['null', null, 'body is null, not a JSON object'],
    ['an array', [], 'body is an array, not a JSON object'],
    ['a string', 'hello', 'body is a string, not a JSON object'],
    ['empty', {}, 'id and event.event_id missing'],
  ])('legacy body %s → invalid_payload', (_what, body, detail) => {
    expect(parseLegacyWebhook(body)).toEqual({
      ok: false,
      reason: 'invalid_payload',
      detail,
      resource: 'legacy_webhook',
      action: 'triggered',
    });
  });

  it('never throws, whatever arrives', () => {
    const hostile = {
      action: 'created',
      get data(): unknown {
        throw new Error('boom');
      },
    };
    const bodies: unknown[] = [
      undefined,
      null,
      true,
      0,
      '',
      [],
      {},
      { action: 1, data: 1 },
      { action: 'created', data: { issue: { id: {} } } },
      { action: 'triggered', data: { event: { event_id: [], tags: 'x', url: 'not a url' } } },
      { action: 'critical', data: { metric_alert: { id: 1, projects: 'front-end' } } },
      { action: 'created', data: { comment_id: 1, issue_id: 2, comment: 5 } },
      { action: 'created', data: { installation: { uuid: 'u', app: [], organization: 'x' } } },
      hostile,
    ];
    const resources = [
      'issue',
      'event_alert',
      'error',
      'metric_alert',
      'comment',
      'installation',
      'legacy_webhook',
      'seer',
      '',
    ];
    for (const resource of resources) {
      for (const body of bodies) {
        expect(() => parseSentryWebhook({ resource, body })).not.toThrow();
      }
    }
    for (const body of bodies) expect(() => parseLegacyWebhook(body)).not.toThrow();
    expect(() => parseSentryWebhook(null as never)).not.toThrow();

    const failure = expectFailure(parseSentryWebhook({ resource: 'issue', body: hostile }));
    expect(failure).toMatchObject({ reason: 'invalid_payload', resource: 'issue' });
    expect(failure.detail).toBe('payload could not be read: boom');
  });
});
