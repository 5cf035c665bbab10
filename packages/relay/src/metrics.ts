import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from './store/types';

const KNOWN_RESOURCES = new Set([
  'issue',
  'event_alert',
  'error',
  'metric_alert',
  'comment',
  'installation',
  'seer',
  'legacy_webhook',
  'unknown',
]);

/** Prometheus metrics of one relay; a private registry so tests can run several. */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly webhooks = new Counter({
    name: 'plugboard_webhooks_received_total',
    help: 'Webhooks received, by Sentry resource and outcome (accepted, duplicate, ignored, unsupported, unauthorized, invalid, too_large, unavailable).',
    labelNames: ['resource', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly attempts = new Counter({
    name: 'plugboard_delivery_attempts_total',
    help: 'Delivery attempts, by plugin, instance and outcome (succeeded, retry, dead, skipped).',
    labelNames: ['plugin', 'instance', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'plugboard_delivery_duration_seconds',
    help: 'Time one delivery attempt took, by plugin and outcome.',
    labelNames: ['plugin', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly paused = new Gauge({
    name: 'plugboard_instance_paused',
    help: 'Whether a plugin instance is paused after failing too many times in a row (1) or delivering (0).',
    labelNames: ['instance'] as const,
    registers: [this.registry],
  });
  readonly circuitOpen = new Gauge({
    name: 'plugboard_circuit_open',
    help: "Whether an instance's circuit breaker is open (1): sends to its target are held back.",
    labelNames: ['instance'] as const,
    registers: [this.registry],
  });
  readonly groupMessages = new Counter({
    name: 'plugboard_group_messages_total',
    help: 'Messages made from notification groups, by route and reason (first, update, repeat, state).',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'plugboard_rate_limited_total',
    help: "Times an instance held deliveries back to stay under its target's rate limit.",
    labelNames: ['instance'] as const,
    registers: [this.registry],
  });
  readonly folded = new Counter({
    name: 'plugboard_deliveries_folded_total',
    help: 'Deliveries folded into a digest because their rate-limited target had a backlog.',
    labelNames: ['instance'] as const,
    registers: [this.registry],
  });
  readonly ingestLatency = new Histogram({
    name: 'plugboard_ingest_duration_seconds',
    help: 'Time from request to acknowledgement of an accepted webhook.',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  private readonly webhookChildren = new Map<string, { inc(): void }>();

  /**
   * Count one webhook. The resource comes from a request header, so only
   * known values become label values: anything else is `other`, and a
   * stranger cannot grow the metrics without bound.
   */
  countWebhook(resource: string, outcome: string): void {
    const r = KNOWN_RESOURCES.has(resource) ? resource : 'other';
    const key = `${r}|${outcome}`;
    let child = this.webhookChildren.get(key);
    if (!child) {
      child = this.webhooks.labels(r, outcome);
      this.webhookChildren.set(key, child);
    }
    child.inc();
  }

  constructor(store: Store) {
    collectDefaultMetrics({ register: this.registry, prefix: 'plugboard_' });
    new Gauge({
      name: 'plugboard_jobs',
      help: 'Delivery jobs by state.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        try {
          const counts = await store.countJobsByState();
          for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        } catch {
          // A scrape must not fail because the store is down; /readyz says so.
        }
      },
    });
  }
}
