// One delivery measurement, shared by bench/e2e and bench/isolation: start
// relay process(es) on a config, post N signed distinct webhooks, and wait
// until the sink holds N distinct `webhook-id`s on its /ok path.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const c = require('./common');

const SECRET = 'bench-client-secret-0123456789abcdef';

/**
 * @param o.instances   [{ name, kind: 'ok'|'hang'|'slow', timeoutMs?, concurrency? }]
 * @param o.store       'sqlite' | 'postgres'
 * @param o.replicas    relay processes (postgres only for > 1)
 * @param o.total       webhooks to post
 * @param o.concurrency requests in flight
 * @param o.sink        a started sink (reset here)
 * @param o.profileDir  optional: run the relays with --cpu-prof into this directory
 */
async function measure(o) {
  const tmp = c.tempDir('plugboard-bench-deliver-');
  const schema = o.store === 'postgres' ? c.uniqueSchema('bench_deliver') : null;
  const relays = [];
  const out = {
    store: o.store,
    replicas: o.replicas,
    total: o.total,
    instances: o.instances.map((i) => i.name),
  };
  try {
    await c.sinkReset(o.sink);
    const config = {
      sentry: { clientSecret: SECRET },
      routes: [
        {
          name: 'bench',
          instances: o.instances.map((i) => ({
            name: i.name,
            plugin: 'webhook',
            ...(i.timeoutMs ? { timeoutMs: i.timeoutMs } : {}),
            ...(i.concurrency ? { concurrency: i.concurrency } : {}),
            config: { urls: `${o.sink.url}/${i.kind}/${i.name}` },
          })),
        },
      ],
    };
    if (schema) {
      config.databaseUrl = o.databaseUrl;
      config.store = { postgres: { schema } };
    }
    const file = path.join(tmp, 'plugboard.yaml');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    for (let r = 0; r < o.replicas; r++) {
      relays.push(
        await c.startRelay({
          config: file,
          name: `relay-${r}`,
          nodeArgs: o.profileDir
            ? [
                '--cpu-prof',
                `--cpu-prof-dir=${o.profileDir}`,
                `--cpu-prof-name=relay-${r}.cpuprofile`,
              ]
            : [],
          env: { PLUGBOARD_DATA_DIR: path.join(tmp, `data-${r}`), PLUGBOARD_LOG_LEVEL: 'info' },
        }),
      );
    }
    const cpu0 = relays.map((r) => cpuSeconds(r.child.pid));
    const bodies = c.bodyFactory(SECRET, 7_000_000_000 + Math.floor(Math.random() * 1e9));
    const t0 = Date.now();
    let firstAll = null;
    const post = c.postMany({
      ports: relays.map((r) => r.port),
      total: o.total,
      concurrency: o.concurrency,
      bodies,
    });
    // Poll the sink while posting and afterwards.
    let stats;
    let posted = null;
    void post.then((p) => {
      posted = p;
    });
    const deadline = t0 + o.timeoutSeconds * 1000;
    let polls = 0;
    for (;;) {
      stats = await c.sinkStats(o.sink);
      polls++;
      if (stats.ok.distinct >= o.total && posted) {
        firstAll = Date.now();
        break;
      }
      if (Date.now() > deadline) break;
      await c.sleep(20);
    }
    await post;
    const elapsed = ((firstAll ?? Date.now()) - t0) / 1000;
    out.postSeconds = c.round(posted.seconds, 2);
    out.postStatus = posted.status;
    out.postErrors = posted.errors;
    out.ingestPerSecond = c.round(o.total / posted.seconds, 0);
    out.deliveredDistinct = stats.ok.distinct;
    out.deliveredRequests = stats.ok.requests;
    out.complete = stats.ok.distinct >= o.total;
    out.seconds = c.round(elapsed, 2);
    // The sink's own first/last arrival, a check of the figure above.
    out.sinkSpanSeconds = stats.ok.first
      ? c.round((stats.ok.last - stats.ok.first) / 1000, 2)
      : null;
    out.deliveredPerSecond = c.round(stats.ok.distinct / elapsed, 0);
    out.hangRequests = stats.hang.requests;
    // Each poll of /stats opens a connection of its own (agent: false).
    out.sinkConnections = stats.connections - polls;
    out.relayCpuSeconds = relays.map((r, i) => c.round(cpuSeconds(r.child.pid) - cpu0[i], 2));
    out.relayPeakRssMiB = relays.map((r) => c.rssMiB(r.child.pid).hwm);
  } finally {
    for (const r of relays) {
      const e = await c.stop(r);
      if (r.log.lines.length)
        out.errorLogLines = (out.errorLogLines || []).concat(r.log.lines.slice(-3));
      out.exits = (out.exits || []).concat(e);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
    if (schema) await c.dropSchema(o.databaseUrl, schema);
  }
  return out;
}

function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

module.exports = { measure, SECRET };
