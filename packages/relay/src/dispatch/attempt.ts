import CircuitBreaker from 'opossum';
import {
  DeliveryError,
  serializeError,
  type NotifyContext,
  type PluginLogger,
} from '@plugboard/sdk';
import type { Logger } from '../logger';
import type { RelayMetrics } from '../metrics';
import { retryDelay, type AttemptResult } from './retry';
import type { BackoffOptions, BreakerOptions, Delivery, DispatchInstance } from './types';

export type Breaker = CircuitBreaker<[() => Promise<boolean>], boolean>;

/**
 * A circuit breaker per instance (opossum): when most recent attempts at a
 * target fail, stop sending to it for a while instead of spending every
 * delivery's attempts on it, then let one attempt probe whether it is back.
 */
export function createBreaker(
  def: DispatchInstance,
  o: BreakerOptions,
  host: { logger: Logger; metrics?: RelayMetrics | undefined; wake: () => void },
): Breaker {
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
  const log = host.logger;
  breaker.on('open', () => {
    host.metrics?.circuitOpen.set({ instance: def.instanceId }, 1);
    log.warn(
      { resetInMs: o.resetTimeoutMs },
      'circuit open: the target keeps failing; pausing sends to it',
    );
  });
  breaker.on('halfOpen', () => {
    log.info('circuit half-open: one attempt will probe the target');
    host.wake();
  });
  breaker.on('close', () => {
    host.metrics?.circuitOpen.set({ instance: def.instanceId }, 0);
    log.info('circuit closed: the target answers again');
    host.wake();
  });
  return breaker;
}

/** A logger for one attempt, made on first use: most attempts log nothing. */
export function attemptLogger(base: Logger, delivery: Delivery): PluginLogger {
  let child: Logger | undefined;
  const get = (): Logger =>
    (child ??= base.child({
      job: delivery.lead.id,
      attempt: delivery.lead.attempts,
      ...(delivery.jobs.length > 1 ? { folded: delivery.jobs.length } : {}),
    }));
  // Checked before the child exists: a disabled level must cost nothing.
  return {
    debug: (o, m) => {
      if (base.isLevelEnabled('debug')) get().debug(o, m);
    },
    info: (o, m) => {
      if (base.isLevelEnabled('info')) get().info(o, m);
    },
    warn: (o, m) => get().warn(o, m),
    error: (o, m) => get().error(o, m),
  };
}

export interface AttemptOptions {
  def: DispatchInstance;
  breaker: Breaker | undefined;
  controller: AbortController;
  /** Everything in the notifier's context but the per-attempt fields. */
  services: Pick<NotifyContext, 'store' | 'rateLimiter' | 'users'>;
  log: PluginLogger;
  backoff: BackoffOptions;
  random: () => number;
  /** An error that is not a coded delivery error: a bug in the plugin. */
  onUnexpected: (err: unknown) => void;
  /** True once the relay is shutting down. */
  stopping: () => boolean;
}

export interface AttemptOutcome extends AttemptResult {
  /** The breaker refused it: the target was not tried, so it is not its failure. */
  notSent: boolean;
  /** Cut short by shutdown: leave it for the next start, not counted. */
  interrupted: boolean;
}

/**
 * Step 5: one attempt at a message, shouldNotify included, under the
 * instance's timeout and circuit breaker.
 */
export async function attempt(delivery: Delivery, o: AttemptOptions): Promise<AttemptOutcome> {
  const { def, controller } = o;
  const startedAt = Date.now();
  const ctx: NotifyContext = {
    config: def.config,
    instanceId: def.instanceId,
    idempotencyKey: delivery.idempotencyKey,
    attempt: delivery.lead.attempts,
    signal: controller.signal,
    timeoutMs: def.timeoutMs,
    logger: o.log,
    ...o.services,
  };
  const n = delivery.notification;
  const once = (): Promise<boolean> =>
    withTimeout(
      (async () => {
        if (!(await def.plugin.shouldNotify(n, ctx))) return false;
        await def.plugin.notify(n, ctx);
        return true;
      })(),
      def,
      controller,
    );
  let notSent = false;
  try {
    let notified: boolean;
    try {
      notified = o.breaker ? await o.breaker.fire(once) : await once();
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EOPENBREAKER') throw err;
      notSent = true;
      // Opened after this delivery was handed out: it was not sent; try later.
      throw new DeliveryError(
        'PB_DELIVERY_RETRY_AFTER',
        `${def.instanceId}: circuit open, the target kept failing; not sent`,
        { retryAfterMs: def.breaker?.resetTimeoutMs ?? 30_000 },
      );
    }
    const outcome = notified ? 'succeeded' : 'skipped';
    return { startedAt, finishedAt: Date.now(), outcome, notSent, interrupted: false };
  } catch (err) {
    const finishedAt = Date.now();
    const error = serializeError(err);
    const interrupted = o.stopping() && controller.signal.aborted;
    const ownCode = (err as { code?: unknown } | null)?.code;
    if (!interrupted && (typeof ownCode !== 'string' || !ownCode.startsWith('PB_'))) {
      // Still retried, and reported so the plugin's author hears of it.
      o.onUnexpected(err);
    }
    const retryInMs =
      error.retryAfterMs ?? retryDelay(delivery.lead.attempts, def, o.backoff, o.random);
    return { startedAt, finishedAt, outcome: 'failed', error, retryInMs, notSent, interrupted };
  }
}

function withTimeout<T>(
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
