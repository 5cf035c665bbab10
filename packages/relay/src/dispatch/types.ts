import type {
  Notification,
  NotificationPlugin,
  PluginConfig,
  SerializedError,
  TargetRateLimit,
} from '@plugboard/sdk';
import type { Logger } from '../logger';
import type { RelayMetrics } from '../metrics';
import type { LeasedJob, Store } from '../store/types';

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
   * Asked for every delivery, before it is folded or takes a rate-limit
   * slot, whether the notification may go out now. An answer (a coded,
   * non-retryable error such as PB_DELIVERY_SILENCED) skips the delivery and
   * is recorded as the reason; undefined lets it through.
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

export type DeliveryOutcome = 'succeeded' | 'retry' | 'dead' | 'skipped';

export interface DispatcherEvents {
  paused: [instanceId: string, reason: string];
  /** Once per job, folded members of a digest included. */
  settled: [job: LeasedJob, outcome: DeliveryOutcome, error?: SerializedError];
  error: [err: unknown];
}

/**
 * One message to a target: a single job, or every member of a digest folded
 * from a rate-limited backlog. Its attempt settles each of `jobs`.
 */
export interface Delivery {
  jobs: readonly LeasedJob[];
  /** The newest job: its attempt number names the attempt. */
  lead: LeasedJob;
  notification: Notification;
  idempotencyKey: string;
}
