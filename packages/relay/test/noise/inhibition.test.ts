import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSentryWebhook, type Notification } from '@plugboard/sdk';
import { buildNotification } from '@plugboard/sdk/testing';
import { configSchema, type RawConfig } from '../../src/config/schema';
import { createNoiseControl, type NoiseControl } from '../../src/noise/gate';
import { INHIBITIONS_NAMESPACE } from '../../src/noise/inhibition';
import { SqliteStore } from '../../src/store/sqlite';
import type { LeasedJob } from '../../src/store/types';

const T0 = Date.parse('2025-01-15T12:00:00.000Z');
const HOUR = 3_600_000;

type Body = {
  action: string;
  data: { metric_alert: { id: string; projects: string[]; alert_rule: { projects: string[] } } };
};

/** The real metric alert payload from Sentry's docs (resolved), as another action and project set. */
function metricAlert(action: string, projects = ['front-end'], id = '4'): Notification {
  const body = JSON.parse(
    readFileSync(join(__dirname, '..', 'fixtures', 'sentry', 'metric_alert.resolved.json'), 'utf8'),
  ) as Body;
  body.action = action;
  body.data.metric_alert.id = id;
  body.data.metric_alert.projects = projects;
  body.data.metric_alert.alert_rule.projects = projects;
  const parsed = parseSentryWebhook({ resource: 'metric_alert', body });
  if (!parsed.ok) throw new Error(parsed.detail);
  return parsed.notification;
}

/** The real event_alert payload (project front-end), optionally for another project. */
function eventAlert(project?: string): Notification {
  const body = JSON.parse(
    readFileSync(join(__dirname, '..', 'fixtures', 'sentry', 'event_alert.triggered.json'), 'utf8'),
  ) as unknown;
  const parsed = parseSentryWebhook({ resource: 'event_alert', body });
  if (!parsed.ok) throw new Error(parsed.detail);
  const n = parsed.notification;
  return project ? { ...n, project: { slug: project, name: project } } : n;
}

const input = (n: Notification) => ({
  instanceId: 'alerts/hook',
  routeName: 'alerts',
  notification: n,
  job: {} as LeasedJob,
});

describe('inhibition', () => {
  let now: number;
  let store: SqliteStore;
  const clock = () => now;
  const controlWith = (inhibitRules: RawConfig['inhibitRules']): NoiseControl =>
    createNoiseControl({
      store,
      config: configSchema.parse({
        inhibitRules,
        routes: [{ name: 'alerts', instances: [{ plugin: 'webhook', name: 'hook' }] }],
      }),
      now: clock,
    });
  const rule = {
    sourceMatchers: ['kind="metric_alert.critical"'],
    targetMatchers: ['resource="event_alert"'],
    equal: ['project'],
  };
  const criticalOverEventAlerts = [rule];

  beforeEach(() => {
    now = T0;
    store = new SqliteStore({ dataDir: ':memory:', now: clock });
  });
  afterEach(() => store.close());

  it('holds targets with the same equal labels while a source is open, naming the source', async () => {
    const noise = controlWith(criticalOverEventAlerts);
    await noise.observe(metricAlert('critical'));
    expect(await noise.gate(input(eventAlert()))).toEqual({
      name: 'DeliveryError',
      code: 'PB_DELIVERY_INHIBITED',
      message:
        'inhibited by metric_alert.critical "Resolved: Too many errors" (alert 4, since 2025-01-15T12:00:00.000Z) under inhibitRules[0] (equal: project="front-end")',
      retryable: false,
    });
    // Another project, or a notification the rule does not target, goes out.
    expect(await noise.gate(input(eventAlert('backend')))).toBeUndefined();
    expect(await noise.gate(input(buildNotification('issue.created')))).toBeUndefined();
  });

  it('closes the source when the same alert resolves', async () => {
    const noise = controlWith(criticalOverEventAlerts);
    await noise.observe(metricAlert('critical'));
    // Another incident resolving does not close this one.
    await noise.observe(metricAlert('resolved', ['front-end'], '99'));
    expect((await noise.gate(input(eventAlert())))?.code).toBe('PB_DELIVERY_INHIBITED');
    await noise.observe(metricAlert('resolved'));
    expect(await noise.gate(input(eventAlert()))).toBeUndefined();
    expect(await store.kvList(INHIBITIONS_NAMESPACE)).toEqual([]);
  });

  it('lets a source lapse after its duration when nothing resolves it', async () => {
    const noise = controlWith([{ ...rule, duration: '1h' }]);
    await noise.observe(metricAlert('critical'));
    now += HOUR - 1;
    expect((await noise.gate(input(eventAlert())))?.code).toBe('PB_DELIVERY_INHIBITED');
    now += 1;
    expect(await noise.gate(input(eventAlert()))).toBeUndefined();
  });

  it('defaults the duration to 24 hours', async () => {
    const noise = controlWith(criticalOverEventAlerts);
    await noise.observe(metricAlert('critical'));
    now += 24 * HOUR - 1;
    expect((await noise.gate(input(eventAlert())))?.code).toBe('PB_DELIVERY_INHIBITED');
    now += 1;
    expect(await noise.gate(input(eventAlert()))).toBeUndefined();
  });

  it('covers every project of a metric alert that watches several', async () => {
    const noise = controlWith(criticalOverEventAlerts);
    await noise.observe(metricAlert('critical', ['bar', 'front-end']));
    expect((await noise.gate(input(eventAlert('bar'))))?.message).toContain('project="bar"');
    expect((await noise.gate(input(eventAlert('front-end'))))?.message).toContain(
      'project="front-end"',
    );
    expect(await noise.gate(input(eventAlert('backend')))).toBeUndefined();
  });

  it('compares missing equal labels as empty, as Alertmanager does', async () => {
    const noise = controlWith([{ ...rule, equal: ['project', 'release'] }]);
    await noise.observe(metricAlert('critical')); // no release
    expect((await noise.gate(input(eventAlert())))?.code).toBe('PB_DELIVERY_INHIBITED');
    const released = { ...eventAlert(), release: 'web@1.2.3' };
    expect(await noise.gate(input(released))).toBeUndefined();
  });

  it('writes nothing, and returns nothing to wait for, for notifications that are not sources', async () => {
    const noise = controlWith(criticalOverEventAlerts);
    expect(noise.observe(eventAlert())).toBeUndefined();
    expect(noise.observe(buildNotification('issue.created'))).toBeUndefined();
    expect(noise.observe(metricAlert('warning'))).toBeUndefined();
    expect(await store.kvList(INHIBITIONS_NAMESPACE)).toEqual([]);
    expect(controlWith([]).observe(metricAlert('critical'))).toBeUndefined();
  });

  it('never lets a notification inhibit itself; issue sources resolve with the issue', async () => {
    const fatal = [
      {
        sourceMatchers: ['level="fatal"', 'resource="issue"'],
        targetMatchers: ['project="front-end"'],
        equal: ['project'],
      },
    ];
    const noise = controlWith(fatal);
    const crash = buildNotification('issue.created', { level: 'fatal' });
    await noise.observe(crash);
    expect(await noise.gate(input(crash))).toBeUndefined();
    const sameIssueAgain = buildNotification('issue.assigned', { level: 'fatal' });
    expect(await noise.gate(input(sameIssueAgain))).toBeUndefined();
    expect((await noise.gate(input(eventAlert())))?.message).toMatch(
      /^inhibited by issue\.created ".*" \(issue 1170820242, since /,
    );
    await noise.observe(buildNotification('issue.resolved'));
    expect(await noise.gate(input(eventAlert()))).toBeUndefined();
  });

  it('is shared by replicas through the store, within a second', async () => {
    const replicaA = controlWith(criticalOverEventAlerts);
    const replicaB = controlWith(criticalOverEventAlerts);
    expect(await replicaB.gate(input(eventAlert()))).toBeUndefined(); // B caches "none open"
    await replicaA.observe(metricAlert('critical'));
    now += 999;
    expect(await replicaB.gate(input(eventAlert()))).toBeUndefined();
    now += 1;
    expect((await replicaB.gate(input(eventAlert())))?.code).toBe('PB_DELIVERY_INHIBITED');
    // Resolved through B; A sees it once its read is a second old.
    await replicaB.observe(metricAlert('resolved'));
    now += 1000;
    expect(await replicaA.gate(input(eventAlert()))).toBeUndefined();
  });

  it('does not apply sources recorded under a rule that has since been edited', async () => {
    await controlWith(criticalOverEventAlerts).observe(metricAlert('critical'));
    const edited = controlWith([{ ...rule, equal: ['project', 'level'] }]);
    expect(await edited.gate(input(eventAlert()))).toBeUndefined();
  });
});
