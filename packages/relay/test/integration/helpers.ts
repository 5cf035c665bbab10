import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join, resolve } from 'node:path';
import { compactSentryJson, loadSample, signSentryBody } from '@plugboard/sdk';

// Shared by the suites that run the BUILT relay as a real child process
// (`node packages/relay/bin/plugboard.js ...`). Every process, server and
// temporary directory made here is tracked so `cleanup()` can remove it even
// when a test fails half-way.

export const RELAY_DIR = resolve(__dirname, '..', '..');
export const BIN = join(RELAY_DIR, 'bin', 'plugboard.js');
export const DIST_CLI = join(RELAY_DIR, 'dist', 'cli.js');

/** For `beforeAll`: the suites run `dist/`, which `npm test` builds first. */
export function requireBuiltRelay(): void {
  if (!existsSync(DIST_CLI)) {
    throw new Error(
      'packages/relay/dist/cli.js is missing: these tests run the built relay as a child process. ' +
        'Run `npm run build` first (`npm test` does it).',
    );
  }
}

// ------------------------------------------------------------------ waiting

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string | (() => string),
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    }
    await sleep(intervalMs);
  }
}

// ------------------------------------------------------------ temp and env

const tempDirs = new Set<string>();

export function tempDir(prefix = 'pb-it-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/**
 * The parent's environment without anything the relay reads, so a developer's
 * own PLUGBOARD_* settings (or a SENTRY_DSN, which would send the relay's
 * errors to the network) never leak into a test.
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('PLUGBOARD_') || key === 'SENTRY_DSN' || key === 'NODE_OPTIONS') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Writes the config as JSON (valid YAML) to `<dir>/<name>` and returns the path. */
export function writeConfig(dir: string, config: unknown, name = 'plugboard.yaml'): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

// ------------------------------------------------------------ fixtures

/**
 * An app directory whose package.json depends on a plugin package that throws
 * when imported, with a different message each time it is imported, so the
 * test can tell the FIRST error from a later one. Created at test time:
 * nothing under node_modules is committed.
 */
export function brokenPluginApp(): string {
  const app = tempDir('pb-cli-app-');
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'fixture-app',
      version: '1.0.0',
      private: true,
      dependencies: { 'plugboard-notifier-broken': '1.2.3' },
    }),
  );
  const pkg = join(app, 'node_modules', 'plugboard-notifier-broken');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({
      name: 'plugboard-notifier-broken',
      version: '1.2.3',
      main: 'index.js',
      plugboard: {
        sdk: '*',
        entryPoints: { 'plugboard.notifiers': { broken: './index.js:BrokenNotifier' } },
      },
    }),
  );
  writeFileSync(
    join(pkg, 'index.js'),
    'globalThis.__brokenImports = (globalThis.__brokenImports || 0) + 1;\n' +
      "throw new Error('broken plugin failed on import #' + globalThis.__brokenImports);\n",
  );
  return app;
}

// ------------------------------------------------------------ secrets

export const CLIENT_SECRET = 'it-client-secret-0123456789abcdef';
export const LEGACY_TOKEN = 'it-legacy-token-0123456789abcdef';
export const WEBHOOK_SECRET = `whsec_${Buffer.from('integration-test-signing-key-32b').toString('base64')}`;

export interface RelayConfigOptions {
  dataDir: string;
  sinkUrl: string;
  /** Extra keys for the webhook instance (concurrency, timeoutMs, maxAttempts). */
  instance?: Record<string, unknown>;
  /** Extra keys for the webhook notifier's own config (timeoutMs, format). */
  webhook?: Record<string, unknown>;
  dispatch?: Record<string, unknown>;
}

/** One route taking everything to the webhook notifier, on an OS-chosen port. */
export function relayConfig(o: RelayConfigOptions): Record<string, unknown> {
  return {
    listen: '127.0.0.1:0',
    dataDir: o.dataDir,
    sentry: { clientSecret: CLIENT_SECRET },
    legacy: { token: LEGACY_TOKEN },
    log: { level: 'info' },
    dispatch: {
      backoff: { initialMs: 100, factor: 2, maxMs: 400 },
      pollIntervalMs: 100,
      ...o.dispatch,
    },
    routes: [
      {
        name: 'all',
        instances: [
          {
            name: 'sink',
            plugin: 'webhook',
            config: { urls: `${o.sinkUrl}/hook`, secret: WEBHOOK_SECRET, ...o.webhook },
            ...o.instance,
          },
        ],
      },
    ],
  };
}

// ------------------------------------------------------------ relay process

export interface LogLine {
  level?: string;
  msg?: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RelayProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>`, read from the start-up log line. */
  url: string;
  /** Parsed JSON log lines from stdout, in order. */
  logs: LogLine[];
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
  /** Whether the process has exited. */
  readonly done: boolean;
}

const children = new Set<ChildProcess>();

function track(child: ChildProcess): Promise<Exit> {
  children.add(child);
  return new Promise<Exit>((resolveExit) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolveExit({ code, signal });
    });
  });
}

/**
 * `plugboard serve --config <file>` as a child process; resolves once it
 * logged "plugboard relay started" (with the real port), rejects with its
 * output if it exits or stays silent first.
 */
export async function startRelay(options: {
  config: string;
  cwd: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /**
   * Shell lines run first, in a `bash` that then execs the relay: resource
   * limits for fault tests (`ulimit -S -f 400`).
   */
  prelude?: string;
}): Promise<RelayProcess> {
  const spawnOptions = {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
  };
  const child =
    options.prelude === undefined
      ? spawn(process.execPath, [BIN, 'serve', '--config', options.config], spawnOptions)
      : spawn(
          'bash',
          [
            '-c',
            `${options.prelude}\nexec "$0" "$1" serve --config "$2"`,
            process.execPath,
            BIN,
            options.config,
          ],
          spawnOptions,
        );
  const exited = track(child);
  let out = '';
  let err = '';
  let pending = '';
  let done = false;
  const logs: LogLine[] = [];
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    out += chunk;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // Not a log line (a plugin printing): kept in stdout() only.
      }
    }
  });
  child.stderr!.on('data', (chunk: string) => {
    err += chunk;
  });
  void exited.then(() => {
    done = true;
  });
  const output = (): string => `\n--- stdout ---\n${out}\n--- stderr ---\n${err}`;
  const started = await Promise.race([
    waitFor(
      () => logs.find((l) => l.msg === 'plugboard relay started'),
      () => `the relay to start${output()}`,
      options.timeoutMs ?? 15_000,
    ),
    exited.then((e) => {
      throw new Error(
        `the relay exited before it started (code ${e.code}, signal ${e.signal})${output()}`,
      );
    }),
  ]).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  const listen = String(started.listen);
  return {
    child,
    url: `http://${listen}`,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    get done() {
      return done;
    },
  };
}

/** SIGKILL every child process still running and wait for them to go. */
export async function killAll(): Promise<void> {
  const waits: Array<Promise<unknown>> = [];
  for (const child of [...children]) {
    waits.push(new Promise((r) => child.once('exit', r)));
    child.kill('SIGKILL');
  }
  await Promise.all(waits);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI to completion (never rejects: the exit code is data). */
export function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolveRun) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: options.cwd,
        env: childEnv(options.env),
        timeout: options.timeoutMs ?? 15_000,
        killSignal: 'SIGKILL',
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolveRun({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    track(child);
  });
}

// ------------------------------------------------------------ sink

/** Receiver-side check per Standard Webhooks, written from the spec, not from the notifier. */
export function verifyStandardWebhook(
  headers: IncomingHttpHeaders,
  rawBody: string,
  secret: string,
  toleranceSeconds = 5 * 60,
): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') {
    return false;
  }
  if (!/^\d+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const key = secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret, 'utf8');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${rawBody}`).digest();
  return signatures.split(' ').some((entry) => {
    const comma = entry.indexOf(',');
    if (comma === -1 || entry.slice(0, comma) !== 'v1') return false;
    const given = Buffer.from(entry.slice(comma + 1), 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export interface SinkRequest {
  method: string;
  path: string;
  webhookId: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: unknown;
  verified: boolean;
}

/**
 * How the sink treats what arrives:
 * - `ok`: answer 200 at once;
 * - `delay`: answer 200 after `delayMs`;
 * - `hold`: record the request, never answer (a target that hangs);
 * - `reset`: destroy every new connection before reading it (like a target
 *   that is down: the notifier sees a network error and retries).
 */
export type SinkMode =
  | { kind: 'ok' }
  | { kind: 'delay'; delayMs: number }
  | { kind: 'hold' }
  | {
      kind: 'reset';
    };

export interface Sink {
  url: string;
  requests: SinkRequest[];
  /** Connections destroyed in `reset` mode. */
  refused: number;
  setMode(mode: SinkMode): void;
  /** Distinct `webhook-id` values received (a redelivery after a crash counts once). */
  ids(): Set<string>;
  close(): Promise<void>;
}

const sinks = new Set<Sink>();

export async function startSink(mode: SinkMode, secret = WEBHOOK_SECRET): Promise<Sink> {
  let current = mode;
  const requests: SinkRequest[] = [];
  const held = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const state = { refused: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // kept raw
      }
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        webhookId: String(req.headers['webhook-id'] ?? ''),
        headers: req.headers,
        raw,
        body,
        verified: verifyStandardWebhook(req.headers, raw, secret),
      });
      const mode = current;
      if (mode.kind === 'hold') {
        held.add(res);
        return;
      }
      const answer = (): void => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      };
      if (mode.kind === 'delay') {
        const t = setTimeout(() => {
          timers.delete(t);
          answer();
        }, mode.delayMs);
        timers.add(t);
      } else answer();
    });
  });
  server.on('connection', (socket: Socket) => {
    if (current.kind === 'reset') {
      state.refused++;
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r, j) => {
    server.once('error', j);
    server.listen(0, '127.0.0.1', () => r());
  });
  const sink: Sink = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    get refused() {
      return state.refused;
    },
    setMode(next) {
      current = next;
    },
    ids: () => new Set(requests.map((r) => r.webhookId)),
    close() {
      sinks.delete(sink);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      held.clear();
      return new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
    },
  };
  sinks.add(sink);
  return sink;
}

/**
 * A stand-in for Sentry's ingest endpoint on 127.0.0.1, for the relay's own
 * error reporting (`SENTRY_DSN`): records every envelope posted to it.
 */
export async function startFakeSentry(): Promise<{
  dsn: string;
  envelopes: string[];
  close(): Promise<void>;
}> {
  const envelopes: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      envelopes.push(body.toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  const fake = {
    dsn: `http://0123456789abcdef@127.0.0.1:${port}/42`,
    envelopes,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  closers.add(fake.close);
  return fake;
}

const closers = new Set<() => Promise<void>>();

/** Kill every relay and CLI process, close every sink, remove every temp dir. */
export async function cleanup(options: { removeTemp?: boolean } = {}): Promise<void> {
  await killAll();
  await Promise.all([...sinks].map((s) => s.close()));
  await Promise.all([...closers].map((close) => close()));
  closers.clear();
  if (options.removeTemp) {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  }
}

// ------------------------------------------------------------ posting

export interface Posted {
  status: number;
  json: Record<string, unknown>;
}

async function answer(res: Response): Promise<Posted> {
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: res.status, json: { text } };
  }
}

/**
 * POST a webhook the way Sentry does: compact ASCII-escaped JSON, its
 * HMAC-SHA256 in Sentry-Hook-Signature, resource and timestamp headers and a
 * fresh Request-ID (a redelivery has a new one too).
 */
export async function postSentry(
  baseUrl: string,
  resource: string,
  bodyValue: unknown,
  options: { secret?: string; signature?: string; requestId?: string } = {},
): Promise<Posted> {
  const body = compactSentryJson(bodyValue);
  const res = await fetch(`${baseUrl}/hooks/sentry`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'sentry-hook-resource': resource,
      'sentry-hook-timestamp': String(Math.floor(Date.now() / 1000)),
      'request-id': options.requestId ?? randomBytes(16).toString('hex'),
      'sentry-hook-signature':
        options.signature ?? signSentryBody(body, options.secret ?? CLIENT_SECRET),
    },
    body,
  });
  return answer(res);
}

export async function postLegacy(
  url: string,
  bodyValue: unknown,
  headers: Record<string, string> = {},
): Promise<Posted> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: compactSentryJson(bodyValue),
  });
  return answer(res);
}

/** `issue.created` for a distinct issue id: a distinct webhook, not a redelivery. */
export function issueCreated(issueId: string): { resource: string; body: unknown } {
  const sample = loadSample('issue.created');
  const body = sample.body as { data: { issue: { id: string; shortId: string } } };
  body.data.issue.id = issueId;
  body.data.issue.shortId = `FRONT-END-${issueId}`;
  return { resource: sample.resource, body };
}

/** The issue id a `plugboard`-format delivery is about. */
export function groupIdOf(request: SinkRequest): string | undefined {
  const body = request.body as { data?: { group?: { id?: string } | null } };
  return body.data?.group?.id ?? undefined;
}

// ------------------------------------------------------------ metrics

/** Value of one Prometheus sample, matched on the given labels (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{\s]+(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const found: Record<string, string> = {};
    for (const pair of (m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      found[pair[1]!] = pair[2]!;
    }
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(m[2]);
  }
  return 0;
}
