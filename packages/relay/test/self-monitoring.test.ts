import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import request from 'supertest';
import { RecordingNotifier, SECRET, signed, startRelay, waitFor } from './helpers/relay';

/** A stand-in for Sentry's ingestion endpoint that keeps the envelopes it gets. */
function fakeSentry(): Promise<{ server: Server; url: string; envelopes: string[] }> {
  const envelopes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let buf = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') buf = gunzipSync(buf);
      if (req.url?.includes('/envelope/')) envelopes.push(buf.toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({ server, url: `http://publickey@127.0.0.1:${port}/42`, envelopes });
    }),
  );
}

describe('self-monitoring with SENTRY_DSN', () => {
  it('reports a plugin bug to Sentry, with no secret in the envelope', async () => {
    const sentry = await fakeSentry();
    const plugin = new RecordingNotifier('buggy');
    plugin.behaviour = async () => {
      // A bug that quotes a secret in its message, as careless code does.
      throw new TypeError(`cannot sign with ${SECRET}: undefined is not a function`);
    };
    const t = await startRelay(
      {
        dispatch: { maxAttempts: 1 },
        routes: [{ name: 'all', instances: [{ plugin: 'buggy' }] }],
      },
      { plugins: [plugin], env: { SENTRY_DSN: sentry.url } },
    );
    try {
      const { body, headers } = signed('issue.created');
      expect(
        (await request(t.relay.app).post('/hooks/sentry').set(headers).send(body)).status,
      ).toBe(202);
      await waitFor(() => sentry.envelopes.length > 0, 'an envelope at the fake Sentry', 10_000);
      const envelope = sentry.envelopes.join('\n');
      expect(envelope).toContain('TypeError');
      expect(envelope).toContain('[REDACTED]');
      expect(envelope).not.toContain(SECRET);
      expect(envelope).toContain('"plugin":"buggy"');
    } finally {
      await t.close();
      sentry.server.close();
    }
  });
});
