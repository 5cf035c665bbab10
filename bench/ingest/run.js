#!/usr/bin/env node
// bench/ingest: how fast does the relay take signed Sentry webhooks, compared
// with a bare node:http server measured in the same run on the same machine?
//
//   npm run bench:ingest                      (builds first)
//   BENCH_DURATION=5 node bench/ingest/run.js (after a build)
//
// Targets, each a separate child process (the load generator, autocannon,
// runs in this process and never shares an event loop with a server):
//   bare            bench/ingest/bare-server.js: reads the body, answers 202
//   relay-dispatch  the relay, one route to the built-in `log` notifier
//                   (stream: log, PLUGBOARD_LOG_LEVEL=warn): every webhook is
//                   stored, de-duplicated, gets a delivery job, is delivered
//   relay-ingest    the relay, one route that does not take issue.created:
//                   every webhook is stored (status "ignored"), no job
//
// For each target: a warm-up at full rate (discarded), phase 1 (throughput:
// full rate, N connections) and phase 2 (latency at a fixed overall rate).
// Every request carries a distinct issue id, so the relay stores it instead
// of answering "duplicate". After a relay run the SQLite file is opened and
// every webhook id the relay acknowledged with 202 is looked up.
//
// Options (environment, or --name=value arguments with the same name in
// lower case without the BENCH_ prefix, e.g. --duration=5):
//   BENCH_DURATION        phase 1 seconds (default 10)
//   BENCH_RATE_DURATION   phase 2 seconds (default: BENCH_DURATION)
//   BENCH_CONNECTIONS     connections (default 64)
//   BENCH_WARMUP          warm-up seconds before phase 1 (default 2)
//   BENCH_RATE            phase 2 overall rate, requests/s (default 1000)
//   BENCH_PACED_DURATION  seconds of the paced reference measurement after
//                         phase 2 (default 5; 0 skips it, see pacedLoad())
//   BENCH_TARGETS         comma-separated subset of bare,relay-dispatch,relay-ingest
//   BENCH_DRAIN_TIMEOUT   seconds to wait for the delivery backlog between
//                         phases (relay-dispatch; default 60)
//   BENCH_PROFILE=1       run the relay children with --cpu-prof; profiles are
//                         written to bench/results/profile-<timestamp>/ and
//                         summarised at the end (bench/ingest/profile-summary.js)
//   BENCH_KEEP_DATA=1     keep the relay data directories (temporary dir)
//   BENCH_STORE           sqlite (default) or postgres: the relay targets use
//                         PostgreSQL (`databaseUrl`), each target in its own
//                         fresh schema, dropped after the target
//   BENCH_DATABASE_URL    PostgreSQL for BENCH_STORE=postgres (default
//                         postgres://postgres@127.0.0.1:5432/test)
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const http = require('node:http');
const { spawn, execFileSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { pathToFileURL } = require('node:url');
const autocannon = require('autocannon');
const { gitInfo, machineInfo } = require('../lib/common');
const { loadSample, compactSentryJson, signSentryBody } = require('@plugboard/sdk');
const { summariseProfile, formatProfileSummary } = require('./profile-summary');

const ROOT = path.join(__dirname, '..', '..');
const RELAY_BIN = path.join(ROOT, 'packages', 'relay', 'bin', 'plugboard.js');
const BARE_SERVER = path.join(__dirname, 'bare-server.js');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
// better-sqlite3 is the relay's dependency; resolve it the way the relay does.
const Database = require(
  require.resolve('better-sqlite3', { paths: [path.join(ROOT, 'packages', 'relay')] }),
);

const ALL_TARGETS = ['bare', 'relay-dispatch', 'relay-ingest'];
const LABELS = {
  bare: 'bare node:http',
  'relay-dispatch': 'relay: ingest + dispatch',
  'relay-ingest': 'relay: ingest only',
};
/** The relay figure the targets are judged on. */
const HEADLINE = 'relay-dispatch';
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 25;

// ---------------------------------------------------------------- options

function readOptions(argv, env) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') args.help = true;
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) args[a.slice(2, eq)] = a.slice(eq + 1);
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) args[a.slice(2)] = argv[++i];
      else args[a.slice(2)] = 'true';
    }
  }
  const get = (name, fallback) => {
    const v = args[name] ?? env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
    return v === undefined || v === '' ? fallback : v;
  };
  const num = (name, fallback, min) => {
    const v = Number(get(name, fallback));
    if (!Number.isFinite(v) || v < min) throw new Error(`${name} must be a number >= ${min}`);
    return v;
  };
  const duration = num('duration', 10, 1);
  const targets = String(get('targets', ALL_TARGETS.join(',')))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of targets) {
    if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}; known: ${ALL_TARGETS}`);
  }
  const flag = (name) => ['1', 'true', 'yes'].includes(String(get(name, '')).toLowerCase());
  return {
    help: Boolean(args.help),
    duration,
    rateDuration: num('rate-duration', duration, 1),
    connections: Math.floor(num('connections', 64, 1)),
    warmup: num('warmup', 2, 0),
    rate: Math.floor(num('rate', 1000, 1)),
    pacedDuration: num('paced-duration', 5, 0),
    drainTimeout: num('drain-timeout', 60, 0),
    targets,
    profile: flag('profile'),
    keepData: flag('keep-data'),
    store: (() => {
      const s = String(get('store', 'sqlite'));
      if (!['sqlite', 'postgres'].includes(s)) throw new Error('store must be sqlite or postgres');
      return s;
    })(),
    databaseUrl: String(get('database-url', 'postgres://postgres@127.0.0.1:5432/test')),
  };
}

// ---------------------------------------------------------------- machine

function clockTicks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}
const CLK_TCK = clockTicks();

function loadAverage() {
  return os.loadavg().map((l) => Math.round(l * 100) / 100);
}

/** CPU seconds (user + system) used so far by a child process; null off Linux. */
function processCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Peak resident memory of a process in MiB; null off Linux. */
function peakRssMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- bodies

/**
 * Signed issue.created bodies, each with its own `data.issue.id` (the relay's
 * de-duplication key for this kind). The compact JSON is built once around a
 * placeholder; a body is then a concatenation, byte for byte what
 * compactSentryJson() gives for the same id (checked below), so the load
 * generator spends its time on HMAC and I/O rather than re-serialising.
 */
function bodyFactory(secret) {
  const sample = loadSample('issue.created');
  const PLACEHOLDER = 'PLUGBOARD_BENCH_ID';
  const withId = (id) => {
    const body = loadSample('issue.created').body; // a fresh copy each call
    body.data.issue.id = id;
    return compactSentryJson(body);
  };
  const template = withId(PLACEHOLDER);
  const parts = template.split(PLACEHOLDER);
  if (parts.length !== 2) throw new Error('the issue id is not unique in the sample body');
  const [head, tail] = parts;
  if (head + '4242' + tail !== withId('4242')) throw new Error('body template mismatch');
  // Issue ids are numeric strings in Sentry; start high so they look real.
  let next = 5_000_000_000;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const requestPrefix = randomBytes(8).toString('hex');
  return {
    resource: sample.resource,
    bytes: Buffer.byteLength(withId(String(next))),
    /** autocannon setupRequest: a fresh id, body and signature per request. */
    setupRequest(req) {
      const id = next++;
      const body = Buffer.from(head + id + tail, 'latin1');
      req.method = 'POST';
      req.path = '/hooks/sentry';
      req.body = body;
      req.headers['content-type'] = 'application/json';
      req.headers['sentry-hook-resource'] = 'issue';
      req.headers['sentry-hook-timestamp'] = timestamp;
      req.headers['request-id'] = `${requestPrefix}${id}`;
      req.headers['sentry-hook-signature'] = signSentryBody(body, secret);
      return req;
    },
  };
}

// ---------------------------------------------------------------- children

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function httpGet(port, pathname) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(1000, () => req.destroy());
  });
}

const children = new Set();

/**
 * Start a server child on a free port of 127.0.0.1 and wait until it answers.
 * The relay logs at warn, so its "started" line (info) is not printed: the
 * port is chosen here and readiness is polled on /readyz.
 */
async function startChild({ name, args, env, readyPath }) {
  const port = await freePort();
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...env, PLUGBOARD_LISTEN: `127.0.0.1:${port}`, BENCH_LISTEN: `127.0.0.1:${port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const log = { lines: 0, tail: [] };
  const keep = (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      log.lines++;
      log.tail.push(line.length > 2000 ? line.slice(0, 2000) + '…' : line);
      if (log.tail.length > 20) log.tail.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (dead) {
      throw new Error(`${name} exited during start-up:\n  ${log.tail.join('\n  ')}`);
    }
    const code = await httpGet(port, readyPath);
    if (code >= 200 && code < 300) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not become ready in 30 s:\n  ${log.tail.join('\n  ')}`);
    }
    await sleep(100);
  }
  return { name, child, port, log, exited };
}

async function stopChild(c, timeoutMs = 30_000) {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return c.exited;
  c.child.kill('SIGTERM');
  const timer = setTimeout(() => c.child.kill('SIGKILL'), timeoutMs);
  const result = await c.exited;
  clearTimeout(timer);
  return result;
}

function killChildren() {
  for (const child of children) child.kill('SIGKILL');
}

// ---------------------------------------------------------------- load

function newTally() {
  return { status: {}, answers: {}, ackIds: [] };
}
let tally = newTally();

const STATUS_RE = /"status":"([a-z_]+)"/;
const ID_RE = /"id":"([^"]+)"/;

/** autocannon onResponse: count answers; keep the id of every stored webhook. */
function onResponse(status, body) {
  tally.status[status] = (tally.status[status] || 0) + 1;
  const s = STATUS_RE.exec(body);
  const key = `${status} ${s ? s[1] : '?'}`;
  tally.answers[key] = (tally.answers[key] || 0) + 1;
  if (status === 202) {
    const id = ID_RE.exec(body);
    if (id) tally.ackIds.push(id[1]);
  }
}

const round = (n, d = 1) =>
  n === null || n === undefined ? null : Math.round(n * 10 ** d) / 10 ** d;

/** One autocannon run against a child; returns its figures and the tally. */
async function load(target, bodies, { duration, connections, overallRate }) {
  tally = newTally();
  const cpu0 = processCpuSeconds(target.child.pid);
  const self0 = process.cpuUsage();
  const opts = {
    url: `http://127.0.0.1:${target.port}`,
    connections,
    pipelining: 1,
    duration,
    requests: [{ setupRequest: bodies.setupRequest, onResponse }],
  };
  if (overallRate) opts.overallRate = overallRate;
  const r = await autocannon(opts);
  const cpu1 = processCpuSeconds(target.child.pid);
  const self = process.cpuUsage(self0);
  const seconds = r.duration;
  const serverCpu = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
  const loadCpu = (self.user + self.system) / 1e6;
  const statusCodes = {};
  for (const [code, v] of Object.entries(r.statusCodeStats || {})) statusCodes[code] = v.count;
  const accepted = tally.answers['202 accepted'] || 0;
  return {
    figures: {
      seconds,
      responses: r.requests.total,
      rps: round(r.requests.total / seconds, 0),
      rpsPerSecondMean: round(r.requests.average, 0),
      latencyMs: {
        p50: r.latency.p50,
        p90: r.latency.p90,
        p97_5: r.latency.p97_5,
        p99: r.latency.p99,
        mean: round(r.latency.average, 2),
        max: r.latency.max,
      },
      statusCodes,
      answers: { ...tally.answers },
      accepted,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      cpu: {
        serverSeconds: round(serverCpu, 2),
        serverPercentOfOneCore: serverCpu === null ? null : round((serverCpu / seconds) * 100, 0),
        serverMicrosecondsPerRequest:
          serverCpu === null || r.requests.total === 0
            ? null
            : round((serverCpu / r.requests.total) * 1e6, 0),
        loadGeneratorSeconds: round(loadCpu, 2),
        loadGeneratorPercentOfOneCore: round((loadCpu / seconds) * 100, 0),
      },
    },
    ackIds: tally.ackIds,
  };
}

/**
 * Phase 2 reference: an open-loop client that sends at evenly spaced instants
 * (rate per second, over at most `connections` keep-alive sockets) and times
 * each answer from its scheduled instant, so queueing anywhere counts.
 * autocannon's overallRate is different: each connection sends its share of
 * the second back to back as soon as the second starts, then idles, so its
 * "1000/s" is a burst at full speed followed by silence.
 */
function pacedLoad(target, bodies, { duration, connections, rate }) {
  tally = newTally();
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const total = Math.max(1, Math.round(rate * duration));
  const latencies = new Float64Array(total).fill(NaN);
  const cpu0 = processCpuSeconds(target.child.pid);
  const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
  const start = nowMs() + 5;
  let sent = 0;
  let finished = 0;
  let errors = 0;
  let maxSendLagMs = 0;
  return new Promise((resolve) => {
    let watchdog;
    const finish = () => {
      clearTimeout(watchdog);
      agent.destroy();
      const cpu1 = processCpuSeconds(target.child.pid);
      const ok = Array.from(latencies.filter((l) => !Number.isNaN(l))).sort((a, b) => a - b);
      const q = (p) =>
        ok.length ? round(ok[Math.min(ok.length - 1, Math.floor(p * ok.length))], 1) : null;
      const seconds = (nowMs() - start) / 1000;
      resolve({
        figures: {
          seconds: round(seconds, 2),
          sent,
          responses: ok.length,
          rps: round(ok.length / seconds, 0),
          latencyMs: {
            p50: q(0.5),
            p90: q(0.9),
            p97_5: q(0.975),
            p99: q(0.99),
            max: ok.length ? round(ok[ok.length - 1], 1) : null,
          },
          statusCodes: { ...tally.status },
          answers: { ...tally.answers },
          non2xx: Object.entries(tally.status)
            .filter(([code]) => code < 200 || code >= 300)
            .reduce((n, [, v]) => n + v, 0),
          errors,
          unanswered: total - finished,
          maxSendLagMs: round(maxSendLagMs, 1),
          cpu: {
            serverSeconds: cpu0 === null || cpu1 === null ? null : round(cpu1 - cpu0, 2),
            serverPercentOfOneCore:
              cpu0 === null || cpu1 === null ? null : round(((cpu1 - cpu0) / seconds) * 100, 0),
          },
        },
        ackIds: tally.ackIds,
      });
    };
    watchdog = setTimeout(finish, (duration + 30) * 1000);
    const send = (i, scheduled) => {
      const r = bodies.setupRequest({ headers: {} });
      const req = http.request(
        {
          host: '127.0.0.1',
          port: target.port,
          method: r.method,
          path: r.path,
          headers: { ...r.headers, 'content-length': r.body.length },
          agent,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => {
            body += c;
          });
          res.on('end', () => {
            latencies[i] = nowMs() - scheduled;
            onResponse(res.statusCode, body);
            if (++finished === total) finish();
          });
        },
      );
      req.on('error', () => {
        errors++;
        if (++finished === total) finish();
      });
      req.end(r.body);
    };
    const tick = () => {
      const now = nowMs();
      while (sent < total && start + (sent * 1000) / rate <= now) {
        const scheduled = start + (sent * 1000) / rate;
        maxSendLagMs = Math.max(maxSendLagMs, now - scheduled);
        send(sent++, scheduled);
      }
      if (sent < total) setTimeout(tick, 1);
    };
    setTimeout(tick, 5);
  });
}

// ---------------------------------------------------------------- relay store

function dbFile(dataDir) {
  return path.join(dataDir, 'plugboard.db');
}

/**
 * Where a relay target keeps its data: `{ dataDir }` for SQLite, or
 * `{ databaseUrl, schema }` for PostgreSQL (BENCH_STORE=postgres).
 */
async function pgQuery(where, sql, params) {
  const { Client } = require(
    require.resolve('pg', { paths: [path.join(ROOT, 'packages', 'relay')] }),
  );
  const client = new Client({ connectionString: where.databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql.replace(/\$S\./g, `${where.schema}.`), params)).rows;
  } finally {
    await client.end();
  }
}

async function jobCounts(where) {
  if (where.schema) {
    const out = { pending: 0, running: 0 };
    for (const row of await pgQuery(
      where,
      "SELECT state, count(*)::int AS n FROM $S.jobs WHERE state IN ('pending', 'running') GROUP BY state",
    )) {
      out[row.state] = row.n;
    }
    return out;
  }
  const dataDir = where.dataDir;
  const db = new Database(dbFile(dataDir), { readonly: true, fileMustExist: true });
  try {
    const out = { pending: 0, running: 0 };
    for (const row of db
      .prepare(
        "SELECT state, count(*) AS n FROM jobs WHERE state IN ('pending', 'running') GROUP BY state",
      )
      .all()) {
      out[row.state] = row.n;
    }
    return out;
  } finally {
    db.close();
  }
}

/** Wait until no delivery job is pending or running; returns the time taken. */
async function drain(dataDir, timeoutS) {
  const start = Date.now();
  const before = await jobCounts(dataDir);
  let now = before;
  while (now.pending + now.running > 0 && Date.now() - start < timeoutS * 1000) {
    await sleep(100);
    now = await jobCounts(dataDir);
  }
  return {
    backlogBefore: before.pending + before.running,
    backlogAfter: now.pending + now.running,
    seconds: round((Date.now() - start) / 1000, 1),
  };
}

/** After the relay exited: is every acknowledged webhook in the table? */
async function verifyStorePostgres(where, ackIds) {
  const byStatus = {};
  let rows = 0;
  for (const r of await pgQuery(
    where,
    'SELECT status, count(*)::int AS n FROM $S.webhooks GROUP BY status',
  )) {
    byStatus[r.status] = r.n;
    rows += r.n;
  }
  const jobs = {};
  for (const r of await pgQuery(
    where,
    'SELECT state, count(*)::int AS n FROM $S.jobs GROUP BY state',
  ))
    jobs[r.state] = r.n;
  const found = await pgQuery(
    where,
    'SELECT count(*)::int AS n FROM $S.webhooks WHERE id = ANY($1::bigint[])',
    [ackIds.map(Number)],
  );
  const missing = ackIds.length - found[0].n;
  return {
    acknowledged: ackIds.length,
    rows,
    rowsByStatus: byStatus,
    acknowledgedMissing: missing,
    storedNotAcknowledged: rows - (ackIds.length - missing),
    jobs,
    ok: missing === 0,
  };
}

async function verifyStore(where, ackIds) {
  if (where.schema) return verifyStorePostgres(where, ackIds);
  const dataDir = where.dataDir;
  const db = new Database(dbFile(dataDir), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT count(*) AS n FROM webhooks').get().n;
    const byStatus = {};
    for (const r of db
      .prepare('SELECT status, count(*) AS n FROM webhooks GROUP BY status')
      .all()) {
      byStatus[r.status] = r.n;
    }
    const jobs = {};
    for (const r of db.prepare('SELECT state, count(*) AS n FROM jobs GROUP BY state').all()) {
      jobs[r.state] = r.n;
    }
    const has = db.prepare('SELECT 1 FROM webhooks WHERE id = ?').pluck();
    let missing = 0;
    for (const id of ackIds) if (!has.get(Number(id))) missing++;
    return {
      acknowledged: ackIds.length,
      rows,
      rowsByStatus: byStatus,
      acknowledgedMissing: missing,
      // Requests the relay stored but whose 202 autocannon never read: in
      // flight when a run stopped (at most one per connection per run).
      storedNotAcknowledged: rows - (ackIds.length - missing),
      jobs,
      ok: missing === 0,
    };
  } finally {
    db.close();
  }
}

function relayConfig(target, schema) {
  const route =
    target === 'relay-dispatch'
      ? ['  - name: bench', '    instances:']
      : [
          '  - name: bench-not-issues',
          '    match:',
          '      resources: [metric_alert]',
          '    instances:',
        ];
  return [
    '# Written by bench/ingest/run.js; listen, dataDir, the secret and the log',
    '# level come from PLUGBOARD_* variables.',
    'routes:',
    ...route,
    '      - plugin: log',
    '        config:',
    '          prefix: BENCH',
    '          stream: log',
    ...(schema ? ['store:', '  postgres:', `    schema: ${schema}`] : []),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- one target

async function runTarget(name, opts, ctx) {
  const secret = randomBytes(24).toString('hex');
  const bodies = bodyFactory(secret);
  const env = { ...process.env, NODE_ENV: 'production' };
  delete env.PLUGBOARD_CONFIG;
  let start;
  let tmp;
  let schema;
  if (name === 'bare') {
    start = { name, args: [BARE_SERVER], env, readyPath: '/' };
  } else {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `plugboard-bench-${name}-`));
    const config = path.join(tmp, 'plugboard.yaml');
    if (opts.store === 'postgres') {
      schema = `bench_ingest_${name.replace(/-/g, '_')}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
    }
    fs.writeFileSync(config, relayConfig(name, schema));
    const nodeArgs = [];
    if (opts.profile) {
      nodeArgs.push(
        '--cpu-prof',
        `--cpu-prof-dir=${ctx.profileDir}`,
        `--cpu-prof-name=${name}.cpuprofile`,
      );
    }
    start = {
      name,
      args: [...nodeArgs, RELAY_BIN, 'serve', '--config', config],
      env: {
        ...env,
        PLUGBOARD_DATA_DIR: path.join(tmp, 'data'),
        PLUGBOARD_LOG_LEVEL: 'warn',
        PLUGBOARD_SENTRY_CLIENT_SECRET: secret,
        ...(schema ? { PLUGBOARD_DATABASE_URL: opts.databaseUrl } : {}),
      },
      readyPath: '/readyz',
    };
  }
  const dataDir = schema
    ? { databaseUrl: opts.databaseUrl, schema }
    : { dataDir: start.env.PLUGBOARD_DATA_DIR };
  const out = { label: LABELS[name] };
  const acked = [];
  const target = await startChild(start);
  try {
    process.stdout.write(`${LABELS[name]}: warm-up ${opts.warmup} s`);
    if (opts.warmup > 0) {
      const w = await load(target, bodies, {
        duration: opts.warmup,
        connections: opts.connections,
      });
      for (const id of w.ackIds) acked.push(id);
      out.warmup = { responses: w.figures.responses, rps: w.figures.rps, non2xx: w.figures.non2xx };
    }
    if (name === 'relay-dispatch') out.drainAfterWarmup = await drain(dataDir, opts.drainTimeout);

    process.stdout.write(`, throughput ${opts.duration} s`);
    const p1 = await load(target, bodies, {
      duration: opts.duration,
      connections: opts.connections,
    });
    for (const id of p1.ackIds) acked.push(id);
    out.throughput = p1.figures;
    if (name === 'relay-dispatch') {
      // Deliveries run behind ingest; let them catch up so phase 2 measures
      // ingest with an idle dispatcher, and record how long that took.
      process.stdout.write(', draining');
      out.drainAfterThroughput = await drain(dataDir, opts.drainTimeout);
    }

    process.stdout.write(`, ${opts.rate}/s for ${opts.rateDuration} s`);
    const p2 = await load(target, bodies, {
      duration: opts.rateDuration,
      connections: opts.connections,
      overallRate: opts.rate,
    });
    for (const id of p2.ackIds) acked.push(id);
    out.fixedRate = p2.figures;
    if (name === 'relay-dispatch')
      out.drainAfterFixedRate = await drain(dataDir, opts.drainTimeout);
    if (opts.pacedDuration > 0) {
      process.stdout.write(`, paced ${opts.rate}/s for ${opts.pacedDuration} s`);
      const p3 = await pacedLoad(target, bodies, {
        duration: opts.pacedDuration,
        connections: opts.connections,
        rate: opts.rate,
      });
      for (const id of p3.ackIds) acked.push(id);
      out.paced = p3.figures;
      if (name === 'relay-dispatch') out.drainAfterPaced = await drain(dataDir, opts.drainTimeout);
    }
    out.peakRssMiB = peakRssMiB(target.child.pid);
  } finally {
    const exit = await stopChild(target);
    out.exit = exit;
    out.logLines = target.log.lines;
    if (target.log.lines > 0)
      out.logTail = target.log.tail.slice(-5).map((l) => scrubPaths(l, tmp));
    process.stdout.write(' — done\n');
  }
  if (name !== 'bare') {
    out.store = await verifyStore(dataDir, acked);
    if (schema) {
      out.store.backend = 'postgres';
      if (!opts.keepData) await pgQuery(dataDir, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
    if (opts.keepData) {
      out.store.keptDataDir = true;
      console.log(`  ${LABELS[name]}: data kept in ${tmp}`);
    } else fs.rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

/** Results and profiles name files relative to the repository, never by machine path. */
function scrubPaths(text, tmp) {
  let out = text
    .split(ROOT + path.sep)
    .join('')
    .split(ROOT)
    .join('.');
  if (tmp) out = out.split(tmp).join('<tmp>');
  return out.split(os.tmpdir()).join('<tmp>');
}

/** Rewrite a .cpuprofile's script URLs relative to the repository. */
function scrubProfile(file) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const rootUrl = pathToFileURL(ROOT).href + '/';
  for (const node of profile.nodes) {
    const f = node.callFrame;
    if (f.url && f.url.startsWith(rootUrl)) f.url = f.url.slice(rootUrl.length);
    else if (f.url) f.url = scrubPaths(f.url);
  }
  fs.writeFileSync(file, JSON.stringify(profile));
  return profile;
}

// ---------------------------------------------------------------- report

function pad(s, n, right = false) {
  const t = s === null || s === undefined ? '-' : String(s);
  return right ? t.padEnd(n) : t.padStart(n);
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => pad(c, widths[i], i === 0)).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function summaryText(results) {
  const m = results.machine;
  const o = results.options;
  const t = results.targets;
  const out = [];
  out.push('');
  out.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}`,
  );
  out.push(
    `Load average (1/5/15 min) at start: ${m.loadAverageAtStart.join(' ')}, ` +
      `at end: ${m.loadAverageAtEnd.join(' ')}`,
  );
  out.push('');
  const names = Object.keys(t);
  const bare = t.bare && t.bare.throughput;
  out.push(
    `Phase 1 - throughput: ${o.connections} connections, ${o.duration} s after a ${o.warmup} s warm-up`,
  );
  out.push(
    table(
      [
        'target',
        'req/s',
        'p50 ms',
        'p97.5 ms',
        'p99 ms',
        'non-2xx',
        'errors',
        'vs bare',
        'srv CPU%',
        'gen CPU%',
      ],
      names.map((n) => {
        const f = t[n].throughput;
        return [
          t[n].label,
          f.rps,
          f.latencyMs.p50,
          f.latencyMs.p97_5,
          f.latencyMs.p99,
          f.non2xx,
          f.errors + f.timeouts,
          bare ? round(f.rps / bare.rps, 2) : '-',
          f.cpu.serverPercentOfOneCore,
          f.cpu.loadGeneratorPercentOfOneCore,
        ];
      }),
    ),
  );
  out.push('');
  out.push(
    `Phase 2 - fixed rate: overallRate ${o.rate}/s, ${o.connections} connections, ${o.rateDuration} s`,
  );
  out.push(
    table(
      ['target', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'srv CPU%'],
      names.map((n) => {
        const f = t[n].fixedRate;
        return [
          t[n].label,
          f.rps,
          f.latencyMs.p50,
          f.latencyMs.p90,
          f.latencyMs.p99,
          f.latencyMs.max,
          f.non2xx,
          f.errors + f.timeouts,
          f.cpu.serverPercentOfOneCore,
        ];
      }),
    ),
  );
  const paced = names.filter((n) => t[n].paced);
  if (paced.length > 0) {
    out.push('');
    out.push(
      `Phase 2 reference - paced open loop: ${o.rate}/s evenly spaced, up to ${o.connections} ` +
        `sockets, ${o.pacedDuration} s, latency from the scheduled send time`,
    );
    out.push(
      table(
        [
          'target',
          'req/s',
          'p50 ms',
          'p90 ms',
          'p99 ms',
          'max ms',
          'non-2xx',
          'errors',
          'srv CPU%',
        ],
        paced.map((n) => {
          const f = t[n].paced;
          return [
            t[n].label,
            f.rps,
            f.latencyMs.p50,
            f.latencyMs.p90,
            f.latencyMs.p99,
            f.latencyMs.max,
            f.non2xx,
            f.errors + f.unanswered,
            f.cpu.serverPercentOfOneCore,
          ];
        }),
      ),
    );
  }
  out.push('');
  for (const n of names) {
    const s = t[n].store;
    if (!s) continue;
    out.push(
      `${t[n].label}: acknowledged (202) ${s.acknowledged}, rows in webhooks ${s.rows} ` +
        `(${Object.entries(s.rowsByStatus)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}), acknowledged but missing ${s.acknowledgedMissing}, ` +
        `stored but unacknowledged ${s.storedNotAcknowledged} -> ${s.ok ? 'durable' : 'NOT DURABLE'}`,
    );
    const answers = { ...t[n].throughput.answers };
    const other = Object.entries(answers).filter(
      ([k]) => k !== '202 accepted' && k !== '202 ignored',
    );
    if (other.length > 0) {
      out.push(
        `  unexpected answers in phase 1: ${other.map(([k, v]) => `${k}: ${v}`).join(', ')}`,
      );
    }
    if (t[n].drainAfterThroughput) {
      const d = t[n].drainAfterThroughput;
      out.push(
        `  delivery backlog after phase 1: ${d.backlogBefore} jobs, drained in ${d.seconds} s` +
          (d.backlogAfter > 0 ? ` (${d.backlogAfter} still queued at the timeout)` : ''),
      );
    }
  }
  out.push('');
  for (const g of results.goals) {
    out.push(`${g.met ? 'MET    ' : 'NOT MET'} ${g.name}: ${g.value} (target ${g.target})`);
  }
  return out.join('\n');
}

function goals(targets) {
  const out = [];
  const bare = targets.bare;
  for (const n of ['relay-dispatch', 'relay-ingest']) {
    const r = targets[n];
    if (!r) continue;
    const headline = n === HEADLINE ? ' [headline]' : '';
    if (bare) {
      const ratio = round(r.throughput.rps / bare.throughput.rps, 2);
      out.push({
        name: `throughput ratio ${LABELS[n]} / bare${headline}`,
        value: ratio,
        target: `>= ${TARGET_RATIO}`,
        met: ratio >= TARGET_RATIO,
      });
    }
    const p99 = r.fixedRate.latencyMs.p99;
    out.push({
      name: `p99 at ${r.fixedRate.rps} req/s, ${LABELS[n]}${headline}`,
      value: `${p99} ms`,
      target: `<= ${TARGET_P99_MS} ms`,
      met: p99 <= TARGET_P99_MS,
    });
    if (r.paced) {
      out.push({
        name: `(reference) paced p99 at ${r.paced.rps} req/s, ${LABELS[n]}`,
        value: `${r.paced.latencyMs.p99} ms`,
        target: `<= ${TARGET_P99_MS} ms`,
        met: r.paced.latencyMs.p99 !== null && r.paced.latencyMs.p99 <= TARGET_P99_MS,
      });
    }
    out.push({
      name: `every acknowledged webhook stored, ${LABELS[n]}`,
      value: `${r.store.acknowledged - r.store.acknowledgedMissing}/${r.store.acknowledged}`,
      target: 'all',
      met: r.store.ok,
    });
  }
  return out;
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = readOptions(process.argv.slice(2), process.env);
  if (opts.help) {
    const src = fs.readFileSync(path.join(__dirname, 'run.js'), 'utf8').split('\n');
    console.log(
      src
        .slice(
          1,
          src.findIndex((l) => l.startsWith("'use strict'")),
        )
        .map((l) => l.replace(/^\/\/ ?/, ''))
        .join('\n'),
    );
    return;
  }
  if (!fs.existsSync(path.join(ROOT, 'packages', 'relay', 'dist', 'cli.js'))) {
    throw new Error('the relay is not built: run `npm run build` (or `npm run bench:ingest`)');
  }
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, '-');
  const ctx = {};
  if (opts.profile) {
    ctx.profileDir = path.join(RESULTS_DIR, `profile-${stamp}`);
    fs.mkdirSync(ctx.profileDir, { recursive: true });
  }
  const machine = machineInfo();
  console.log(
    `bench/ingest (${opts.store}): ${opts.targets.join(', ')}; ${opts.connections} connections, ` +
      `warm-up ${opts.warmup} s, throughput ${opts.duration} s, ${opts.rate}/s for ${opts.rateDuration} s` +
      (opts.pacedDuration > 0 ? `, paced ${opts.rate}/s for ${opts.pacedDuration} s` : ''),
  );
  const targets = {};
  for (const name of opts.targets) targets[name] = await runTarget(name, opts, ctx);

  machine.loadAverageAtEnd = loadAverage();
  const results = {
    benchmark: 'ingest',
    startedAt,
    command: 'npm run bench:ingest',
    git: gitInfo(),
    machine,
    options: {
      duration: opts.duration,
      rateDuration: opts.rateDuration,
      connections: opts.connections,
      warmup: opts.warmup,
      rate: opts.rate,
      pacedDuration: opts.pacedDuration,
      profile: opts.profile,
      store: opts.store,
    },
    sample: { kind: 'issue.created', bodyBytes: bodyFactory('x').bytes },
    headline: HEADLINE,
    targets,
    goals: goals(targets),
  };
  if (opts.profile) {
    results.profiles = {};
    for (const name of opts.targets) {
      const file = path.join(ctx.profileDir, `${name}.cpuprofile`);
      if (!fs.existsSync(file)) continue;
      const summary = summariseProfile(scrubProfile(file), ROOT);
      results.profiles[name] = {
        file: path.relative(ROOT, file).split(path.sep).join('/'),
        ...summary,
      };
    }
  }
  console.log(summaryText(results));
  if (results.profiles) {
    for (const [name, p] of Object.entries(results.profiles)) {
      console.log(`\nCPU profile of ${LABELS[name]} (${p.file}):`);
      console.log(formatProfileSummary(p, 20));
    }
  }
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(
    RESULTS_DIR,
    `ingest-${opts.store === 'postgres' ? 'postgres-' : ''}${stamp}.json`,
  );
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nResults: ${path.relative(ROOT, file).split(path.sep).join('/')}`);
}

process.on('SIGINT', () => {
  killChildren();
  process.exit(130);
});

main().catch((err) => {
  killChildren();
  console.error(`\nbench/ingest failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
