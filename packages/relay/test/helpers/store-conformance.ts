import type { IngestRequest, Store } from '../../src/store/types';

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

    it('does not let a worker whose lease was taken over settle the job', async () => {
      await store.ingest(request());
      const [stale] = await store.lease('r/a', 1, 'w1', 1000);
      now += 1001;
      expect(await store.releaseLeases({ expiredOnly: true })).toBe(1);
      const [fresh] = await store.lease('r/a', 1, 'w2', 1000);
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
