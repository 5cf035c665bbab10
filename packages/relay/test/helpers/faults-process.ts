import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

// Fault injection for the suites that run the relay as a real process or
// against the real PostgreSQL (the relay itself is started by the integration
// helpers' `startRelay`, with a `prelude` for limits): a file-size limit on a child relay, a TCP
// proxy that can drop the database under the relay, and the PostgreSQL probe.

// ------------------------------------------------------------ PostgreSQL

export const PG_URL =
  process.env.PLUGBOARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One statement in a separate process: its rows as JSON, or why it failed. */
function sqlChild(sql: string, url: string): { error?: string; rows: unknown[] } {
  const script =
    "const { Client } = require('pg');" +
    'const c = new Client({ connectionString: process.argv[1], connectionTimeoutMillis: 2000 });' +
    'c.connect().then(() => c.query(process.argv[2])).then((r) => { console.log(JSON.stringify(r.rows ?? [])); return c.end(); }, (e) => { console.error(e.message); process.exit(1); });';
  const res = spawnSync(process.execPath, ['-e', script, url, sql], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (res.status !== 0) return { error: res.stderr.trim() || 'no answer', rows: [] };
  return { rows: JSON.parse(res.stdout.trim() || '[]') as unknown[] };
}

/** Run one statement in a separate process (usable before the suites are declared). */
export function psql(sql: string, url = PG_URL): string | undefined {
  return sqlChild(sql, url).error;
}

/**
 * Terminate every backend connected with `applicationName` (pg_terminate_backend,
 * as an operator or a pooler would) and wait until they are gone; returns how
 * many. Synchronous, from another process: this process's event loop does not
 * run meanwhile, so its pooled clients have not seen the news yet and the next
 * query goes out on a dead connection, as when a termination races a checkout.
 */
export function terminateBackends(applicationName: string): number {
  if (!/^[A-Za-z0-9_]+$/.test(applicationName)) throw new Error('plain application names only');
  const { error, rows } = sqlChild(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))::int AS n FROM pg_stat_activity
     WHERE application_name = '${applicationName}' AND pid <> pg_backend_pid()`,
    PG_URL,
  );
  if (error) throw new Error(`cannot terminate the backends of ${applicationName}: ${error}`);
  return (rows[0] as { n: number }).n;
}

/**
 * Why PostgreSQL cannot be used (undefined when it can). In CI it is always
 * there, so the suites run and fail; elsewhere they are skipped, loudly.
 */
export function probePostgres(what: string): { unavailable: string | undefined; skip: boolean } {
  const unavailable = psql('SELECT 1');
  if (unavailable) {
    console.warn(
      `${what} ${process.env.CI ? 'WILL FAIL' : 'SKIPPED'}: cannot reach ${PG_URL}: ${unavailable}`,
    );
  }
  return { unavailable, skip: unavailable !== undefined && !process.env.CI };
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

/** The URL with another host:port and extra query parameters. */
export function pgUrl(options: { port?: number; applicationName?: string } = {}): string {
  const u = new URL(PG_URL);
  if (options.port !== undefined) {
    u.hostname = '127.0.0.1';
    u.port = String(options.port);
  }
  if (options.applicationName) u.searchParams.set('application_name', options.applicationName);
  return u.toString();
}

/** The PostgreSQL server's host and port, for the proxy to forward to. */
export function pgTarget(): { host: string; port: number } {
  const u = new URL(PG_URL);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || 5432) };
}

// ------------------------------------------------------------ TCP proxy

/**
 * A TCP forwarder on 127.0.0.1 in front of PostgreSQL: `stop()` closes the
 * port and cuts every connection (the database "went away"); `start()` opens
 * the same port again (it "came back").
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** Connections accepted since the proxy was made. */
  connections = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    const server = createServer((client) => {
      this.connections++;
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.once('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Refuse new connections and reset every open one. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Change a running process's soft file-size limit (`prlimit`); undefined when it cannot. */
export function setFileSizeLimit(pid: number, bytes: number | 'unlimited'): string | undefined {
  const hard = spawnSync(
    'prlimit',
    ['--pid', String(pid), '--fsize', '--output', 'HARD', '--noheadings'],
    {
      encoding: 'utf8',
    },
  );
  if (hard.status !== 0) return hard.stderr.trim() || 'prlimit failed';
  const value = `${bytes === 'unlimited' ? hard.stdout.trim() : bytes}:${hard.stdout.trim()}`;
  const res = spawnSync('prlimit', ['--pid', String(pid), `--fsize=${value}`], {
    encoding: 'utf8',
  });
  return res.status === 0 ? undefined : res.stderr.trim() || 'prlimit failed';
}

/** Whether `prlimit` can change another process's limits here. */
export function prlimitWorks(): string | undefined {
  const res = spawnSync('prlimit', ['--pid', String(process.pid), '--fsize', '--noheadings'], {
    encoding: 'utf8',
  });
  if (res.error) return res.error.message;
  return res.status === 0 ? undefined : res.stderr.trim() || 'prlimit failed';
}
