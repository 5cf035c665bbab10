import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { DeliveryError } from '@plugboard/sdk';
import { Lane, type LaneHost } from './lane';
import { INSTANCES_NAMESPACE, type PauseRecord } from './pause';
import type { DispatcherEvents, DispatcherOptions } from './types';

export { backoffDelay, retryDelay } from './retry';
export type {
  BackoffOptions,
  BreakerOptions,
  Delivery,
  DeliveryGateInput,
  DispatchInstance,
  DispatcherEvents,
  DispatcherOptions,
} from './types';

/**
 * Leases due jobs per instance, runs each attempt under a timeout, and
 * settles it: succeeded, skipped, retry later, or dead. The steps of one
 * message (lease → gate each → fold → take a slot → attempt → settle each)
 * are in `Lane`, one per instance; this class starts, pauses and stops them.
 */
export class Dispatcher extends EventEmitter<DispatcherEvents> {
  private readonly lanes = new Map<string, Lane>();
  private readonly running = new Set<Promise<void>>();
  private readonly o: DispatcherOptions;
  private readonly owner: string;
  private poller: NodeJS.Timeout | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;

  constructor(options: DispatcherOptions) {
    super();
    this.o = options;
    this.owner = options.owner ?? `relay-${process.pid}-${randomUUID().slice(0, 8)}`;
    const host: LaneHost = {
      options,
      owner: this.owner,
      random: options.random ?? Math.random,
      stopping: () => this.stopping,
      track: (p) => {
        this.running.add(p);
        void p.finally(() => this.running.delete(p));
      },
      settled: (...args) => void this.emit('settled', ...args),
      error: (err) => void this.emit('error', err),
      pause: (lane, reason) => this.pause(lane, reason),
    };
    for (const def of options.instances) this.lanes.set(def.instanceId, new Lane(def, host));
  }

  get leaseOwner(): string {
    return this.owner;
  }

  /** Number of attempts running now. */
  get inFlight(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.inFlight;
    return n;
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
    for (const lane of this.lanes.values()) lane.wake();
  }

  /** Look for due jobs of one instance now (called after ingest). */
  wake(instanceId: string): void {
    this.lanes.get(instanceId)?.wake();
  }

  /**
   * Stop delivering for an instance whose target keeps failing: its jobs
   * wait in the queue until an operator resumes it (`plugboard instances
   * resume`). Recorded in the store, so every replica stops.
   */
  private async pause(lane: Lane, reason: string): Promise<void> {
    const id = lane.def.instanceId;
    const record: PauseRecord = { paused: true, since: Date.now(), reason };
    try {
      // Stored first, so a concurrent sync cannot read "not paused" back.
      await this.o.store.kvSet(INSTANCES_NAMESPACE, id, record);
    } catch (err) {
      this.emit('error', err);
    }
    lane.paused = true;
    this.o.metrics?.paused.set({ instance: id }, 1);
    lane.log.error(
      { failures: lane.failures, reason },
      `instance paused after ${lane.failures} failed attempts in a row; resume with: plugboard instances resume ${id}`,
    );
    this.emit('paused', id, reason);
  }

  /** Pause state from the store: set by this or another replica, cleared by an operator. */
  private async syncPauses(): Promise<void> {
    for (const lane of this.lanes.values()) {
      const id = lane.def.instanceId;
      const record = (await this.o.store.kvGet(INSTANCES_NAMESPACE, id)) as PauseRecord | undefined;
      const paused = record?.paused === true;
      if (paused === lane.paused) continue;
      lane.paused = paused;
      this.o.metrics?.paused.set({ instance: id }, paused ? 1 : 0);
      if (!paused) {
        lane.failures = 0;
        lane.log.info('instance resumed');
        lane.wake();
      }
    }
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
    for (const lane of this.lanes.values()) {
      lane.breaker?.shutdown();
      if (lane.timer) clearTimeout(lane.timer);
    }
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
      for (const lane of this.lanes.values()) {
        for (const c of lane.controllers)
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
