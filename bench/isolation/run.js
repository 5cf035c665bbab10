#!/usr/bin/env node
// bench/isolation: does a notifier instance whose target hangs slow down the
// others? Two webhook-notifier instances on one route, through the real relay
// process (SQLite) and a local sink (bench/lib/sink-server.js, own process):
//   healthy   posts to /ok, answered at once
//   hanging   posts to /hang, never answered; instance timeoutMs 2000
// Every webhook makes one job per instance. Measured: the time until the
// healthy target has every webhook (distinct `webhook-id`s), as deliveries/s,
//   alone          the route has the healthy instance only (the baseline)
//   with-hanging   the route has both
//   with-healthy   (BENCH_CONTROL=1) the second instance answers at once too:
//                  the same ingest work as with-hanging, nothing hangs
// alternated BENCH_ROUNDS times; figure: median(with-hanging)/median(alone).
//
//   node bench/isolation/run.js                    (after `npm run build`)
//
// Options (environment, or --name=value):
//   BENCH_TOTAL         webhooks per measurement (default 10000)
//   BENCH_CONCURRENCY   requests in flight (default 32)
//   BENCH_ROUNDS        alternations (default 2)
//   BENCH_HANG_TIMEOUT  the hanging instance's timeoutMs (default 2000)
//   BENCH_CONTROL=1     also measure with-healthy
//   BENCH_TIMEOUT       seconds to wait for the deliveries (default 120)
'use strict';

const os = require('node:os');
const c = require('../lib/common');
const { measure } = require('../lib/deliver');

const opts = {
  total: c.option('total', 10000),
  concurrency: c.option('concurrency', 32),
  rounds: c.option('rounds', 2),
  hangTimeoutMs: c.option('hang-timeout', 2000),
  control: ['1', 'true', 'yes'].includes(String(c.option('control', ''))),
  timeoutSeconds: c.option('timeout', 120),
};
const TARGET = 0.9;

const VARIANTS = {
  alone: [{ name: 'healthy', kind: 'ok' }],
  'with-hanging': [
    { name: 'healthy', kind: 'ok' },
    { name: 'hanging', kind: 'hang', timeoutMs: opts.hangTimeoutMs },
  ],
  'with-healthy': [
    { name: 'healthy', kind: 'ok' },
    { name: 'other', kind: 'slow' },
  ],
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const machine = c.machineInfo();
  const startedAt = new Date().toISOString();
  console.log(`bench/isolation: ${JSON.stringify(opts)}`);
  // /slow answers after 0 ms here: a second healthy target counted apart from /ok.
  const sink = await c.startSink({ BENCH_SINK_SLOW_MS: '0' });
  const names = ['alone', 'with-hanging', ...(opts.control ? ['with-healthy'] : [])];
  const runs = Object.fromEntries(names.map((n) => [n, []]));
  try {
    for (let r = 0; r < opts.rounds; r++) {
      const order = r % 2 === 0 ? names : [...names].reverse();
      for (const v of order) {
        process.stdout.write(`round ${r + 1} ${v}: `);
        const res = await measure({
          store: 'sqlite',
          replicas: 1,
          total: opts.total,
          concurrency: opts.concurrency,
          timeoutSeconds: opts.timeoutSeconds,
          sink,
          instances: VARIANTS[v],
        });
        runs[v].push(res);
        console.log(
          `healthy got ${res.deliveredDistinct}/${opts.total} in ${res.seconds} s = ${res.deliveredPerSecond}/s; ` +
            `requests to the hanging target ${res.hangRequests}` +
            (res.complete ? '' : ' (INCOMPLETE)'),
        );
      }
    }
  } finally {
    await c.stop(sink);
  }
  machine.loadAverageAtEnd = os.loadavg().map((l) => c.round(l, 2));
  const med = Object.fromEntries(
    names.map((n) => [n, median(runs[n].map((x) => x.deliveredPerSecond))]),
  );
  const ratio = c.round(med['with-hanging'] / med.alone, 2);
  const goals = [
    {
      name: 'healthy delivery rate with a hanging instance / alone',
      value: ratio,
      target: `>= ${TARGET}`,
      met: ratio >= TARGET && runs['with-hanging'].every((x) => x.complete),
    },
  ];
  if (opts.control) {
    const cr = c.round(med['with-hanging'] / med['with-healthy'], 2);
    goals.push({
      name: 'healthy rate with a hanging instance / with a second healthy one',
      value: cr,
      target: `>= ${TARGET}`,
      met: cr >= TARGET,
    });
  }
  const results = {
    benchmark: 'isolation',
    startedAt,
    command: 'node bench/isolation/run.js',
    git: c.gitInfo(),
    machine,
    options: opts,
    medians: med,
    runs,
    goals,
  };
  console.log(
    `\nMachine: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; load ${machine.loadAverageAtStart.join(' ')} -> ${machine.loadAverageAtEnd.join(' ')}`,
  );
  console.log(`medians (deliveries/s to the healthy target): ${JSON.stringify(med)}`);
  for (const g of goals)
    console.log(`${g.met ? 'MET    ' : 'NOT MET'} ${g.name}: ${g.value} (target ${g.target})`);
  console.log(`Results: ${c.writeResults('isolation', results)}`);
}

main().catch((err) => {
  c.killChildren();
  console.error(`bench/isolation failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
