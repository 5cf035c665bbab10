import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { stringify } from 'yaml';
import {
  NotificationPlugin,
  compactSentryJson,
  loadSample,
  signSentryBody,
  type Notification,
  type NotifyContext,
} from '@plugboard/sdk';
import { loadConfig, type LoadedConfig } from '../../src/config/load';
import { Relay } from '../../src/relay';
import type { Logger } from '../../src/logger';
import type { Store } from '../../src/store/types';

export const SECRET = 'test-client-secret-0123456789';
export const LEGACY_TOKEN = 'legacy-token-0123456789abcdef';

/** A notifier that records what it is asked to deliver and does what the test says. */
export class RecordingNotifier extends NotificationPlugin {
  readonly slug: string;
  readonly title = 'Recorder';
  readonly version = '1.0.0';
  override rateLimit: NotificationPlugin['rateLimit'] = null;
  readonly received: Array<{ n: Notification; ctx: NotifyContext }> = [];
  behaviour: (n: Notification, ctx: NotifyContext) => Promise<void> = async () => undefined;

  constructor(slug = 'recorder') {
    super();
    this.slug = slug;
  }

  override async notify(n: Notification, ctx: NotifyContext): Promise<void> {
    this.received.push({ n, ctx });
    await this.behaviour(n, ctx);
  }
}

/** Log lines written by the relay under test, for assertions. */
export function memoryLogger(): { logger: Logger; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    logger: pino({ level: 'debug' }, stream) as unknown as Logger,
    lines: () => chunks.join('').split('\n').filter(Boolean),
  };
}

export interface TestRelay {
  relay: Relay;
  loaded: LoadedConfig;
  dir: string;
  close(): Promise<void>;
}

/** Write `raw` as a YAML config in a temp dir and load it as the CLI would. */
export function writeConfig(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
): { loaded: LoadedConfig; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pb-relay-'));
  const file = join(dir, 'plugboard.yaml');
  writeFileSync(file, stringify({ dataDir: join(dir, 'data'), listen: '127.0.0.1:0', ...raw }));
  return { loaded: loadConfig({ file, env, cwd: dir }), dir };
}

export async function startRelay(
  raw: Record<string, unknown>,
  options: {
    plugins?: NotificationPlugin[];
    env?: NodeJS.ProcessEnv;
    logger?: Logger;
    /** A store on a fake clock, say; its data dir is the config's. */
    store?: (dataDir: string) => Store;
    now?: () => number;
  } = {},
): Promise<TestRelay> {
  const { loaded, dir } = writeConfig(
    { sentry: { clientSecret: SECRET }, legacy: { token: LEGACY_TOKEN }, ...raw },
    options.env,
  );
  const relay = await Relay.start({
    loaded,
    listen: false,
    appRoot: dir,
    plugins: options.plugins ?? [],
    logger: options.logger ?? memoryLogger().logger,
    ...(options.store ? { store: options.store(loaded.config.dataDir) } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  return {
    relay,
    loaded,
    dir,
    async close() {
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headers and compact bytes Sentry would send for a sample (or a modified body). */
export function signed(
  kind: string,
  mutate?: (body: Record<string, unknown>) => void,
  secret = SECRET,
): { body: string; headers: Record<string, string> } {
  const sample = loadSample(kind);
  const bodyObj = JSON.parse(JSON.stringify(sample.body)) as Record<string, unknown>;
  mutate?.(bodyObj);
  const body = compactSentryJson(bodyObj);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'sentry-hook-resource': sample.resource,
      'sentry-hook-timestamp': String(Math.floor(Date.now() / 1000)),
      'request-id': Math.random().toString(16).slice(2).padEnd(32, '0').slice(0, 32),
      'sentry-hook-signature': signSentryBody(body, secret),
    },
  };
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
