#!/usr/bin/env node
// bench/storm: an error storm through the real relay. BENCH_TOTAL signed
// `error.created` webhooks for ONE Sentry issue (each its own event id) are
// posted to a relay whose route groups by issue; two targets hang off it, a
// plain webhook and a "robot" limited to 20 messages a minute. Measured:
//   - webhooks accepted per second while grouping, against a bare node:http
//     server (bench/ingest/bare-server.js) taking the same requests in the
//     same run (the ratio is what to compare across machines);
//   - messages each target received (the point: a handful, not one per event);
//   - accuracy: the events the messages account for (a digest's `count`,
//     1 for a plain message) against the webhooks the relay accepted.
//
//   node bench/storm/run.js                (after `npm run build`)
//   BENCH_TOTAL=20000 node bench/storm/run.js
//   node bench/storm/run.js --limited      (no grouping: a rate-limited target folds)
//
// With --limited (BENCH_LIMITED=1) the route does not group: its one target,
// a webhook limited to BENCH_LIMIT messages per BENCH_PER (default 2 per 5s),
// gets every event as a delivery of its own, and the relay folds what waits
// for a slot into one digest per slot. Measured: messages for the storm
// (default 5,000 webhooks) and that their counts add up exactly.
//
// Options (environment, or --name=value):
//   BENCH_TOTAL         webhooks in the storm (default 200000)
//   BENCH_RATE          webhooks per second, 0 = as fast as the relay takes them
//                       (default 0; 333 spreads 200,000 over ten minutes)
//   BENCH_CONCURRENCY   requests in flight (default 32)
//   BENCH_WAIT / BENCH_INTERVAL  the route's group wait and interval
//                       (default 5s and 20s: Alertmanager's 30s and 5m scaled
//                       down so the run ends minutes, not hours, after the storm)
//   BENCH_BASELINE      webhooks posted to the bare server (default 50000)
//   BENCH_STORE         sqlite (default) or postgres (BENCH_DATABASE_URL, default
//                       postgres://postgres@127.0.0.1:5432/test; a schema of its
//                       own, dropped afterwards)
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const autocannon = require('autocannon');
const c = require('../lib/common');

const SECRET = 'bench-client-secret-0123456789abcdef';
const limited = process.argv.includes('--limited') || c.option('limited', '') === '1';
const opts = {
  mode: limited ? 'limited' : 'grouped',
  total: c.option('total', limited ? 5000 : 200000),
  limit: c.option('limit', 2),
  per: String(c.option('per', '5s')),
  rate: c.option('rate', 0),
  concurrency: c.option('concurrency', 32),
  wait: String(c.option('wait', '5s')),
  interval: String(c.option('interval', '20s')),
  baseline: c.option('baseline', 50000),
  store: String(c.option('store', 'sqlite')),
  databaseUrl: String(c.option('database-url', c.DEFAULT_PG)),
};

/** The targets: record each message's digest count. */
function startTargets() {
  const got = { hook: [], robot: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const name = (req.url || '').split('/')[1];
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const digest = body.data && body.data.digest;
        if (got[name]) {
          got[name].push({
            at: Date.now(),
            id: String(req.headers['webhook-id'] || ''),
            reason: digest ? digest.reason : 'single',
            count: digest ? digest.count : 1,
            summary: digest ? digest.summary : body.data.title,
          });
        }
      } catch {
        /* counted as nothing */
      }
      res.writeHead(200).end('ok');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, got, port: server.address().port }));
  });
}

/**
 * `total` requests with autocannon (the load generator of bench/ingest; the
 * plain http client of bench/lib tops out near 6,000/s on its own), each a
 * fresh signed body; `rate` > 0 paces them.
 */
async function blast(port, total, bodies, rate) {
  const status = {};
  const t0 = Date.now();
  const r = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: opts.concurrency,
    amount: total,
    ...(rate > 0 ? { overallRate: rate } : {}),
    requests: [
      {
        setupRequest(req) {
          const b = bodies.next();
          const { 'content-length': _len, ...headers } = b.headers;
          req.method = 'POST';
          req.path = '/hooks/sentry';
          req.body = b.body;
          Object.assign(req.headers, headers);
          return req;
        },
        onResponse(code) {
          status[code] = (status[code] || 0) + 1;
        },
      },
    ],
  });
  return {
    status,
    errors: r.errors + r.timeouts,
    seconds: (Date.now() - t0) / 1000,
    p99: r.latency.p99,
  };
}

/** bench/ingest/bare-server.js as a child process; resolves with its port. */
async function startBare() {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'ingest', 'bare-server.js')], {
    env: { BENCH_LISTEN: '127.0.0.1:0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(String(d)));
    child.once('exit', (code) => reject(new Error(`bare server exited (${code})`)));
  });
  const listen = JSON.parse(line.split('\n')[0]).listen;
  return { child, port: Number(listen.slice(listen.lastIndexOf(':') + 1)) };
}

async function main() {
  const machine = c.machineInfo();
  console.log(`bench/storm: ${JSON.stringify(opts)}`);
  const targets = await startTargets();
  const tmp = c.tempDir('plugboard-bench-storm-');
  const results = {
    bench: 'storm',
    startedAt: new Date().toISOString(),
    machine,
    git: c.gitInfo(),
    opts,
  };
  let relay;
  let schema;
  try {
    // Baseline first, on a quiet machine, with the same load generator.
    const bare = await startBare();
    const base = await blast(
      bare.port,
      opts.baseline,
      c.bodyFactory(SECRET, 1, 'error.created'),
      0,
    );
    bare.child.kill('SIGTERM');
    results.baseline = {
      total: opts.baseline,
      seconds: base.seconds,
      perSecond: Math.round(opts.baseline / base.seconds),
    };
    console.log(`bare node:http: ${results.baseline.perSecond}/s`);

    const grouped = {
      name: 'storm',
      group: { wait: opts.wait, interval: opts.interval },
      instances: [
        {
          name: 'hook',
          plugin: 'webhook',
          config: { urls: `http://127.0.0.1:${targets.port}/hook` },
        },
        {
          name: 'robot',
          plugin: 'webhook',
          rateLimit: { limit: 20, per: '1m' },
          config: { urls: `http://127.0.0.1:${targets.port}/robot` },
        },
      ],
    };
    const ungrouped = {
      name: 'storm',
      instances: [
        {
          name: 'robot',
          plugin: 'webhook',
          rateLimit: { limit: opts.limit, per: opts.per },
          config: { urls: `http://127.0.0.1:${targets.port}/robot` },
        },
      ],
    };
    const config = {
      sentry: { clientSecret: SECRET },
      routes: [limited ? ungrouped : grouped],
    };
    if (opts.store === 'postgres') {
      schema = c.uniqueSchema('bench_storm');
      config.databaseUrl = opts.databaseUrl;
      config.store = { postgres: { schema } };
    }
    const file = path.join(tmp, 'plugboard.yaml');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    relay = await c.startRelay({
      config: file,
      env: { PLUGBOARD_DATA_DIR: path.join(tmp, 'data'), PLUGBOARD_LOG_LEVEL: 'info' },
    });
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const storm = await blast(
      relay.port,
      opts.total,
      c.bodyFactory(SECRET, 1_000_000, 'error.created'),
      opts.rate,
    );
    const accepted = storm.status[202] || 0;
    results.storm = {
      total: opts.total,
      accepted,
      other: Object.fromEntries(Object.entries(storm.status).filter(([k]) => k !== '202')),
      errors: storm.errors,
      seconds: storm.seconds,
      perSecond: Math.round(accepted / storm.seconds),
      latencyP99Ms: storm.p99,
      loadGeneratorCpuSeconds: (process.cpuUsage(cpu0).user + process.cpuUsage(cpu0).system) / 1e6,
    };
    results.ratio = Math.round((results.storm.perSecond / results.baseline.perSecond) * 100) / 100;
    console.log(
      `relay (${opts.mode}): ${results.storm.perSecond}/s accepted = ${results.ratio} of bare`,
    );

    // Every accepted event must be accounted for by the hook's messages: wait
    // for the last flush (one interval after the storm, plus delivery).
    const deadline = Date.now() + 10 * 60_000;
    const sum = (list) => list.reduce((n, m) => n + m.count, 0);
    while (!limited && sum(targets.got.hook) < accepted && Date.now() < deadline)
      await c.sleep(500);
    // The robot may trail (20 a minute), but it has only a handful to send.
    while (sum(targets.got.robot) < accepted && Date.now() < deadline) await c.sleep(500);
    const summary = (list) => ({
      messages: list.length,
      eventsAccountedFor: sum(list),
      reasons: list.map((m) => `${m.reason}:${m.count}`),
      secondsAfterStart: list.map((m) => Math.round((m.at - t0) / 100) / 10),
      lastSummary: list.length ? list[list.length - 1].summary : null,
    });
    // A moment more: anything beyond the count would be a duplicate.
    await c.sleep(2000);
    results.targets = limited
      ? { robot: summary(targets.got.robot) }
      : { hook: summary(targets.got.hook), robot: summary(targets.got.robot) };
    results.drainSeconds =
      targets.got.robot.length > 0
        ? (targets.got.robot[targets.got.robot.length - 1].at - t0) / 1000
        : null;
    results.accurate = Object.values(results.targets).every(
      (t) => t.eventsAccountedFor === accepted,
    );
    results.relayRssMiB = c.rssMiB(relay.child.pid);
    results.relayErrors = relay.log.lines.slice(0, 5);
    results.relayLogTail = relay.log.tail.slice(-12);
    console.log(JSON.stringify({ targets: results.targets, accurate: results.accurate }, null, 2));
  } finally {
    if (relay) await c.stop(relay);
    if (schema) await c.dropSchema(opts.databaseUrl, schema);
    targets.server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`results: ${c.writeResults(limited ? 'storm-limited' : 'storm', results)}`);
}

main().catch((err) => {
  console.error(err);
  c.killChildren();
  process.exit(1);
});
