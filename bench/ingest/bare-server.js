#!/usr/bin/env node
// The baseline for bench/ingest: a bare node:http server that reads the whole
// request body and answers 202 with a small JSON body, nothing else. Started
// by run.js as a child process; prints one JSON line with its address once
// listening, like the relay does.
'use strict';

const http = require('node:http');

const [host, portText] = (process.env.BENCH_LISTEN || '127.0.0.1:0').split(':');
const ANSWER = Buffer.from('{"status":"accepted"}');

const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(202, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': ANSWER.length,
    });
    res.end(ANSWER);
  });
});
// Same keep-alive as the relay, so connections are reused the same way.
server.keepAliveTimeout = 65_000;

server.listen(Number(portText), host, () => {
  const a = server.address();
  process.stdout.write(
    JSON.stringify({ msg: 'bare server started', listen: `${a.address}:${a.port}` }) + '\n',
  );
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
