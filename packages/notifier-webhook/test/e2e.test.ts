import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookNotifier } from '@plugboard/notifier-webhook';
import { buildNotification, runNotifier } from '@plugboard/sdk/testing';

// One delivery end to end against a plain node:http server on 127.0.0.1,
// verified the way the README tells receivers to verify it.

const SECRET = `whsec_${Buffer.from('a 32-byte key for the e2e test!!').toString('base64')}`;

/** The README's receiver-side check, kept in sync by hand. */
function verify(headers: IncomingHttpHeaders, rawBody: string, secret: string): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') {
    return false;
  }
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 5 * 60) return false; // replay window
  const key = secret.startsWith('whsec_')
    ? Buffer.from(secret.slice(6), 'base64')
    : Buffer.from(secret, 'utf8');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, sig] = entry.split(',');
    if (version !== 'v1' || !sig) return false;
    const given = Buffer.from(sig, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

let server: Server;
const received: Array<{ ok: boolean; id: unknown; body: unknown }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const ok = verify(req.headers, raw, SECRET);
      received.push({ ok, id: req.headers['webhook-id'], body: JSON.parse(raw) });
      res.writeHead(ok ? 204 : 401).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

it('delivers one signed notification that a receiver verifies', async () => {
  const { port } = server.address() as AddressInfo;
  const notification = buildNotification('event_alert.triggered');
  const result = await runNotifier(new WebhookNotifier(), notification, {
    config: { urls: `http://127.0.0.1:${port}/sentry`, secret: SECRET },
    idempotencyKey: 'e2e-1',
  });
  expect(result.error).toBeUndefined();
  expect(result.notified).toBe(true);
  expect(received).toEqual([
    {
      ok: true,
      id: 'e2e-1',
      body: expect.objectContaining({ id: 'e2e-1', type: 'event_alert.triggered' }),
    },
  ]);

  // Signed with another key, the same check refuses it (and 401 is not retried).
  const wrong = await runNotifier(new WebhookNotifier(), notification, {
    config: { urls: `http://127.0.0.1:${port}/sentry`, secret: 'whsec_b3RoZXIga2V5' },
  });
  expect(wrong.error).toMatchObject({ code: 'PB_DELIVERY_UNRECOVERABLE', status: 401 });
});
