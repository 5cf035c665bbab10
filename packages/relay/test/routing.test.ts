import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  loadSample,
  parseLegacyWebhook,
  parseSentryWebhook,
  type Notification,
} from '@plugboard/sdk';
import { loadConfig } from '../src/config/load';
import { routeSchema, type RouteConfig } from '../src/config/schema';
import { notificationLabels, notificationLabelSet } from '../src/noise/labels';
import { describeMismatch, parseMatcher } from '../src/noise/matchers';
import { memoryLogger, startRelay } from './helpers/relay';
import { evaluateRoutes, explainRoute, matchRoutes, shadowedRoutes } from '../src/routing';

const FIXTURES = join(__dirname, 'fixtures', 'sentry');

/** A real Sentry payload from test/fixtures, as the relay parses it. */
function fixture(kind: string, mutate?: (body: Record<string, unknown>) => void): Notification {
  const body = JSON.parse(readFileSync(join(FIXTURES, `${kind}.json`), 'utf8')) as Record<
    string,
    unknown
  >;
  mutate?.(body);
  const parsed = parseSentryWebhook({ resource: kind.split('.')[0]!, body });
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.notification;
}

function legacy(mutate?: (body: Record<string, unknown>) => void): Notification {
  const body = loadSample('legacy_webhook').body as Record<string, unknown>;
  mutate?.(body);
  const parsed = parseLegacyWebhook(body);
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.notification;
}

function route(raw: Record<string, unknown>): RouteConfig {
  return routeSchema.parse({ instances: [{ plugin: 'log' }], ...raw });
}

/** Whether one matcher string matches a notification. */
function m(text: string, n: Notification): boolean {
  return parseMatcher(text).matches(notificationLabelSet(n));
}

describe('notificationLabels', () => {
  it('gives the label set of a real issue.created payload', () => {
    expect(notificationLabels(fixture('issue.created'))).toEqual({
      kind: 'issue.created',
      resource: 'issue',
      action: 'created',
      project: 'front-end',
      project_id: '1',
      environment: '',
      level: 'error',
      release: '',
      rule: '',
      issue: '1170820242',
      issue_short_id: 'FRONT-END-9',
      alert: '',
      title: 'ReferenceError: blooopy is not defined',
      culprit: '?(runner)',
      status: 'unresolved',
    });
  });

  it('gives an event alert its rule name, issue id and one label per event tag', () => {
    const labels = notificationLabels(fixture('event_alert.triggered'));
    expect(labels).toMatchObject({
      kind: 'event_alert.triggered',
      project: 'front-end',
      rule: 'Very Important Alert Rule!',
      issue: '1117540176',
      level: 'error',
      environment: '',
      'tags.browser': 'Chrome 75.0.3770',
      'tags.browser.name': 'Chrome',
      'tags.os.name': 'Mac OS X',
      'tags.handled': 'no',
    });
  });

  it('gives a metric alert its incident id, rule name and first project', () => {
    expect(notificationLabels(fixture('metric_alert.resolved'))).toMatchObject({
      kind: 'metric_alert.resolved',
      resource: 'metric_alert',
      project: 'bar',
      project_id: '',
      alert: '4',
      rule: 'Too many errors',
      status: 'resolved',
      level: 'info',
      issue: '',
    });
  });

  it('joins several legacy triggering rules, and every one of them matches', () => {
    const n = legacy((b) => {
      b.triggering_rules = ['Production errors', 'Pager, night'];
    });
    expect(notificationLabels(n).rule).toBe('Production errors, Pager, night');
    expect(m('rule="Pager, night"', n)).toBe(true);
    expect(m('rule="Production errors"', n)).toBe(true);
    expect(m('rule=~"Prod.*"', n)).toBe(true);
    // Negative matchers hold only when no rule matches.
    expect(m('rule!="Pager, night"', n)).toBe(false);
    expect(m('rule!="Something else"', n)).toBe(true);
  });

  it('lets every project of a multi-project metric alert match', () => {
    const n = fixture('metric_alert.resolved', (b) => {
      (b.data as { metric_alert: { projects: string[] } }).metric_alert.projects = ['bar', 'web'];
    });
    expect(notificationLabels(n).project).toBe('bar');
    expect(m('project="web"', n)).toBe(true);
    expect(m('project!="web"', n)).toBe(false);
    expect(explainRoute(route({ name: 'r', match: { projects: ['web'] } }), n)).toBeUndefined();
  });
});

describe('matchers', () => {
  const issue = fixture('issue.created');
  const alert = fixture('event_alert.triggered');

  it('reads the four operators, quoted and bare values, and spaces around them', () => {
    expect(parseMatcher('project="web"')).toMatchObject({ name: 'project', op: '=', value: 'web' });
    expect(parseMatcher(' level =~ "error|fatal" ')).toMatchObject({
      op: '=~',
      value: 'error|fatal',
      text: 'level=~"error|fatal"',
    });
    expect(parseMatcher('tags.browser.name!=Chrome')).toMatchObject({
      name: 'tags.browser.name',
      op: '!=',
      value: 'Chrome',
    });
    expect(parseMatcher('environment!~"dev.*"').op).toBe('!~');
    expect(parseMatcher('tags.sentry:user="a"').name).toBe('tags.sentry:user');
    expect(parseMatcher('title="say \\"hi\\""').value).toBe('say "hi"');
    expect(parseMatcher('environment=""').value).toBe('');
  });

  it('keeps backslashes that are not quote escapes, so regular expressions read as written', () => {
    const n = fixture('issue.created');
    expect(parseMatcher('culprit=~"\\?\\(runner\\)"').value).toBe('\\?\\(runner\\)');
    expect(m('culprit=~"\\?\\(runner\\)"', n)).toBe(true);
  });

  it('anchors regular expressions at both ends', () => {
    expect(m('level=~"err"', issue)).toBe(false);
    expect(m('level=~"err.*"', issue)).toBe(true);
    expect(m('level=~"warning|error"', issue)).toBe(true);
    expect(m('title=~"blooopy"', issue)).toBe(false);
    expect(m('title=~".*blooopy.*"', issue)).toBe(true);
    expect(m('level=~"ERROR"', issue)).toBe(false);
    expect(m('level=~"(?i)ERROR"', issue)).toBe(true);
  });

  it('negates with != and !~', () => {
    expect(m('level!="error"', issue)).toBe(false);
    expect(m('level!="warning"', issue)).toBe(true);
    expect(m('project!~"front.*"', issue)).toBe(false);
    expect(m('project!~"back.*"', issue)).toBe(true);
  });

  it('reads a missing label as empty, as Alertmanager does', () => {
    // Issue webhooks carry no environment.
    expect(m('environment=""', issue)).toBe(true);
    expect(m('environment!="production"', issue)).toBe(true);
    expect(m('environment="production"', issue)).toBe(false);
    expect(m('environment=~"prod.*"', issue)).toBe(false);
    expect(m('tags.browser=""', issue)).toBe(true);
    expect(m('no_such_label=""', issue)).toBe(true);
  });

  it('matches event tags and alert rule names', () => {
    expect(m('tags.browser.name="Chrome"', alert)).toBe(true);
    expect(m('tags.browser!="Chrome"', alert)).toBe(true); // it is "Chrome 75.0.3770"
    expect(m('tags.browser=~"Chrome.*"', alert)).toBe(true);
    expect(m('rule="Very Important Alert Rule!"', alert)).toBe(true);
    expect(m('rule=~"Very Important.*"', alert)).toBe(true);
  });

  it('says which label had which value when a matcher fails', () => {
    const set = notificationLabelSet(issue);
    expect(describeMismatch(parseMatcher('level=~"fatal"'), set)).toBe(
      'level=~"fatal" (level is "error")',
    );
    expect(describeMismatch(parseMatcher('environment="prod"'), set)).toBe(
      'environment="prod" (environment is empty)',
    );
  });

  it.each([
    ['', /does not start with a label name/],
    ['"web"', /does not start with a label name/],
    ['project', /expected =, !=, =~ or !~ after project/],
    ['project=="web"', /a value with a quote must be quoted as a whole/],
    ['project="web', /missing closing quote/],
    ['project="web" extra', /unexpected "extra" after the closing quote/],
    ['level=~"error|("', /invalid regular expression "error\|\(": /],
  ])('refuses %j', (text, message) => {
    expect(() => parseMatcher(text)).toThrow(message);
  });
});

describe('routes: order, continue and explanations', () => {
  const issue = fixture('issue.created');
  const routes = [
    route({ name: 'audit', continue: true }),
    route({ name: 'backend', match: { projects: ['backend'] } }),
    route({
      name: 'front-errors',
      matchers: ['project="front-end"', 'level=~"error|fatal"'],
      instances: [{ plugin: 'webhook', name: 'hook' }, { plugin: 'log' }],
    }),
    route({ name: 'fallback' }),
  ];

  it('stops at the first matching route without continue: true', () => {
    expect(matchRoutes(routes, issue).map((t) => t.instanceId)).toEqual([
      'audit/log',
      'front-errors/hook',
      'front-errors/log',
    ]);
  });

  it('falls through to later routes when earlier ones do not match', () => {
    const warning = fixture('issue.created', (b) => {
      (b.data as { issue: { level: string } }).issue.level = 'warning';
    });
    expect(matchRoutes(routes, warning).map((t) => t.instanceId)).toEqual([
      'audit/log',
      'fallback/log',
    ]);
  });

  it('delivers to every matching route only when each says continue: true', () => {
    const all = routes.map((r) => ({ ...r, continue: true }));
    expect(matchRoutes(all, issue).map((t) => t.route.name)).toEqual([
      'audit',
      'front-errors',
      'front-errors',
      'fallback',
    ]);
  });

  it('explains every route: matched, the first failing condition, or not evaluated', () => {
    const warning = fixture('issue.created', (b) => {
      (b.data as { issue: { level: string } }).issue.level = 'warning';
    });
    const byName = (n: Notification) =>
      Object.fromEntries(
        evaluateRoutes(routes, n).map((e) => [
          e.route.name,
          { matched: e.matched, evaluated: e.evaluated, stops: e.stops, reason: e.reason },
        ]),
      );
    expect(byName(warning)).toEqual({
      audit: { matched: true, evaluated: true, stops: false, reason: undefined },
      backend: {
        matched: false,
        evaluated: true,
        stops: false,
        reason: 'project front-end not in [backend]',
      },
      'front-errors': {
        matched: false,
        evaluated: true,
        stops: false,
        reason: 'level=~"error|fatal" (level is "warning")',
      },
      fallback: { matched: true, evaluated: true, stops: true, reason: undefined },
    });
    expect(byName(issue).fallback).toEqual({
      matched: false,
      evaluated: false,
      stops: false,
      reason: 'not evaluated: route front-errors matched and has no continue: true',
    });
  });

  it('matches a notification that lacks a field only when the route allows it', () => {
    // Before labels, a kind without an environment silently never matched a
    // negative condition; now `environment!="dev"` takes it.
    const r = route({ name: 'not-dev', matchers: ['environment!="dev"'] });
    expect(explainRoute(r, issue)).toBeUndefined();
    expect(
      explainRoute(route({ name: 'prod', match: { environments: ['production'] } }), issue),
    ).toBe('environment (none) not in [production]');
  });

  it('reads the match lists: releases, rules, tags and resources or kinds', () => {
    const n = legacy();
    expect(explainRoute(route({ name: 'r', match: { releases: ['backend@2.4.1'] } }), n)).toBe(
      undefined,
    );
    expect(explainRoute(route({ name: 'r', match: { releases: ['backend@2.5.0'] } }), n)).toBe(
      'release backend@2.4.1 not in [backend@2.5.0]',
    );
    expect(
      explainRoute(
        route({ name: 'r', match: { rules: ['Notify on-call for new production errors'] } }),
        n,
      ),
    ).toBeUndefined();
    expect(explainRoute(route({ name: 'r', match: { rules: ['Other'] } }), n)).toBe(
      'rule Notify on-call for new production errors not in [Other]',
    );
    expect(
      explainRoute(route({ name: 'r', match: { tags: { 'runtime.name': 'CPython' } } }), n),
    ).toBeUndefined();
    expect(explainRoute(route({ name: 'r', match: { tags: { runtime: 'PyPy' } } }), n)).toBe(
      'tag runtime CPython 3.11.4 not in [PyPy]',
    );
    expect(explainRoute(route({ name: 'r', match: { resources: ['legacy_webhook'] } }), n)).toBe(
      undefined,
    );
    expect(explainRoute(route({ name: 'r', match: { resources: ['issue.created'] } }), n)).toBe(
      'legacy_webhook.triggered not in [issue.created]',
    );
  });
});

describe('configuration of routing and noise control', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pb-routing-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const load = (raw: Record<string, unknown>) => {
    const file = join(dir, 'plugboard.yaml');
    writeFileSync(file, stringify(raw));
    return loadConfig({ file, env: {}, cwd: dir });
  };
  const errorOf = (raw: Record<string, unknown>): Error & { code?: string } => {
    try {
      load(raw);
    } catch (err) {
      return err as Error & { code?: string };
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults continue to false and the new lists to empty', () => {
    const { config } = load({ routes: [{ name: 'a', instances: [{ plugin: 'log' }] }] });
    expect(config.routes[0]).toMatchObject({
      continue: false,
      matchers: [],
      muteTimeIntervals: [],
      match: { releases: [], rules: [], tags: {} },
    });
    expect(config.timeIntervals).toEqual([]);
    expect(config.inhibitRules).toEqual([]);
  });

  it('refuses a bad matcher at start-up, naming routes[i].matchers[j]', () => {
    const err = errorOf({
      routes: [
        { name: 'a', instances: [{ plugin: 'log' }] },
        {
          name: 'b',
          matchers: ['project="web"', 'level=~"error|("'],
          instances: [{ plugin: 'log' }],
        },
      ],
    });
    expect(err.code).toBe('PB_CONFIG_INVALID');
    expect(err.message).toMatch(
      /routes\[1\]\.matchers\[1\] from .*plugboard\.yaml: invalid regular expression "error\|\("/,
    );
    expect(
      errorOf({
        routes: [{ name: 'a', matchers: ['project web'], instances: [{ plugin: 'log' }] }],
      }).message,
    ).toMatch(/routes\[0\]\.matchers\[0\] .*expected =, !=, =~ or !~ after project/);
  });

  it('refuses an unknown mute interval and a bad time interval, naming the key', () => {
    expect(
      errorOf({
        timeIntervals: [
          {
            name: 'nights',
            timeIntervals: [{ times: [{ startTime: '22:00', endTime: '06:00' }] }],
          },
        ],
        routes: [{ name: 'a', muteTimeIntervals: ['weekends'], instances: [{ plugin: 'log' }] }],
      }).message,
    ).toMatch(
      /routes\[0\]\.muteTimeIntervals\[0\] .*unknown time interval "weekends"; timeIntervals defines nights/,
    );
    expect(
      errorOf({
        timeIntervals: [
          {
            name: 'x',
            timeIntervals: [{ weekdays: ['monday', 'funday'], location: 'Europe/Berlin' }],
          },
        ],
      }).message,
    ).toMatch(/timeIntervals\[0\]\.timeIntervals\[0\]\.weekdays\[1\] .*"funday" is not a weekday/);
    expect(
      errorOf({ timeIntervals: [{ name: 'x', timeIntervals: [{ location: 'Mars/Olympus' }] }] })
        .message,
    ).toMatch(/timeIntervals\[0\]\.timeIntervals\[0\]\.location .*not a time zone/);
    expect(
      errorOf({
        timeIntervals: [
          { name: 'x', timeIntervals: [{ times: [{ startTime: '25:00', endTime: '26:00' }] }] },
        ],
      }).message,
    ).toMatch(/times\[0\]\.startTime .*"25:00" is not a time of day/);
  });

  it('refuses a bad inhibition matcher, naming inhibitRules[i].sourceMatchers[j]', () => {
    expect(
      errorOf({
        inhibitRules: [
          {
            sourceMatchers: ['kind="metric_alert.critical'],
            targetMatchers: ['resource="event_alert"'],
          },
        ],
      }).message,
    ).toMatch(/inhibitRules\[0\]\.sourceMatchers\[0\] .*missing closing quote/);
  });
});

describe('shadowedRoutes: routes that can never match', () => {
  const names = (routes: RouteConfig[]): Array<[string, string]> =>
    shadowedRoutes(routes).map((s) => [s.route.name, s.by.name]);

  it('names every route after one with no conditions and no continue', () => {
    // examples/relay-docker as it was: `everything` first, the webhook route never reached.
    const routes = [
      route({ name: 'everything' }),
      route({ name: 'production', match: { levels: ['error', 'fatal'] } }),
      route({ name: 'rest' }),
    ];
    expect(names(routes)).toEqual([
      ['production', 'everything'],
      ['rest', 'everything'],
    ]);
    // What the shadowed route would take is really taken by the first one only.
    const n = fixture('issue.created');
    expect(evaluateRoutes(routes, n).find((e) => e.route.name === 'production')?.evaluated).toBe(
      false,
    );
  });

  it('is logged as a warning when the relay starts, not only by check-config', async () => {
    const { logger, lines } = memoryLogger();
    const t = await startRelay(
      {
        routes: [
          { name: 'everything', instances: [{ plugin: 'log' }] },
          { name: 'pager', match: { levels: ['fatal'] }, instances: [{ plugin: 'log' }] },
        ],
      },
      { logger },
    );
    try {
      const warnings = lines()
        .map((l) => JSON.parse(l) as { level: number; msg: string; route?: string })
        .filter((l) => l.level === 40 && l.route === 'pager');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toContain('route pager can never match: route everything before it');
    } finally {
      await t.close();
    }
  });

  it('says nothing when the earlier route continues, or does not cover the later one', () => {
    expect(
      names([
        route({ name: 'everything', continue: true }),
        route({ name: 'production', match: { levels: ['error'] } }),
      ]),
    ).toEqual([]);
    expect(
      names([
        route({ name: 'errors', match: { levels: ['error'] } }),
        route({ name: 'errors-and-fatal', match: { levels: ['error', 'fatal'] } }),
        route({ name: 'web', matchers: ['project="web"'] }),
        route({ name: 'fallback' }),
      ]),
    ).toEqual([]);
  });

  it("names a later route whose conditions imply an earlier route's", () => {
    expect(
      names([
        route({
          name: 'web-errors',
          match: { levels: ['error', 'fatal'] },
          matchers: ['project="web"'],
        }),
        route({
          name: 'web-fatal-prod',
          match: { levels: ['fatal'], environments: ['prod'] },
          matchers: ['project="web"', 'release=~"1.*"'],
        }),
      ]),
    ).toEqual([['web-fatal-prod', 'web-errors']]);
  });
});
