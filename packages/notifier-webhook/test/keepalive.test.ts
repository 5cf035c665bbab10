import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import nock from 'nock';
import { httpAgent, post } from '../src/http';

// A target closes an idle kept-alive connection (Node's servers after 5 s)
// just as the next delivery goes out on it: that request never reached the
// target, and must not fail the delivery. Simulated without timing: the
// server drops the connection when a second request arrives on it.

let server: Server;
let url: string;
const seen: Array<{ socket: number; dropped: boolean }> = [];

/** `dropReused`: requests on an already used connection; `dropAll`: every request. */
let mode: 'dropReused' | 'dropAll' = 'dropReused';

beforeAll(async () => {
  // nock (installed for every file by jest.setup.ts) puts its own sockets
  // under each request, so no connection is ever kept alive: take it off,
  // this file talks to its own server on 127.0.0.1 only.
  nock.restore();
  const sockets = new Map<Socket, { id: number; requests: number }>();
  server = createServer((req, res) => {
    let info = sockets.get(req.socket);
    if (!info) {
      info = { id: sockets.size + 1, requests: 0 };
      sockets.set(req.socket, info);
    }
    info.requests++;
    const drop = mode === 'dropAll' || info.requests > 1;
    seen.push({ socket: info.id, dropped: drop });
    req.resume();
    req.on('end', () => {
      if (drop) req.socket.destroy();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen.length = 0;
});

const send = (): Promise<number> =>
  post({
    url,
    body: '{"ok":true}',
    headers: { 'content-type': 'application/json' },
    timeoutMs: 5000,
    signal: new AbortController().signal,
    sensitive: [],
  });

it('sends a request again on a new connection when the kept-alive one was closed under it', async () => {
  mode = 'dropReused';
  // Two connections in the pool; the target drops any request that arrives on a used one.
  expect(await Promise.all([send(), send()])).toEqual([200, 200]);
  // The answer read to its end, the connection waits in the pool for the next delivery.
  const free = (): number =>
    Object.values(httpAgent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0);
  for (let i = 0; i < 500 && free() < 2; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(free()).toBe(2);
  // A pooled connection is reused, dropped by the target, and the request goes out once more.
  expect(await send()).toBe(200);
  // One pooled connection is tried and found closed; the request goes out on its own new one.
  expect(seen.map((s) => s.dropped)).toEqual([false, false, true, false]);
  expect(new Set(seen.map((s) => s.socket)).size).toBe(3);
});

it('does not send again when a fresh connection fails: that is the target failing', async () => {
  mode = 'dropAll';
  server.closeAllConnections();
  await expect(send()).rejects.toMatchObject({
    code: 'PB_DELIVERY_FAILED',
    retryable: true,
    message: expect.stringContaining('ECONNRESET'),
  });
  expect(seen).toHaveLength(1);
});
