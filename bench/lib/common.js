// Shared by bench/backlog, bench/isolation and bench/e2e: machine info, the
// relay and the sink as child processes, signed bodies, results files.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn, execFileSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { loadSample, compactSentryJson, signSentryBody } = require('@plugboard/sdk');

const ROOT = path.join(__dirname, '..', '..');
const RELAY_DIR = path.join(ROOT, 'packages', 'relay');
const RELAY_BIN = path.join(RELAY_DIR, 'bin', 'plugboard.js');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const SINK_SERVER = path.join(__dirname, 'sink-server.js');
const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/test';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (n, d = 1) =>
  n === null || n === undefined || !Number.isFinite(n) ? null : Math.round(n * 10 ** d) / 10 ** d;

/** Options from BENCH_<NAME> or --name=value. */
function option(name, fallback) {
  const flag = `--${name}=`;
  const arg = process.argv.find((a) => a.startsWith(flag));
  const v = arg
    ? arg.slice(flag.length)
    : process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  if (v === undefined || v === '') return fallback;
  return typeof fallback === 'number' ? Number(v) : v;
}

function gitInfo() {
  try {
    const git = (...args) =>
      execFileSync('git', args, {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    };
  } catch {
    return null;
  }
}

function machineInfo() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0] ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
  };
}

function rssMiB(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(s);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(s);
    return {
      rss: rss ? round(Number(rss[1]) / 1024, 1) : null,
      hwm: hwm ? round(Number(hwm[1]) / 1024, 1) : null,
    };
  } catch {
    return { rss: null, hwm: null };
  }
}

/** The environment without the caller's own PLUGBOARD_* settings. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('PLUGBOARD_') || k === 'SENTRY_DSN' || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, NODE_ENV: 'production', ...extra };
}

const children = new Set();
function killChildren() {
  for (const c of children) c.kill('SIGKILL');
}
process.on('SIGINT', () => {
  killChildren();
  process.exit(130);
});

function track(child, name) {
  children.add(child);
  const log = { tail: [], lines: [] };
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, name, log, exited };
}

async function stop(proc, timeoutMs = 15_000) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.exited;
  proc.child.kill('SIGTERM');
  const t = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const r = await proc.exited;
  clearTimeout(t);
  return r;
}

/** The sink (bench/lib/sink-server.js) as a child process. */
async function startSink(env = {}) {
  const child = spawn(process.execPath, [SINK_SERVER], {
    cwd: ROOT,
    env: { ...cleanEnv(), BENCH_LISTEN: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const p = track(child, 'sink');
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += c;
      const m = /"listening":(\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error('the sink exited during start-up')));
  });
  child.stdout.resume();
  return { ...p, port, url: `http://127.0.0.1:${port}` };
}

function getJson(port, pathname, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: pathname, method, agent: false },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (b += c));
        res.on('end', () => {
          try {
            resolve(b ? JSON.parse(b) : null);
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}
const sinkStats = (sink) => getJson(sink.port, '/stats');
const sinkReset = (sink) => getJson(sink.port, '/reset', 'POST');

/**
 * `plugboard serve --config <file>` with PLUGBOARD_LISTEN=127.0.0.1:0; the
 * port comes from the "plugboard relay started" log line (log level info).
 */
async function startRelay({
  config,
  env = {},
  name = 'relay',
  timeoutMs = 120_000,
  nodeArgs = [],
}) {
  const child = spawn(process.execPath, [...nodeArgs, RELAY_BIN, 'serve', '--config', config], {
    cwd: ROOT,
    env: cleanEnv({ PLUGBOARD_LISTEN: '127.0.0.1:0', PLUGBOARD_LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const p = track(child, name);
  let pending = '';
  let started;
  const keep = (line) => {
    p.log.tail.push(line.length > 1000 ? line.slice(0, 1000) + '…' : line);
    if (p.log.tail.length > 30) p.log.tail.shift();
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
      if (!line.trim()) continue;
      keep(line);
      if (!started && line.includes('"msg":"plugboard relay started"')) {
        try {
          started = JSON.parse(line);
        } catch {
          /* not JSON */
        }
      }
      if (/"level":(50|60)|"level":"(error|fatal)"/.test(line))
        p.log.lines.push(line.slice(0, 500));
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => keep(c.trim()));
  const deadline = Date.now() + timeoutMs;
  while (!started) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${name} exited during start-up:\n  ${p.log.tail.join('\n  ')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start in ${timeoutMs} ms:\n  ${p.log.tail.join('\n  ')}`);
    }
    await sleep(50);
  }
  const listen = String(started.listen);
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  return { ...p, port, url: `http://127.0.0.1:${port}`, started };
}

/**
 * Signed bodies, each distinct in its dedup key: `issue.created` with its own
 * issue id, or `error.created` events of ONE issue, each with its own event id
 * (a storm).
 */
function bodyFactory(secret, startId = 7_000_000_000, kind = 'issue.created') {
  const PLACEHOLDER = 'PLUGBOARD_BENCH_ID';
  const sample = loadSample(kind);
  const body = sample.body;
  if (kind === 'error.created') body.data.error.event_id = PLACEHOLDER;
  else body.data.issue.id = PLACEHOLDER;
  const [head, tail] = compactSentryJson(body).split(PLACEHOLDER);
  let next = startId;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const prefix = randomBytes(6).toString('hex');
  const idText = (id) =>
    kind === 'error.created' ? id.toString(16).padStart(32, '0') : String(id);
  return {
    next() {
      const id = next++;
      const buf = Buffer.from(head + idText(id) + tail, 'latin1');
      return {
        body: buf,
        headers: {
          'content-type': 'application/json',
          'content-length': String(buf.length),
          'sentry-hook-resource': sample.resource,
          'sentry-hook-timestamp': timestamp,
          'request-id': `${prefix}${id}`,
          'sentry-hook-signature': signSentryBody(buf, secret),
        },
      };
    },
  };
}

/**
 * Post `total` signed webhooks with `concurrency` requests in flight, spread
 * round-robin over `ports`; returns the answers by status code and the time.
 */
async function postMany({ ports, total, concurrency, bodies, ratePerSecond = 0 }) {
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: concurrency }));
  const status = {};
  let sent = 0;
  let errors = 0;
  const t0 = Date.now();
  const worker = async () => {
    for (;;) {
      if (sent >= total) return;
      const i = sent++;
      if (ratePerSecond > 0) {
        const due = t0 + (i * 1000) / ratePerSecond;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
      const r = bodies.next();
      const k = i % ports.length;
      await new Promise((resolve) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: ports[k],
            method: 'POST',
            path: '/hooks/sentry',
            headers: r.headers,
            agent: agents[k],
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              status[res.statusCode] = (status[res.statusCode] || 0) + 1;
              resolve();
            });
          },
        );
        req.on('error', () => {
          errors++;
          resolve();
        });
        req.end(r.body);
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  for (const a of agents) a.destroy();
  return { status, errors, seconds: (Date.now() - t0) / 1000 };
}

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function writeResults(name, results) {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(RESULTS_DIR, `${name}-${stamp}.json`);
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  return path.relative(ROOT, file).split(path.sep).join('/');
}

/** A schema name no other run uses. */
function uniqueSchema(prefix) {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

async function dropSchema(url, schema) {
  const { Client } = require(require.resolve('pg', { paths: [RELAY_DIR] }));
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

module.exports = {
  ROOT,
  RELAY_DIR,
  RELAY_BIN,
  DEFAULT_PG,
  sleep,
  round,
  option,
  gitInfo,
  machineInfo,
  rssMiB,
  cleanEnv,
  startSink,
  sinkStats,
  sinkReset,
  startRelay,
  stop,
  killChildren,
  bodyFactory,
  postMany,
  tempDir,
  writeResults,
  uniqueSchema,
  dropSchema,
};
