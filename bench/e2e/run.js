#!/usr/bin/env node
// bench/e2e: notifications delivered per second, end to end: signed Sentry
// webhooks posted to the relay, delivered by the webhook notifier to a local
// sink (bench/lib/sink-server.js, its own child process, answers 200 at once).
//
//   node bench/e2e/run.js                         (after `npm run build`)
//   BENCH_TOTAL=5000 BENCH_SETUPS=sqlite node bench/e2e/run.js
//
// For each setup: fresh relay process(es), BENCH_TOTAL distinct webhooks
// posted with BENCH_CONCURRENCY requests in flight (spread round-robin over
// the replicas), and the time from the first post until the sink has seen
// BENCH_TOTAL distinct `webhook-id`s. Delivered/s = BENCH_TOTAL / that time.
// The load generator (this process), the sink and the relay(s) share the
// machine's cores; PostgreSQL runs on the same machine.
//
// Options (environment, or --name=value):
//   BENCH_SETUPS        sqlite,postgres-1,postgres-2 (default all three)
//   BENCH_TOTAL         webhooks per SQLite setup (default 10000)
//   BENCH_PG_TOTAL      webhooks per PostgreSQL setup (default 3000)
//   BENCH_CONCURRENCY   requests in flight (default 32)
//   BENCH_INSTANCE_CONCURRENCY  the webhook instance's concurrency (default:
//                       the relay's default, dispatch.concurrency = 4)
//   BENCH_TIMEOUT       seconds to wait for the deliveries (default 120)
//   BENCH_PROFILE=1     run the relays with --cpu-prof (in a temporary directory,
//                       deleted afterwards) and put a summary in the results
//   BENCH_DATABASE_URL  PostgreSQL (default postgres://postgres@127.0.0.1:5432/test);
//                       each setup gets its own schema, dropped afterwards
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const c = require('../lib/common');
const { measure } = require('../lib/deliver');

const opts = {
  setups: String(c.option('setups', 'sqlite,postgres-1,postgres-2')).split(',').filter(Boolean),
  total: c.option('total', 10000),
  pgTotal: c.option('pg-total', 3000),
  concurrency: c.option('concurrency', 32),
  instanceConcurrency: c.option('instance-concurrency', 0),
  timeoutSeconds: c.option('timeout', 120),
  databaseUrl: c.option('database-url', c.DEFAULT_PG),
  profile: ['1', 'true', 'yes'].includes(String(c.option('profile', ''))),
};
const TARGET = 2000;

async function main() {
  const machine = c.machineInfo();
  const startedAt = new Date().toISOString();
  console.log(`bench/e2e: ${JSON.stringify(opts)}`);
  const sink = await c.startSink();
  const setups = {};
  try {
    for (const s of opts.setups) {
      const [store, n] = s.split('-');
      const replicas = Number(n || 1);
      const total = store === 'postgres' ? opts.pgTotal : opts.total;
      process.stdout.write(`${s}: posting ${total}`);
      const profileDir = opts.profile ? c.tempDir('plugboard-bench-e2e-prof-') : undefined;
      const r = await measure({
        profileDir,
        store,
        replicas,
        total,
        concurrency: opts.concurrency,
        timeoutSeconds: opts.timeoutSeconds,
        databaseUrl: opts.databaseUrl,
        sink,
        instances: [
          { name: 'sink', kind: 'ok', concurrency: opts.instanceConcurrency || undefined },
        ],
      });
      setups[s] = r;
      if (profileDir) {
        const { summariseProfile, formatProfileSummary } = require('../ingest/profile-summary');
        const file = path.join(profileDir, 'relay-0.cpuprofile');
        if (fs.existsSync(file)) {
          r.profile = summariseProfile(JSON.parse(fs.readFileSync(file, 'utf8')), c.ROOT);
          console.log(`\nCPU profile of relay-0 (${s}):\n${formatProfileSummary(r.profile, 25)}\n`);
        }
        fs.rmSync(profileDir, { recursive: true, force: true });
      }
      console.log(
        ` — ingest ${r.ingestPerSecond}/s, delivered ${r.deliveredDistinct} in ${r.seconds} s = ${r.deliveredPerSecond}/s` +
          `; ${r.sinkConnections} connections to the sink` +
          (r.complete ? '' : ' (INCOMPLETE)'),
      );
    }
  } finally {
    await c.stop(sink);
  }
  machine.loadAverageAtEnd = os.loadavg().map((l) => c.round(l, 2));
  const goals = [];
  if (setups.sqlite)
    goals.push({
      name: 'sqlite delivered/s',
      value: setups.sqlite.deliveredPerSecond,
      target: `>= ${TARGET}`,
      met: setups.sqlite.complete && setups.sqlite.deliveredPerSecond >= TARGET,
    });
  const results = {
    benchmark: 'e2e',
    startedAt,
    command: 'node bench/e2e/run.js',
    git: c.gitInfo(),
    machine,
    options: opts,
    setups,
    goals,
  };
  console.log(
    `\nMachine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; load ${machine.loadAverageAtStart.join(' ')} -> ${machine.loadAverageAtEnd.join(' ')}`,
  );
  for (const g of goals)
    console.log(`${g.met ? 'MET    ' : 'NOT MET'} ${g.name}: ${g.value} (target ${g.target})`);
  console.log(`Results: ${c.writeResults('e2e', results)}`);
}

main().catch((err) => {
  c.killChildren();
  console.error(`bench/e2e failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
