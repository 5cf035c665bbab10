import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSample } from '@plugboard/sdk';
import { configSchema } from '../../src/config/schema';
import {
  formatRoutesReport,
  inferResource,
  readPayloadFile,
  routesTest,
  type RoutesTestReport,
} from '../../src/noise/routes-test';
import type { SilenceView } from '../../src/noise/silences';
import { cleanup, requireBuiltRelay, runCli, tempDir, writeConfig } from '../integration/helpers';

const FIXTURES = join(__dirname, '..', 'fixtures', 'sentry');
const fixturePath = (name: string) => join(FIXTURES, `${name}.json`);
const body = (name: string): unknown => JSON.parse(readFileSync(fixturePath(name), 'utf8'));

const DAY = Date.parse('2025-01-15T12:00:00.000Z');
const NIGHT = Date.parse('2025-01-15T23:00:00.000Z');

const raw = {
  timeIntervals: [
    { name: 'nights', timeIntervals: [{ times: [{ startTime: '22:00', endTime: '07:00' }] }] },
  ],
  routes: [
    { name: 'audit', continue: true, instances: [{ plugin: 'log' }] },
    { name: 'backend', match: { projects: ['backend'] }, instances: [{ plugin: 'log' }] },
    {
      name: 'front-errors',
      matchers: ['project="front-end"', 'level=~"error|fatal"'],
      muteTimeIntervals: ['nights'],
      instances: [
        { plugin: 'log', name: 'chat' },
        { plugin: 'log', name: 'pager' },
      ],
    },
    { name: 'fallback', instances: [{ plugin: 'log' }] },
  ],
};
const config = configSchema.parse(raw);

function run(name: string, now = DAY, silences?: SilenceView[]): RoutesTestReport {
  return routesTest({
    file: `${name}.json`,
    body: body(name),
    config,
    now,
    ...(silences ? { silences } : { silencesNote: 'no relay in this test' }),
  });
}

describe('routes test', () => {
  it('shows the labels, every route in order and where evaluation stopped', () => {
    const r = run('issue.created');
    expect(r).toMatchObject({
      resource: 'issue',
      resourceFrom: 'data.issue',
      kind: 'issue.created',
      labels: { project: 'front-end', level: 'error', issue: '1170820242', environment: '' },
    });
    expect(r.routes).toEqual([
      {
        index: 0,
        name: 'audit',
        evaluated: true,
        matched: true,
        continue: true,
        stops: false,
        instances: ['audit/log'],
      },
      {
        index: 1,
        name: 'backend',
        evaluated: true,
        matched: false,
        continue: false,
        stops: false,
        reason: 'project front-end not in [backend]',
        instances: [],
      },
      {
        index: 2,
        name: 'front-errors',
        evaluated: true,
        matched: true,
        continue: false,
        stops: true,
        instances: ['front-errors/chat', 'front-errors/pager'],
      },
      {
        index: 3,
        name: 'fallback',
        evaluated: false,
        matched: false,
        continue: false,
        stops: false,
        reason: 'not evaluated: route front-errors matched and has no continue: true',
        instances: [],
      },
    ]);
    expect(r.deliveries.every((d) => d.held === null)).toBe(true);
  });

  it('names the first failing matcher and the value it saw', () => {
    const installation = run('installation.created');
    expect(installation.routes[2]?.reason).toBe('project="front-end" (project is empty)');
    expect(installation.deliveries.map((d) => d.instanceId)).toEqual(['audit/log', 'fallback/log']);
  });

  it('says which deliveries a mute interval or an active silence would hold at that time', () => {
    const night = run('issue.created', NIGHT);
    expect(night.deliveries).toEqual([
      { instanceId: 'audit/log', route: 'audit', held: null },
      {
        instanceId: 'front-errors/chat',
        route: 'front-errors',
        held: {
          code: 'PB_DELIVERY_MUTED',
          message: 'route front-errors is muted by time interval "nights" (muteTimeIntervals)',
        },
      },
      expect.objectContaining({ instanceId: 'front-errors/pager' }),
    ]);
    const silence: SilenceView = {
      id: '3f2a4b1c-0000-4000-8000-000000000000',
      matchers: ['instance="audit/log"'],
      startsAt: '2025-01-15T11:00:00.000Z',
      endsAt: '2025-01-15T13:00:00.000Z',
      createdBy: 'ann',
      comment: 'noisy audit',
      createdAt: '2025-01-15T11:00:00.000Z',
      updatedAt: '2025-01-15T11:00:00.000Z',
      state: 'active',
    };
    const silenced = run('issue.created', DAY, [silence]);
    expect(silenced.deliveries[0]?.held).toEqual({
      code: 'PB_DELIVERY_SILENCED',
      message: `silenced by ${silence.id} (noisy audit) until 2025-01-15T13:00:00.000Z`,
    });
    expect(silenced.silences).toBe('1 active silence(s) checked');
    // After it ends, it holds nothing.
    expect(run('issue.created', NIGHT, [silence]).deliveries[0]?.held).toBeNull();
    expect(run('issue.created').silences).toBe('not checked: no relay in this test');
  });

  it('prints a report a person can read', () => {
    const text = formatRoutesReport(run('event_alert.triggered', NIGHT));
    expect(text).toContain(
      'event_alert.triggered from event_alert.triggered.json (resource event_alert, from data.event and data.triggered_rule)',
    );
    expect(text).toMatch(/^ {2}rule +"Very Important Alert Rule!"$/m);
    expect(text).toMatch(/^ {2}tags\.browser\.name +"Chrome"$/m);
    expect(text).toContain(
      '  1. audit: MATCH → audit/log; continue: true, evaluation goes on\n' +
        '  2. backend: no match: project front-end not in [backend]\n' +
        '  3. front-errors: MATCH → front-errors/chat, front-errors/pager; evaluation stops here (no continue: true)\n' +
        '  4. fallback: not evaluated: route front-errors matched and has no continue: true\n',
    );
    expect(text).toContain('Deliveries at 2025-01-15T23:00:00.000Z:\n  audit/log: sent\n');
    expect(text).toContain(
      '  front-errors/chat: held, PB_DELIVERY_MUTED: route front-errors is muted by time interval "nights" (muteTimeIntervals)',
    );
  });

  it.each([
    ['issue.created', 'issue'],
    ['event_alert.triggered', 'event_alert'],
    ['error.created', 'error'],
    ['metric_alert.resolved', 'metric_alert'],
    ['installation.created', 'installation'],
  ])('infers the resource of %s', (name, resource) => {
    expect(inferResource(body(name))?.resource).toBe(resource);
  });

  it('names the group a grouped route would count the payload into, or why it would not', () => {
    const grouped = configSchema.parse({
      routes: [
        { name: 'issues', continue: true, group: {}, instances: [{ plugin: 'log' }] },
        { name: 'by-alert', group: { by: ['alert'] }, instances: [{ plugin: 'log' }] },
      ],
    });
    const r = routesTest({
      file: 'issue.created.json',
      body: body('issue.created'),
      config: grouped,
      now: DAY,
      silencesNote: 'no relay in this test',
    });
    expect(r.routes.map((x) => x.group)).toEqual([
      'counted into group issue=1170820242: first message after 30 seconds, then at most one per 5 minutes, reminder after 4 hours with nothing new',
      'none of [alert] is set: delivered on its own',
    ]);
    expect(formatRoutesReport(r)).toContain('     group: counted into group issue=1170820242');
    expect(run('issue.created').routes.every((x) => x.group === undefined)).toBe(true);
  });

  it('infers comments and legacy plugin bodies too', () => {
    expect(inferResource(loadSample('comment.created').body)?.resource).toBe('comment');
    expect(inferResource(loadSample('legacy_webhook').body)?.resource).toBe('legacy_webhook');
    expect(inferResource({ data: { seer: {} } })).toBeUndefined();
    expect(inferResource([1, 2])).toBeUndefined();
  });

  it('refuses what it cannot read with PB_PAYLOAD_INVALID', () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e as Error & { code: string };
      }
      throw new Error('expected an error');
    };
    const unknown = err(() => routesTest({ file: 'x.json', body: { data: {} }, config, now: DAY }));
    expect(unknown.code).toBe('PB_PAYLOAD_INVALID');
    expect(unknown.message).toMatch(
      /cannot tell which Sentry resource x\.json is .*give --resource/,
    );
    const wrong = err(() =>
      routesTest({
        file: 'issue.json',
        body: body('issue.created'),
        resource: 'error',
        config,
        now: DAY,
      }),
    );
    expect(wrong).toMatchObject({
      code: 'PB_PAYLOAD_INVALID',
      message: 'issue.json is not a valid "error" payload: data.error missing',
    });
    expect(
      err(() =>
        routesTest({ file: 'x', body: body('issue.created'), resource: 'seer', config, now: DAY }),
      ).code,
    ).toBe('PB_PAYLOAD_UNSUPPORTED');
    expect(err(() => readPayloadFile(join(FIXTURES, 'nope.json'))).message).toMatch(
      /^cannot read .*nope\.json: ENOENT$/,
    );
    expect(err(() => readPayloadFile(join(FIXTURES, 'README.md'))).message).toMatch(
      /README\.md is not valid JSON/,
    );
  });
});

describe('plugboard routes test (the built CLI)', () => {
  beforeAll(requireBuiltRelay);
  afterEach(() => cleanup());
  afterAll(() => cleanup({ removeTemp: true }));

  it('prints the report for a real payload and exits 0', async () => {
    const cwd = tempDir('pb-routes-');
    const file = writeConfig(cwd, raw);
    const res = await runCli(
      [
        'routes',
        'test',
        fixturePath('issue.created'),
        '--config',
        file,
        '--at',
        '2025-01-15T23:00:00Z',
      ],
      { cwd },
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('3. front-errors: MATCH → front-errors/chat, front-errors/pager');
    expect(res.stdout).toContain('front-errors/chat: held, PB_DELIVERY_MUTED');
    expect(res.stdout).toContain(
      'Silences: not checked: api.token (PLUGBOARD_API_TOKEN) is not set, so the relay cannot be asked',
    );

    const json = await runCli(
      ['routes', 'test', fixturePath('metric_alert.resolved'), '--config', file, '--json'],
      { cwd },
    );
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as RoutesTestReport;
    expect(report.labels).toMatchObject({ project: 'bar', alert: '4', rule: 'Too many errors' });
    expect(report.deliveries.map((d) => d.instanceId)).toEqual(['audit/log', 'fallback/log']);
  });

  it('exits 65 for a payload it cannot read and 78 for a bad configuration', async () => {
    const cwd = tempDir('pb-routes-');
    const file = writeConfig(cwd, raw);
    writeFileSync(join(cwd, 'broken.json'), '{"data": ');
    const broken = await runCli(['routes', 'test', 'broken.json', '--config', file], { cwd });
    expect(broken.code).toBe(65);
    expect(broken.stderr).toMatch(
      /^plugboard: \[PB_PAYLOAD_INVALID\] broken\.json is not valid JSON/,
    );
    const missing = await runCli(['routes', 'test', 'missing.json', '--config', file], { cwd });
    expect(missing.code).toBe(65);
    expect(missing.stderr).toBe(
      'plugboard: [PB_PAYLOAD_INVALID] cannot read missing.json: ENOENT\n',
    );

    const bad = writeConfig(
      cwd,
      { routes: [{ name: 'a', matchers: ['level=~"("'], instances: [{ plugin: 'log' }] }] },
      'bad.yaml',
    );
    const res = await runCli(['routes', 'test', fixturePath('issue.created'), '--config', bad], {
      cwd,
    });
    expect(res.code).toBe(78);
    expect(res.stderr).toMatch(
      /routes\[0\]\.matchers\[0\] from \S*bad\.yaml: invalid regular expression "\(": /,
    );
  });
});
