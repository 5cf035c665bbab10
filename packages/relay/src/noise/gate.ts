import { Counter } from 'prom-client';
import { DeliveryError, type Notification, type SerializedError } from '@plugboard/sdk';
import type { RelayConfig } from '../config/schema';
import type { DeliveryGateInput } from '../dispatch/types';
import type { RelayMetrics } from '../metrics';
import type { Store } from '../store/types';
import { Inhibitions, describeSource, sourceIdentity } from './inhibition';
import { notificationLabelSet, withLabels } from './labels';
import { muteChecker, type MuteReason } from './mute';
import { Silences } from './silences';

/**
 * The delivery gate: asked by the dispatcher before every attempt whether the
 * notification may go out now. In order:
 *
 * 1. silences: an operator said so, for these labels, until a time;
 * 2. inhibition: a related, more important notification is open;
 * 3. mute time intervals: the route is off at this time.
 *
 * The first that holds is the recorded reason (a silenced delivery during a
 * mute interval shows as silenced: the explicit human decision names who to
 * ask). A held delivery is settled as skipped with a non-retryable coded error
 * and not sent later; `plugboard deliveries replay` sends it if it still
 * matters.
 */

export type DeliveryGate = (input: DeliveryGateInput) => Promise<SerializedError | undefined>;

export interface NoiseControlOptions {
  store: Store;
  config: Pick<RelayConfig, 'routes' | 'timeIntervals' | 'inhibitRules'>;
  /** The clock every time-based rule reads (default `Date.now`). */
  now?: () => number;
  /** Held deliveries are counted on its registry (`plugboard_deliveries_held_total`). */
  metrics?: RelayMetrics;
  /** How long silences and inhibition sources read from the store are reused (default 1000 ms). */
  cacheMs?: number;
}

export interface NoiseControl {
  gate: DeliveryGate;
  silences: Silences;
  inhibitions: Inhibitions;
  /** Whether a route is muted now, and by which interval (for a digest flusher too). */
  muteReason: MuteReason;
  /**
   * For every newly accepted webhook: records inhibition sources and
   * resolutions. Undefined (nothing to wait for) for most notifications.
   */
  observe: (n: Notification) => Promise<void> | undefined;
}

const HELD_METRIC = 'plugboard_deliveries_held_total';

function heldCounter(metrics: RelayMetrics): Counter<'reason' | 'route'> {
  const existing = metrics.registry.getSingleMetric(HELD_METRIC);
  if (existing) return existing as Counter<'reason' | 'route'>;
  return new Counter({
    name: HELD_METRIC,
    help: 'Deliveries not sent on purpose, by reason (silenced, inhibited, muted) and route.',
    labelNames: ['reason', 'route'] as const,
    registers: [metrics.registry],
  });
}

function held(
  code: 'PB_DELIVERY_SILENCED' | 'PB_DELIVERY_MUTED' | 'PB_DELIVERY_INHIBITED',
  message: string,
): SerializedError {
  return { name: 'DeliveryError', code, message, retryable: false };
}

/** Silences, inhibition and mute intervals over one store, and the gate that applies them. */
export function createNoiseControl(options: NoiseControlOptions): NoiseControl {
  const now = options.now ?? Date.now;
  const cache = options.cacheMs === undefined ? {} : { cacheMs: options.cacheMs };
  const silences = new Silences({ store: options.store, now, ...cache });
  const inhibitions = new Inhibitions({
    store: options.store,
    rules: options.config.inhibitRules ?? [],
    now,
    ...cache,
  });
  const muteReason = muteChecker(options.config);
  const counter = options.metrics ? heldCounter(options.metrics) : undefined;

  const gate: DeliveryGate = async ({ instanceId, routeName, notification }) => {
    const own = notificationLabelSet(notification);
    const set = withLabels(own, { route: routeName, instance: instanceId });
    let out: SerializedError | undefined;
    try {
      const silence = await silences.find(set);
      if (silence) {
        out = held(
          'PB_DELIVERY_SILENCED',
          `silenced by ${silence.id} (${silence.comment}) until ${new Date(silence.endsAt).toISOString()}`,
        );
      } else if (inhibitions.enabled) {
        const inhibition = await inhibitions.find(set, sourceIdentity(own, notification));
        if (inhibition) out = held('PB_DELIVERY_INHIBITED', describeSource(inhibition));
      }
    } catch (err) {
      // Without the list the delivery might be one an operator silenced:
      // try again later rather than guess.
      throw new DeliveryError(
        'PB_DELIVERY_FAILED',
        `cannot read silences or inhibitions from the store: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (!out) {
      const muted = muteReason(routeName, now());
      if (muted) out = held('PB_DELIVERY_MUTED', muted);
    }
    if (out && counter) {
      const reason = out.code.replace('PB_DELIVERY_', '').toLowerCase();
      counter.inc({ reason, route: routeName });
    }
    return out;
  };

  return { gate, silences, inhibitions, muteReason, observe: (n) => inhibitions.observe(n) };
}

/** The dispatcher's `gate` for a store and configuration (see `createNoiseControl`). */
export function createGate(
  store: Store,
  config: NoiseControlOptions['config'],
  now: () => number = Date.now,
): DeliveryGate {
  return createNoiseControl({ store, config, now }).gate;
}
