import type { GroupHit, IngestRequest, LeasedJob, Store } from '../../src/store/types';

export function request(over: Partial<IngestRequest['webhook']> = {}, jobs = 1): IngestRequest {
  return {
    webhook: {
      source: 'sentry',
      resource: 'issue',
      action: 'created',
      dedupKey: 'issue:created:1',
      body: Buffer.from('{"action":"created"}'),
      receivedAt: Date.now(),
      ...over,
    },
    jobs: Array.from({ length: jobs }, (_, i) => ({
      routeName: 'r',
      instanceId: i === 0 ? 'r/a' : `r/x${i}`,
      pluginSlug: 'log',
      maxAttempts: 3,
    })),
    dedupWindowMs: 60_000,
  };
}

export interface StoreBackend {
  /** The store under test, on a fresh, empty database. */
  store: Store;
  /** Another store on the same data (a restart, or a second replica). */
  reopen(): Promise<Store>;
  cleanup(): Promise<void>;
}

/**
 * The behaviour every store must have, run against each backend: the relay
 * and the notifiers cannot tell which one they talk to.
 */
export function describeStoreConformance(
  name: string,
  open: (now: () => number) => Promise<StoreBackend>,
  options: { skip?: boolean } = {},
): void {
  (options.skip ? describe.skip : describe)(`${name}: store conformance`, () => {
    let now: number;
    let backend: StoreBackend;
    let store: Store;

    beforeEach(async () => {
      now = 1_700_000_000_000;
      backend = await open(() => now);
      store = backend.store;
    });
    afterEach(async () => {
      await store.close();
      await backend.cleanup();
    });

    it('records an accepted webhook with one pending job per instance', async () => {
      const res = await store.ingest(request({}, 2));
      expect(res.status).toBe('accepted');
      expect(res.jobIds).toHaveLength(2);
      const hook = await store.getWebhook(res.webhookId);
      expect(hook?.body.toString()).toBe('{"action":"created"}');
      expect(await store.countJobsByState()).toMatchObject({ pending: 2, running: 0 });
    });

    it('accepts every copy, concurrent ones too, when the window is 0 (de-duplication off)', async () => {
      const off = (): IngestRequest => ({ ...request(), dedupWindowMs: 0 });
      const results = await Promise.all(Array.from({ length: 12 }, () => store.ingest(off())));
      expect(results.map((r) => r.status)).toEqual(Array(12).fill('accepted'));
      expect(new Set(results.flatMap((r) => r.jobIds)).size).toBe(12);
      // Concurrent twins, made deterministic: the second read its clock a
      // moment before the first's claim committed. A zero-length claim would
      // still look live to it.
      now -= 1;
      expect((await store.ingest(off())).status).toBe('accepted');
      now -= 1;
      expect((await store.ingest(off())).status).toBe('accepted');
    });

    it('acknowledges a redelivery of the same content as a duplicate without new jobs', async () => {
      const first = await store.ingest(request({ requestId: 'a'.repeat(32) }));
      const again = await store.ingest(request({ requestId: 'b'.repeat(32) }));
      expect(again.status).toBe('duplicate');
      expect(again.duplicateOf).toBe(first.webhookId);
      expect(again.jobIds).toEqual([]);
      expect((await store.countJobsByState()).pending).toBe(1);
    });

    it('accepts the same content again once the de-duplication window has passed', async () => {
      await store.ingest(request());
      now += 60_001;
      expect((await store.ingest(request())).status).toBe('accepted');
    });

    it('records webhooks no route wants as ignored and unsupported ones as unsupported', async () => {
      const ignored = await store.ingest(request({ detail: 'no route' }, 0));
      expect(ignored.status).toBe('ignored');
      expect((await store.getWebhook(ignored.webhookId))?.detail).toBe('no route');
      const unsupported = await store.ingest({ ...request({ dedupKey: '' }), unsupported: true });
      expect(unsupported.status).toBe('unsupported');
      expect((await store.countJobsByState()).pending).toBe(0);
    });

    it('leases due jobs once, with the body, and settles them', async () => {
      await store.ingest(request());
      const [job, ...rest] = await store.lease('r/a', 10, 'w1', 30_000);
      expect(rest).toEqual([]);
      expect(job?.attempts).toBe(1);
      expect(job?.body.toString()).toContain('created');
      expect(job?.idempotencyKey).toMatch(/^pbd_[0-9a-f]{32}$/);
      expect(await store.lease('r/a', 10, 'w2', 30_000)).toEqual([]);
      await store.settle(
        job!,
        { attempt: 1, startedAt: now, finishedAt: now + 5, outcome: 'succeeded' },
        { state: 'succeeded' },
      );
      expect(await store.countJobsByState()).toMatchObject({
        pending: 0,
        running: 0,
        succeeded: 1,
      });
      const attempts = await store.listAttempts(job!.id);
      expect(attempts).toEqual([
        expect.objectContaining({ attempt: 1, outcome: 'succeeded', durationMs: 5 }),
      ]);
    });

    it('schedules a retry and keeps the idempotency key across attempts', async () => {
      await store.ingest(request());
      const [first] = await store.lease('r/a', 1, 'w1', 30_000);
      const error = {
        name: 'DeliveryError',
        code: 'PB_DELIVERY_FAILED',
        message: '503',
        retryable: true,
      };
      await store.settle(
        first!,
        { attempt: 1, startedAt: now, finishedAt: now, outcome: 'failed', error },
        { state: 'pending', runAt: now + 1000 },
      );
      expect(await store.lease('r/a', 1, 'w1', 30_000)).toEqual([]);
      expect(await store.nextRunAt('r/a')).toBe(now + 1000);
      now += 1000;
      const [second] = await store.lease('r/a', 1, 'w1', 30_000);
      expect(second?.attempts).toBe(2);
      expect(second?.idempotencyKey).toBe(first?.idempotencyKey);
      expect(second?.lastError?.message).toBe('503');
    });

    // The same worker too: an attempt that outlived its lease must not settle
    // the lease this worker took after it (a retried settle would do just that).
    it.each([
      ['a worker whose lease was taken over', 'w2'],
      ["an attempt that outlived its lease, the same worker's next lease", 'w1'],
    ])('does not let %s settle the job', async (_what, next) => {
      await store.ingest(request());
      const [stale] = await store.lease('r/a', 1, 'w1', 1000);
      now += 1001;
      expect(await store.releaseLeases({ expiredOnly: true })).toBe(1);
      const [fresh] = await store.lease('r/a', 1, next, 1000);
      expect(fresh?.id).toBe(stale?.id);
      await store.settle(
        stale!,
        { attempt: 1, startedAt: now, finishedAt: now, outcome: 'succeeded' },
        { state: 'succeeded' },
      );
      expect(await store.countJobsByState()).toMatchObject({ running: 1, succeeded: 0 });
      await store.settle(
        fresh!,
        { attempt: 2, startedAt: now, finishedAt: now, outcome: 'succeeded' },
        { state: 'succeeded' },
      );
      expect(await store.countJobsByState()).toMatchObject({ running: 0, succeeded: 1 });
    });

    it('keeps accepted jobs across a reopen and hands running ones back', async () => {
      await store.ingest(request({}, 2));
      await store.lease('r/a', 1, 'w1', 60_000);
      await store.close();
      const reopened = await backend.reopen();
      expect(await reopened.releaseLeases({})).toBe(1);
      expect(await reopened.countJobsByState()).toMatchObject({ pending: 2, running: 0 });
      await reopened.close();
    });

    it('marks a job dead when a crash cut short its last allowed attempt', async () => {
      await store.ingest({
        ...request(),
        jobs: [{ routeName: 'r', instanceId: 'r/a', pluginSlug: 'log', maxAttempts: 1 }],
      });
      await store.lease('r/a', 1, 'w1', 60_000);
      await store.close();
      const reopened = await backend.reopen();
      expect(await reopened.releaseLeases({})).toBe(0);
      expect(await reopened.countJobsByState()).toMatchObject({ pending: 0, running: 0, dead: 1 });
      const [job] = await reopened.listJobs();
      expect(job?.lastError?.message).toMatch(/stopped during the last allowed attempt/);
      await reopened.close();
    });

    it('hands leases back after a graceful stop without counting the attempt', async () => {
      await store.ingest(request());
      await store.lease('r/a', 1, 'w1', 60_000);
      expect(await store.releaseLeases({ owner: 'w1', uncount: true })).toBe(1);
      const [again] = await store.lease('r/a', 1, 'w1', 60_000);
      expect(again?.attempts).toBe(1);
    });

    it('commits webhooks handed over in the same turn together, each with its own answer', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => store.ingest(request({ dedupKey: `k${i}` }))),
      );
      expect(new Set(results.map((r) => r.webhookId)).size).toBe(50);
      expect(results.every((r) => r.status === 'accepted')).toBe(true);
      expect((await store.countJobsByState()).pending).toBe(50);
    });

    it('keeps plugin key-value entries with TTL and set-if-absent', async () => {
      await store.kvSet('plugin:jira', 'issue:1', { key: 'OPS-1' }, 10);
      expect(await store.kvGet('plugin:jira', 'issue:1')).toEqual({ key: 'OPS-1' });
      expect(await store.kvSetIfAbsent('plugin:jira', 'issue:1', { key: 'OPS-2' })).toBe(false);
      now += 10_001;
      expect(await store.kvGet('plugin:jira', 'issue:1')).toBeUndefined();
      expect(await store.kvSetIfAbsent('plugin:jira', 'issue:1', { key: 'OPS-2' })).toBe(true);
      await store.kvDelete('plugin:jira', 'issue:1');
      expect(await store.kvGet('plugin:jira', 'issue:1')).toBeUndefined();
    });

    it('lists the live entries of one namespace by key prefix, in key order', async () => {
      await store.kvSet('silences', 'b', { id: 'b' });
      await store.kvSet('silences', 'a', { id: 'a' });
      await store.kvSet('silences', 'old', { id: 'old' }, 1);
      await store.kvSet('silences-other', 'a', { id: 'not me' });
      await store.kvSet('users', 'x@example.com', { global: false });
      expect(await store.kvList('silences')).toEqual([
        { key: 'a', value: { id: 'a' } },
        { key: 'b', value: { id: 'b' } },
        { key: 'old', value: { id: 'old' } },
      ]);
      now += 1001;
      expect((await store.kvList('silences')).map((e) => e.key)).toEqual(['a', 'b']);
      expect(await store.kvList('silences', { prefix: 'b' })).toEqual([
        { key: 'b', value: { id: 'b' } },
      ]);
      expect(await store.kvList('silences', { limit: 1 })).toHaveLength(1);
      expect(await store.kvList('nothing-here')).toEqual([]);
    });

    it('settles many leased jobs at once, and hands back untried ones without spending an attempt', async () => {
      for (let i = 1; i <= 4; i++) {
        await store.ingest(request({ dedupKey: `event_alert:triggered:${i}` }));
        now += 1000;
      }
      const leased = await store.lease('r/a', 4, 'me', 60_000);
      expect(leased).toHaveLength(4);
      const note = {
        name: 'DeliveryError',
        code: 'PB_DELIVERY_FOLDED',
        message: 'delivered in one digest',
        retryable: false,
      };
      const attempt = {
        attempt: 1,
        startedAt: now,
        finishedAt: now + 5,
        outcome: 'succeeded' as const,
        error: note,
      };
      const [a, b, c, d] = leased as [LeasedJob, LeasedJob, LeasedJob, LeasedJob];
      const settled = await store.settleMany([
        { job: a, attempt, next: { state: 'succeeded' } },
        { job: b, attempt, next: { state: 'succeeded' } },
        { job: c, next: { state: 'pending', runAt: c.runAt } },
        {
          job: d,
          attempt: { ...attempt, outcome: 'failed', error: { ...note, retryable: true } },
          next: { state: 'pending', runAt: now + 60_000 },
        },
      ]);
      expect(settled).toBe(4);
      for (const job of [a, b]) {
        expect(await store.getJob(job.id)).toMatchObject({ state: 'succeeded', lastError: note });
        expect(await store.listAttempts(job.id)).toMatchObject([
          { attempt: 1, outcome: 'succeeded', error: note },
        ]);
      }
      // Handed back: due as before, no attempt recorded or counted.
      expect(await store.getJob(c.id)).toMatchObject({
        state: 'pending',
        attempts: 0,
        runAt: c.runAt,
      });
      expect(await store.listAttempts(c.id)).toEqual([]);
      expect(await store.getJob(d.id)).toMatchObject({
        state: 'pending',
        attempts: 1,
        runAt: now + 60_000,
      });
      expect(await store.countJobsByState()).toMatchObject({
        pending: 2,
        succeeded: 2,
        running: 0,
      });
      const [again] = await store.lease('r/a', 1, 'me', 60_000);
      expect(again).toMatchObject({ id: c.id, attempts: 1 });
      // A job whose lease was lost (settled, or taken by another owner) is left alone.
      expect(await store.settleMany([{ job: a, attempt, next: { state: 'dead' } }])).toBe(0);
      expect(await store.getJob(a.id)).toMatchObject({ state: 'succeeded' });
      expect(await store.settleMany([])).toBe(0);
    });

    describe('notification groups', () => {
      const hit = (over: Partial<GroupHit> = {}): GroupHit => ({
        routeName: 'r',
        groupKey: 'issue:1',
        waitMs: 30_000,
        intervalMs: 300_000,
        project: 'web',
        ...over,
      });
      const grouped = (n: number, over: Partial<GroupHit> = {}): IngestRequest => ({
        ...request({ dedupKey: `error:created:${n}` }, 0),
        groups: [hit(over)],
      });

      it('counts grouped notifications into one group that is due after group_wait', async () => {
        const first = await store.ingest(grouped(1));
        expect(first).toMatchObject({ status: 'accepted', jobIds: [], grouped: 1 });
        now += 1000;
        await store.ingest(grouped(2));
        // A redelivery is not counted twice.
        expect((await store.ingest(grouped(2))).status).toBe('duplicate');
        const g = await store.getGroup('r', 'issue:1');
        expect(g).toMatchObject({
          pending: 2,
          total: 2,
          status: 'open',
          statusChanged: false,
          sent: 0,
          firstAt: 1_700_000_000_000,
          lastAt: 1_700_000_001_000,
          windowStart: 1_700_000_000_000,
          nextFlushAt: 1_700_000_030_000,
          project: 'web',
          version: 0,
        });
        expect(await store.dueGroups(now, 10)).toEqual([]);
        now = 1_700_000_030_000;
        expect((await store.dueGroups(now, 10)).map((x) => x.groupKey)).toEqual(['issue:1']);
      });

      it('applies a flush once: a second replica deciding on the same version loses', async () => {
        await store.ingest(grouped(1));
        await store.ingest(grouped(2));
        now += 30_000;
        const [g] = await store.dueGroups(now, 10);
        const digest = {
          webhook: {
            source: 'digest' as const,
            resource: 'issue',
            action: 'digest',
            dedupKey: 'digest:r:issue:1:0',
            body: Buffer.from('{"digest":true}'),
            receivedAt: now,
          },
          jobs: [
            { routeName: 'r', instanceId: 'r/a', pluginSlug: 'log', maxAttempts: 3 },
            { routeName: 'r', instanceId: 'r/b', pluginSlug: 'log', maxAttempts: 3 },
          ],
        };
        const flush = {
          routeName: 'r',
          groupKey: 'issue:1',
          version: g!.version,
          seenStatus: g!.status,
          flushed: g!.pending,
          nextFlushAt: now + 300_000,
          sent: true,
          digest,
        };
        const res = await store.flushGroup(flush);
        expect(res.applied).toBe(true);
        expect(res.jobIds).toHaveLength(2);
        expect(await store.flushGroup(flush)).toEqual({ applied: false, jobIds: [] });
        expect((await store.countJobsByState()).pending).toBe(2);
        const after = await store.getGroup('r', 'issue:1');
        expect(after).toMatchObject({
          pending: 0,
          total: 2,
          sent: 1,
          lastFlushAt: now,
          version: 1,
        });
        expect(after?.windowStart).toBeUndefined();
        const jobs = await store.listJobs({ instanceId: 'r/a' });
        const hook = await store.getWebhook(jobs[0]!.webhookId);
        expect(hook).toMatchObject({ source: 'digest', status: 'accepted' });
        expect(hook?.body.toString()).toBe('{"digest":true}');
      });

      it('keeps notifications that arrive between the decision and the flush pending', async () => {
        await store.ingest(grouped(1));
        now += 30_000;
        const [g] = await store.dueGroups(now, 10);
        await store.ingest(grouped(2)); // arrives after the decision saw pending = 1
        const res = await store.flushGroup({
          routeName: 'r',
          groupKey: 'issue:1',
          version: g!.version,
          seenStatus: g!.status,
          flushed: g!.pending,
          nextFlushAt: now + 300_000,
          sent: true,
          close: true,
        });
        expect(res.applied).toBe(true);
        // Not closed: one notification is still waiting for the next flush.
        expect(await store.getGroup('r', 'issue:1')).toMatchObject({
          pending: 1,
          total: 2,
          windowStart: now,
        });
      });

      it('leaves the window and a state change alone when a flush accounts for nothing (muted)', async () => {
        await store.ingest(grouped(1, { status: 'open' }));
        await store.ingest(grouped(2, { status: 'resolved' }));
        now += 30_000;
        const [g] = await store.dueGroups(now, 10);
        expect(g).toMatchObject({ statusChanged: true, windowStart: 1_700_000_000_000 });
        await store.flushGroup({
          routeName: 'r',
          groupKey: 'issue:1',
          version: g!.version,
          seenStatus: g!.status,
          flushed: 0,
          nextFlushAt: now + 60_000,
          sent: false,
        });
        expect(await store.getGroup('r', 'issue:1')).toMatchObject({
          pending: 2,
          statusChanged: true,
          windowStart: 1_700_000_000_000,
          nextFlushAt: now + 60_000,
          version: g!.version + 1,
        });
      });

      it('closes a group when nothing arrived since the decision', async () => {
        await store.ingest(grouped(1));
        const g = await store.getGroup('r', 'issue:1');
        const res = await store.flushGroup({
          routeName: 'r',
          groupKey: 'issue:1',
          version: g!.version,
          seenStatus: g!.status,
          flushed: 1,
          nextFlushAt: now,
          sent: false,
          suppressed: true,
          close: true,
        });
        expect(res.applied).toBe(true);
        expect(await store.getGroup('r', 'issue:1')).toBeUndefined();
      });

      it('marks a state change and brings a flushed group forward to one interval after its last flush', async () => {
        await store.ingest(grouped(1));
        now += 30_000;
        const [g] = await store.dueGroups(now, 10);
        await store.flushGroup({
          routeName: 'r',
          groupKey: 'issue:1',
          version: g!.version,
          seenStatus: g!.status,
          flushed: 1,
          nextFlushAt: now + 4 * 3600_000, // waiting for repeat_interval
          sent: true,
        });
        const flushedAt = now;
        now += 60_000;
        await store.ingest(grouped(2, { status: 'resolved' }));
        expect(await store.getGroup('r', 'issue:1')).toMatchObject({
          pending: 1,
          status: 'resolved',
          statusChanged: true,
          nextFlushAt: flushedAt + 300_000,
        });
        now += 600_000;
        await store.ingest(grouped(3));
        // Long after the interval: due now, not in the past.
        expect(await store.getGroup('r', 'issue:1')).toMatchObject({
          pending: 2,
          status: 'resolved',
          nextFlushAt: flushedAt + 300_000,
        });
      });

      it('lists groups by route', async () => {
        await store.ingest(grouped(1));
        await store.ingest(grouped(2, { routeName: 'other', groupKey: 'issue:2' }));
        expect((await store.listGroups()).map((g) => g.routeName).sort()).toEqual(['other', 'r']);
        expect((await store.listGroups({ routeName: 'other' })).map((g) => g.groupKey)).toEqual([
          'issue:2',
        ]);
      });
    });

    it('hands out at most `limit` send slots per sliding window, shared by every store on the data', async () => {
      const other = await backend.reopen().catch(() => undefined);
      const second = other ?? store;
      try {
        expect(await store.rateAcquire('robot', 2, 60_000)).toEqual({ ok: true });
        now += 30_000;
        expect(await second.rateAcquire('robot', 2, 60_000)).toEqual({ ok: true });
        now += 1_000;
        // A fixed window starting at the first send would have reset here.
        expect(await store.rateAcquire('robot', 2, 60_000)).toEqual({
          ok: false,
          retryAt: 1_700_000_060_000,
        });
        expect(await store.rateAcquire('other-robot', 2, 60_000)).toEqual({ ok: true });
        now = 1_700_000_060_000;
        expect(await second.rateAcquire('robot', 2, 60_000)).toEqual({ ok: true });
        expect(await store.rateAcquire('robot', 2, 60_000)).toEqual({
          ok: false,
          retryAt: 1_700_000_090_000,
        });
      } finally {
        if (other) await other.close();
      }
    });

    it('counts rate-limit hits per fixed window', async () => {
      now = 1_700_000_040_000; // aligned on a 60 s window
      expect(await store.rateHit('k', 60)).toBe(1);
      expect(await store.rateHit('k', 60)).toBe(2);
      now += 60_000;
      expect(await store.rateHit('k', 60)).toBe(1);
    });

    it('replays dead deliveries as a new chain under the same idempotency key', async () => {
      await store.ingest({
        ...request(),
        jobs: [
          {
            routeName: 'r',
            instanceId: 'r/a',
            pluginSlug: 'log',
            maxAttempts: 1,
            project: 'front-end',
          },
        ],
      });
      const [job] = await store.lease('r/a', 1, 'w1', 60_000);
      const error = {
        name: 'DeliveryError',
        code: 'PB_DELIVERY_UNRECOVERABLE',
        message: '410',
        retryable: false,
      };
      await store.settle(
        job!,
        { attempt: 1, startedAt: now, finishedAt: now, outcome: 'failed', error },
        { state: 'dead' },
      );
      expect(
        await store.listJobs({
          state: 'dead',
          project: 'front-end',
          errorCode: 'PB_DELIVERY_UNRECOVERABLE',
        }),
      ).toHaveLength(1);
      expect(await store.listJobs({ project: 'back-end' })).toHaveLength(0);
      expect(await store.listJobs({ since: now + 1 })).toHaveLength(0);

      expect(await store.replay({ filter: { instanceId: 'r/a' } })).toEqual([job!.id]);
      // Replaying what is already queued changes nothing.
      expect(await store.replay({ ids: [job!.id] })).toEqual([]);
      const [again] = await store.lease('r/a', 1, 'w1', 60_000);
      expect(again).toMatchObject({
        id: job!.id,
        attempts: 1,
        replays: 1,
        idempotencyKey: job!.idempotencyKey,
      });
      await store.settle(
        again!,
        { attempt: 1, startedAt: now, finishedAt: now, outcome: 'succeeded' },
        { state: 'succeeded' },
      );
      const attempts = await store.listAttempts(job!.id);
      expect(attempts.map((a) => [a.chain, a.attempt, a.outcome])).toEqual([
        [0, 1, 'failed'],
        [1, 1, 'succeeded'],
      ]);
      expect(await store.countJobsByState()).toMatchObject({ dead: 0, succeeded: 1, pending: 0 });
      // By id, a succeeded delivery can be sent again too.
      expect(await store.replay({ ids: [job!.id] })).toEqual([job!.id]);
    });

    it('refuses work after close with PB_STORE_CLOSED, and close is idempotent', async () => {
      const a = store.close();
      expect(store.close()).toBe(a);
      await a;
      await expect(store.ingest(request())).rejects.toMatchObject({ code: 'PB_STORE_CLOSED' });
    });
  });
}
