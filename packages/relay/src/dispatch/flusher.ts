import type { RouteConfig } from '../config/schema';
import type { Logger } from '../logger';
import type { RelayMetrics } from '../metrics';
import { flushFor, groupTimers, planFlush, type GroupTimers } from '../noise/grouping';
import { instanceIdOf } from '../routing';
import type { GroupRecord, NewJob, Store } from '../store/types';

export interface GroupFlusherOptions {
  store: Store;
  routes: readonly RouteConfig[];
  /** Attempts per digest delivery (the instance's, else `dispatch.maxAttempts`). */
  defaultMaxAttempts: number;
  logger: Logger;
  metrics?: RelayMetrics;
  /** Called with the instances that got digest deliveries. */
  onJobs: (instanceIds: string[]) => void;
  /** The mute interval holding a route now, if any. */
  mutedBy?: (routeName: string, now: number) => string | undefined;
  now?: () => number;
  /** How often due groups are looked for. Default 1000 ms. */
  tickMs?: number;
  /** Groups handled per store read. Default 200. */
  batch?: number;
}

/**
 * Turns due groups into messages. Every replica runs one; the store applies
 * each decision only to the group version it was made on, so two replicas
 * flushing the same group at the same moment send it once.
 */
export class GroupFlusher {
  private readonly o: GroupFlusherOptions;
  private readonly now: () => number;
  private readonly timers = new Map<string, { route: RouteConfig; timers: GroupTimers }>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private closed = false;

  constructor(options: GroupFlusherOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
    for (const route of options.routes) {
      const timers = groupTimers(route);
      if (timers) this.timers.set(route.name, { route, timers });
    }
  }

  start(): void {
    if (this.timer || this.closed) return;
    // Groups left by a configuration that grouped before are closed too, so
    // the timer runs even when no route groups now.
    this.timer = setInterval(() => void this.tick().catch(() => undefined), this.o.tickMs ?? 1000);
    this.timer.unref();
  }

  /**
   * Flush every due group once; returns how many were handled. Runs one at a
   * time (a tick still running when the next is due is waited for).
   */
  tick(): Promise<number> {
    if (!this.running) {
      this.running = this.flushDue().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async flushDue(): Promise<number> {
    const batch = this.o.batch ?? 200;
    let handled = 0;
    // Bounded: a flood of due groups is worked through over several ticks.
    for (let round = 0; round < 10 && !this.closed; round++) {
      const now = this.now();
      const due = await this.o.store.dueGroups(now, batch);
      for (const g of due) {
        try {
          await this.flushOne(g, now);
        } catch (err) {
          this.o.logger.error(
            { err, route: g.routeName, group: g.groupKey },
            'group flush failed; retried next tick',
          );
        }
        handled++;
      }
      if (due.length < batch) break;
    }
    return handled;
  }

  private async flushOne(g: GroupRecord, now: number): Promise<void> {
    const { store, logger } = this.o;
    const entry = this.timers.get(g.routeName);
    if (!entry) {
      // The route is gone or no longer groups: close it, counting what it held.
      await store.flushGroup({
        routeName: g.routeName,
        groupKey: g.groupKey,
        version: g.version,
        seenStatus: g.status,
        flushed: g.pending,
        nextFlushAt: now,
        sent: false,
        suppressed: true,
        close: true,
      });
      logger.warn(
        { route: g.routeName, group: g.groupKey, pending: g.pending },
        'closed a group whose route no longer groups',
      );
      return;
    }
    const { route, timers } = entry;
    const plan = planFlush(g, timers, now, this.o.mutedBy?.(route.name, now));
    let message: Parameters<typeof flushFor>[3];
    if (plan.reason !== undefined) {
      const latest = await store.getWebhook(g.lastWebhookId);
      if (latest && latest.source !== 'digest') {
        const jobs: NewJob[] = route.instances.map((inst) => ({
          routeName: route.name,
          instanceId: instanceIdOf(route, inst),
          pluginSlug: inst.plugin,
          maxAttempts: inst.maxAttempts ?? this.o.defaultMaxAttempts,
          ...(g.project ? { project: g.project } : {}),
        }));
        message = {
          latest: {
            source: latest.source,
            resource: latest.resource,
            action: latest.action,
            body: latest.body,
          },
          jobs,
        };
      } else {
        logger.error(
          { route: g.routeName, group: g.groupKey },
          'group lost its latest webhook; nothing sent',
        );
      }
    }
    const res = await store.flushGroup(flushFor(g, plan, now, message));
    if (!res.applied) return; // another replica flushed it first
    if (res.jobIds.length > 0) {
      this.o.metrics?.groupMessages.inc({ route: route.name, reason: plan.reason ?? 'none' });
      this.o.onJobs([...new Set(message?.jobs.map((j) => j.instanceId) ?? [])]);
      logger.info(
        {
          route: route.name,
          group: g.groupKey,
          reason: plan.reason,
          count: g.pending,
          total: g.total,
        },
        'group message queued',
      );
    } else if (plan.note && plan.flushed > 0) {
      logger.info(
        { route: route.name, group: g.groupKey, count: plan.flushed },
        `group not sent: ${plan.note}`,
      );
    }
  }

  /** Stop the timer and wait for a running tick. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}
