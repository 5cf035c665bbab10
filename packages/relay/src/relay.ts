import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConfigError,
  StoreError,
  PluginRegistry,
  SDK_VERSION,
  validatePluginConfig,
  type BuiltinPlugin,
  type DiscoveredPlugin,
  type NotificationPlugin,
} from '@plugboard/sdk';
import type { LoadedConfig } from './config/load';
import { Dispatcher, type DispatchInstance } from './dispatch/dispatcher';
import { GroupFlusher } from './dispatch/flusher';
import { createLogger, type Logger } from './logger';
import { RelayMetrics } from './metrics';
import { createNoiseControl, type NoiseControl } from './noise/gate';
import { instanceIdOf, shadowedRoutes } from './routing';
import { createApp, type ReadyReport } from './server/app';
import { SqliteStore } from './store/sqlite';
import { PostgresStore } from './store/postgres';
import type { Store } from './store/types';
import { LogNotifier } from './builtin/log-notifier';
import { RELAY_VERSION } from './version';
import { durationMs } from './durations';
import { initSelfMonitoring, type SelfMonitor } from './self-monitoring';
import { resolveSsoProviders, type ConfiguredSsoProvider } from './auth/providers';
import { createPagesRouter } from './server/pages';

export interface RelayOptions {
  loaded: LoadedConfig;
  logger?: Logger;
  /** Where to look for declared plugin dependencies; default: the working directory. */
  appRoot?: string;
  /** Plugins registered in code (embedding, tests), besides discovered ones. */
  plugins?: readonly NotificationPlugin[];
  /** Use this store instead of the configured one (tests, embedding). */
  store?: Store;
  /** Bind the HTTP server (default true). */
  listen?: boolean;
  /** The group flusher's clock (tests). */
  now?: () => number;
}

/** Plugins that ship with the relay, listed like discovered ones. */
export function builtinPlugins(): BuiltinPlugin[] {
  const list: BuiltinPlugin[] = [
    {
      group: 'plugboard.notifiers',
      name: 'log',
      packageName: '@plugboard/relay',
      packageVersion: RELAY_VERSION,
      load: () => LogNotifier,
    },
  ];
  // Bundled as dependencies of the relay, so they are there without the
  // operator declaring them; still loaded lazily, on first use.
  const bundled: Array<[name: string, pkg: string, exportName: string]> = [
    ['webhook', '@plugboard/notifier-webhook', 'WebhookNotifier'],
    ['jira', '@plugboard/notifier-jira', 'JiraNotifier'],
    ['im', '@plugboard/notifier-im', 'ImNotifier'],
    ['dingtalk', '@plugboard/notifier-dingtalk', 'DingTalkNotifier'],
    ['feishu', '@plugboard/notifier-feishu', 'FeishuNotifier'],
  ];
  for (const [name, pkgName, exportName] of bundled) {
    let version: string;
    try {
      version = (require(`${pkgName}/package.json`) as { version: string }).version;
    } catch {
      continue; // Not installed (a trimmed image): discovery may still find it.
    }
    list.push({
      group: 'plugboard.notifiers',
      name,
      packageName: pkgName,
      packageVersion: version,
      load: () => (require(pkgName) as Record<string, unknown>)[exportName],
    });
  }
  return list;
}

export function createRegistry(
  loaded: LoadedConfig,
  appRoot: string,
  logger?: Logger,
): PluginRegistry {
  const p = loaded.config.plugins;
  return new PluginRegistry({
    appRoot,
    packages: p.packages,
    ...(p.include ? { include: p.include } : {}),
    exclude: p.exclude,
    strict: p.strict,
    builtins: builtinPlugins(),
    ...(logger ? { logger } : {}),
  });
}

interface ResolvedInstances {
  instances: DispatchInstance[];
  /** Routed instances whose plugin failed to load: their jobs wait in the queue. */
  broken: Array<{ instanceId: string; plugin: string; error: string }>;
}

/**
 * Check every route instance against its plugin: the plugin exists, the
 * config satisfies its fields. Errors name the route, instance and field.
 */
export async function resolveInstances(
  loaded: LoadedConfig,
  registry: PluginRegistry,
): Promise<ResolvedInstances> {
  const { config } = loaded;
  const out: ResolvedInstances = { instances: [], broken: [] };
  const problems: string[] = [];
  // Only notifier entry points: SSO providers and package-level failures
  // (a package that could not be read has no slug) are not route targets.
  const known = new Map(
    registry
      .list()
      .filter((d) => d.group === 'plugboard.notifiers' && d.scope !== 'package')
      .map((d) => [d.name, d]),
  );
  for (const [i, route] of config.routes.entries()) {
    for (const [j, inst] of route.instances.entries()) {
      const where = `routes[${i}] (${route.name}) instances[${j}] (${inst.name ?? inst.plugin})`;
      const instanceId = instanceIdOf(route, inst);
      const found = known.get(inst.plugin);
      if (!found || found.status === 'excluded') {
        throw new ConfigError(
          'PB_CONFIG_PLUGIN_UNKNOWN',
          `${where}: no plugin "${inst.plugin}"${found ? ' (excluded by plugins.include/exclude)' : ''}; ` +
            `known: ${[...known.keys()].join(', ') || 'none'}. Install the package and declare it in the app's dependencies or plugins.packages.`,
          { path: `routes[${i}].instances[${j}].plugin`, value: inst.plugin },
        );
      }
      let plugin: NotificationPlugin;
      try {
        plugin = await registry.getNotifier(inst.plugin);
      } catch (err) {
        if (config.plugins.strict) throw err;
        out.broken.push({ instanceId, plugin: inst.plugin, error: (err as Error).message });
        continue;
      }
      const fields = plugin.configFields();
      const { config: values, problems: fieldProblems } = validatePluginConfig(fields, inst.config);
      for (const p of fieldProblems) problems.push(`${where}: config.${p.field} ${p.problem}`);
      if (fieldProblems.length === 0) {
        for (const f of fields) {
          const v = values[f.name];
          if (f.type === 'secret' && typeof v === 'string' && v.length > 0) loaded.secrets.add(v);
        }
        const extra = (await plugin.validateConfig(values)) ?? [];
        for (const m of extra) problems.push(`${where}: ${m}`);
      }
      const rateLimit =
        inst.rateLimit === false
          ? undefined
          : inst.rateLimit
            ? { limit: inst.rateLimit.limit, perMs: durationMs(inst.rateLimit.per) }
            : plugin.targetRateLimit(values);
      out.instances.push({
        instanceId,
        ...(rateLimit ? { rateLimit } : {}),
        routeName: route.name,
        plugin,
        config: values,
        concurrency: inst.concurrency ?? config.dispatch.concurrency,
        timeoutMs: inst.timeoutMs ?? config.dispatch.timeoutMs,
        maxAttempts: inst.maxAttempts ?? config.dispatch.maxAttempts,
        retrySchedule: (inst.retry?.schedule ?? config.dispatch.retry.schedule).map(durationMs),
        retryJitter: inst.retry?.jitter ?? config.dispatch.retry.jitter,
        expireAfterMs: durationMs(inst.retry?.expireAfter ?? config.dispatch.retry.expireAfter),
        pauseAfterFailures: inst.pauseAfterFailures ?? config.dispatch.pauseAfterFailures,
        ...(config.dispatch.breaker.enabled
          ? {
              breaker: {
                errorThresholdPercentage: config.dispatch.breaker.errorThresholdPercentage,
                volumeThreshold: config.dispatch.breaker.volumeThreshold,
                resetTimeoutMs: durationMs(config.dispatch.breaker.resetAfter),
              },
            }
          : {}),
      });
    }
  }
  if (problems.length > 0) {
    throw new ConfigError(
      'PB_CONFIG_FIELD_INVALID',
      `invalid plugin configuration:\n  ${problems.join('\n  ')}`,
    );
  }
  return out;
}

/** `postgres://user:secret@host/db` → `postgres://user:****@host/db`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '****';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * The configured store: PostgreSQL when `databaseUrl` is set (migrated
 * before use), the embedded SQLite file otherwise.
 */
export async function openStore(loaded: LoadedConfig): Promise<Store> {
  const { config } = loaded;
  if (config.databaseUrl) {
    const store = new PostgresStore({
      connectionString: config.databaseUrl,
      schema: config.store.postgres.schema,
      maxConnections: config.store.postgres.maxConnections,
    });
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw new StoreError(
        'PB_STORE_UNAVAILABLE',
        `cannot prepare the PostgreSQL store at ${redactUrl(config.databaseUrl)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return store;
  }
  return new SqliteStore({ dataDir: config.dataDir, synchronous: config.store.synchronous });
}

/** One running relay: store, dispatcher, HTTP server. */
export class Relay {
  readonly logger: Logger;
  readonly store: Store;
  readonly registry: PluginRegistry;
  readonly dispatcher: Dispatcher;
  readonly metrics: RelayMetrics;
  /** Silences, inhibition and mute intervals; its gate is asked before every delivery. */
  readonly noise: NoiseControl;
  readonly app: ReturnType<typeof createApp>;
  /** Turns grouped routes' notification groups into messages. */
  readonly flusher: GroupFlusher;
  private server: Server | undefined;
  private closing: Promise<void> | undefined;
  private lastStoreFailure = 0;
  private purgeTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly loaded: LoadedConfig,
    parts: {
      logger: Logger;
      store: Store;
      registry: PluginRegistry;
      resolved: ResolvedInstances;
      monitor: SelfMonitor;
      ssoProviders?: ConfiguredSsoProvider[];
      now?: () => number;
    },
  ) {
    this.logger = parts.logger;
    this.store = parts.store;
    this.registry = parts.registry;
    this.metrics = new RelayMetrics(parts.store);
    const monitor = parts.monitor;
    this.monitor = monitor;
    const noise = createNoiseControl({
      store: parts.store,
      config: loaded.config,
      metrics: this.metrics,
      ...(parts.now ? { now: parts.now } : {}),
    });
    this.noise = noise;
    this.dispatcher = new Dispatcher({
      store: parts.store,
      gate: noise.gate,
      instances: parts.resolved.instances,
      logger: parts.logger,
      metrics: this.metrics,
      backoff: loaded.config.dispatch.backoff,
      pollIntervalMs: loaded.config.dispatch.pollIntervalMs,
      onUnexpectedError: (err, ctx) => monitor.capture(err, ctx),
    });
    this.flusher = new GroupFlusher({
      store: parts.store,
      routes: loaded.config.routes,
      defaultMaxAttempts: loaded.config.dispatch.maxAttempts,
      logger: parts.logger.child({ component: 'groups' }),
      metrics: this.metrics,
      onJobs: (ids) => {
        for (const id of ids) this.dispatcher.wake(id);
      },
      // A muted grouped route holds its groups; the first message after the
      // mute covers the whole muted time.
      mutedBy: (route, now) => noise.muteReason(route, now),
      ...(parts.now ? { now: parts.now } : {}),
    });
    this.dispatcher.on('error', (err) => {
      parts.logger.error({ err }, 'dispatcher error');
      monitor.capture(err, { component: 'dispatcher' });
    });
    const broken = parts.resolved.broken;
    this.app = createApp({
      config: loaded.config,
      store: parts.store,
      logger: parts.logger,
      metrics: this.metrics,
      onJobs: (ids) => {
        for (const id of ids) this.dispatcher.wake(id);
      },
      ready: () => this.readiness(broken),
      onAccepted: (n) => noise.observe(n),
      onStoreFailure: () => {
        this.lastStoreFailure = Date.now();
      },
      onUnexpectedError: (err, ctx) => monitor.capture(err, ctx),
      pages: createPagesRouter({
        config: loaded.config,
        store: parts.store,
        logger: parts.logger,
        providers: parts.ssoProviders ?? [],
        plugins: () => parts.registry.list(),
        onUnexpectedError: (err, ctx) => monitor.capture(err, ctx),
      }),
    });
  }

  private readonly monitor: SelfMonitor;

  static async start(options: RelayOptions): Promise<Relay> {
    const { loaded } = options;
    const logger =
      options.logger ?? createLogger({ level: loaded.config.log.level, secrets: loaded.secrets });
    const monitor = initSelfMonitoring(loaded, logger);
    const registry = createRegistry(loaded, options.appRoot ?? process.cwd(), logger);
    registry.discover();
    for (const p of options.plugins ?? []) registry.register(p);
    const resolved = await resolveInstances(loaded, registry);
    // Checked before the store opens, like the routes: a bad provider stops start-up.
    const ssoProviders = await resolveSsoProviders(loaded, registry);
    for (const b of resolved.broken) {
      logger.error(b, 'plugin failed to load; its deliveries wait in the queue until it is fixed');
    }
    const store = options.store ?? (await openStore(loaded));
    // One process owns an SQLite data directory, so every running lease left
    // in it belongs to a process that died: its jobs run again. On a shared
    // PostgreSQL the other replicas' leases are live; only expired ones are
    // taken back (the dispatcher keeps doing so while it runs).
    const shared = loaded.config.databaseUrl !== undefined && options.store === undefined;
    const recovered = await store.releaseLeases(shared ? { expiredOnly: true } : {});
    const relay = new Relay(loaded, {
      logger,
      store,
      registry,
      resolved,
      monitor,
      ssoProviders,
      ...(options.now ? { now: options.now } : {}),
    });
    relay.dispatcher.start();
    relay.flusher.start();
    relay.purgeTimer = setInterval(() => {
      void (store as { purge?: () => Promise<void> }).purge?.().catch(() => undefined);
    }, 60_000);
    relay.purgeTimer.unref();
    if (options.listen !== false) {
      try {
        await relay.listen();
      } catch (err) {
        // Release the data directory and the dispatcher before reporting.
        await relay.close();
        const code = (err as NodeJS.ErrnoException).code;
        const where = `${loaded.listen.host}:${loaded.listen.port}`;
        throw new ConfigError(
          'PB_CONFIG_INVALID',
          code === 'EADDRINUSE'
            ? `cannot listen on ${where}: the address is in use (another relay?); set listen or PLUGBOARD_LISTEN`
            : `cannot listen on ${where}: ${(err as Error).message}`,
          { path: 'listen', value: where },
          { cause: err },
        );
      }
    }
    logger.info(
      {
        version: RELAY_VERSION,
        sdk: SDK_VERSION,
        node: process.version,
        store: options.store
          ? 'custom'
          : loaded.config.databaseUrl
            ? `postgres:${redactUrl(loaded.config.databaseUrl)} schema ${loaded.config.store.postgres.schema}`
            : `sqlite:${loaded.config.dataDir}`,
        listen: relay.address ? `${relay.address.address}:${relay.address.port}` : null,
        config: loaded.file ?? null,
        routes: loaded.config.routes.map((r) => r.name),
        plugins: registry
          .list()
          .map((d: DiscoveredPlugin) => `${d.name}@${d.packageVersion}:${d.status}`),
        recovered,
      },
      'plugboard relay started',
    );
    // Valid, but a route that can never match is a mistake nothing else reports.
    for (const s of shadowedRoutes(loaded.config.routes)) {
      logger.warn(
        { route: s.route.name, shadowedBy: s.by.name },
        `route ${s.route.name} can never match: route ${s.by.name} before it takes everything it would and has no continue: true`,
      );
    }
    return relay;
  }

  address: AddressInfo | undefined;

  private listen(): Promise<void> {
    const { host, port } = this.loaded.listen;
    const server = createServer(this.app);
    // Sentry waits 1 s; keep-alive lets it reuse connections.
    server.keepAliveTimeout = 65_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        this.address = server.address() as AddressInfo;
        resolve();
      });
    });
  }

  private async readiness(broken: ResolvedInstances['broken']): Promise<ReadyReport> {
    const checks: ReadyReport['checks'] = {};
    try {
      await this.store.checkWritable();
      // A small probe write can still fit where a webhook did not (a nearly
      // full disk): a refusal in the last few seconds counts too.
      checks.store =
        Date.now() - this.lastStoreFailure < 5000
          ? { ok: false, detail: 'the store refused a webhook in the last 5 s' }
          : { ok: true };
    } catch (err) {
      checks.store = { ok: false, detail: (err as Error).message };
    }
    checks.plugins =
      broken.length === 0
        ? { ok: true }
        : {
            ok: false,
            detail: broken
              .map((b) => `${b.instanceId}: plugin ${b.plugin} failed: ${b.error}`)
              .join('; '),
          };
    checks.shutdown = this.closing ? { ok: false, detail: 'shutting down' } : { ok: true };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  /**
   * Stop accepting, let in-flight deliveries finish within the grace period,
   * release the rest for the next start, close the store. Idempotent.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const errors: unknown[] = [];
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    const server = this.server;
    const serverClosed = server
      ? new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        })
      : Promise.resolve();
    try {
      await this.flusher.close();
      await this.dispatcher.close(this.loaded.config.dispatch.shutdownGraceMs);
    } catch (err) {
      errors.push(err);
    }
    server?.closeAllConnections();
    await serverClosed;
    try {
      await this.store.close();
    } catch (err) {
      errors.push(err);
    }
    await this.monitor.close();
    for (const err of errors) this.logger.error({ err }, 'error during shutdown');
    this.logger.info('plugboard relay stopped');
    this.logger.flush?.();
  }
}
