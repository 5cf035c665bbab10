import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSample } from '@plugboard/sdk';
import {
  CLIENT_SECRET,
  cleanup,
  postSentry,
  requireBuiltRelay,
  startRelay,
  tempDir,
  waitFor,
  writeConfig,
} from './helpers';

// Through the real relay process: an alert reaches an IM server as one signed
// message per opted-in recipient, and a DingTalk robot never gets a body over
// its 20,000-byte limit.

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  raw: string;
}

async function server(
  answer: (r: Received) => { status: number; body: string },
): Promise<{ url: string; got: Received[]; close(): void }> {
  const got: Received[] = [];
  const s: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        raw: Buffer.concat(chunks).toString('utf8'),
      };
      got.push(r);
      const a = answer(r);
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    got,
    close: () => s.close(),
  };
}

const IM_SECRET = 'im-client-secret-0123456789';
const DING_SECRET = 'SECdingtalk-signing-secret-0123456789';
const API_TOKEN = 'e2e-api-token-0123456789';

/** The IM server's check, written from the scheme, not from the notifier's code. */
function mwsValid(r: Received): boolean {
  const date = String(r.headers.date);
  const expected = createHmac('sha1', IM_SECRET)
    .update(`${r.method} ${r.path}\n${date}`)
    .digest('base64');
  return r.headers.authorization === `MWS sentry-relay:${expected}`;
}

/** DingTalk's check: sign = base64(HMAC-SHA256(key = secret, "timestamp\nsecret")). */
function dingValid(r: Received): boolean {
  const q = new URL(r.path, 'http://x').searchParams;
  const ts = q.get('timestamp') ?? '';
  const expected = createHmac('sha256', DING_SECRET)
    .update(`${ts}\n${DING_SECRET}`)
    .digest('base64');
  return q.get('sign') === expected && Math.abs(Date.now() - Number(ts)) < 3_600_000;
}

beforeAll(requireBuiltRelay);
afterAll(() => cleanup({ removeTemp: true }));

it('messages each opted-in recipient once, signed, and keeps DingTalk bodies under 20,000 bytes', async () => {
  const im = await server(() => ({ status: 200, body: '{"ok":true}' }));
  const ding = await server(() => ({ status: 200, body: '{"errcode":0,"errmsg":"ok"}' }));
  try {
    const cwd = tempDir();
    const config = writeConfig(cwd, {
      listen: '127.0.0.1:0',
      dataDir: `${cwd}/data`,
      sentry: { clientSecret: CLIENT_SECRET },
      api: { token: API_TOKEN },
      dispatch: { pollIntervalMs: 100 },
      routes: [
        {
          name: 'alerts',
          instances: [
            {
              plugin: 'im',
              config: {
                apiUrl: `${im.url}/open/api`,
                clientId: 'sentry-relay',
                clientSecret: IM_SECRET,
                sender: 'sentry-bot',
                recipientSource: 'static',
                recipients: 'ann@example.com\nbob.lee@example.com\ncarol@example.com',
              },
            },
            {
              plugin: 'dingtalk',
              config: {
                webhookUrl: `${ding.url}/robot/send?access_token=tok123`,
                secret: DING_SECRET,
              },
            },
          ],
        },
      ],
    });
    const relay = await startRelay({ config, cwd });
    // Carol turned IM off for this project through the relay's API.
    const put = await fetch(`${relay.url}/api/users/carol%40example.com/notifications`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ projects: { 'front-end': false } }),
    });
    expect(put.status).toBe(200);

    const sample = loadSample('event_alert.triggered');
    const body = JSON.parse(JSON.stringify(sample.body)) as {
      data: { event: { title: string; message: string } };
    };
    // An event whose text alone is far over DingTalk's limit.
    body.data.event.message = 'x'.repeat(30_000);
    expect((await postSentry(relay.url, sample.resource, body)).status).toBe(202);

    await waitFor(
      () => im.got.length >= 2 && ding.got.length >= 1,
      'the IM messages and the robot',
    );
    await new Promise((r) => setTimeout(r, 500));
    const to = im.got.map((r) => (JSON.parse(r.raw) as { to: string }).to).sort();
    expect(to).toEqual(['ann', 'bob.lee']);
    expect(im.got.every((r) => r.path === '/open/api/messages' && mwsValid(r))).toBe(true);
    const texts = im.got.map((r) => (JSON.parse(r.raw) as { text: string }).text);
    expect(texts.every((t) => t.includes('heck is not defined'))).toBe(true);

    expect(ding.got).toHaveLength(1);
    const robot = ding.got[0]!;
    expect(dingValid(robot)).toBe(true);
    expect(Buffer.byteLength(robot.raw)).toBeLessThan(20_000);
    expect(robot.raw).toContain('truncated');
  } finally {
    im.close();
    ding.close();
  }
}, 30_000);
