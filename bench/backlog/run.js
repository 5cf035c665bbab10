#!/usr/bin/env node
// bench/backlog: does the cost of taking and delivering a webhook grow with
// the number of jobs already waiting? (The seed's lesson: its queue read the
// whole backlog on every lease.)
//
//   node bench/backlog/run.js                     (after `npm run build`)
//   BENCH_STORES=sqlite BENCH_BACKLOG=200000 node bench/backlog/run.js
//
// Part 1, in this process, through the Store API of the built relay
// (packages/relay/dist/store/*.js). Two stores are open side by side: one
// empty, one holding BENCH_BACKLOG pending jobs of instance `cold/x` that is
// never leased. On each, the rate of cycles
//   ingest (one webhook, one job) -> lease -> settle (succeeded)
// is measured in batches of BENCH_BATCH (ingests concurrent, one lease of up
// to BENCH_BATCH jobs, settles concurrent), for
//   hot   a different instance `hot/y` (the backlog is someone else's), and
//   head  the backlog's own instance `cold/x`, leasing from the head (the
//         oldest jobs, so the backlog keeps its size).
// The measurements alternate empty/backlog BENCH_ROUNDS times; the figure is
// the ratio (with backlog) / (empty) of the median rates.
//
// Part 2 (SQLite only, BENCH_RSS_SECONDS > 0): the real relay process on a
// data directory holding BENCH_BACKLOG pending jobs for an instance whose
// target never answers (timeout 2 s); its RSS is sampled from /proc for
// BENCH_RSS_SECONDS.
//
// Options (environment, or --name=value):
//   BENCH_STORES        sqlite,postgres (default both)
//   BENCH_BACKLOG       pending jobs on SQLite (default 1000000)
//   BENCH_PG_BACKLOG    pending jobs on PostgreSQL (default: BENCH_BACKLOG)
//   BENCH_DURATION      seconds per measurement (default 5)
//   BENCH_ROUNDS        alternations (default 2)
//   BENCH_BATCH         jobs per lease (default 32)
//   BENCH_RSS_SECONDS   seconds of RSS sampling (default 20; 0 skips part 2)
//   BENCH_DATABASE_URL  PostgreSQL (default postgres://postgres@127.0.0.1:5432/test);
//                       each run uses fresh schemas and drops them afterwards
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const c = require('../lib/common');

const Database = require(require.resolve('better-sqlite3', { paths: [c.RELAY_DIR] }));
const { loadSample, compactSentryJson } = require('@plugboard/sdk');

const opts = {
  stores: String(c.option('stores', 'sqlite,postgres')).split(',').filter(Boolean),
  backlog: c.option('backlog', 1_000_000),
  pgBacklog: c.option('pg-backlog', 0) || c.option('backlog', 1_000_000),
  duration: c.option('duration', 5),
  rounds: c.option('rounds', 2),
  batch: c.option('batch', 32),
  rssSeconds: c.option('rss-seconds', 20),
  databaseUrl: c.option('database-url', c.DEFAULT_PG),
};

const SAMPLE = Buffer.from(compactSentryJson(loadSample('issue.created').body));
const DEDUP_WINDOW_MS = 3_600_000;
let seq = 0;

function request(instanceId) {
  const n = ++seq;
  const [route] = instanceId.split('/');
  return {
    webhook: {
      source: 'sentry',
      resource: 'issue',
      action: 'created',
      requestId: `bench-${n}`,
      dedupKey: `bench:${process.pid}:${n}`,
      body: SAMPLE,
      receivedAt: Date.now(),
    },
    jobs: [
      { routeName: route, instanceId, pluginSlug: 'webhook', maxAttempts: 3, project: 'bench' },
    ],
    dedupWindowMs: DEDUP_WINDOW_MS,
  };
}

/** ingest -> lease -> settle cycles per second for `seconds`. */
async function cycles(store, instanceId, seconds, batch) {
  const t0 = process.hrtime.bigint();
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let leaseMs = 0;
  let leases = 0;
  while (Date.now() < end) {
    await Promise.all(Array.from({ length: batch }, () => store.ingest(request(instanceId))));
    const l0 = process.hrtime.bigint();
    const jobs = await store.lease(instanceId, batch, 'bench-owner', 60_000);
    leaseMs += Number(process.hrtime.bigint() - l0) / 1e6;
    leases++;
    const now = Date.now();
    await Promise.all(
      jobs.map((job) =>
        store.settle(
          job,
          { attempt: job.attempts, startedAt: now, finishedAt: now, outcome: 'succeeded' },
          { state: 'succeeded' },
        ),
      ),
    );
    done += jobs.length;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    cycles: done,
    seconds: c.round(s, 2),
    perSecond: c.round(done / s, 0),
    leaseMsMean: c.round(leaseMs / leases, 3),
  };
}

// ------------------------------------------------------------ filling

/** SQLite: rows written straight into `webhooks`/`jobs` in big transactions. */
function fillSqlite(dataDir, n, instanceId) {
  const db = new Database(path.join(dataDir, 'plugboard.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const [route] = instanceId.split('/');
  const now = Date.now();
  const wh = db.prepare(
    "INSERT INTO webhooks (source, resource, action, request_id, dedup_key, status, received_at, body) VALUES ('sentry','issue','created',?,?,'accepted',?,?)",
  );
  const job = db.prepare(
    "INSERT INTO jobs (webhook_id, route_name, instance_id, plugin_slug, state, max_attempts, run_at, idempotency_key, created_at, updated_at, project) VALUES (?,?,?,'webhook','pending',3,?,?,?,?,'bench')",
  );
  // One webhook row per 1000 jobs: the lease joins webhooks for the body, but
  // 1,000,000 copies of an 869-byte body would only measure the disk.
  const chunk = 50_000;
  const t0 = Date.now();
  for (let start = 0; start < n; start += chunk) {
    db.transaction(() => {
      let whId = 0;
      for (let i = start; i < Math.min(n, start + chunk); i++) {
        if (i % 1000 === 0)
          whId = Number(wh.run(`cold-${i}`, `cold:${i}`, now, SAMPLE).lastInsertRowid);
        job.run(whId, route, instanceId, now - n + i, `cold-${i}`, now, now);
      }
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return (Date.now() - t0) / 1000;
}

async function fillPostgres(url, schema, n, instanceId) {
  const { Client } = require(require.resolve('pg', { paths: [c.RELAY_DIR] }));
  const cl = new Client({ connectionString: url });
  await cl.connect();
  const [route] = instanceId.split('/');
  const now = Date.now();
  const t0 = Date.now();
  try {
    const w = await cl.query(
      `INSERT INTO ${schema}.webhooks (source, resource, action, request_id, dedup_key, status, received_at, body)
       SELECT 'sentry','issue','created','cold-'||g,'cold:'||g,'accepted',$1,$2 FROM generate_series(0, $3) g RETURNING id`,
      [now, SAMPLE, Math.ceil(n / 1000) - 1],
    );
    const first = Math.min(...w.rows.map((r) => Number(r.id)));
    await cl.query(
      `INSERT INTO ${schema}.jobs (webhook_id, route_name, instance_id, plugin_slug, state, max_attempts, run_at, idempotency_key, created_at, updated_at, project)
       SELECT $1 + g / 1000, $2, $3, 'webhook', 'pending', 3, $4::bigint - $5::bigint + g, 'cold-'||g, $4, $4, 'bench' FROM generate_series(0, $5 - 1) g`,
      [first, route, instanceId, now, n],
    );
    await cl.query(`ANALYZE ${schema}.jobs`);
  } finally {
    await cl.end();
  }
  return (Date.now() - t0) / 1000;
}

// ------------------------------------------------------------ part 1

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function storePair(kind, cleanup) {
  if (kind === 'sqlite') {
    const { SqliteStore } = require(path.join(c.RELAY_DIR, 'dist', 'store', 'sqlite.js'));
    const tmp = c.tempDir('plugboard-bench-backlog-');
    cleanup.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const emptyDir = path.join(tmp, 'empty');
    const fullDir = path.join(tmp, 'full');
    new SqliteStore({ dataDir: fullDir }).close();
    await new Promise((r) => setTimeout(r, 200));
    process.stdout.write(`sqlite: filling ${opts.backlog} pending jobs`);
    const fillSeconds = fillSqlite(fullDir, opts.backlog, 'cold/x');
    console.log(` in ${c.round(fillSeconds, 1)} s`);
    return {
      empty: new SqliteStore({ dataDir: emptyDir }),
      full: new SqliteStore({ dataDir: fullDir }),
      backlog: opts.backlog,
      fillSeconds,
    };
  }
  const { PostgresStore } = require(path.join(c.RELAY_DIR, 'dist', 'store', 'postgres.js'));
  const se = c.uniqueSchema('bench_backlog_empty');
  const sf = c.uniqueSchema('bench_backlog_full');
  cleanup.push(
    () => c.dropSchema(opts.databaseUrl, se),
    () => c.dropSchema(opts.databaseUrl, sf),
  );
  const empty = new PostgresStore({ connectionString: opts.databaseUrl, schema: se });
  const full = new PostgresStore({ connectionString: opts.databaseUrl, schema: sf });
  await empty.countJobsByState(); // creates the schema
  await full.countJobsByState();
  process.stdout.write(`postgres: filling ${opts.pgBacklog} pending jobs`);
  const fillSeconds = await fillPostgres(opts.databaseUrl, sf, opts.pgBacklog, 'cold/x');
  console.log(` in ${c.round(fillSeconds, 1)} s`);
  return { empty, full, backlog: opts.pgBacklog, fillSeconds };
}

async function part1(kind) {
  const cleanup = [];
  const out = { store: kind };
  try {
    const { empty, full, backlog, fillSeconds } = await storePair(kind, cleanup);
    out.backlog = backlog;
    out.fillSeconds = c.round(fillSeconds, 1);
    const counts = await full.countJobsByState();
    out.pendingBefore = counts.pending;
    // Warm-up, discarded.
    await cycles(empty, 'hot/y', 1, opts.batch);
    await cycles(full, 'hot/y', 1, opts.batch);
    const runs = { hot: { empty: [], backlog: [] }, head: { empty: [], backlog: [] } };
    for (let r = 0; r < opts.rounds; r++) {
      for (const mode of ['hot', 'head']) {
        const inst = mode === 'hot' ? 'hot/y' : 'cold/x';
        const order = r % 2 === 0 ? ['empty', 'backlog'] : ['backlog', 'empty'];
        for (const which of order) {
          const res = await cycles(
            which === 'empty' ? empty : full,
            inst,
            opts.duration,
            opts.batch,
          );
          runs[mode][which].push(res);
          console.log(
            `  ${kind} round ${r + 1} ${mode.padEnd(4)} ${which.padEnd(7)} ${res.perSecond}/s (lease ${res.leaseMsMean} ms)`,
          );
        }
      }
    }
    out.runs = runs;
    out.ratios = {};
    for (const mode of ['hot', 'head']) {
      const e = median(runs[mode].empty.map((x) => x.perSecond));
      const b = median(runs[mode].backlog.map((x) => x.perSecond));
      out.ratios[mode] = { emptyPerSecond: e, backlogPerSecond: b, ratio: c.round(b / e, 2) };
    }
    out.pendingAfter = (await full.countJobsByState()).pending;
    await empty.close();
    await full.close();
  } finally {
    for (const f of cleanup.reverse()) await f();
  }
  return out;
}

// ------------------------------------------------------------ part 2

async function part2() {
  const tmp = c.tempDir('plugboard-bench-backlog-rss-');
  const out = { backlog: opts.backlog };
  let relay;
  const sink = await c.startSink();
  try {
    const dataDir = path.join(tmp, 'data');
    const { SqliteStore } = require(path.join(c.RELAY_DIR, 'dist', 'store', 'sqlite.js'));
    await new SqliteStore({ dataDir }).close();
    process.stdout.write(`relay RSS: filling ${opts.backlog} pending jobs for cold/x`);
    out.fillSeconds = c.round(fillSqlite(dataDir, opts.backlog, 'cold/x'), 1);
    console.log(` in ${out.fillSeconds} s`);
    const secret = 'bench-secret-0123456789abcdef';
    const config = path.join(tmp, 'plugboard.yaml');
    fs.writeFileSync(
      config,
      JSON.stringify({
        sentry: { clientSecret: secret },
        routes: [
          {
            name: 'cold',
            instances: [
              {
                name: 'x',
                plugin: 'webhook',
                timeoutMs: 2000,
                config: { urls: `${sink.url}/hang` },
              },
            ],
          },
        ],
      }),
    );
    const t0 = Date.now();
    relay = await c.startRelay({
      config,
      env: { PLUGBOARD_DATA_DIR: dataDir, PLUGBOARD_LOG_LEVEL: 'info' },
    });
    out.startSeconds = c.round((Date.now() - t0) / 1000, 2);
    const samples = [];
    const end = Date.now() + opts.rssSeconds * 1000;
    while (Date.now() < end) {
      samples.push({ t: c.round((Date.now() - t0) / 1000, 1), ...c.rssMiB(relay.child.pid) });
      await c.sleep(500);
    }
    const stats = await c.sinkStats(sink);
    out.samples = samples;
    out.rssMaxMiB = Math.max(...samples.map((s) => s.rss));
    out.rssLastMiB = samples[samples.length - 1].rss;
    out.peakHwmMiB = samples[samples.length - 1].hwm;
    out.deliveriesStartedAtHangingTarget = stats.hang.requests;
  } finally {
    if (relay) out.exit = await c.stop(relay);
    await c.stop(sink);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const db = null;
  void db;
  return out;
}

async function main() {
  const machine = c.machineInfo();
  const startedAt = new Date().toISOString();
  console.log(`bench/backlog: ${JSON.stringify(opts)}`);
  const stores = {};
  for (const kind of opts.stores) stores[kind] = await part1(kind);
  let rss = null;
  if (opts.rssSeconds > 0 && opts.stores.includes('sqlite')) rss = await part2();
  machine.loadAverageAtEnd = os.loadavg().map((l) => c.round(l, 2));
  const goals = [];
  if (stores.sqlite) {
    for (const mode of ['hot', 'head'])
      goals.push({
        name: `sqlite ${mode}: rate with ${stores.sqlite.backlog} pending / empty`,
        value: stores.sqlite.ratios[mode].ratio,
        target: '>= 0.85',
        met: stores.sqlite.ratios[mode].ratio >= 0.85,
      });
  }
  if (stores.postgres) {
    for (const mode of ['hot', 'head'])
      goals.push({
        name: `postgres ${mode}: rate with ${stores.postgres.backlog} pending / empty`,
        value: stores.postgres.ratios[mode].ratio,
        target: '>= 0.85',
        met: stores.postgres.ratios[mode].ratio >= 0.85,
      });
  }
  if (rss)
    goals.push({
      name: `relay RSS with ${rss.backlog} pending (MiB, max of samples)`,
      value: rss.rssMaxMiB,
      target: '<= 200',
      met: rss.rssMaxMiB <= 200,
    });
  const results = {
    benchmark: 'backlog',
    startedAt,
    command: 'node bench/backlog/run.js',
    git: c.gitInfo(),
    machine,
    options: opts,
    stores,
    rss,
    goals,
  };
  console.log('');
  console.log(
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; load ${machine.loadAverageAtStart.join(' ')} -> ${machine.loadAverageAtEnd.join(' ')}`,
  );
  for (const [kind, s] of Object.entries(stores)) {
    for (const mode of ['hot', 'head']) {
      const r = s.ratios[mode];
      console.log(
        `${kind} ${mode}: empty ${r.emptyPerSecond}/s, with ${s.backlog} pending ${r.backlogPerSecond}/s, ratio ${r.ratio}`,
      );
    }
  }
  if (rss)
    console.log(
      `relay RSS with ${rss.backlog} pending: max ${rss.rssMaxMiB} MiB over ${opts.rssSeconds} s (start-up ${rss.startSeconds} s)`,
    );
  for (const g of goals)
    console.log(`${g.met ? 'MET    ' : 'NOT MET'} ${g.name}: ${g.value} (target ${g.target})`);
  console.log(`\nResults: ${c.writeResults('backlog', results)}`);
}

main().catch((err) => {
  c.killChildren();
  console.error(`bench/backlog failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
