import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { randomUUID } from 'node:crypto';
import {
  DeliveryError,
  serializeError,
  type Notification,
  type NotificationPlugin,
  type NotifyContext,
  type PluginConfig,
  type PluginLogger,
  type SerializedError,
  type TargetRateLimit,
} from '@plugboard/sdk';
import type { Logger } from '../logger';
import type { RelayMetrics } from '../metrics';
import type { AttemptInput, LeasedJob, Store } from '../store/types';
import { INSTANCES_NAMESPACE, type PauseRecord } from './pause';
import { storeUserSettings } from '../server/api';
import { pluginStore, storeRateLimiter } from './plugin-services';
import { foldedDigest, parseStoredWebhook } from '../noise/grouping';

export interface BackoffOptions {
  initialMs: number;
  factor: number;
  maxMs: number;
}

/** A configured plugin instance, ready to deliver. */
export interface DispatchInstance {
  instanceId: string;
  routeName: string;
  plugin: NotificationPlugin;
  config: PluginConfig;
  concurrency: number;
  timeoutMs: number;
  maxAttempts: number;
  /** Waits before attempts 2, 3, ... (the last repeats); empty: exponential `backoff`. */
  retrySchedule?: readonly number[];
  /** Each wait is spread by ±jitter/2 of itself. */
  retryJitter?: number;
  /** A delivery still failing this long after it was received is dead. */
  expireAfterMs?: number;
  /** Consecutive failed attempts that pause the instance; 0 never. */
  pauseAfterFailures?: number;
  /** Circuit breaker on the target; absent: none. */
  breaker?: BreakerOptions;
  /**
   * The target's send limit, kept across replicas: deliveries wait for a
   * slot, and a backlog that built up meanwhile is folded into one digest.
   */
  rateLimit?: TargetRateLimit;
}

export interface BreakerOptions {
  /** Share of failed attempts (in the last minute) that opens the circuit. */
  errorThresholdPercentage: number;
  /** Attempts in the last minute before the share counts. */
  volumeThreshold: number;
  /** How long the circuit stays open before one probe attempt. */
  resetTimeoutMs: number;
}

export interface DispatcherOptions {
  store: Store;
  instances: readonly DispatchInstance[];
  logger: Logger;
  metrics?: RelayMetrics;
  backoff: BackoffOptions;
  /** Backstop poll for due retries and recovered jobs. */
  pollIntervalMs: number;
  /** Identifies this process's leases. */
  owner?: string;
  random?: () => number;
  /**
   * Asked before every attempt whether the notification may go out now. An
   * answer (a coded, non-retryable error such as PB_DELIVERY_SILENCED) skips
   * the delivery and is recorded as the reason; undefined lets it through.
   */
  gate?: (input: DeliveryGateInput) => Promise<SerializedError | undefined>;
  /** Called for errors that are bugs rather than delivery failures. */
  onUnexpectedError?: (err: unknown, context: Record<string, string>) => void;
}

export interface DeliveryGateInput {
  instanceId: string;
  routeName: string;
  notification: Notification;
  job: LeasedJob;
}

export interface DispatcherEvents {
  paused: [instanceId: string, reason: string];
  settled: [
    job: LeasedJob,
    outcome: 'succeeded' | 'retry' | 'dead' | 'skipped',
    error?: SerializedError,
  ];
  error: [err: unknown];
}

/**
 * Exponential backoff with "equal jitter": half the delay is fixed so retries
 * never bunch at zero, half is random so a burst of failures spreads out.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number): number {
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, Math.max(0, attempt - 1)));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** The wait before the attempt after `attempt`, by the instance's ladder. */
export function retryDelay(
  attempt: number,
  def: Pick<DispatchInstance, 'retrySchedule' | 'retryJitter'>,
  backoff: BackoffOptions,
  random: () => number,
): number {
  const schedule = def.retrySchedule ?? [];
  if (schedule.length === 0) return backoffDelay(attempt, backoff, random);
  const base = schedule[Math.min(attempt - 1, schedule.length - 1)]!;
  const jitter = def.retryJitter ?? 0;
  return Math.round(base * (1 - jitter / 2 + random() * jitter));
}

interface InstanceState {
  def: DispatchInstance;
  /** Failed attempts in a row; a success resets it. */
  failures: number;
  breaker: CircuitBreaker<[() => Promise<boolean>], boolean> | undefined;
  paused: boolean;
  /** Leased but not started yet; at most `prefetch` of them. */
  buffer: LeasedJob[];
  /** How many jobs one lease may take: a few rounds of the concurrency. */
  prefetch: number;
  /** Covers the attempt's timeout for every round the buffer may wait. */
  leaseMs: number;
  log: Logger;
  inFlight: number;
  filling: boolean;
  refill: boolean;
  timer: NodeJS.Timeout | undefined;
  controllers: Set<AbortController>;
  /** Rate-limited: no slot before this time. */
  heldUntil: number;
  /** Rate-limited: deliveries waited for a slot; the next one folds them. */
  backlog: boolean;
}

/** At most this many waiting deliveries are folded into one digest. */
const FOLD_MAX = 500;

/**
 * Leases due jobs per instance (each instance has its own concurrency, so a
 * slow target cannot starve the others), runs each attempt under a timeout,
 * and settles it: succeeded, skipped, retry later, or dead.
 */
export class Dispatcher extends EventEmitter<DispatcherEvents> {
  private readonly o: DispatcherOptions;
  private readonly owner: string;
  private readonly states = new Map<string, InstanceState>();
  private readonly running = new Set<Promise<void>>();
  private poller: NodeJS.Timeout | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;
  private readonly random: () => number;

  constructor(options: DispatcherOptions) {
    super();
    this.o = options;
    this.owner = options.owner ?? `relay-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.random = options.random ?? Math.random;
    for (const def of options.instances) {
      const prefetch = Math.min(64, def.concurrency * 4);
      const rounds = Math.ceil(prefetch / def.concurrency);
      this.states.set(def.instanceId, {
        def,
        buffer: [],
        failures: 0,
        breaker: def.breaker ? this.makeBreaker(def, def.breaker) : undefined,
        paused: false,
        prefetch,
        // The lease outlives every attempt that may run before and during
        // this one, so a slow but live attempt is never taken over.
        leaseMs: def.timeoutMs * (rounds + 2) + 5000,
        log: options.logger.child({ instance: def.instanceId, plugin: def.plugin.slug }),
        inFlight: 0,
        filling: false,
        refill: false,
        timer: undefined,
        controllers: new Set(),
        heldUntil: 0,
        backlog: false,
      });
    }
  }

  get leaseOwner(): string {
    return this.owner;
  }

  /** Number of attempts running now. */
  get inFlight(): number {
    let n = 0;
    for (const s of this.states.values()) n += s.inFlight;
    return n;
  }

  /**
   * A circuit breaker per instance (opossum): when most recent attempts at a
   * target fail, stop sending to it for a while instead of spending every
   * delivery's attempts on it, then let one attempt probe whether it is back.
   */
  private makeBreaker(
    def: DispatchInstance,
    o: BreakerOptions,
  ): CircuitBreaker<[() => Promise<boolean>], boolean> {
    const breaker = new CircuitBreaker((attempt: () => Promise<boolean>) => attempt(), {
      timeout: false,
      errorThresholdPercentage: o.errorThresholdPercentage,
      volumeThreshold: o.volumeThreshold,
      resetTimeout: o.resetTimeoutMs,
      rollingCountTimeout: 60_000,
      rollingCountBuckets: 6,
      // A target that refuses one notification (4xx) is up: not its health.
      errorFilter: (err: unknown) =>
        (err as { code?: unknown } | null)?.code === 'PB_DELIVERY_UNRECOVERABLE',
    });
    const log = this.o.logger.child({ instance: def.instanceId, plugin: def.plugin.slug });
    breaker.on('open', () => {
      this.o.metrics?.circuitOpen.set({ instance: def.instanceId }, 1);
      log.warn(
        { resetInMs: o.resetTimeoutMs },
        'circuit open: the target keeps failing; pausing sends to it',
      );
    });
    breaker.on('halfOpen', () => {
      log.info('circuit half-open: one attempt will probe the target');
      this.wake(def.instanceId);
    });
    breaker.on('close', () => {
      this.o.metrics?.circuitOpen.set({ instance: def.instanceId }, 0);
      log.info('circuit closed: the target answers again');
      this.wake(def.instanceId);
    });
    return breaker;
  }

  /** Whether the breaker lets another attempt start now. */
  private breakerAllows(state: InstanceState): boolean {
    const b = state.breaker;
    if (!b || b.closed) return true;
    // Half-open: exactly one probe at a time; open: none.
    return b.halfOpen && state.inFlight === 0;
  }

  /**
   * Stop delivering for an instance whose target keeps failing: its jobs
   * wait in the queue until an operator resumes it (`plugboard instances
   * resume`). Recorded in the store, so every replica stops.
   */
  private async pause(state: InstanceState, reason: string): Promise<void> {
    const record: PauseRecord = { paused: true, since: Date.now(), reason };
    try {
      // Stored first, so a concurrent sync cannot read "not paused" back.
      await this.o.store.kvSet(INSTANCES_NAMESPACE, state.def.instanceId, record);
    } catch (err) {
      this.emit('error', err);
    }
    state.paused = true;
    this.o.metrics?.paused.set({ instance: state.def.instanceId }, 1);
    state.log.error(
      { failures: state.failures, reason },
      `instance paused after ${state.failures} failed attempts in a row; resume with: plugboard instances resume ${state.def.instanceId}`,
    );
    this.emit('paused', state.def.instanceId, reason);
  }

  /** Pause state from the store: set by this or another replica, cleared by an operator. */
  private async syncPauses(): Promise<void> {
    for (const state of this.states.values()) {
      const record = (await this.o.store.kvGet(INSTANCES_NAMESPACE, state.def.instanceId)) as
        PauseRecord | undefined;
      const paused = record?.paused === true;
      if (paused === state.paused) continue;
      state.paused = paused;
      this.o.metrics?.paused.set({ instance: state.def.instanceId }, paused ? 1 : 0);
      if (!paused) {
        state.failures = 0;
        state.log.info('instance resumed');
        this.wake(state.def.instanceId);
      }
    }
  }

  start(): void {
    this.syncPauses().catch((err: unknown) => this.emit('error', err));
    this.poller = setInterval(() => {
      this.syncPauses().catch((err: unknown) => this.emit('error', err));
      // Leases whose holder died (another replica, or a result the store
      // refused) go back to the queue once expired: one indexed update.
      this.o.store.releaseLeases({ expiredOnly: true }).then(
        () => this.wakeAll(),
        (err: unknown) => this.emit('error', err),
      );
    }, this.o.pollIntervalMs);
    this.poller.unref();
    this.wakeAll();
  }

  wakeAll(): void {
    for (const id of this.states.keys()) this.wake(id);
  }

  /** Look for due jobs of one instance now (called after ingest). */
  wake(instanceId: string): void {
    const state = this.states.get(instanceId);
    if (!state || this.stopping) return;
    if (state.filling) {
      state.refill = true;
      return;
    }
    void this.fill(state);
  }

  private async fill(state: InstanceState): Promise<void> {
    state.filling = true;
    try {
      if (state.def.rateLimit) {
        await this.fillLimited(state, state.def.rateLimit);
        if (!this.stopping) await this.scheduleNext(state);
        return;
      }
      do {
        state.refill = false;
        while (state.buffer.length > 0 && this.canStart(state)) {
          this.track(this.run(state, state.buffer.shift()!));
        }
        if (!this.canStart(state)) break;
        // Leasing a few rounds at once keeps the cost of a lease (one
        // transaction) off each delivery when targets answer fast.
        const jobs = await this.o.store.lease(
          state.def.instanceId,
          state.prefetch - state.buffer.length,
          this.owner,
          state.leaseMs,
        );
        if (jobs.length > 0) {
          state.buffer.push(...jobs);
          state.refill = true;
        }
      } while (state.refill && !this.stopping);
      if (!this.stopping) await this.scheduleNext(state);
    } catch (err) {
      this.emit('error', err);
    } finally {
      state.filling = false;
    }
  }

  /** Whether an attempt may start now: running, within concurrency, not paused, breaker closed. */
  private canStart(state: InstanceState): boolean {
    return (
      state.inFlight < state.def.concurrency &&
      !this.stopping &&
      !state.paused &&
      this.breakerAllows(state)
    );
  }

  /**
   * A rate-limited instance takes a slot before every attempt, so no replica
   * sends more than the target accepts. Nothing is leased ahead (a lease
   * would expire while it waits for a slot). When deliveries had to wait,
   * the next free slot carries all of them, folded into one digest, instead
   * of working through the backlog at the target's pace.
   */
  private async fillLimited(state: InstanceState, limit: TargetRateLimit): Promise<void> {
    const { store } = this.o;
    const id = state.def.instanceId;
    let more = true;
    while (more && this.canStart(state)) {
      more = false;
      const now = Date.now();
      if (state.heldUntil > now) return;
      const next = await store.nextRunAt(id);
      if (next === undefined || next > now) return;
      const slot = await store.rateAcquire(`target:${id}`, limit.limit, limit.perMs);
      if (!slot.ok) {
        state.heldUntil = slot.retryAt;
        state.backlog = true;
        this.o.metrics?.rateLimited.inc({ instance: id });
        state.log.debug(
          { retryAt: new Date(slot.retryAt).toISOString(), limit: limit.limit, perMs: limit.perMs },
          "holding deliveries back: the target's rate limit is reached",
        );
        this.wakeAt(state, slot.retryAt);
        return;
      }
      let jobs = await store.lease(id, state.backlog ? FOLD_MAX : 1, this.owner, state.leaseMs);
      state.backlog = false;
      if (jobs.length > 1) {
        const digest = foldedDigest(jobs, Date.now());
        const { jobId, folded } = await store.foldJobs(jobs, digest, {
          name: 'DeliveryError',
          code: 'PB_DELIVERY_FOLDED',
          message: `sent as part of one digest of ${jobs.length} deliveries: the target's rate limit (${limit.limit} per ${limit.perMs / 1000} s) held them back`,
          retryable: false,
        });
        this.o.metrics?.folded.inc({ instance: id }, folded);
        state.log.info(
          { folded, digestJob: jobId },
          "folded deliveries held back by the target's rate limit into one digest",
        );
        jobs = await store.lease(id, 1, this.owner, state.leaseMs);
      }
      const job = jobs[0];
      if (job) {
        this.track(this.run(state, job));
        more = true;
      }
    }
  }

  /** Look again at `at` (a freed rate-limit slot). */
  private wakeAt(state: InstanceState, at: number): void {
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(
      () => {
        state.timer = undefined;
        this.wake(state.def.instanceId);
      },
      Math.max(0, at - Date.now()) + 1,
    );
    state.timer.unref();
  }

  private async scheduleNext(state: InstanceState): Promise<void> {
    if (state.inFlight >= state.def.concurrency) return;
    if (state.heldUntil > Date.now()) return; // woken when the slot frees
    const next = await this.o.store.nextRunAt(state.def.instanceId);
    if (next === undefined) return;
    const delay = Math.max(0, next - Date.now());
    if (delay >= this.o.pollIntervalMs) return; // the poller will get it
    if (state.timer) clearTimeout(state.timer);
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.wake(state.def.instanceId);
    }, delay + 1);
    state.timer.unref();
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private async run(state: InstanceState, job: LeasedJob): Promise<void> {
    state.inFlight++;
    const def = state.def;
    const controller = new AbortController();
    state.controllers.add(controller);
    const startedAt = Date.now();
    // The per-attempt logger is made on first use: most attempts log nothing.
    let child: Logger | undefined;
    const getLog = (): Logger =>
      (child ??= state.log.child({ job: job.id, attempt: job.attempts }));
    // Checked before the child exists: a disabled level must cost nothing.
    const log: PluginLogger = {
      debug: (o, m) => {
        if (state.log.isLevelEnabled('debug')) getLog().debug(o, m);
      },
      info: (o, m) => {
        if (state.log.isLevelEnabled('info')) getLog().info(o, m);
      },
      warn: (o, m) => getLog().warn(o, m),
      error: (o, m) => getLog().error(o, m),
    };
    let outcome: 'succeeded' | 'retry' | 'dead' | 'skipped' = 'succeeded';
    /** The breaker refused it: the target was not tried, so it is not its failure. */
    let notSent = false;
    let error: SerializedError | undefined;
    try {
      const parsed = parseStoredWebhook(job.source, job.resource, job.body);
      if (!parsed.ok) {
        throw new DeliveryError(
          'PB_DELIVERY_UNRECOVERABLE',
          `stored webhook no longer parses: ${parsed.detail}`,
        );
      }
      const held = await this.o.gate?.({
        instanceId: def.instanceId,
        routeName: def.routeName,
        notification: parsed.notification,
        job,
      });
      if (held) {
        // Not sent on purpose (silenced, muted, inhibited): recorded with the reason.
        outcome = 'skipped';
        error = held;
      } else {
        const ctx: NotifyContext = {
          config: def.config,
          instanceId: def.instanceId,
          idempotencyKey: job.idempotencyKey,
          attempt: job.attempts,
          signal: controller.signal,
          timeoutMs: def.timeoutMs,
          logger: log,
          store: pluginStore(this.o.store, def.plugin.slug),
          rateLimiter: storeRateLimiter(this.o.store),
          users: storeUserSettings(this.o.store),
        };
        // One timeout covers the whole attempt, shouldNotify included.
        const attemptOnce = (): Promise<boolean> =>
          this.withTimeout(
            (async () => {
              if (!(await def.plugin.shouldNotify(parsed.notification, ctx))) return false;
              await def.plugin.notify(parsed.notification, ctx);
              return true;
            })(),
            def,
            controller,
          );
        let notified: boolean;
        try {
          notified = state.breaker ? await state.breaker.fire(attemptOnce) : await attemptOnce();
        } catch (err) {
          if ((err as { code?: unknown }).code === 'EOPENBREAKER') {
            notSent = true;
            // Opened after this job was handed out: it was not sent; try later.
            throw new DeliveryError(
              'PB_DELIVERY_RETRY_AFTER',
              `${def.instanceId}: circuit open, the target kept failing; not sent`,
              { retryAfterMs: def.breaker?.resetTimeoutMs ?? 30_000 },
            );
          }
          throw err;
        }
        if (!notified) outcome = 'skipped';
      }
    } catch (err) {
      error = serializeError(err);
      const ownCode = (err as { code?: unknown } | null)?.code;
      const byShutdown = this.stopping && controller.signal.aborted;
      if (!byShutdown && (typeof ownCode !== 'string' || !ownCode.startsWith('PB_'))) {
        // Not a coded delivery error: a bug in the plugin. Still retried, and
        // reported so its author hears of it.
        this.o.onUnexpectedError?.(err, { instance: def.instanceId, plugin: def.plugin.slug });
      }
      outcome = !error.retryable || job.attempts >= job.maxAttempts ? 'dead' : 'retry';
    } finally {
      state.controllers.delete(controller);
    }
    const finishedAt = Date.now();
    try {
      if (this.stopping && controller.signal.aborted) {
        // Cut short by shutdown: leave it for the next start, not counted as a failure.
        log.info('delivery interrupted by shutdown; it will run again after restart');
        return;
      }
      const attempt: AttemptInput = {
        attempt: job.attempts,
        startedAt,
        finishedAt,
        outcome:
          outcome === 'succeeded' ? 'succeeded' : outcome === 'skipped' ? 'skipped' : 'failed',
        ...(error ? { error } : {}),
      };
      let delay = 0;
      if (outcome === 'retry') {
        delay =
          error?.retryAfterMs !== undefined
            ? error.retryAfterMs
            : retryDelay(job.attempts, def, this.o.backoff, this.random);
        if (
          def.expireAfterMs !== undefined &&
          finishedAt + delay > job.createdAt + def.expireAfterMs
        ) {
          // Later than this the alert is noise: stop, and say why.
          outcome = 'dead';
          attempt.error = {
            name: 'DeliveryError',
            code: 'PB_DELIVERY_EXPIRED',
            message: `gave up after ${job.attempts} attempt(s): the next would come more than ${Math.round(def.expireAfterMs / 60_000)} min after the webhook arrived`,
            retryable: false,
            ...(error ? { cause: error } : {}),
          };
        }
      }
      if (outcome === 'retry') {
        await this.o.store.settle(job, attempt, { state: 'pending', runAt: finishedAt + delay });
        log.warn({ err: error, retryInMs: delay }, 'delivery failed; will retry');
      } else {
        await this.o.store.settle(job, attempt, { state: outcome });
        if (outcome === 'dead') log.error({ err: error }, 'delivery failed; giving up');
      }
      if (attempt.outcome === 'failed' && !notSent) {
        state.failures++;
        const limit = def.pauseAfterFailures ?? 0;
        if (limit > 0 && state.failures >= limit && !state.paused) {
          await this.pause(state, attempt.error?.message ?? 'failed');
        }
      } else if (attempt.outcome === 'succeeded') {
        state.failures = 0;
      }
      this.o.metrics?.attempts.inc({ plugin: def.plugin.slug, instance: def.instanceId, outcome });
      this.o.metrics?.latency.observe(
        { plugin: def.plugin.slug, outcome },
        (finishedAt - startedAt) / 1000,
      );
      this.emit('settled', job, outcome, error);
    } catch (err) {
      // The store refused the result; the lease expires and the job runs again.
      this.emit('error', err);
    } finally {
      state.inFlight--;
      if (!this.stopping) this.wake(def.instanceId);
    }
  }

  private withTimeout<T>(
    p: Promise<T>,
    def: DispatchInstance,
    controller: AbortController,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new DeliveryError(
          'PB_DELIVERY_TIMEOUT',
          `${def.instanceId}: delivery did not finish within ${def.timeoutMs} ms`,
        );
        controller.abort(err);
        reject(err);
      }, def.timeoutMs);
      const onAbort = (): void => reject(controller.signal.reason);
      controller.signal.addEventListener('abort', onAbort, { once: true });
      p.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        controller.signal.removeEventListener('abort', onAbort);
      });
    });
  }

  /**
   * Stop leasing, give running attempts `graceMs` to finish, then abort the
   * rest and hand their jobs back to the queue for the next start.
   * Idempotent: every call returns the same promise.
   */
  close(graceMs = 10_000): Promise<void> {
    if (!this.closing) this.closing = this.doClose(graceMs);
    return this.closing;
  }

  private async doClose(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.poller) clearInterval(this.poller);
    for (const st of this.states.values()) st.breaker?.shutdown();
    for (const s of this.states.values()) if (s.timer) clearTimeout(s.timer);
    const all = (): Promise<unknown> => Promise.allSettled([...this.running]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all().then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), graceMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (timedOut) {
      for (const s of this.states.values()) {
        for (const c of s.controllers)
          c.abort(new DeliveryError('PB_DELIVERY_FAILED', 'relay shutting down'));
      }
      await all();
    }
    try {
      const released = await this.o.store.releaseLeases({ owner: this.owner, uncount: true });
      if (released > 0)
        this.o.logger.info({ released }, 'released unfinished deliveries for the next start');
    } catch (err) {
      this.emit('error', err);
    }
  }
}
