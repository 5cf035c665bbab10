import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type Nock from 'nock';

/*
 * Jest runs many test files in one worker process. Each file has its own
 * module registry, so its own copy of nock, but every copy patches the same
 * `http`/`https` modules (and `Headers.prototype`) of the process. A copy
 * left installed sits *under* the next file's copy, and the innermost patch
 * is the one that answers: the next file's interceptors are never asked and
 * its requests fail with the stale copy's "Disallowed net connect" (code
 * ENETUNREACH, which is all a notifier's error message shows).
 *
 * The `afterAll` below cannot guarantee the restore: jest-circus skips the
 * hooks of a file without an enabled test (a suite skipped for want of
 * PostgreSQL or podman, or filtered out by `-t`) and never reaches them in a
 * file that fails to load; and once a file's environment is torn down, jest
 * soft-deletes that copy's objects, so it cannot be asked to restore later.
 * So each file puts back the entry points as the worker started, *before*
 * it loads its own nock; the originals are kept on the `http` module, the
 * one object all files of a worker share.
 */
interface WorkerState {
  /** The patch points' values before any test file ran. */
  pristine?: unknown[];
  /** Where the network guard below reports a connection that left the machine. */
  onEscape?: (target: string) => void;
}
const WORKER = Symbol.for('plugboard.jest.worker');
const worker: WorkerState = ((http as { [WORKER]?: WorkerState })[WORKER] ??= {});
const patchPoints: Array<[object, string]> = [
  [http, 'request'],
  [http, 'get'],
  [http, 'ClientRequest'],
  [https, 'request'],
  [https, 'get'],
  [Headers.prototype, 'set'],
  [Headers.prototype, 'append'],
  [Headers.prototype, 'delete'],
];
const pristine = (worker.pristine ??= patchPoints.map(([o, key]) => Reflect.get(o, key)));
patchPoints.forEach(([o, key], i) => Reflect.set(o, key, pristine[i]));
// The previous file's keep-alive connections, when its afterAll did not run.
http.globalAgent.destroy();
https.globalAgent.destroy();

// Loaded only now, so that this file's copy patches clean modules.
const nock = require('nock') as typeof Nock;

// No test may reach beyond this machine: anything that is not a local server
// started by the test itself fails fast instead of hanging on a closed network.
nock.disableNetConnect();
nock.enableNetConnect((host) => /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/.test(host));

// The global agents are shared by the worker's files and keep connections
// alive: a socket nock mocked for one file (to jira.example.test:443, say)
// would be reused by the next file's request to the same host. Drop them
// with the file, and take this copy's patches off while it still can.
afterAll(() => {
  nock.cleanAll();
  nock.restore();
  http.globalAgent.destroy();
  https.globalAgent.destroy();
});

/*
 * The last line of defence: a TCP connection to anything but this machine
 * (and the test database, which may be configured elsewhere) means a request
 * got past nock, restored or not intercepting. It is refused with its own
 * code and fails the test that made it, naming the target, instead of
 * surfacing as a network error deep in a notifier's retry logic. Installed
 * once per worker: the prototype is shared by every file.
 */
const escapes: string[] = [];
worker.onEscape = (target) => escapes.push(target);
const GUARDED = Symbol.for('plugboard.jest.netGuard');
const proto = net.Socket.prototype as net.Socket & { [GUARDED]?: true };
if (!proto[GUARDED]) {
  proto[GUARDED] = true;
  const local = /^(127(\.\d+){3}|localhost|::1|0\.0\.0\.0|::|::ffff:127(\.\d+){3})$/i;
  const dbUrl = process.env.PLUGBOARD_TEST_DATABASE_URL;
  const dbHost = dbUrl ? new URL(dbUrl).hostname : undefined;
  const connect = proto.connect as (...args: unknown[]) => net.Socket;
  proto.connect = function guardedConnect(this: net.Socket, ...args: unknown[]): net.Socket {
    // net.connect() hands its arguments over normalised, as an array.
    const first: unknown = Array.isArray(args[0]) ? args[0][0] : args[0];
    let host: string | undefined;
    let port: unknown;
    if (typeof first === 'object' && first !== null) {
      const o = first as { host?: string; port?: unknown; path?: string };
      if (!o.path) [host, port] = [o.host ?? 'localhost', o.port];
    } else if (typeof first === 'number' || /^\d+$/.test(String(first))) {
      [host, port] = [typeof args[1] === 'string' ? args[1] : 'localhost', first];
    } // else an IPC path
    if (host !== undefined && !local.test(host) && host !== dbHost) {
      const target = `${host}:${String(port)}`;
      worker.onEscape?.(target);
      const err = Object.assign(
        new Error(`test network guard: refused a connection to ${target}`),
        { code: 'PB_TEST_NETWORK_ESCAPE' },
      );
      process.nextTick(() => this.destroy(err));
      return this;
    }
    return connect.apply(this, args);
  } as typeof proto.connect;
}

afterEach(() => {
  const seen = escapes.splice(0);
  if (seen.length > 0) {
    throw new Error(
      `a request left the machine for ${seen.join(', ')}: nock did not intercept it ` +
        '(no interceptor installed, or nock restored in this file)',
    );
  }
});
