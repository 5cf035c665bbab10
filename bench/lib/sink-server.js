#!/usr/bin/env node
// A delivery target for the benchmarks, run as its own child process.
//   POST /ok/...    read the body, answer 200 at once
//   POST /hang/...  read the body, never answer (the socket stays open)
//   POST /slow/...  answer 200 after BENCH_SINK_SLOW_MS (default 1000)
//   GET  /stats     {"connections":n,"ok":{"requests":n,"distinct":n},"hang":{...},"slow":{...}}
//   POST /reset     forget everything counted
// Distinct deliveries are counted by the `webhook-id` header (Standard
// Webhooks), so a redelivery counts once.
'use strict';
const http = require('node:http');

const slowMs = Number(process.env.BENCH_SINK_SLOW_MS || 1000);
let stats;
let connections = 0;
const reset = () => {
  connections = 0;
  stats = {};
  for (const k of ['ok', 'hang', 'slow'])
    stats[k] = { requests: 0, ids: new Set(), first: 0, last: 0 };
};
reset();
const held = new Set();

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    const out = { connections };
    for (const [k, v] of Object.entries(stats)) {
      out[k] = { requests: v.requests, distinct: v.ids.size, first: v.first, last: v.last };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
    return;
  }
  if (req.method === 'POST' && req.url === '/reset') {
    reset();
    res.writeHead(204).end();
    return;
  }
  const kind = (req.url || '').split('/')[1];
  const s = stats[kind];
  req.on('data', () => undefined);
  req.on('end', () => {
    if (!s) {
      res.writeHead(404).end();
      return;
    }
    const now = Date.now();
    s.requests++;
    s.ids.add(String(req.headers['webhook-id'] || ''));
    if (!s.first) s.first = now;
    s.last = now;
    if (kind === 'hang') {
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    if (kind === 'slow') {
      setTimeout(() => res.writeHead(200).end('ok'), slowMs);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
});
server.keepAliveTimeout = 60_000;
// TCP connections accepted since the last reset (the stats client's own included).
server.on('connection', () => connections++);
const [host, port] = (process.env.BENCH_LISTEN || '127.0.0.1:0').split(':');
server.listen(Number(port), host, () => {
  process.stdout.write(JSON.stringify({ listening: server.address().port }) + '\n');
});
process.on('SIGTERM', () => process.exit(0));
