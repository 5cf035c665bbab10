import type { SerializedError, TargetRateLimit } from '@plugboard/sdk';
import type { Logger } from '../logger';
import { storeUserSettings } from '../server/api';
import type { LeasedJob } from '../store/types';
import { attempt, attemptLogger, createBreaker, type Breaker } from './attempt';
import { Fold } from './fold';
import { pluginStore, storeRateLimiter } from './plugin-services';
import { settlementFor } from './retry';
import { handBack, judge, writeSettlements, type Settlement } from './steps';
import type { Delivery, DispatchInstance, DispatcherEvents, DispatcherOptions } from './types';

/** One lease of a rate-limited backlog takes this many jobs; a fold is built page by page. */
const FOLD_PAGE = 500;
/**
 * At most this many deliveries ride in one folded message (memory: a few
 * hundred bytes each while the attempt runs); a larger backlog takes one
 * more slot per this many.
 */
const FOLD_MAX = 50_000;

/** What a lane needs from its dispatcher. */
export interface LaneHost {
  readonly options: DispatcherOptions;
  readonly owner: string;
  readonly random: () => number;
  stopping(): boolean;
  /** Keeps a running message's promise until it settles (for close()). */
  track(p: Promise<void>): void;
  /** A job is settled (once per job, folded members of a digest included). */
  settled(...args: DispatcherEvents['settled']): void;
  /** A background failure: not a delivery's, the lane's own (the store refused a write). */
  error(err: unknown): void;
  pause(lane: Lane, reason: string): Promise<void>;
}

/**
 * One instance's deliveries, with its own concurrency (so a slow target
 * cannot starve the others). Every message goes through the same steps, in
 * this order:
 *
 * 1. lease: due jobs (a few rounds of the concurrency; for a rate-limited
 *    target one job, or, once it held deliveries back, all that wait);
 * 2. gate each: silences, inhibition and mute intervals are asked about
 *    every job; a held job is settled `skipped` with its own reason and
 *    never takes a slot or rides in a digest;
 * 3. fold (rate-limited): what may be sent becomes one message;
 * 4. take a slot (rate-limited): none free → the jobs go back to the queue
 *    untouched, to be folded when the slot frees;
 * 5. attempt: shouldNotify + notify under the timeout and circuit breaker;
 * 6. settle each: every job of the message as the attempt went (a folded
 *    job counts as delivered only once the target took its digest).
 */
export class Lane {
  readonly breaker: Breaker | undefined;
  readonly log: Logger;
  /** Failed attempts in a row; a success resets it. */
  failures = 0;
  paused = false;
  inFlight = 0;
  readonly controllers = new Set<AbortController>();
  timer: NodeJS.Timeout | undefined;
  /** Leased but not started yet; at most `prefetch` of them. */
  private readonly buffer: LeasedJob[] = [];
  /** How many jobs one lease may take: a few rounds of the concurrency. */
  private readonly prefetch: number;
  /** Covers the attempt's timeout for every round the buffer may wait. */
  private readonly leaseMs: number;
  private filling = false;
  private refill = false;
  /** What the gate step needs, made once. */
  private readonly judging: Parameters<typeof judge>[2];
  /** Rate-limited: no slot before this time. */
  private heldUntil = 0;
  /**
   * Rate-limited: deliveries waited for a slot. Until the queue is drained,
   * every slot carries all that wait (a storm is not interrupted by single
   * messages that would each say "1 event").
   */
  private backlog = false;

  constructor(
    readonly def: DispatchInstance,
    private readonly host: LaneHost,
  ) {
    const o = host.options;
    this.prefetch = Math.min(64, def.concurrency * 4);
    const rounds = Math.ceil(this.prefetch / def.concurrency);
    // The lease outlives every attempt that may run before and during this
    // one, so a slow but live attempt is never taken over.
    this.leaseMs = def.timeoutMs * (rounds + 2) + 5000;
    this.log = o.logger.child({ instance: def.instanceId, plugin: def.plugin.slug });
    this.judging = { gate: o.gate, backoff: o.backoff, random: host.random };
    this.breaker = def.breaker
      ? createBreaker(def, def.breaker, {
          logger: this.log,
          metrics: o.metrics,
          wake: () => this.wake(),
        })
      : undefined;
  }

  /** Look for due jobs now (after ingest, a settled attempt, a freed slot). */
  wake(): void {
    if (this.host.stopping()) return;
    if (this.filling) {
      this.refill = true;
      return;
    }
    void this.fill();
  }

  private async fill(): Promise<void> {
    this.filling = true;
    try {
      if (this.def.rateLimit) await this.fillLimited(this.def.rateLimit);
      else await this.fillUnlimited();
      if (!this.host.stopping()) await this.scheduleNext();
    } catch (err) {
      this.host.error(err);
    } finally {
      this.filling = false;
    }
  }

  /** Without a rate limit every job is its own message: 1, then 2, 5, 6 for each. */
  private async fillUnlimited(): Promise<void> {
    const { store } = this.host.options;
    do {
      this.refill = false;
      while (this.buffer.length > 0 && this.canStart()) {
        const job = this.buffer.shift()!;
        this.begin(async () => {
          const verdict = await judge(job, this.def, this.judging);
          if ('settle' in verdict) return this.settle([verdict.settle]);
          const { idempotencyKey } = job;
          await this.attemptAndSettle({
            jobs: [job],
            lead: job,
            notification: verdict.send,
            idempotencyKey,
          });
        });
      }
      if (!this.canStart()) break;
      // Leasing a few rounds at once keeps the cost of a lease (one
      // transaction) off each delivery when targets answer fast.
      const want = this.prefetch - this.buffer.length;
      const jobs = await store.lease(this.def.instanceId, want, this.host.owner, this.leaseMs);
      if (jobs.length > 0) {
        this.buffer.push(...jobs);
        this.refill = true;
      }
    } while (this.refill && !this.host.stopping());
  }

  /**
   * With a rate limit, nothing is leased ahead (a lease would expire while
   * it waits for a slot). When deliveries had to wait, the next free slot
   * carries all of them, folded into one digest, instead of working through
   * the backlog at the target's pace.
   */
  private async fillLimited(limit: TargetRateLimit): Promise<void> {
    const { store, metrics } = this.host.options;
    const id = this.def.instanceId;
    while (this.canStart()) {
      if (this.heldUntil > Date.now()) return; // woken when the slot frees
      // 1–3. lease, gate each, fold what may be sent.
      const fold = await this.leaseAndGate(this.backlog ? FOLD_MAX : 1);
      if (fold === undefined) {
        // Drained: the next delivery goes as itself again.
        this.backlog = false;
        return;
      }
      if (fold.size === 0) continue; // all held back: look again
      if (this.host.stopping()) {
        // Closing began while the fold was built: back to the queue, unsent.
        await handBack(store, fold.delivery(Date.now()).jobs);
        return;
      }
      // 4. take a slot.
      const slot = await store.rateAcquire(`target:${id}`, limit.limit, limit.perMs);
      const delivery = fold.delivery(Date.now());
      if (!slot.ok) {
        await handBack(store, delivery.jobs);
        this.heldUntil = slot.retryAt;
        this.backlog = true;
        metrics?.rateLimited.inc({ instance: id });
        this.log.debug(
          { retryAt: new Date(slot.retryAt).toISOString(), limit: limit.limit, perMs: limit.perMs },
          "holding deliveries back: the target's rate limit is reached",
        );
        this.wakeAt(slot.retryAt);
        return;
      }
      if (fold.size > 1) {
        metrics?.folded.inc({ instance: id }, fold.size);
        this.log.info(
          { folded: fold.size, lead: delivery.lead.id },
          "folding deliveries held back by the target's rate limit into one digest",
        );
      }
      // 5–6. attempt, settle each.
      this.begin(() => this.attemptAndSettle(delivery, fold.note(limit)));
    }
  }

  /** Steps 1–3: lease up to `max` due jobs page by page, gate each, fold the rest. */
  private async leaseAndGate(max: number): Promise<Fold | undefined> {
    const { store } = this.host.options;
    const fold = new Fold();
    let leased = 0;
    while (leased < max && !this.host.stopping()) {
      const page = Math.min(FOLD_PAGE, max - leased);
      const jobs = await store.lease(this.def.instanceId, page, this.host.owner, this.leaseMs);
      leased += jobs.length;
      const held: Settlement[] = [];
      for (const job of jobs) {
        const verdict = await judge(job, this.def, this.judging);
        if ('send' in verdict) fold.add(job, verdict.send);
        else held.push(verdict.settle);
      }
      if (held.length > 0) await this.settle(held);
      if (jobs.length < page) break;
      // The embedded store answers without I/O: let ingest (and sockets'
      // events) in between pages, so a big fold never stalls the relay.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return leased === 0 ? undefined : fold;
  }

  /** Steps 5–6: attempt one message, settle every job it carries (`note` on a taken digest's). */
  private async attemptAndSettle(delivery: Delivery, note?: SerializedError): Promise<void> {
    const { def, host } = this;
    const o = host.options;
    const controller = new AbortController();
    this.controllers.add(controller);
    const log = attemptLogger(this.log, delivery);
    let result;
    try {
      result = await attempt(delivery, {
        def,
        breaker: this.breaker,
        controller,
        services: {
          store: pluginStore(o.store, def.plugin.slug),
          rateLimiter: storeRateLimiter(o.store),
          users: storeUserSettings(o.store),
        },
        log,
        backoff: o.backoff,
        random: host.random,
        onUnexpected: (err) =>
          o.onUnexpectedError?.(err, { instance: def.instanceId, plugin: def.plugin.slug }),
        stopping: () => host.stopping(),
      });
    } finally {
      this.controllers.delete(controller);
    }
    if (result.interrupted) {
      log.info('delivery interrupted by shutdown; it will run again after restart');
      return;
    }
    const folded = delivery.jobs.length > 1 && result.outcome === 'succeeded' ? note : undefined;
    const settled = delivery.jobs.map((job) => settlementFor(job, def, result, folded));
    await this.settle(settled);
    const lead = settled.find((s) => s.item.job.id === delivery.lead.id) ?? settled[0]!;
    if (lead.outcome === 'retry') {
      log.warn({ err: result.error, retryInMs: result.retryInMs }, 'delivery failed; will retry');
    } else if (lead.outcome === 'dead') {
      log.error({ err: lead.item.attempt?.error }, 'delivery failed; giving up');
    }
    if (result.outcome === 'failed' && !result.notSent) {
      this.failures++;
      const limit = def.pauseAfterFailures ?? 0;
      if (limit > 0 && this.failures >= limit && !this.paused) {
        await host.pause(this, result.error?.message ?? 'failed');
      }
    } else if (result.outcome === 'succeeded') {
      this.failures = 0;
    }
    const labels = { plugin: def.plugin.slug, outcome: lead.outcome };
    o.metrics?.attempts.inc({ ...labels, instance: def.instanceId });
    o.metrics?.latency.observe(labels, (result.finishedAt - result.startedAt) / 1000);
  }

  /** Step 6, written; then listeners hear of each job. */
  private async settle(settled: readonly Settlement[]): Promise<void> {
    await writeSettlements(this.host.options.store, settled);
    for (const s of settled) {
      this.host.settled(s.item.job, s.outcome, s.item.attempt?.error);
    }
  }

  /** Run one message's steps as an attempt in flight (counted against the concurrency). */
  private begin(work: () => Promise<void>): void {
    this.inFlight++;
    this.host.track(
      (async () => {
        try {
          await work();
        } catch (err) {
          // The store refused a result; the lease expires and the job runs again.
          this.host.error(err);
        } finally {
          this.inFlight--;
          this.wake();
        }
      })(),
    );
  }

  /** Whether an attempt may start now: running, within concurrency, not paused, breaker closed. */
  private canStart(): boolean {
    if (this.inFlight >= this.def.concurrency || this.host.stopping() || this.paused) return false;
    const b = this.breaker;
    // Half-open: exactly one probe at a time; open: none.
    return !b || b.closed || (b.halfOpen && this.inFlight === 0);
  }

  /** Look again at `at` (a freed rate-limit slot, a due retry). */
  private wakeAt(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.wake();
      },
      Math.max(0, at - Date.now()) + 1,
    );
    this.timer.unref();
  }

  private async scheduleNext(): Promise<void> {
    if (this.inFlight >= this.def.concurrency) return;
    if (this.heldUntil > Date.now()) return; // woken when the slot frees
    const next = await this.host.options.store.nextRunAt(this.def.instanceId);
    if (next === undefined) return;
    // Later than a poll interval: the poller will get it.
    if (next - Date.now() < this.host.options.pollIntervalMs) this.wakeAt(next);
  }
}
