import request from 'supertest';
import { RecordingNotifier, signed, startRelay, waitFor } from '../helpers/relay';

// The whole path: webhooks through ingest (inhibition sources recorded), the
// dispatcher asking the gate, and the delivery log showing why a delivery
// was not sent.

const API_TOKEN = 'api-token-0123456789abcdef';

describe('noise control in a running relay', () => {
  it('records silenced and inhibited deliveries as skipped with their code, and delivers the rest', async () => {
    const recorder = new RecordingNotifier();
    const t = await startRelay(
      {
        api: { token: API_TOKEN },
        dispatch: { pollIntervalMs: 50 },
        inhibitRules: [
          {
            sourceMatchers: ['kind="metric_alert.critical"'],
            targetMatchers: ['resource="event_alert"'],
            equal: ['project'],
          },
        ],
        routes: [{ name: 'all', instances: [{ plugin: 'recorder' }] }],
      },
      { plugins: [recorder] },
    );
    const api = (path: string) =>
      request(t.relay.app).get(`/api${path}`).set('authorization', `Bearer ${API_TOKEN}`);
    const post = async (kind: string) => {
      const { body, headers } = signed(kind);
      const res = await request(t.relay.app).post('/hooks/sentry').set(headers).send(body);
      expect([res.status, res.body.status]).toEqual([202, 'accepted']);
    };
    try {
      const silence = await request(t.relay.app)
        .post('/api/silences')
        .set('authorization', `Bearer ${API_TOKEN}`)
        .send({
          matchers: ['kind="error.created"'],
          duration: '1h',
          createdBy: 'ann@example.com',
          comment: 'raw errors are noise during the migration',
        });
      expect(silence.status).toBe(201);

      await post('metric_alert.critical'); // the source, project front-end; delivered itself
      await post('event_alert.triggered'); // project front-end: inhibited
      await post('error.created'); // silenced
      await post('issue.created'); // nothing holds it

      await waitFor(async () => {
        const { body } = await api('/deliveries');
        return (
          body.deliveries.length === 4 &&
          body.deliveries.every((d: { state: string }) =>
            ['succeeded', 'skipped'].includes(d.state),
          )
        );
      }, 'four settled deliveries');

      expect(recorder.received.map((r) => r.n.kind).sort()).toEqual([
        'issue.created',
        'metric_alert.critical',
      ]);
      const skipped = (await api('/deliveries?state=skipped')).body.deliveries as Array<{
        id: string;
        lastError: { code: string; message: string; retryable: boolean };
      }>;
      expect(
        skipped.map((d) => [d.lastError.code, d.lastError.retryable, d.lastError.message]).sort(),
      ).toEqual([
        [
          'PB_DELIVERY_INHIBITED',
          false,
          expect.stringMatching(
            /^inhibited by metric_alert\.critical "Critical: Too many errors" \(alert 53, since .*\) under inhibitRules\[0\] \(equal: project="front-end"\)$/,
          ),
        ],
        [
          'PB_DELIVERY_SILENCED',
          false,
          `silenced by ${silence.body.silence.id} (raw errors are noise during the migration) until ${silence.body.silence.endsAt}`,
        ],
      ]);
      const silenced = await api('/deliveries?code=PB_DELIVERY_SILENCED');
      expect(silenced.body.deliveries).toHaveLength(1);
      const shown = await api(`/deliveries/${silenced.body.deliveries[0].id}`);
      expect(shown.body.attempts).toEqual([
        expect.objectContaining({
          outcome: 'skipped',
          error: expect.objectContaining({ code: 'PB_DELIVERY_SILENCED' }),
        }),
      ]);
      const metrics = await request(t.relay.app).get('/metrics');
      expect(metrics.text).toContain(
        'plugboard_deliveries_held_total{reason="silenced",route="all"} 1',
      );
      expect(metrics.text).toContain(
        'plugboard_deliveries_held_total{reason="inhibited",route="all"} 1',
      );
    } finally {
      await t.close();
    }
  });
});
