import { createHmac } from 'node:crypto';
import nock from 'nock';
import { WebhookNotifier } from '@plugboard/notifier-webhook';
import { buildNotification, recordRequests, runNotifier } from '@plugboard/sdk/testing';

// The same notifier against a nock'd target, the way a notifier author tests
// against a public API they cannot reach from CI.

const SECRET = `whsec_${Buffer.from('nock-test-signing-key-0123456789').toString('base64')}`;

afterEach(() => nock.cleanAll());

it('sends one signed request that nock intercepts and the kit records', async () => {
  const recorder = recordRequests('https://hooks.example.test', {
    nock,
    reply: { status: 204 },
  });
  try {
    const result = await runNotifier(new WebhookNotifier(), buildNotification('issue.created'), {
      config: { urls: 'https://hooks.example.test/sentry?token=abc', secret: SECRET },
      idempotencyKey: 'pbd_nock_1',
    });
    expect(result.error).toBeUndefined();
    expect(result.notified).toBe(true);
    expect(recorder.requests).toHaveLength(1);
    const req = recorder.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/sentry?token=abc');
    expect(req.headers['webhook-id']).toBe('pbd_nock_1');
    const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
    const signed = `${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.${req.rawBody}`;
    expect(req.headers['webhook-signature']).toBe(
      `v1,${createHmac('sha256', key).update(signed).digest('base64')}`,
    );
    expect(req.body).toMatchObject({
      id: 'pbd_nock_1',
      type: 'issue.created',
      data: { title: 'ReferenceError: blooopy is not defined' },
    });
  } finally {
    recorder.stop();
  }
});

it('reports a 410 from the nock’d target as do-not-retry', async () => {
  nock('https://hooks.example.test').post('/gone').reply(410, 'endpoint removed');
  const result = await runNotifier(new WebhookNotifier(), buildNotification('issue.created'), {
    config: { urls: 'https://hooks.example.test/gone' },
  });
  expect(result.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE', retryable: false });
  expect(result.error?.message).toContain('https://hooks.example.test/gone');
});

it('cannot reach an address nock does not intercept: the network is closed to tests', async () => {
  const result = await runNotifier(new WebhookNotifier(), buildNotification('issue.created'), {
    config: { urls: 'https://not-intercepted.example.test/x' },
  });
  expect(result.error).toMatchObject({ code: 'PB_DELIVERY_FAILED', retryable: true });
});
