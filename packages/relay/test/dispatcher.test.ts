import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  retryAfter,
  retryable,
  unrecoverable,
  type Notification,
  type NotifyContext,
} from '@plugboard/sdk';
import {
  Dispatcher,
  backoffDelay,
  retryDelay,
  type DispatchInstance,
} from '../src/dispatch/dispatcher';
import { INSTANCES_NAMESPACE } from '../src/dispatch/pause';
import { SqliteStore } from '../src/store/sqlite';
import { RecordingNotifier, memoryLogger, signed, waitFor } from './helpers/relay';

const fastBackoff = { initialMs: 20, factor: 2, maxMs: 200 };

describe('backoffDelay', () => {
  it('grows exponentially up to maxMs, with half of each delay jittered', () => {
    const o = { initialMs: 1000, factor: 2, maxMs: 10_000 };
    expect(backoffDelay(1, o, () => 0)).toBe(500);
    expect(backoffDelay(1, o, () => 1)).toBe(1000);
    expect(backoffDelay(3, o, () => 1)).toBe(4000);
    expect(backoffDelay(10, o, () => 1)).toBe(10_000);
    expect(backoffDelay(10, o, () => 0)).toBe(5000);
  });
});

describe('retryDelay', () => {
  const backoff = { initialMs: 1000, factor: 2, maxMs: 10_000 };
  it('walks the schedule, repeats its last step, and spreads each wait by the jitter', () => {
    const def = { retrySchedule: [5000, 300_000, 1_800_000], retryJitter: 0.2 };
    expect(retryDelay(1, def, backoff, () => 0.5)).toBe(5000);
    expect(retryDelay(2, def, backoff, () => 0.5)).toBe(300_000);
    expect(retryDelay(9, def, backoff, () => 0.5)).toBe(1_800_000);
    expect(retryDelay(1, def, backoff, () => 0)).toBe(4500);
    expect(retryDelay(1, def, backoff, () => 1)).toBe(5500);
  });
  it('falls back to exponential backoff with an empty schedule', () => {
    expect(retryDelay(3, { retrySchedule: [] }, backoff, () => 1)).toBe(4000);
  });
});

describe('Dispatcher', () => {
  let dir: string;
  let store: SqliteStore;
  let dispatcher: Dispatcher | undefined;
  const log = memoryLogger();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pb-dispatch-'));
    store = new SqliteStore({ dataDir: dir });
  });
  afterEach(async () => {
    await dispatcher?.close(100);
    dispatcher = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function instance(
    plugin: RecordingNotifier,
    over: Partial<DispatchInstance> = {},
  ): DispatchInstance {
    return {
      instanceId: `r/${plugin.slug}`,
      routeName: 'r',
      plugin,
      config: {},
      concurrency: 2,
      timeoutMs: 1000,
      maxAttempts: 4,
      ...over,
    };
  }

  async function enqueue(instanceIds: string[], issueId = '1', maxAttempts = 4): Promise<void> {
    const { body } = signed('issue.created', (b) => {
      (b.data as { issue: { id: string } }).issue.id = issueId;
    });
    await store.ingest({
      webhook: {
        source: 'sentry',
        resource: 'issue',
        action: 'created',
        dedupKey: `issue:created:${issueId}`,
        body: Buffer.from(body),
        receivedAt: Date.now(),
      },
      jobs: instanceIds.map((instanceId) => ({
        routeName: 'r',
        instanceId,
        pluginSlug: instanceId.split('/')[1]!,
        maxAttempts,
      })),
      dedupWindowMs: 60_000,
    });
  }

  function start(
    instances: DispatchInstance[],
    onUnexpectedError?: (err: unknown) => void,
  ): Dispatcher {
    dispatcher = new Dispatcher({
      store,
      instances,
      logger: log.logger,
      backoff: fastBackoff,
      pollIntervalMs: 50,
      random: () => 0.5,
      ...(onUnexpectedError ? { onUnexpectedError } : {}),
    });
    dispatcher.start();
    return dispatcher;
  }

  async function settledStates(): ReturnType<SqliteStore['countJobsByState']> {
    return store.countJobsByState();
  }

  it('retries a retryable failure with backoff, keeping the idempotency key', async () => {
    const p = new RecordingNotifier('flaky');
    let calls = 0;
    p.behaviour = async () => {
      calls++;
      if (calls < 3) throw retryable('503 from target', { status: 503 });
    };
    await enqueue(['r/flaky']);
    start([instance(p)]);
    await waitFor(async () => (await settledStates()).succeeded === 1, 'success');
    expect(calls).toBe(3);
    expect(new Set(p.received.map((r) => r.ctx.idempotencyKey)).size).toBe(1);
    expect(p.received.map((r) => r.ctx.attempt)).toEqual([1, 2, 3]);
    const [job] = await store.listJobs();
    const attempts = await store.listAttempts(job!.id);
    expect(attempts.map((a) => a.outcome)).toEqual(['failed', 'failed', 'succeeded']);
    expect(attempts[0]!.error).toMatchObject({ code: 'PB_DELIVERY_FAILED', status: 503 });
  });

  it('stops at once on "do not retry" and marks the job dead', async () => {
    const p = new RecordingNotifier('bad');
    p.behaviour = async () => {
      throw unrecoverable('401 from target: check the token');
    };
    await enqueue(['r/bad']);
    start([instance(p)]);
    await waitFor(async () => (await settledStates()).dead === 1, 'dead job');
    expect(p.received).toHaveLength(1);
    const [job] = await store.listJobs();
    expect(job?.lastError).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE', retryable: false });
  });

  it('gives up after maxAttempts', async () => {
    const p = new RecordingNotifier('down');
    p.behaviour = async () => {
      throw new Error('ECONNREFUSED');
    };
    await enqueue(['r/down'], '1', 3);
    start([instance(p)]);
    await waitFor(async () => (await settledStates()).dead === 1, 'dead job');
    expect(p.received).toHaveLength(3);
  });

  it('honours Retry-After: the next attempt is not earlier', async () => {
    const p = new RecordingNotifier('limited');
    const times: number[] = [];
    p.behaviour = async () => {
      times.push(Date.now());
      if (times.length === 1) throw retryAfter(300, '429 Too Many Requests', { status: 429 });
    };
    await enqueue(['r/limited']);
    start([instance(p)]);
    await waitFor(async () => (await settledStates()).succeeded === 1, 'success');
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(300);
  });

  it('times out a hanging delivery, aborts its signal, and retries it', async () => {
    const p = new RecordingNotifier('hang');
    const signals: AbortSignal[] = [];
    p.behaviour = (_n: Notification, ctx: NotifyContext) => {
      signals.push(ctx.signal);
      if (signals.length === 1) return new Promise<void>(() => undefined);
      return Promise.resolve();
    };
    await enqueue(['r/hang']);
    start([instance(p, { timeoutMs: 150 })]);
    await waitFor(async () => (await settledStates()).succeeded === 1, 'success after timeout');
    expect(signals[0]!.aborted).toBe(true);
    const [job] = await store.listJobs();
    const attempts = await store.listAttempts(job!.id);
    expect(attempts[0]!.error?.code).toBe('PB_DELIVERY_TIMEOUT');
  });

  it('isolates instances: a hanging target does not hold up another', async () => {
    const hang = new RecordingNotifier('hang');
    hang.behaviour = () => new Promise<void>(() => undefined);
    const fast = new RecordingNotifier('fast');
    for (let i = 0; i < 20; i++) await enqueue(['r/hang', 'r/fast'], String(i));
    start([
      instance(hang, { concurrency: 2, timeoutMs: 5000 }),
      instance(fast, { concurrency: 2 }),
    ]);
    await waitFor(() => fast.received.length === 20, 'all fast deliveries', 3000);
    expect(hang.received).toHaveLength(2);
  });

  it('never runs more attempts of one instance at once than its concurrency', async () => {
    const p = new RecordingNotifier('slow');
    let running = 0;
    let peak = 0;
    p.behaviour = async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
    };
    for (let i = 0; i < 12; i++) await enqueue(['r/slow'], String(i));
    start([instance(p, { concurrency: 3 })]);
    await waitFor(async () => (await settledStates()).succeeded === 12, 'all deliveries');
    expect(peak).toBe(3);
  });

  it("skips a notification when shouldNotify says no (Sentry's 10 per minute default)", async () => {
    const p = new RecordingNotifier('limited');
    p.rateLimit = { limit: 10, windowSeconds: 60 };
    for (let i = 0; i < 12; i++) await enqueue(['r/limited'], String(i));
    start([instance(p, { concurrency: 1 })]);
    await waitFor(async () => {
      const s = await settledStates();
      return s.succeeded + s.skipped === 12;
    }, 'all settled');
    const s = await settledStates();
    expect(s.succeeded).toBe(10);
    expect(s.skipped).toBe(2);
  });

  it('reports a plugin bug (an uncoded error) as unexpected, and still retries it', async () => {
    const p = new RecordingNotifier('buggy');
    p.behaviour = async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'x')");
    };
    const unexpected: unknown[] = [];
    await enqueue(['r/buggy'], '1', 2);
    start([instance(p)], (err) => unexpected.push(err));
    await waitFor(async () => (await settledStates()).dead === 1, 'dead');
    expect(unexpected).toHaveLength(2);
    expect(p.received).toHaveLength(2);
  });

  it('gives up with PB_DELIVERY_EXPIRED when the next attempt would come after expireAfter', async () => {
    const p = new RecordingNotifier('down');
    p.behaviour = async () => {
      throw retryable('503 from target');
    };
    await enqueue(['r/down'], '1', 10);
    start([instance(p, { retrySchedule: [10, 10_000], expireAfterMs: 1000, maxAttempts: 10 })]);
    await waitFor(async () => (await settledStates()).dead === 1, 'dead job');
    // Attempt 2 came 10 ms later; attempt 3 would have come 10 s later: past 1 s.
    expect(p.received).toHaveLength(2);
    const [job] = await store.listJobs();
    expect(job?.lastError).toMatchObject({
      code: 'PB_DELIVERY_EXPIRED',
      retryable: false,
      cause: { code: 'PB_DELIVERY_FAILED', message: '503 from target' },
    });
  });

  it('pauses an instance after N failures in a row, holds its jobs, and resumes when told', async () => {
    const p = new RecordingNotifier('flaky');
    let up = false;
    p.behaviour = async () => {
      if (!up) throw retryable('connection refused');
    };
    const paused: string[] = [];
    for (let i = 0; i < 5; i++) await enqueue(['r/flaky'], String(i), 10);
    const d = start([instance(p, { pauseAfterFailures: 3, retrySchedule: [10], concurrency: 1 })]);
    d.on('paused', (id) => paused.push(id));
    await waitFor(() => paused.length === 1, 'the pause');
    expect(paused).toEqual(['r/flaky']);
    expect(await store.kvGet(INSTANCES_NAMESPACE, 'r/flaky')).toMatchObject({
      paused: true,
      reason: 'connection refused',
    });
    const calls = p.received.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(p.received.length).toBe(calls);
    up = true;
    await store.kvDelete(INSTANCES_NAMESPACE, 'r/flaky');
    await waitFor(async () => (await settledStates()).succeeded === 5, 'deliveries after resume');
  });

  it('opens the circuit on a failing target, holds sends back, then probes and closes', async () => {
    const p = new RecordingNotifier('down');
    let up = false;
    const calls: number[] = [];
    p.behaviour = async () => {
      calls.push(Date.now());
      if (!up) throw retryable('503 from target');
    };
    for (let i = 0; i < 12; i++) await enqueue(['r/down'], String(i), 20);
    start([
      instance(p, {
        concurrency: 1,
        retrySchedule: [10],
        pauseAfterFailures: 0,
        breaker: { errorThresholdPercentage: 50, volumeThreshold: 4, resetTimeoutMs: 1500 },
      }),
    ]);
    await waitFor(() => calls.length >= 4, 'four failed attempts');
    await new Promise((r) => setTimeout(r, 150));
    // Open: nothing more goes out while the reset timer runs.
    const whileOpen = calls.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(calls.length).toBe(whileOpen);
    up = true;
    await waitFor(
      async () => (await settledStates()).succeeded === 12,
      'everything after the probe',
      5000,
    );
  });

  it('on close, lets in-flight deliveries finish within the grace period', async () => {
    const p = new RecordingNotifier('slow');
    p.behaviour = () => new Promise((r) => setTimeout(r, 100));
    await enqueue(['r/slow']);
    const d = start([instance(p)]);
    await waitFor(() => p.received.length === 1, 'delivery started');
    await d.close(2000);
    expect(await settledStates()).toMatchObject({ succeeded: 1, running: 0 });
  });

  it('on close, hands deliveries still running after the grace period back to the queue', async () => {
    const p = new RecordingNotifier('hang');
    p.behaviour = (_n, ctx) =>
      new Promise((_r, reject) =>
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
      );
    await enqueue(['r/hang']);
    const d = start([instance(p, { timeoutMs: 10_000 })]);
    await waitFor(() => p.received.length === 1, 'delivery started');
    const closing = d.close(50);
    expect(d.close(50)).toBe(closing);
    await closing;
    expect(await settledStates()).toMatchObject({ pending: 1, running: 0, failed: 0, dead: 0 });
    const [job] = await store.listJobs();
    expect(await store.listAttempts(job!.id)).toEqual([]);
  });

  it('on close, sends nothing a rate-limited fold was being built for, and spends no attempt', async () => {
    const p = new RecordingNotifier('limited');
    await enqueue(['r/limited']);
    let release: () => void = () => undefined;
    let asked = 0;
    // The gate answers only once closing has begun: the fold is mid-way.
    dispatcher = new Dispatcher({
      store,
      instances: [instance(p, { rateLimit: { limit: 5, perMs: 60_000 } })],
      logger: log.logger,
      backoff: fastBackoff,
      pollIntervalMs: 50,
      gate: () => {
        asked++;
        return new Promise((resolve) => {
          release = () => resolve(undefined);
        });
      },
    });
    dispatcher.start();
    await waitFor(() => asked === 1, 'the gate asked about the job');
    const closing = dispatcher.close(100);
    release();
    await closing;
    await new Promise((r) => setTimeout(r, 50));
    expect(p.received).toEqual([]);
    expect(await settledStates()).toMatchObject({ pending: 1, running: 0, succeeded: 0 });
    const [job] = await store.listJobs();
    expect(job).toMatchObject({ attempts: 0 });
  });
});
