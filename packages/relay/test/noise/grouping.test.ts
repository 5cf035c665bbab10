import { describeDigest, loadSample, parseSentryWebhook, type Notification } from '@plugboard/sdk';
import { routeSchema } from '../../src/config/schema';
import { Fold } from '../../src/dispatch/fold';
import {
  groupKey,
  groupStatus,
  groupTimers,
  planDeliveries,
  planFlush,
  type GroupTimers,
} from '../../src/noise/grouping';
import { matchRoutes } from '../../src/routing';
import { parseStoredWebhook } from '../../src/store/stored-webhook';
import type { GroupRecord, LeasedJob } from '../../src/store/types';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const S = 1000;
const M = 60 * S;
const H = 60 * M;

function sample(kind: string, mutate?: (body: Record<string, unknown>) => void): Notification {
  const s = loadSample(kind);
  const body = JSON.parse(JSON.stringify(s.body)) as Record<string, unknown>;
  mutate?.(body);
  const r = parseSentryWebhook({ resource: s.resource, body });
  if (!r.ok) throw new Error(r.detail);
  return r.notification;
}

const timers: GroupTimers = {
  by: ['issue'],
  waitMs: 30 * S,
  intervalMs: 5 * M,
  repeatMs: 4 * H,
  maxNotifications: 0,
  closeAfterMs: 24 * H,
  sendResolved: true,
};

function group(over: Partial<GroupRecord> = {}): GroupRecord {
  return {
    routeName: 'r',
    groupKey: 'issue=1',
    pending: 1,
    total: 1,
    windowStart: T0,
    firstAt: T0,
    lastAt: T0,
    lastWebhookId: '1',
    status: 'open',
    statusChanged: false,
    nextFlushAt: T0 + 30 * S,
    sent: 0,
    suppressed: 0,
    version: 0,
    ...over,
  };
}

describe('group settings', () => {
  it("applies Alertmanager's defaults when a route groups, and groups nothing when it does not", () => {
    const route = routeSchema.parse({ name: 'r', instances: [{ plugin: 'log' }], group: {} });
    expect(groupTimers(route)).toEqual({
      by: ['issue'],
      waitMs: 30 * S,
      intervalMs: 5 * M,
      repeatMs: 4 * H,
      maxNotifications: 0,
      closeAfterMs: 24 * H,
      sendResolved: true,
    });
    expect(groupTimers(routeSchema.parse({ name: 'r', instances: [{ plugin: 'log' }] }))).toBe(
      undefined,
    );
  });

  it('refuses an empty `by` and a bad duration, naming the key', () => {
    const bad = routeSchema.safeParse({
      name: 'r',
      instances: [{ plugin: 'log' }],
      group: { by: [], wait: 'soon' },
    });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['group.by', 'group.wait']));
  });
});

describe('group keys and states', () => {
  it('keys by the Sentry issue by default, and by any labels when configured', () => {
    const n = sample('error.created');
    expect(groupKey(['issue'], { issue: '1170820242' })).toBe('issue=1170820242');
    expect(groupKey(['project', 'level'], { project: 'web', level: 'error' })).toBe(
      'project=web,level=error',
    );
    expect(groupKey(['tags.browser'], { 'tags.browser': 'Chrome 60' })).toBe(
      'tags.browser=Chrome 60',
    );
    // Without any of the labels: not grouped (delivered on its own).
    expect(groupKey(['issue'], { issue: '' })).toBeUndefined();
    expect(n.group?.id).toBe('1170820242');
  });

  it('reads the state an issue or metric alert reports, none for events', () => {
    expect(groupStatus(sample('issue.created'))).toBe('open');
    expect(groupStatus(sample('issue.resolved'))).toBe('resolved');
    expect(groupStatus(sample('metric_alert.critical'))).toBe('critical');
    expect(groupStatus(sample('error.created'))).toBeUndefined();
  });
});

describe('planDeliveries', () => {
  const routes = [
    routeSchema.parse({
      name: 'grouped',
      continue: true,
      instances: [{ plugin: 'log' }, { name: 'second', plugin: 'log' }],
      group: {},
    }),
    routeSchema.parse({
      name: 'direct',
      sendResolved: false,
      instances: [{ plugin: 'log' }],
    }),
  ];

  it('counts a notification once per grouped route and makes deliveries for the others', () => {
    const n = sample('error.created');
    const plan = planDeliveries(matchRoutes(routes, n), n, 8);
    expect(plan.groups).toEqual([
      {
        routeName: 'grouped',
        groupKey: 'issue=1170820242',
        waitMs: 30 * S,
        intervalMs: 5 * M,
        project: 'front-end',
      },
    ]);
    expect(plan.jobs).toEqual([
      {
        routeName: 'direct',
        instanceId: 'direct/log',
        pluginSlug: 'log',
        maxAttempts: 8,
        project: 'front-end',
      },
    ]);
  });

  it('leaves resolved notifications out of a route that does not send them, but counts them into groups', () => {
    const n = sample('issue.resolved');
    const plan = planDeliveries(matchRoutes(routes, n), n, 8);
    expect(plan.jobs).toEqual([]);
    expect(plan.dropped).toEqual(['direct']);
    expect(plan.groups).toMatchObject([{ routeName: 'grouped', status: 'resolved' }]);
  });

  it('delivers directly what has none of the group-by labels', () => {
    const n = sample('metric_alert.critical');
    const plan = planDeliveries(matchRoutes(routes, n), n, 8);
    expect(plan.groups).toEqual([]);
    expect(plan.jobs.map((j) => j.instanceId)).toEqual([
      'grouped/log',
      'grouped/second',
      'direct/log',
    ]);
  });
});

describe('planFlush: Alertmanager timers on a fake clock', () => {
  it('sends a new group once group_wait has passed, then waits group_interval', () => {
    const plan = planFlush(group({ pending: 1204 }), timers, T0 + 30 * S);
    expect(plan).toMatchObject({
      reason: 'first',
      flushed: 1204,
      close: false,
      nextFlushAt: T0 + 30 * S + 5 * M,
    });
  });

  it('sends what arrived since as an update, at most once per interval', () => {
    const g = group({ pending: 3, total: 10, sent: 1, lastFlushAt: T0, lastAt: T0 + M });
    expect(planFlush(g, timers, T0 + 5 * M)).toMatchObject({
      reason: 'update',
      flushed: 3,
      nextFlushAt: T0 + 10 * M,
    });
  });

  it('re-notifies an unchanged open group after repeat_interval, and otherwise sleeps until then', () => {
    const g = group({ pending: 0, total: 10, sent: 2, lastFlushAt: T0, lastAt: T0 });
    expect(planFlush(g, timers, T0 + 5 * M)).toEqual({
      flushed: 0,
      suppressed: false,
      close: false,
      nextFlushAt: T0 + 4 * H,
    });
    expect(planFlush(g, timers, T0 + 4 * H)).toMatchObject({
      reason: 'repeat',
      nextFlushAt: T0 + 8 * H,
    });
    // Never repeats with repeat 0.
    expect(planFlush(g, { ...timers, repeatMs: 0 }, T0 + 4 * H).reason).toBeUndefined();
  });

  it('closes a group idle for closeAfter, and a resolved one once flushed', () => {
    const idle = group({ pending: 0, sent: 1, lastFlushAt: T0, lastAt: T0 });
    expect(planFlush(idle, timers, T0 + 24 * H)).toMatchObject({ close: true });
    expect(planFlush(idle, timers, T0 + 24 * H).reason).toBeUndefined();
    const resolved = group({ pending: 1, status: 'resolved', statusChanged: true, sent: 1 });
    expect(planFlush(resolved, timers, T0 + 5 * M)).toMatchObject({ reason: 'state', close: true });
  });

  it('stops after maxNotifications but still sends state changes', () => {
    const capped = { ...timers, maxNotifications: 2 };
    const g = group({ pending: 50, sent: 2, lastFlushAt: T0, lastAt: T0 + M });
    const plan = planFlush(g, capped, T0 + 5 * M);
    expect(plan).toMatchObject({ flushed: 50, suppressed: true, close: false });
    expect(plan.reason).toBeUndefined();
    expect(plan.note).toMatch(/cap of 2/);
    // No reminders past the cap either.
    expect(
      planFlush(group({ pending: 0, sent: 2, lastFlushAt: T0 }), capped, T0 + 4 * H).reason,
    ).toBe(undefined);
    const reopened = group({ pending: 1, sent: 2, statusChanged: true, lastFlushAt: T0 });
    expect(planFlush(reopened, capped, T0 + 5 * M).reason).toBe('state');
  });

  it('drops a resolved group silently when the route does not send resolved notifications', () => {
    const g = group({ pending: 1, status: 'resolved', statusChanged: true, sent: 1 });
    expect(planFlush(g, { ...timers, sendResolved: false }, T0 + 5 * M)).toMatchObject({
      flushed: 1,
      suppressed: true,
      close: true,
    });
  });

  it('holds a group during a mute interval and keeps its counts for the message after', () => {
    const g = group({ pending: 40 });
    const plan = planFlush(g, timers, T0 + 30 * S, 'nights');
    expect(plan).toMatchObject({
      flushed: 0,
      suppressed: false,
      close: false,
      note: 'muted by nights',
    });
    expect(plan.reason).toBeUndefined();
    expect(plan.nextFlushAt).toBe(T0 + 30 * S + M);
  });
});

describe('digests', () => {
  it('describes a group update in one line', () => {
    const n = sample('issue.created');
    n.digest = {
      reason: 'update',
      count: 1204,
      total: 5000,
      since: new Date(T0).toISOString(),
      until: new Date(T0 + 5 * M).toISOString(),
      lastSeen: new Date(T0 + 5 * M - S).toISOString(),
    };
    expect(describeDigest(n)).toBe(
      'FRONT-END-9: 1,204 new events in the last 5 minutes, last seen 2026-11-25T10:04:59.000Z',
    );
    n.digest = { ...n.digest, reason: 'state', status: 'resolved', count: 0 };
    expect(describeDigest(n)).toBe('FRONT-END-9: now resolved');
    expect(describeDigest(sample('issue.created'))).toBeUndefined();
  });

  it('folds held-back deliveries into one digest that lists the newest and counts them all', () => {
    const jobs: LeasedJob[] = Array.from({ length: 25 }, (_, i) => {
      const s = loadSample('event_alert.triggered');
      const body = JSON.parse(JSON.stringify(s.body)) as {
        data: { event: { title: string; event_id: string } };
      };
      body.data.event.title = `Error number ${i}`;
      body.data.event.event_id = `${i}`.padStart(32, '0');
      return {
        id: String(i + 1),
        webhookId: String(i + 1),
        routeName: 'r',
        instanceId: 'r/dingtalk',
        pluginSlug: 'dingtalk',
        state: 'running',
        attempts: 1,
        maxAttempts: 8,
        runAt: T0 + i * S,
        idempotencyKey: `k${i}`,
        createdAt: T0 + i * S,
        updatedAt: T0 + i * S,
        replays: 0,
        resource: 'event_alert',
        action: 'triggered',
        source: 'sentry',
        body: Buffer.from(JSON.stringify(body)),
        leaseOwner: 'me',
        leaseUntil: T0 + H,
      };
    });
    // Added in any order (pages of a lease, retries coming back): the newest leads.
    const fold = new Fold();
    for (const job of [...jobs.slice(10), ...jobs.slice(0, 10)].reverse()) {
      const parsed = parseStoredWebhook(job.source, job.resource, job.body);
      if (!parsed.ok) throw new Error(parsed.detail);
      fold.add(job, parsed.notification);
    }
    const delivery = fold.delivery(T0 + M);
    expect(delivery.jobs).toHaveLength(25);
    // Bodies are not kept for the members: a big fold stays small.
    expect(delivery.jobs.every((j) => j.body.length === 0)).toBe(true);
    expect(delivery.lead.id).toBe('25');
    expect(delivery.idempotencyKey).toBe('k24:fold:25');
    const n = delivery.notification;
    expect(n.title).toBe('Error number 24');
    expect(n.digest).toMatchObject({ reason: 'folded', count: 25, total: 25 });
    expect(n.digest?.items).toHaveLength(20);
    expect(n.digest?.items?.map((i) => i.title)).toEqual(
      Array.from({ length: 20 }, (_, i) => `Error number ${24 - i}`),
    );
    expect(n.digest?.items?.[0]).toMatchObject({ kind: 'event_alert.triggered' });
    expect(describeDigest(n)).toBe(
      "25 notifications held back by the target's rate limit in the last 60 seconds",
    );
  });
});
