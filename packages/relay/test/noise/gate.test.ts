import { buildNotification } from '@plugboard/sdk/testing';
import { configSchema } from '../../src/config/schema';
import { RelayMetrics } from '../../src/metrics';
import { createGate, createNoiseControl } from '../../src/noise/gate';
import { SqliteStore } from '../../src/store/sqlite';
import type { LeasedJob } from '../../src/store/types';

// Wednesday 23:00 UTC: inside the `nights` interval below.
const NIGHT = Date.parse('2025-01-15T23:00:00.000Z');
const DAY = Date.parse('2025-01-15T12:00:00.000Z');

const config = configSchema.parse({
  timeIntervals: [
    { name: 'nights', timeIntervals: [{ times: [{ startTime: '22:00', endTime: '07:00' }] }] },
  ],
  inhibitRules: [
    {
      sourceMatchers: ['kind="metric_alert.critical"'],
      targetMatchers: ['resource="issue"'],
      equal: ['project'],
    },
  ],
  routes: [
    {
      name: 'chat',
      muteTimeIntervals: ['nights'],
      instances: [{ plugin: 'webhook', name: 'hook' }],
    },
  ],
});

const issue = buildNotification('issue.created'); // project front-end
const critical = buildNotification('metric_alert.critical'); // projects [front-end]
const input = {
  instanceId: 'chat/hook',
  routeName: 'chat',
  notification: issue,
  job: {} as LeasedJob,
};

describe('the delivery gate', () => {
  let now: number;
  let store: SqliteStore;
  beforeEach(() => {
    now = NIGHT;
    store = new SqliteStore({ dataDir: ':memory:', now: () => now });
  });
  afterEach(() => store.close());

  it('checks silences, then inhibition, then mute intervals, and records the first that holds', async () => {
    const metrics = new RelayMetrics(store);
    const noise = createNoiseControl({ store, config, now: () => now, metrics });
    expect((await noise.gate(input))?.code).toBe('PB_DELIVERY_MUTED');
    expect((await noise.gate(input))?.message).toBe(
      'route chat is muted by time interval "nights" (muteTimeIntervals)',
    );
    await noise.observe(critical);
    expect((await noise.gate(input))?.code).toBe('PB_DELIVERY_INHIBITED');
    await noise.silences.create({
      matchers: ['project="front-end"'],
      duration: '1h',
      createdBy: 'ann',
      comment: 'known',
    });
    expect((await noise.gate(input))?.code).toBe('PB_DELIVERY_SILENCED');

    const text = await metrics.registry.getSingleMetricAsString('plugboard_deliveries_held_total');
    expect(text).toContain('plugboard_deliveries_held_total{reason="muted",route="chat"} 2');
    expect(text).toContain('plugboard_deliveries_held_total{reason="inhibited",route="chat"} 1');
    expect(text).toContain('plugboard_deliveries_held_total{reason="silenced",route="chat"} 1');
  });

  it('lets a delivery through when nothing holds it', async () => {
    now = DAY;
    const gate = createGate(store, config, () => now);
    expect(await gate(input)).toBeUndefined();
    now = NIGHT;
    expect((await gate(input))?.code).toBe('PB_DELIVERY_MUTED');
  });
});
